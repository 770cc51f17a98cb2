"""deltaglider's own SDK calls beside boto3's: upload, download, verify, estimate, bucket
stats, and the rest of what deltaglider 6.x documented (batches, chunked upload with
progress, object info, similar files, rehydration, recursive delete, the cache), with 6.x's
method names, argument names and result fields, each a thin wrapper over one engine call.

Owns: those wrappers, mixed into `client.DeltagliderClient`. Must not decide anything the
engine decides, or keep state of its own.
"""

from __future__ import annotations

import difflib
import os
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltaglider.errors import IntegrityError
from deltaglider.metadata import DELTA_SUFFIX, ObjectKind, delta_key
from deltaglider.models import (
    CompressionEstimate,
    DeltaPolicy,
    DownloadResult,
    ObjectInfo,
    StoredAs,
    UploadOptions,
    UploadResult,
    VerifyResult,
)
from deltaglider.responses import as_client_errors, etag_of, response_metadata
from deltaglider.series import series_of
from deltaglider.stats import BucketStats
from deltaglider.stats import Mode as StatsMode
from deltaglider.transfer import local_destination
from deltaglider.urls import S3Url, base_name, destination_key

if TYPE_CHECKING:
    from deltaglider.engine import Engine

Paths = str | os.PathLike[str]
MIB = 1024 * 1024


def tagging(tags: dict[str, str] | None) -> str | None:
    """6.x's `tags={...}` as S3's `Tagging` (a URL-encoded query string)."""
    return urllib.parse.urlencode(tags) if tags else None


class ClientExtras:
    """Mixed into DeltagliderClient, which provides `engine`."""

    engine: Engine

    def upload(
        self,
        file_path: Paths,
        s3_url: str,
        tags: dict[str, str] | None = None,
        max_ratio: float | None = None,
        *,
        policy: DeltaPolicy = DeltaPolicy.AUTO,
        metadata: dict[str, str] | None = None,
    ) -> UploadResult:
        """Store a file (a trailing `/` in the URL keeps its name) and say how it was
        stored; the result also has 6.x's `UploadSummary` fields (is_delta, delta_ratio,
        savings_percent, original_size, operation…). `tags` become the object's S3 tags."""
        local = Path(file_path)
        url = S3Url.parse(s3_url)
        options = UploadOptions(policy, max_ratio, metadata, tagging=tagging(tags))
        return self.engine.upload(local, url.bucket, destination_key(url, local.name), options)

    def download(self, s3_url: str, output_path: Paths) -> DownloadResult:
        """Reconstruct `s3_url` into `output_path`: a file, or a folder (existing, or ending
        in `/`) that keeps the key's name, as `deltaglider cp` decides it."""
        url = S3Url.parse(s3_url)
        local = local_destination(os.fspath(output_path), url.key)
        return self.engine.download(url.bucket, url.key, local)

    def verify(self, s3_url: str) -> VerifyResult:
        """Reconstruct from what is stored and check the SHA-256; the result is true when it
        matches (`if client.verify(url):`, as 6.x), false with a message when it does not."""
        url = S3Url.parse(s3_url)
        try:
            return self.engine.verify(url.bucket, url.key)
        except IntegrityError as error:
            located = self.engine.locate(url.bucket, url.key)
            expected = located.sha256 or ""
            return VerifyResult(
                url.bucket, url.key, located.kind.value, expected, "", 0, str(error)
            )

    def estimate(
        self,
        file_path: Paths,
        s3_url: str,
        *,
        max_ratio: float | None = None,
        policy: DeltaPolicy = DeltaPolicy.AUTO,
        metadata: dict[str, str] | None = None,
    ) -> UploadResult:
        """What `upload` would store: the same decision and encoding, nothing written."""
        local = Path(file_path)
        url = S3Url.parse(s3_url)
        options = UploadOptions(policy, max_ratio, metadata)
        return self.engine.estimate(local, url.bucket, destination_key(url, local.name), options)

    def get_bucket_stats(
        self,
        bucket: str | None = None,
        Prefix: str = "",
        mode: str = "quick",
        *,
        Bucket: str | None = None,
        by: str = "series",
        use_cache: bool = True,
        refresh: bool = False,
        refresh_cache: bool = False,
        detailed_stats: bool | None = None,
    ) -> BucketStats:
        """What the bucket (under `Prefix`) stores and would take stored whole, as
        `deltaglider stats`: mode "quick", "sampled" or "detailed" (`detailed_stats=True`,
        as 6.x's docs spell it); `refresh_cache` is 6.x's `refresh`. The result also has 6.x's
        fields (object_count, total_size, compressed_size, space_saved, …)."""
        name = bucket or Bucket
        if not name or (bucket and Bucket and bucket != Bucket):
            raise TypeError("get_bucket_stats needs the bucket once: bucket=… (or Bucket=…)")
        try:
            chosen = StatsMode("detailed" if detailed_stats else mode)
        except ValueError:
            raise ValueError(f"mode must be quick, sampled or detailed, not {mode!r}") from None
        with as_client_errors("ListObjectsV2"):
            return self.engine.stats(
                name,
                Prefix,
                mode=chosen,
                by=by,
                use_cache=use_cache,
                refresh=refresh or refresh_cache,
            )

    # ---------------------------------------------------------- deltaglider 6.x's extras

    def upload_chunked(
        self,
        file_path: Paths,
        s3_url: str,
        chunk_size: int = 5 * MIB,
        progress_callback: Callable[[int, int, int, int], None] | None = None,
        max_ratio: float | None = None,
    ) -> UploadResult:
        """`upload`, telling `progress_callback(chunk, chunks, bytes_done, total)` as each
        `chunk_size` of the file is done (read for a delta, sent for a direct object)."""
        local = Path(file_path)
        total = local.stat().st_size
        chunks = max(1, -(-total // chunk_size))
        done = [0, 0]  # bytes, chunks told

        def advance(count: int) -> None:
            done[0] += count
            while (
                progress_callback
                and done[1] < chunks
                and done[0] >= min((done[1] + 1) * chunk_size, total)
            ):
                done[1] += 1
                progress_callback(done[1], chunks, min(done[1] * chunk_size, total), total)

        url = S3Url.parse(s3_url)
        options = UploadOptions(max_ratio=max_ratio)
        key = destination_key(url, local.name)
        result = self.engine.upload(local, url.bucket, key, options, advance)
        advance(0)  # an unchanged or empty file reads nothing: its one chunk is still told
        if progress_callback and done[1] < chunks:
            progress_callback(chunks, chunks, total, total)
        return result

    def upload_batch(
        self,
        files: Iterable[Paths],
        s3_prefix: str,
        max_ratio: float | None = None,
        progress_callback: Callable[[str, int, int], None] | None = None,
    ) -> list[UploadResult]:
        """Each file uploaded under `s3_prefix` (a folder), in order; `progress_callback(name,
        number, count)` before each."""
        paths = [Path(f) for f in files]
        folder = s3_prefix if s3_prefix.endswith("/") else s3_prefix + "/"
        results = []
        for number, path in enumerate(paths, start=1):
            if progress_callback:
                progress_callback(path.name, number, len(paths))
            results.append(self.upload(path, folder, max_ratio=max_ratio))
        return results

    def download_batch(
        self,
        s3_urls: Iterable[str],
        output_dir: Paths,
        progress_callback: Callable[[str, int, int], None] | None = None,
    ) -> list[Path]:
        """Each URL downloaded into `output_dir` (made if missing) under its key's name."""
        urls = list(s3_urls)
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for number, s3_url in enumerate(urls, start=1):
            name = base_name(S3Url.parse(s3_url).key)
            if progress_callback:
                progress_callback(name, number, len(urls))
            self.download(s3_url, folder / name)
            written.append(folder / name)
        return written

    def estimate_compression(
        self, file_path: Paths, bucket: str, prefix: str = "", sample_size: int = MIB
    ) -> CompressionEstimate:
        """What the file would take stored under `prefix` now: the real encode against what
        the bucket holds (`estimate`), so the answer is exact; `sample_size` is unused."""
        local = Path(file_path)
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        found = self.estimate(local, f"s3://{bucket}/{folder}")
        return CompressionEstimate(
            original_size=found.file_size,
            estimated_compressed_size=found.stored_size,
            estimated_ratio=found.ratio,
            confidence=1.0,
            recommended_reference=None,
            should_use_delta=found.stored_as in (StoredAs.DELTA, StoredAs.REFERENCE),
        )

    def find_similar_files(
        self, bucket: str, prefix: str, filename: str, limit: int = 5
    ) -> list[dict[str, Any]]:
        """Files under `prefix` most like `filename` (most similar first): the same series
        scores 1, otherwise how alike the names are (kept above 0.5)."""
        wanted = series_of(filename)
        found: list[tuple[float, str, dict[str, Any]]] = []
        for entry in self.engine.listing(bucket, prefix, recursive=True, logical_sizes=True):
            name = base_name(entry.key)
            similarity = 1.0 if series_of(name) == wanted else 0.0
            similarity = similarity or difflib.SequenceMatcher(None, name, filename).ratio()
            if similarity > 0.5:
                item = {
                    "Key": entry.key,
                    "Size": entry.size,
                    "Similarity": round(similarity, 3),
                    "LastModified": entry.last_modified,
                }
                found.append((-similarity, entry.key, item))
        return [item for _, _, item in sorted(found, key=lambda f: (f[0], f[1]))[:limit]]

    def get_object_info(self, s3_url: str) -> ObjectInfo:
        """How one file is stored (6.x's ObjectInfo), by the read rule: `k` or `k.delta`."""
        url = S3Url.parse(s3_url)
        with as_client_errors("HeadObject", head=True):
            located = self.engine.locate(url.bucket, url.key)
        head, is_delta = located.head, located.kind is ObjectKind.DELTA
        return ObjectInfo(
            key=url.key,
            size=located.logical_size,
            last_modified=head.last_modified.isoformat(),
            etag=etag_of(located),
            original_size=located.logical_size,
            compressed_size=head.size,
            compression_ratio=head.size / located.logical_size if located.logical_size else 0.0,
            is_delta=is_delta,
            reference_key=self.engine.reference_key_of(head) if is_delta else None,
            delta_chain_length=1 if is_delta else 0,
        )

    def rehydrate_for_download(self, Bucket: str, Key: str, ExpiresIn: int = 3600) -> str | None:
        """The key of a whole, verified copy of a delta under `.deltaglider/tmp/` lasting
        `ExpiresIn` seconds; None for a file stored whole (serve it as it is)."""
        with as_client_errors("GetObject"):
            return self.engine.rehydrate(Bucket, Key, ExpiresIn)

    def generate_presigned_url_with_rehydration(
        self, Bucket: str, Key: str, ExpiresIn: int = 3600
    ) -> str:
        """A presigned GET that serves the whole file (`generate_presigned_url` does this
        for every delta already)."""
        with as_client_errors("GetObject"):
            params = {"Bucket": Bucket, "Key": Key}
            return self.engine.presigned_url("get_object", params, ExpiresIn)

    def delete_objects_recursive(self, Bucket: str, Prefix: str) -> dict[str, Any]:
        """Delete every file under `Prefix` (a folder, or one file of that name), each
        reference once no remaining delta needs it: 6.x's counts."""
        counts = {"DeltasDeleted": 0, "ReferencesDeleted": 0, "DirectDeleted": 0}
        folder = Prefix if not Prefix or Prefix.endswith("/") else Prefix + "/"
        keys = [e.key for e in self.engine.listing(Bucket, folder, recursive=True)]
        with as_client_errors("DeleteObjects"):
            if Prefix and not Prefix.endswith("/") and self.engine.find(Bucket, Prefix):
                keys.insert(0, Prefix)
            for key in keys:
                removed = self.engine.delete(Bucket, key).removed
                for stored in removed:
                    kind = "DeltasDeleted" if stored.endswith(DELTA_SUFFIX) else "DirectDeleted"
                    kind = "ReferencesDeleted" if stored not in (key, delta_key(key)) else kind
                    counts[kind] += 1
        return {
            "ResponseMetadata": response_metadata(),
            "DeletedCount": len(keys),
            "FailedCount": 0,
            "DeltaGliderInfo": {**counts, "OtherDeleted": 0},
        }

    def clear_cache(self) -> int:
        """Drop every reference this machine's cache holds; how many went."""
        return self.engine.clear_cache()

    def evict_cache(self) -> int:
        """6.x's other name for `clear_cache`."""
        return self.clear_cache()

"""The one door the CLI, the SDK and the many-file runners go through: one S3 store, one
reference cache, one set of settings.

Owns: nothing but the door. Each method hands its call to the flow module that owns it:
`writing` (upload, estimate, copy, compact: decide and encode), `reading` (find, locate,
download, verify, reconstruct), `deleting`, `listing` (the logical view), `buckets` (bucket
settings and the reference-group rule), `maintenance` (cleanup, presigned-URL copies) and
`stats`. Retention and migration sit above the engine and use only this door. Must not call
boto3 (`s3`) or start subprocesses (`xdelta`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from deltaglider import decision, deleting, listing, maintenance, reading, stats, writing
from deltaglider.buckets import ReferenceGroup
from deltaglider.cache import ReferenceCache
from deltaglider.config import Settings
from deltaglider.errors import NotFoundError
from deltaglider.events import Subscriber
from deltaglider.files import Digest, Progress
from deltaglider.listing import ListingSummary
from deltaglider.metadata import BucketSettings
from deltaglider.models import (
    Bucket,
    DeleteResult,
    DeltaPolicy,
    DownloadResult,
    ListEntry,
    LogicalPage,
    ObjectHead,
    ReferenceMode,
    UploadOptions,
    UploadResult,
    VerifyResult,
)
from deltaglider.parts import EngineParts
from deltaglider.reading import Located
from deltaglider.s3 import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class Engine:
    """One S3 store, one reference cache, one set of settings."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore | None = None,
        cache: ReferenceCache | None = None,
        *,
        credentials: dict[str, str] | None = None,
        boto3_methods: bool = False,
    ) -> None:
        """`credentials` override boto3's chain (never kept or logged); `boto3_methods`: boto3."""
        self.settings = settings
        self._parts = EngineParts.build(
            settings, store, cache, credentials=credentials, boto3_methods=boto3_methods
        )

    @property
    def boto3_client(self) -> S3Client:  # for the SDK's pass-through methods only
        client: S3Client = self._parts.store.client
        return client

    def work_directory(self) -> tempfile.TemporaryDirectory[str]:
        return self._parts.work_directory()  # a killed process's is removed by the next

    def close(self) -> None:  # this process's scratch files (and per-process references)
        self._parts.close()

    # -------------------------------------------------------------------------- writing

    def upload(
        self,
        path: Path,
        bucket: str,
        key: str,
        options: UploadOptions | None = None,
        progress: Progress | None = None,
        *,
        absent: bool = False,
    ) -> UploadResult:
        """Store a local file under a logical key (`writing.upload`): a new reference, a
        delta, or direct; `absent`: a listing just showed neither form of the key."""
        return writing.upload(self._parts, path, bucket, key, options, progress, absent=absent)

    def estimate(
        self, path: Path, bucket: str, key: str, options: UploadOptions | None = None
    ) -> UploadResult:
        """What `upload` would store: the same decision and encoding, nothing written."""
        return writing.estimate(self._parts, path, bucket, key, options)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        options: UploadOptions | None = None,
        progress: Progress | None = None,
    ) -> UploadResult:
        """S3 to S3, logically: the destination gets its own delta or direct object."""
        return writing.copy(
            self._parts, src_bucket, src_key, dst_bucket, dst_key, options, progress
        )

    def compact(self, bucket: str, key: str) -> UploadResult:
        """`migrate --in-place` for one key, readers never missing it (`writing.compact`)."""
        return writing.compact(self._parts, bucket, key)

    def reference_group(
        self, bucket: str, key: str, policy: DeltaPolicy = DeltaPolicy.AUTO
    ) -> ReferenceGroup | None:
        """The group a new reference made by an upload to `key` would serve (None: no delta
        is tried): many-file runners put each group's first upload first."""
        if not decision.wants_delta(key, policy):
            return None
        return self._parts.buckets.reference_group(bucket, key)

    # -------------------------------------------------------------------------- reading

    def find(self, bucket: str, key: str) -> Located | None:
        """FORMAT "How a read decides": `key` or `key.delta`, or None when neither exists."""
        return reading.find(self._parts, bucket, key)

    def locate(self, bucket: str, key: str) -> Located:
        """As `find`, but NotFoundError when neither exists, UsageError for a folder."""
        return reading.locate(self._parts, bucket, key)

    def download(
        self,
        bucket: str,
        key: str,
        destination: Path,
        progress: Progress | None = None,
        *,
        stored_key: str = "",
    ) -> DownloadResult:
        """Reconstruct a logical key into `destination` (complete and verified, or untouched);
        `stored_key`: the one form a listing just showed, read without HEADs."""
        return reading.download(
            self._parts, bucket, key, destination, progress, stored_key=stored_key
        )

    def verify(self, bucket: str, key: str) -> VerifyResult:
        """Reconstruct from what is stored (never the cache) and check; IntegrityError if bad."""
        return reading.verify(self._parts, bucket, key)

    def read(self, bucket: str, key: str, out: BinaryIO | None) -> tuple[Located, Digest]:
        """Locate and reconstruct `key` into `out` (looked up again if its form vanished)."""
        return reading.read_by_rule(self._parts, bucket, key, out)

    def reconstruct(self, bucket: str, located: Located, out: BinaryIO | None) -> Digest:
        """A located object's verified bytes into `out` (None: check only); IntegrityError."""
        return reading.reconstruct(self._parts, bucket, located, out)

    def listing(
        self, bucket: str, prefix: str, *, recursive: bool = False, logical_sizes: bool = False
    ) -> Iterator[ListEntry]:
        """The logical view under `prefix` (FORMAT "The logical view"), in key order."""
        return listing.logical_listing(
            self._parts.store,
            bucket,
            prefix,
            delimiter="" if recursive else "/",
            logical_sizes=logical_sizes,
            concurrency=self.settings.max_concurrency,
        )

    def listing_page(
        self,
        bucket: str,
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> LogicalPage:
        """One page of the logical view with logical sizes: what `list_objects_v2` returns."""
        return listing.logical_page(
            self._parts.store,
            bucket,
            prefix,
            delimiter=delimiter,
            start_after=start_after,
            max_keys=max_keys,
            concurrency=self.settings.max_concurrency,
        )

    def summarize(
        self,
        bucket: str,
        prefix: str,
        *,
        recursive: bool = True,
        subscriber: Subscriber | None = None,
    ) -> ListingSummary:
        """`ls --summarize` totals; `subscriber.on_done(entry=)` sees each entry."""
        entries = self.listing(bucket, prefix, recursive=recursive, logical_sizes=True)
        return listing.summarize(self._parts.store, bucket, entries, subscriber or Subscriber())

    def stored_objects(self, bucket: str, prefix: str) -> Iterator[ObjectHead]:  # all, as listed
        return listing.stored_objects(self._parts.store, bucket, prefix)

    def head_stored(self, bucket: str, key: str) -> ObjectHead | None:
        return self._parts.store.head(bucket, key)

    def release_reference(self, bucket: str, ref: str, delta: str | None = None) -> list[str]:
        """`delta` is gone (or None): drop its marker, then `ref` if unneeded (what went)."""
        return self._parts.references.release(bucket, ref, delta)

    def clear_cache(self) -> int:
        """Drop every cached reference; how many went."""
        return self._parts.cache.clear()

    @staticmethod
    def reference_key_of(head: ObjectHead) -> str:
        """The key of the reference a delta (as HEADed) was made against."""
        return reading.reference_of(head)

    # ------------------------------------------------------------------------- deleting

    def delete(self, bucket: str, key: str) -> DeleteResult:
        """Delete a logical object (both forms; its reference once no delta needs it)."""
        return deleting.delete(self._parts, bucket, key)

    def delete_recursive(
        self, bucket: str, prefix: str, subscriber: Subscriber | None = None
    ) -> list[DeleteResult]:
        """Delete every stored object under `prefix` (`rb --force`), then unneeded references."""
        return deleting.delete_recursive(self._parts, bucket, prefix, subscriber)

    # -------------------------------------------------------------------------- buckets

    def reference_mode(self, bucket: str) -> ReferenceMode:
        """Where new references go: `--references`/DG_REFERENCES, the bucket's, or shared."""
        return self._parts.buckets.reference_mode(bucket)

    def bucket_settings(self, bucket: str) -> BucketSettings:  # read once; defaults if none
        return self._parts.buckets.get(bucket)

    def change_bucket_settings(self, bucket: str, changes: list[str]) -> BucketSettings:
        """`config --set KEY=VALUE…`: all checked first, then written; the settings now."""
        for change in changes:
            BucketSettings().changed(change)
        current = self.bucket_settings(bucket)
        if changes:
            for change in changes:
                current = current.changed(change)
            self._parts.buckets.put(bucket, current)
        return current

    def bucket_exists(self, bucket: str) -> bool:
        return self._parts.store.bucket_exists(bucket)

    def require_bucket(self, bucket: str) -> None:  # NotFoundError (NoSuchBucket) if missing
        if not self.bucket_exists(bucket):
            raise NotFoundError(f"s3://{bucket}: no such bucket", code="NoSuchBucket")

    def bucket_region(self, bucket: str) -> str | None:
        return self._parts.store.bucket_region(bucket)

    def list_buckets(self) -> list[Bucket]:
        return self._parts.store.list_buckets()

    def create_bucket(self, bucket: str) -> None:
        self._parts.store.create_bucket(bucket, self.settings.region)

    def delete_bucket(self, bucket: str) -> None:  # an empty one
        self._parts.store.delete_bucket(bucket)

    def bucket_acl(self, bucket: str) -> dict[str, Any]:
        return self._parts.store.bucket_acl(bucket)

    def put_bucket_acl(self, bucket: str, acl: dict[str, Any]) -> None:
        self._parts.store.put_bucket_acl(bucket, acl)

    # ---------------------------------------------------------------------- maintenance

    def cleanup(
        self,
        bucket: str,
        prefix: str,
        *,
        older_than: float = 3600.0,
        dryrun: bool = False,
        subscriber: Subscriber | None = None,
    ) -> maintenance.CleanupReport:
        """Repair what interrupted operations left under `prefix` (`deltaglider cleanup`)."""
        parts = self._parts
        return maintenance.cleanup(
            parts.store,
            parts.references,
            bucket,
            prefix,
            older_than=older_than,
            dryrun=dryrun,
            subscriber=subscriber,
        )

    def presigned_url(
        self, method: str, params: dict[str, Any], expires_in: int, http_method: str | None = None
    ) -> str:
        """A presigned URL; `get_object` of a delta serves a rehydrated whole copy."""
        return maintenance.presigned_url(self._parts, method, params, expires_in, http_method)

    def rehydrate(self, bucket: str, key: str, expires_in: int) -> str | None:
        """The key of a whole, verified copy of a delta under `.deltaglider/tmp/` that lasts
        `expires_in` seconds (what a presigned GET of it serves); None for a whole object."""
        return maintenance.rehydrated_key(self._parts, bucket, key, expires_in)

    def purge_rehydrations(self, bucket: str, *, dryrun: bool = False) -> maintenance.PurgeResult:
        """Delete expired presigned-URL copies (with `dryrun`, say which would go)."""
        return maintenance.purge(self._parts, bucket, dryrun=dryrun)

    def stats(
        self,
        bucket: str,
        prefix: str = "",
        *,
        mode: stats.Mode = stats.Mode.QUICK,
        by: str = "series",
        use_cache: bool = True,
        refresh: bool = False,
        subscriber: Subscriber | None = None,
    ) -> stats.BucketStats:
        """What `prefix` stores and would take stored whole (`deltaglider stats`)."""
        if not self.bucket_exists(bucket):
            raise NotFoundError(f"s3://{bucket}/: no such bucket", code="NoSuchBucket")
        return stats.compute(
            self._parts.store,
            bucket,
            prefix,
            mode=mode,
            by=by,
            use_cache=use_cache,
            refresh=refresh,
            concurrency=self.settings.max_concurrency,
            subscriber=subscriber,
            chained=self._parts.buckets.reference_mode(bucket) is ReferenceMode.CHAIN,
        )


DeltaService = Engine  # deltaglider 6.x's name for the service its clients wrap

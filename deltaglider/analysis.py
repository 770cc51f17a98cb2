"""`deltaglider analyze DIR`: what a local folder of artifacts (last month's releases, say)
would store under deltaglider, with no bucket involved — the "should we switch?" answer.

Owns: walking the folder, ordering each series' versions (natural order of their paths, so
`1.9` comes before `1.10`), and a scratch bucket on local disk (`ScratchStore`: S3's listing
order, bytes in files under a temporary folder, metadata in memory) that the real Engine
uploads into, one file at a time in that order — the same decisions, codecs and references
as `cp` — before `stats` reads the result. Must not touch S3 or the user's files.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deltaglider import stats
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.errors import NotFoundError, UsageError
from deltaglider.events import Subscriber
from deltaglider.files import Sink
from deltaglider.models import Bucket, ListedPrefix, ObjectHead, UploadOptions, UploadResult
from deltaglider.s3 import AlreadyExists
from deltaglider.series import natural_key

BUCKET = "analyze"
PAGE = 1000


@dataclass(frozen=True)
class Analysis:
    folder: str
    uploads: tuple[UploadResult, ...]  # in the order they were made
    stats: stats.BucketStats  # of the scratch bucket afterwards (exact)


def analyze(
    folder: Path,
    settings: Settings,
    options: UploadOptions | None = None,
    subscriber: Subscriber | None = None,
) -> Analysis:
    """Upload every file under `folder` into a scratch bucket, in natural order of their
    paths, and read that bucket's exact stats; `subscriber.on_done(result=)` is told each
    upload."""
    told = subscriber or Subscriber()
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    files = sorted(
        (path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()),
        key=lambda path: natural_key(path.relative_to(folder).as_posix()),
    )
    with tempfile.TemporaryDirectory(prefix="deltaglider-analyze-") as scratch:
        engine = scratch_engine(settings, Path(scratch))
        try:
            uploads = []
            for path in files:
                result = engine.upload(path, BUCKET, path.relative_to(folder).as_posix(), options)
                uploads.append(result)
                told.on_done(result=result)
            result_stats = engine.stats(BUCKET, mode=stats.Mode.DETAILED, use_cache=False)
        finally:
            engine.close()
    return Analysis(str(folder), tuple(uploads), result_stats)


def scratch_engine(settings: Settings, folder: Path) -> Engine:
    """The real engine writing into a scratch bucket (`BUCKET`) kept under `folder`."""
    return Engine(settings, store=ScratchStore(folder))


@dataclass
class _Object:
    path: Path
    size: int
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))


class ScratchStore:
    """One bucket on local disk, an `s3.ObjectStore`, for `analyze` and `migrate --dryrun`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.objects: dict[str, _Object] = {}
        self.client: Any = None
        self._serial = 0

    def _check(self, bucket: str) -> None:
        if bucket != BUCKET:
            raise NotFoundError(f"s3://{bucket}: bucket does not exist", "NoSuchBucket")

    def _keep(
        self,
        key: str,
        write: Callable[[Path], object],
        metadata: dict[str, str],
        content_type: str | None,
    ) -> None:
        self._serial += 1
        path = self.folder / f"{self._serial:012d}"
        write(path)
        data_hash = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                data_hash.update(chunk)
        old = self.objects.get(key)
        self.objects[key] = _Object(
            path, path.stat().st_size, data_hash.hexdigest(), dict(metadata), content_type
        )
        if old is not None:
            old.path.unlink(missing_ok=True)

    def head(self, bucket: str, key: str) -> ObjectHead | None:
        self._check(bucket)
        obj = self.objects.get(key)
        if obj is None:
            return None
        return ObjectHead(
            key, obj.size, obj.etag, obj.last_modified, dict(obj.metadata), obj.content_type
        )

    def download(self, bucket: str, key: str, out: Sink) -> ObjectHead:
        head = self.head(bucket, key)
        obj = self.objects.get(key)
        if head is None or obj is None:
            raise NotFoundError(f"s3://{bucket}/{key}: no such key")
        with obj.path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                out.write(chunk)
        return head

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        metadata: dict[str, str],
        *,
        sha256: str | None,
        headers: dict[str, str] | None = None,
        exclusive: bool = False,
        progress: Any = None,
    ) -> None:
        self._check(bucket)
        if exclusive and key in self.objects:
            raise AlreadyExists(f"s3://{bucket}/{key}")
        self._keep(
            key,
            lambda target: shutil.copyfile(path, target),
            metadata,
            (headers or {}).get("ContentType"),
        )

    def put_bytes(self, bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
        self._check(bucket)
        self._keep(key, lambda target: target.write_bytes(data), metadata, None)

    def conditional_writes_work(self, bucket: str, prefix: str) -> bool:
        self._check(bucket)
        return True

    def copy_within(
        self, bucket: str, source: str, target: str, metadata: dict[str, str] | None = None
    ) -> None:
        self._check(bucket)
        obj = self.objects.get(source)
        if obj is None:
            raise NotFoundError(f"s3://{bucket}/{source}: no such key")
        self._keep(
            target,
            lambda path: shutil.copyfile(obj.path, path),
            obj.metadata if metadata is None else metadata,
            obj.content_type,
        )

    def delete(self, bucket: str, key: str) -> None:
        self._check(bucket)
        obj = self.objects.pop(key, None)
        if obj is not None:
            obj.path.unlink(missing_ok=True)

    def delete_many(self, bucket: str, keys: list[str]) -> list[str]:
        for key in keys:
            self.delete(bucket, key)
        return []

    def iter_listing(
        self, bucket: str, prefix: str, delimiter: str = "", start_after: str = ""
    ) -> Iterator[list[ObjectHead | ListedPrefix]]:
        self._check(bucket)
        entries: list[ObjectHead | ListedPrefix] = []
        seen: set[str] = set()
        for key in sorted(self.objects):
            if not key.startswith(prefix) or key <= start_after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common not in seen:
                    seen.add(common)
                    entries.append(ListedPrefix(common))
                continue
            obj = self.objects[key]
            entries.append(ObjectHead(key, obj.size, obj.etag, obj.last_modified))
        for start in range(0, max(len(entries), 1), PAGE):
            yield entries[start : start + PAGE]

    def incomplete_uploads(self, bucket: str, prefix: str) -> list[tuple[str, str, datetime]]:
        return []

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._check(bucket)

    def bucket_exists(self, bucket: str) -> bool:
        return bucket == BUCKET

    def list_buckets(self) -> list[Bucket]:
        return [Bucket(BUCKET, datetime.now(UTC))]

    def create_bucket(self, bucket: str, region: str | None = None) -> None:
        self._check(bucket)

    def delete_bucket(self, bucket: str) -> None:
        self._check(bucket)

    def presigned_url(
        self, method: str, params: dict[str, Any], expires_in: int, http_method: str | None
    ) -> str:
        raise UsageError("a scratch bucket on local disk has no URLs")

    def bucket_region(self, bucket: str) -> str | None:
        self._check(bucket)
        return None

    def bucket_acl(self, bucket: str) -> dict[str, Any]:
        raise UsageError("a scratch bucket on local disk has no ACL")

    def put_bucket_acl(self, bucket: str, acl: dict[str, Any]) -> None:
        raise UsageError("a scratch bucket on local disk has no ACL")

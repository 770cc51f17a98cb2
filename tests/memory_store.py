"""An in-memory `deltaglider.s3.ObjectStore`, for fast tests of the engine's logic.

It keeps S3's listing semantics (lexicographic order, prefixes, delimiters rolled up into common
prefixes that count as one entry, StartAfter) with a raw page size as small as 1, so every
page-boundary case of the logical view is reachable. Real servers are the e2e suite's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deltaglider.errors import IntegrityError, NotFoundError
from deltaglider.files import Sink
from deltaglider.models import Bucket, ListedPrefix, ObjectHead
from deltaglider.s3 import AlreadyExists, ObjectStore

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class StoredObject:
    body: bytes
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    last_modified: datetime = EPOCH


class MemoryStore:
    """Buckets of objects in dicts; `page_size` raw entries per listing page."""

    def __init__(self, page_size: int = 1000, buckets: tuple[str, ...] = ("b",)) -> None:
        self.page_size = page_size
        self.buckets: dict[str, dict[str, StoredObject]] = {name: {} for name in buckets}
        self.client: Any = None
        self.requests: list[str] = []  # operation names, in order
        self.uploads: list[tuple[str, str, datetime]] = []  # unfinished multipart uploads

    def as_store(self) -> ObjectStore:
        """This store, as the engine takes it (it implements `s3.ObjectStore`)."""
        return self

    def _bucket(self, bucket: str) -> dict[str, StoredObject]:
        if bucket not in self.buckets:
            raise NotFoundError(f"s3://{bucket}: bucket does not exist", "NoSuchBucket")
        return self.buckets[bucket]

    def put(self, bucket: str, key: str, body: bytes = b"", **metadata: str) -> None:
        """Test set-up: store an object as any writer might have (metadata keys as given)."""
        self._bucket(bucket)[key] = StoredObject(body, {k.lower(): v for k, v in metadata.items()})

    # -------------------------------------------------------------- Store's API

    def head(self, bucket: str, key: str) -> ObjectHead | None:
        self.requests.append("HeadObject")
        obj = self._bucket(bucket).get(key)
        if obj is None:
            return None
        return ObjectHead(
            key,
            len(obj.body),
            hashlib.md5(obj.body, usedforsecurity=False).hexdigest(),
            obj.last_modified,
            dict(obj.metadata),
            obj.content_type,
        )

    def download(self, bucket: str, key: str, out: Sink) -> ObjectHead:
        obj = self._bucket(bucket).get(key)
        if obj is None:
            self.requests.append("GetObject")
            raise NotFoundError(f"s3://{bucket}/{key}: no such key")
        head = self.head(bucket, key)
        self.requests[-1] = "GetObject"  # one request: the GET says what a HEAD would
        assert head is not None
        for start in range(0, len(obj.body), 1024 * 1024):  # streamed in chunks, as S3 bodies
            out.write(obj.body[start : start + 1024 * 1024])
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
        self.requests.append("PutObject")
        objects = self._bucket(bucket)
        data = path.read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"{path} changed while it was being uploaded")
        if exclusive and key in objects:
            raise AlreadyExists(f"s3://{bucket}/{key}")
        content_type = (headers or {}).get("ContentType")
        objects[key] = StoredObject(data, dict(metadata), content_type, datetime.now(UTC))
        if progress is not None:
            progress(len(data))

    def put_bytes(self, bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
        self.requests.append("PutObject")
        self._bucket(bucket)[key] = StoredObject(data, dict(metadata), None, datetime.now(UTC))

    def conditional_writes_work(self, bucket: str, prefix: str) -> bool:
        self._bucket(bucket)
        return True

    def copy_within(
        self, bucket: str, source: str, target: str, metadata: dict[str, str] | None = None
    ) -> None:
        objects = self._bucket(bucket)
        if source not in objects:
            raise NotFoundError(f"s3://{bucket}/{source}: no such key")
        original = objects[source]
        objects[target] = StoredObject(
            original.body,
            dict(original.metadata if metadata is None else metadata),
            original.content_type,
            datetime.now(UTC),
        )

    def delete(self, bucket: str, key: str) -> None:
        self.requests.append("DeleteObject")
        self._bucket(bucket).pop(key, None)

    def delete_many(self, bucket: str, keys: list[str]) -> list[str]:
        for key in keys:
            self.delete(bucket, key)
        return []

    def iter_listing(
        self, bucket: str, prefix: str, delimiter: str = "", start_after: str = ""
    ) -> Iterator[list[ObjectHead | ListedPrefix]]:
        entries: list[ObjectHead | ListedPrefix] = []
        seen_prefixes: set[str] = set()
        objects = self._bucket(bucket)
        for key in sorted(objects):
            if not key.startswith(prefix) or key <= start_after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common not in seen_prefixes:
                    seen_prefixes.add(common)
                    entries.append(ListedPrefix(common))
                continue
            obj = objects[key]
            entries.append(ObjectHead(key, len(obj.body), "etag", obj.last_modified))
        for start in range(0, len(entries), self.page_size):
            self.requests.append("ListObjectsV2")
            yield entries[start : start + self.page_size]
        if not entries:
            self.requests.append("ListObjectsV2")
            yield []

    def incomplete_uploads(self, bucket: str, prefix: str) -> list[tuple[str, str, datetime]]:
        self._bucket(bucket)
        return [upload for upload in self.uploads if upload[0].startswith(prefix)]

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._bucket(bucket)
        self.uploads = [upload for upload in self.uploads if upload[1] != upload_id]

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self.buckets

    def list_buckets(self) -> list[Bucket]:
        return [Bucket(name, EPOCH) for name in sorted(self.buckets)]

    def create_bucket(self, bucket: str, region: str | None = None) -> None:
        self.buckets.setdefault(bucket, {})

    def delete_bucket(self, bucket: str) -> None:
        del self.buckets[bucket]

    def presigned_url(
        self, method: str, params: dict[str, Any], expires_in: int, http_method: str | None
    ) -> str:
        return f"memory://{params.get('Bucket', '')}/{params.get('Key', '')}?expires={expires_in}"

    def bucket_region(self, bucket: str) -> str | None:
        self._bucket(bucket)
        return None

    def bucket_acl(self, bucket: str) -> dict[str, Any]:
        self._bucket(bucket)
        return {"Owner": {"ID": "memory"}, "Grants": []}

    def put_bucket_acl(self, bucket: str, acl: dict[str, Any]) -> None:
        self._bucket(bucket)

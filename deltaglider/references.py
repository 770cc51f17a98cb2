"""The reference protocol: finding, fetching, creating, protecting and removing references.

Owns: where a space's reference lives (FORMAT "Objects"), fetching it through the cache with
its SHA-256 checked, creating it exactly once (conditional write, or write-settle-read-back on
servers that ignore `If-None-Match`, probed once per bucket), putting it back when a concurrent
delete took it after a delta was written, and removing it only when no delta in its space needs
it (the trash protocol, FORMAT "Deleting and references"). Must not encode or decode (the
engine does), call boto3 (it goes through `s3.Store`) or list the logical view.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from deltaglider.cache import ReferenceCache
from deltaglider.config import Settings
from deltaglider.errors import NotFoundError
from deltaglider.files import Sink
from deltaglider.listing import space_has_deltas
from deltaglider.log import get_logger
from deltaglider.metadata import (
    PROBE_PREFIX,
    TRASH_PREFIX,
    ReferenceMeta,
    check_metadata,
    lookup,
    now,
    reference_key,
)
from deltaglider.s3 import AlreadyExists, Store

log = get_logger(__name__)


@dataclass(frozen=True)
class Reference:
    """A reference as an encode needs it (its metadata, to put it back if it vanishes)."""

    key: str
    sha256: str
    size: int
    metadata: dict[str, str]

    @classmethod
    def new(cls, space: str, source_name: str, sha256: str, size: int) -> Reference:
        """The reference a space's first delta-eligible file becomes."""
        key = reference_key(space)
        meta = ReferenceMeta(source_name, sha256, now()).to_dict()
        return cls(key, sha256, size, check_metadata(meta, key))


class References:
    """The references of one store, with one cache and the conditional-write probe results."""

    def __init__(self, store: Store, cache: ReferenceCache, settings: Settings) -> None:
        self._store = store
        self._cache = cache
        self._settle_seconds = settings.settle_seconds
        self._conditional: dict[str, bool] = {}
        self._probe_lock = threading.Lock()

    def find(self, bucket: str, space: str) -> Reference | None:
        """The space's `reference.bin` as it is now, or None when there is none."""
        key = reference_key(space)
        head = self._store.head(bucket, key)
        if head is None:
            return None
        sha256 = ReferenceMeta.from_dict(head.metadata, key).file_sha256
        return Reference(key, sha256, head.size, head.metadata)

    def fetch(
        self, bucket: str, ref_key: str, ref_sha256: str
    ) -> contextlib.AbstractContextManager[Path]:
        """A local copy of the reference whose bytes have `ref_sha256` (ReferenceMismatch when
        the stored one has other bytes; NotFoundError when it is gone)."""

        def download(out: Sink) -> None:
            self._store.download(bucket, ref_key, out)

        return self._cache.reference(ref_sha256, download, f"s3://{bucket}/{ref_key}")

    def remember(self, reference: Reference, source: Path) -> None:
        """Keep the bytes of a reference this process just created: no download to reuse it."""
        self._cache.store(reference.sha256, source)

    def create(self, bucket: str, reference: Reference, source: Path) -> None:
        """Create `reference.key` from `source` unless it exists (AlreadyExists then).

        With conditional writes this is one `If-None-Match: *` request. On a server that
        ignores the condition (detected once per bucket) the reference is written, left to
        settle for `settle_seconds`, and read back: a writer whose bytes did not win raises
        AlreadyExists and encodes against the winner, as on 412."""
        conditional = self._supports_conditional_writes(bucket)
        if not conditional and self._store.head(bucket, reference.key) is not None:
            raise AlreadyExists(reference.key)
        self._store.put_file(
            bucket,
            reference.key,
            source,
            reference.metadata,
            sha256=reference.sha256,
            exclusive=conditional,
        )
        if not conditional:
            time.sleep(self._settle_seconds)
            head = self._store.head(bucket, reference.key)
            if head is None or lookup(head.metadata, "file_sha256") != reference.sha256:
                raise AlreadyExists(reference.key)

    def _supports_conditional_writes(self, bucket: str) -> bool:
        """Probe once per bucket: does a second `If-None-Match: *` PUT get 412?"""
        with self._probe_lock:
            known = self._conditional.get(bucket)
            if known is None:
                known = self._store.conditional_writes_work(bucket, PROBE_PREFIX)
                if not known:
                    log.warning(
                        "conditional_writes_unsupported",
                        bucket=bucket,
                        fallback="write, settle, read back",
                    )
                self._conditional[bucket] = known
            return known

    def in_place(self, bucket: str, reference: Reference, source: Path) -> bool:
        """After a delta was written: is its reference (same SHA-256) still there? If it was
        removed meanwhile, put the same bytes back. False when other bytes took its place."""
        head = self._store.head(bucket, reference.key)
        if head is None:
            log.warning("reference_restored", bucket=bucket, ref_key=reference.key)
            try:
                self.create(bucket, reference, source)
                return True
            except AlreadyExists:
                head = self._store.head(bucket, reference.key)
        return head is not None and lookup(head.metadata, "file_sha256") == reference.sha256

    def drop_unused(self, bucket: str, space: str) -> list[str]:
        """Delete `<space>/reference.bin` when no `.delta` is left directly in the space.

        An upload may write a delta between our listing and our delete, so the reference is
        first copied to `.deltaglider/trash/`, then deleted, then the space is listed again:
        if a delta appeared, the reference is put back from the trash. (The uploader also
        checks after writing its delta and restores the reference itself if it is gone.)
        `deltaglider cleanup` finishes what a crash between these steps left behind."""
        if space_has_deltas(self._store, bucket, space):
            return []
        ref_key = reference_key(space)
        if self._store.head(bucket, ref_key) is None:
            return []
        trash_key = f"{TRASH_PREFIX}{uuid.uuid4().hex}"
        try:
            self._store.copy_within(bucket, ref_key, trash_key)
        except NotFoundError:
            return []  # another deleter got there first
        self._store.delete(bucket, ref_key)
        if space_has_deltas(self._store, bucket, space):
            log.warning(
                "reference_kept",
                bucket=bucket,
                ref_key=ref_key,
                reason="a delta arrived while it was being removed",
            )
            if self._store.head(bucket, ref_key) is None:
                self._store.copy_within(bucket, trash_key, ref_key)
            self._store.delete(bucket, trash_key)
            return []
        self._store.delete(bucket, trash_key)
        log.info("reference_removed", bucket=bucket, ref_key=ref_key, reason="no deltas left")
        return [ref_key]

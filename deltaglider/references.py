"""The reference protocol: finding, fetching, creating, protecting and removing references.

Owns: where references live (FORMAT "Objects": a folder's own `reference.bin`, and shared
references of a series under `.deltaglider/refs/`), finding an upload's candidates with a
bounded number of requests, fetching through the cache with the SHA-256 checked, creating a
folder reference exactly once (a conditional write) and a shared one race-free by
construction (a unique key, never overwritten), the user markers that say which deltas need a
shared reference, putting a reference back when a concurrent delete took it after a delta
was written, and removing one only when no delta needs it (the trash protocol, FORMAT
"Deleting and references"). Must not encode or decode (the engine does), call boto3 (it goes
through `s3.Store`) or list the logical view.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deltaglider.cache import ReferenceCache
from deltaglider.errors import NotFoundError
from deltaglider.files import Sink
from deltaglider.listing import space_has_deltas, stored_objects
from deltaglider.log import get_logger
from deltaglider.metadata import (
    PROBE_PREFIX,
    REFERENCE_NAME,
    LinkMeta,
    ReferenceMeta,
    check_metadata,
    is_shared_reference,
    logical_key_of,
    lookup,
    named_reference,
    now,
    reference_key,
    removal_marker_key,
    series_refs_prefix,
    shared_reference_key,
    slot_created_at,
    slot_sha256,
    trash_folder,
    trash_meta,
    untrashed_meta,
    user_marker_key,
    user_marker_meta,
    users_prefix,
)
from deltaglider.models import ListedPrefix, ObjectHead
from deltaglider.s3 import AlreadyExists, ObjectStore
from deltaglider.series import series_id, series_of
from deltaglider.urls import parent_prefix

SERIES_CANDIDATES = 2  # newest shared references of a series an upload considers

log = get_logger(__name__)


@dataclass(frozen=True)
class Reference:
    """A reference as an encode needs it (its metadata, to put it back if it vanishes;
    empty for a shared reference known from a listing, whose key names its SHA-256)."""

    key: str
    sha256: str
    metadata: dict[str, str]

    @property
    def shared(self) -> bool:
        return is_shared_reference(self.key)

    @classmethod
    def new(cls, space: str, source_name: str, sha256: str) -> Reference:
        """The reference a space's first delta-eligible file becomes (folder mode)."""
        key = reference_key(space)
        meta = ReferenceMeta(source_name, sha256, now()).to_dict()
        return cls(key, sha256, check_metadata(meta, key))

    @classmethod
    def new_shared(
        cls, series: str, source_name: str, sha256: str, chain: LinkMeta | None = None
    ) -> Reference:
        """A new shared reference of `series` made from a file (shared mode), or a member
        of its chain (`chain`: FORMAT "Delta chains")."""
        created = now()
        key = shared_reference_key(series_id(series), created, sha256)
        meta = ReferenceMeta(source_name, sha256, created, series=series).to_dict()
        meta.update(chain.to_dict() if chain is not None else {})
        return cls(key, sha256, check_metadata(meta, key))


def _listed_metadata(reference: Reference, delta_key: str) -> Reference | None:
    """A shared reference known from a listing, with the metadata it was created with as far
    as its key and the delta's series tell (FORMAT "Objects": the slot names its time and
    SHA-256), so the bytes an upload encoded against can be put back; None when the key
    does not belong to the delta's series."""
    series = series_of(logical_key_of(delta_key))
    created = slot_created_at(reference.key)
    if created is None or not reference.key.startswith(series_refs_prefix(series_id(series))):
        return None
    meta = ReferenceMeta(REFERENCE_NAME, reference.sha256, created, series=series).to_dict()
    return Reference(reference.key, reference.sha256, check_metadata(meta, reference.key))


class References:
    """The references of one store, with one cache and the conditional-write probe results."""

    def __init__(self, store: ObjectStore, cache: ReferenceCache) -> None:
        self._store = store
        self._cache = cache
        self._conditional: dict[str, bool] = {}
        self._probe_lock = threading.Lock()

    def find(self, bucket: str, space: str) -> Reference | None:
        """The space's `reference.bin` as it is now, or None when there is none."""
        return self.head(bucket, reference_key(space))

    def head(self, bucket: str, key: str) -> Reference | None:
        head = self._store.head(bucket, key)
        if head is None:
            return None
        sha256 = ReferenceMeta.from_dict(head.metadata, key).file_sha256
        return Reference(key, sha256, head.metadata)

    def shared_candidates(self, bucket: str, series: str) -> list[Reference]:
        """The newest shared references of a series, newest first, from one listing page: a
        slot's name carries its reference's SHA-256 (FORMAT "Objects"), so no HEAD is needed.
        A slot whose reference is gone is found out by the fetch (NotFoundError)."""
        for page in self._store.iter_listing(bucket, series_refs_prefix(series_id(series)), "/"):
            slots = sorted(e.prefix for e in page if isinstance(e, ListedPrefix))
            found = []
            for slot in slots[:SERIES_CANDIDATES]:
                sha256 = slot_sha256(slot)
                if sha256 is not None:
                    found.append(Reference(slot + reference_key(""), sha256, {}))
            return found  # newest first: the first page holds them
        return []

    def fetch(
        self, bucket: str, ref_key: str, ref_sha256: str, *, fresh: bool = False
    ) -> contextlib.AbstractContextManager[Path]:
        """A local copy of the reference whose bytes have `ref_sha256` (ReferenceMismatch when
        the stored one has other bytes; NotFoundError when it is gone); with `fresh`, read
        from the bucket even when the cache has it."""

        def download(out: Sink) -> None:
            self._store.download(bucket, ref_key, out)

        return self._cache.reference(ref_sha256, download, f"s3://{bucket}/{ref_key}", fresh=fresh)

    def create_shared(self, bucket: str, reference: Reference, source: Path) -> None:
        """Write a new shared reference: its key is unique to this file and moment, so no
        other writer can replace it and no conditional write is needed. A chain link's body
        (`source`, our own delta file) is not its file, so only a whole one is re-hashed."""
        link = LinkMeta.from_dict(reference.metadata, reference.key)
        self._store.put_file(
            bucket,
            reference.key,
            source,
            reference.metadata,
            sha256=None if link is not None and link.linked else reference.sha256,
        )

    def add_user(self, bucket: str, reference: Reference, delta_key: str) -> None:
        """Record, before the delta is written, that `delta_key` needs this shared reference."""
        if reference.shared:
            marker = user_marker_key(reference.key, delta_key)
            self._store.put_bytes(bucket, marker, b"", user_marker_meta(delta_key))

    def release(self, bucket: str, ref_key: str, delta_key: str | None = None) -> list[str]:
        """A delta made against `ref_key` is gone: drop its marker, and the reference itself
        if no delta needs it any more. Returns what was removed.

        Without `delta_key` (finishing what an interrupted removal left): the reference goes
        if no delta needs it, and once it is gone and unneeded, so do its trash copies."""
        if not is_shared_reference(ref_key):
            space = parent_prefix(delta_key if delta_key is not None else ref_key)
            key = reference_key(space)
            needed = functools.partial(space_has_deltas, self._store, bucket, space)
        else:
            key = ref_key
            needed = functools.partial(self.has_users, bucket, ref_key)
            if delta_key is not None and not self._drop_marker(bucket, key, delta_key):
                return []  # another writer stored this key against the same reference
        removed = self._remove_unless_needed(bucket, key, needed)
        if delta_key is None and self._store.head(bucket, key) is None and not needed():
            for copy in list(stored_objects(self._store, bucket, trash_folder(key))):
                self._store.delete(bucket, copy.key)
                removed.append(copy.key)
        return removed

    def _drop_marker(self, bucket: str, ref_key: str, delta_key: str) -> bool:
        """Delete the user marker of `delta_key` unless the delta stored there now names
        `ref_key`; the key is looked at again after the delete, so a writer of the same key
        whose delta landed meanwhile keeps its marker (it looks for it after its write)."""
        marker = user_marker_key(ref_key, delta_key)
        for attempt in range(2):
            current = self._store.head(bucket, delta_key)
            if current is not None and named_reference(current.metadata, delta_key) == ref_key:
                if attempt:
                    self._store.put_bytes(bucket, marker, b"", user_marker_meta(delta_key))
                return False
            if not attempt:
                self._store.delete(bucket, marker)
        return True

    def has_users(self, bucket: str, ref_key: str) -> bool:
        return any(True for _ in stored_objects(self._store, bucket, users_prefix(ref_key)))

    def remember(self, reference: Reference, source: Path) -> None:
        """Keep the bytes of a reference this process just created: no download to reuse it."""
        self._cache.keep(reference.sha256, source)

    def create(self, bucket: str, reference: Reference, source: Path) -> None:
        """Create `reference.key` from `source`; AlreadyExists when a folder reference is
        already there.

        A shared reference's key is unique, so a plain PUT is safe. A folder reference is
        created with `If-None-Match: *`: on 412 another writer won and the caller encodes
        against its reference. The engine creates folder references only where the server
        honours the condition (`conditional_writes`); elsewhere this writes without one, which
        only ever happens to put back the same bytes (`in_place`)."""
        if reference.shared:
            self.create_shared(bucket, reference, source)
            return
        self._store.put_file(
            bucket,
            reference.key,
            source,
            reference.metadata,
            sha256=reference.sha256,
            exclusive=self.conditional_writes(bucket),
        )

    def restore_pending(self, bucket: str, ref_key: str) -> bool:
        """A folder reference that a removal has just moved to the trash is put back instead
        of a new one being made: a delta written meanwhile may need exactly those bytes (the
        removal puts them back too, and a different file at the same key would break that
        delta). True when it was put back (encode against it)."""
        for page in self._store.iter_listing(bucket, trash_folder(ref_key)):
            for item in page:
                if not isinstance(item, ObjectHead) or self._store.head(bucket, ref_key):
                    continue
                copy = self._store.head(bucket, item.key)
                if copy is not None:
                    with contextlib.suppress(NotFoundError):  # the removal finished meanwhile
                        meta = untrashed_meta(copy.metadata)
                        self._store.copy_within(bucket, item.key, ref_key, meta)
                        log.warning("reference_kept", bucket=bucket, ref_key=ref_key)
                        return True
            break  # the first page is enough: one copy is all it takes
        return False

    def conditional_writes(self, bucket: str, remembered: bool | None = None) -> bool:
        """Whether the server honours `If-None-Match: *` (a second create gets 412), probed
        once per bucket and process unless `remembered` (the bucket settings' answer) says."""
        with self._probe_lock:
            known = self._conditional.get(bucket, remembered)
            if known is not None:
                self._conditional[bucket] = known
            else:
                known = self._store.conditional_writes_work(bucket, PROBE_PREFIX)
                if not known:
                    log.warning(
                        "conditional_writes_unsupported",
                        bucket=bucket,
                        fallback="new references are shared ones (unique keys, no race)",
                    )
                self._conditional[bucket] = known
            return known

    def protect(self, bucket: str, reference: Reference, user_key: str, source: Path) -> bool:
        """Before a delta (or chain link) made against a shared reference is written: record
        its user marker, then look at the reference's slot once (FORMAT "Deleting and
        references"). False when a removal is under way (do not use it; the marker goes
        again); a reference found gone is put back from `source`. A folder reference needs
        nothing here: its deltas themselves say it is needed (`in_place`)."""
        if not reference.shared:
            return True
        self.add_user(bucket, reference, user_key)
        slot = parent_prefix(reference.key) + "/"
        page = next(self._store.iter_listing(bucket, slot, "/"), [])
        names = {e.prefix if isinstance(e, ListedPrefix) else e.key for e in page}
        if removal_marker_key(reference.key, "") in names:
            self._store.delete(bucket, user_marker_key(reference.key, user_key))
            return False
        return reference.key in names or self._put_back(bucket, reference, source, user_key)

    def in_place(self, bucket: str, reference: Reference, source: Path, delta_key: str) -> bool:
        """After a delta was written against a reference `protect` vouched for: is it still
        there? For a shared one its user marker says so (no removal deletes a reference with
        a marker); a writer of the same key may have released that marker meanwhile, and
        then `protect` runs again. A folder reference is looked at, and put back if a
        concurrent removal took it. False when the delta must be made again."""
        if reference.shared:
            marker = user_marker_key(reference.key, delta_key)
            return self._store.head(bucket, marker) is not None or self.protect(
                bucket, reference, delta_key, source
            )
        head = self._store.head(bucket, reference.key)
        if head is None:
            return self._put_back(bucket, reference, source, delta_key)
        return lookup(head.metadata, "file_sha256") == reference.sha256

    def _put_back(self, bucket: str, reference: Reference, source: Path, delta_key: str) -> bool:
        """Create a reference a delta needs from `source` (its bytes) after finding it gone.
        False when it cannot be put back (other bytes took its place, or a shared reference
        known only from a listing whose metadata cannot be told)."""
        if not reference.metadata:
            known = _listed_metadata(reference, delta_key)
            if known is None:  # the upload starts again without it; its marker goes
                self._store.delete(bucket, user_marker_key(reference.key, delta_key))
                return False
            reference = known
        log.warning("reference_restored", bucket=bucket, ref_key=reference.key)
        try:
            self.create(bucket, reference, source)
            return True
        except AlreadyExists:
            head = self._store.head(bucket, reference.key)
        return head is not None and lookup(head.metadata, "file_sha256") == reference.sha256

    def drop_unused(self, bucket: str, space: str) -> list[str]:
        """Delete `<space>/reference.bin` when no `.delta` is left directly in the space."""
        needed = functools.partial(space_has_deltas, self._store, bucket, space)
        return self._remove_unless_needed(bucket, reference_key(space), needed)

    def drop_unused_shared(self, bucket: str, ref_key: str) -> list[str]:
        """Delete a shared reference when no user marker is left beside it."""
        needed = functools.partial(self.has_users, bucket, ref_key)
        return self._remove_unless_needed(bucket, ref_key, needed)

    def _remove_unless_needed(
        self, bucket: str, ref_key: str, needed: Callable[[], bool]
    ) -> list[str]:
        """Remove a reference unless `needed()` (FORMAT "Deleting and references").

        A shared reference: a removal marker is written, `needed()` asked again, and only
        then is the reference deleted; an uploader writes its user marker first and then
        looks for removal markers (`protect`), so one of the two always sees the other.
        A folder reference's users are its deltas, which an upload writes before it looks:
        it is copied to `.deltaglider/trash/`, deleted, and put back if a delta appeared;
        the uploader also puts it back itself (`in_place`). `deltaglider cleanup` finishes
        what a crash between these steps left behind."""
        if needed():
            return []
        head = self._store.head(bucket, ref_key)
        if head is None:
            return []
        removed = (
            self._remove_shared(bucket, ref_key, needed)
            if is_shared_reference(ref_key)
            else self._remove_folder(bucket, ref_key, head.metadata, needed)
        )
        if not removed:
            log.warning(
                "reference_kept",
                bucket=bucket,
                ref_key=ref_key,
                reason="a delta arrived while it was being removed",
            )
            return []
        log.info("reference_removed", bucket=bucket, ref_key=ref_key, reason="no deltas left")
        link = LinkMeta.from_dict(head.metadata, ref_key)
        if link is not None and link.base_key is not None:  # it no longer needs its base
            return [ref_key, *self.release(bucket, link.base_key, ref_key)]
        return [ref_key]

    def _remove_shared(self, bucket: str, ref_key: str, needed: Callable[[], bool]) -> bool:
        marker = removal_marker_key(ref_key, uuid.uuid4().hex)
        self._store.put_bytes(bucket, marker, b"", {})
        try:
            if needed():
                return False
            self._store.delete(bucket, ref_key)
            return True
        finally:
            self._store.delete(bucket, marker)

    def _remove_folder(
        self, bucket: str, ref_key: str, ref_meta: dict[str, str], needed: Callable[[], bool]
    ) -> bool:
        trash_key = f"{trash_folder(ref_key)}{uuid.uuid4().hex}"
        try:
            self._store.copy_within(bucket, ref_key, trash_key, trash_meta(ref_meta, ref_key))
        except NotFoundError:
            return False  # another deleter got there first
        self._store.delete(bucket, ref_key)
        kept = needed()
        if kept and self._store.head(bucket, ref_key) is None:
            with contextlib.suppress(NotFoundError):  # another run emptied the trash: the
                # uploader of that delta puts the reference back itself ("Writing")
                self._store.copy_within(bucket, trash_key, ref_key, ref_meta)
        self._store.delete(bucket, trash_key)
        return not kept

"""The logical view of a bucket, and every other walk over its keys.

Owns: turning raw listing pages into the logical view (FORMAT "The logical view": `.delta`
stripped, `reference.bin` and `.deltaglider/` hidden, `k` and `k.delta` one entry, a folder
shown only when it holds a user file) in logical key order for any raw page size, delimiter and
start position; logical sizes by concurrent HEADs when asked; and the raw walks the engine and
`cleanup` need (stored objects under a prefix, whether a space still holds deltas). `ls`,
`sync`, `rm --recursive`, `cleanup` and the SDK's `list_objects(_v2)` all read through here.
Must not write anything, call boto3 (it reads through `s3.Store`) or decide how anything is
stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice

from deltaglider.events import Subscriber
from deltaglider.metadata import (
    DELTA_SUFFIX,
    ObjectKind,
    classify,
    delta_reference,
    is_internal_key,
    logical_key_of,
    recorded_size,
)
from deltaglider.models import ListedPrefix, ListEntry, LogicalPage, ObjectHead
from deltaglider.s3 import ObjectStore

PAGE = 1000  # entries finished (sized, folders checked) together: one raw page's worth


def unseen_bound(position: str, prefix: str) -> str:
    """After the raw listing has reached `position`, every logical key still unseen sorts at
    or above the returned key, so entries below it are final.

    An unseen raw key `r > position` has the logical key `r` (above `position`) or, when
    `r = L.delta`, `L`; `L < position < L.delta` holds only when `L` is a prefix of `position`
    (FORMAT "The logical view": stripping reorders). The shortest such prefix is the bound;
    `position` itself when there is none (its own `.delta` form may still follow)."""
    for end in range(max(len(prefix), 1), len(position)):
        if position[:end] + DELTA_SUFFIX > position:
            return position[:end]
    return position


def _logical_stream(
    store: ObjectStore, bucket: str, prefix: str, delimiter: str, start_after: str
) -> Iterator[ListEntry]:
    """Logical entries after `start_after` in logical key order, stored sizes, folders
    unchecked: each is yielded as soon as no unseen raw key can sort before it."""
    pending: dict[str, ListEntry] = {}
    for raw_page in store.iter_listing(bucket, prefix, delimiter, start_after):
        position = ""
        for item in raw_page:
            if isinstance(item, ListedPrefix):
                position = max(position, item.prefix)
                if not is_internal_key(item.prefix) and item.prefix > start_after:
                    pending.setdefault(item.prefix, ListEntry(key=item.prefix, is_prefix=True))
                continue
            position = max(position, item.key)
            logical = logical_key_of(item.key)
            if is_internal_key(logical) or logical <= start_after or not logical.startswith(prefix):
                continue  # (a `reference.bin.delta` is as reserved as `reference.bin`)
            seen = pending.get(logical)
            if seen is None or seen.stored_key.endswith(DELTA_SUFFIX):
                # `k` wins over `k.delta` (FORMAT "The logical view")
                pending[logical] = ListEntry(
                    logical,
                    item.size,
                    item.last_modified,
                    stored_size=item.size,
                    etag=item.etag,
                    stored_key=item.key,
                    both_forms=seen is not None,
                )
            else:
                pending[logical] = replace(seen, both_forms=True)
        bound = unseen_bound(position, prefix)
        for key in sorted(k for k in pending if k < bound):
            yield pending.pop(key)
    for key in sorted(pending):
        yield pending.pop(key)


def logical_listing(
    store: ObjectStore,
    bucket: str,
    prefix: str,
    *,
    delimiter: str = "",
    start_after: str = "",
    logical_sizes: bool = False,
    concurrency: int = 4,
    batch: int = PAGE,
) -> Iterator[ListEntry]:
    """The logical view under `prefix`, streamed in logical key order.

    Without `logical_sizes` a delta's size is its stored size and no request is made per
    object; with it, each delta is HEADed (`concurrency` at a time) for its original size and
    the entry carries that HEAD. Folders (with a delimiter) are listed once each to hide those
    holding only references or internal objects."""
    stream = _logical_stream(store, bucket, prefix, delimiter, start_after)
    while chunk := list(islice(stream, batch)):
        yield from _finished(store, bucket, chunk, logical_sizes, concurrency)


def logical_page(
    store: ObjectStore,
    bucket: str,
    prefix: str,
    *,
    delimiter: str = "",
    start_after: str = "",
    max_keys: int = 1000,
    concurrency: int = 4,
) -> LogicalPage:
    """Up to `max_keys` entries of the logical view after `start_after`, logical sizes: the
    page `list_objects_v2` returns."""
    if max_keys <= 0:
        return LogicalPage([], False)
    listing = logical_listing(
        store,
        bucket,
        prefix,
        delimiter=delimiter,
        start_after=start_after,
        logical_sizes=True,
        concurrency=concurrency,
        batch=min(max_keys + 1, PAGE),
    )
    entries = list(islice(listing, max_keys + 1))
    return LogicalPage(entries[:max_keys], len(entries) > max_keys)


@dataclass(frozen=True)
class _Check:
    """What one entry needs looked up before it is final."""

    entry: ListEntry
    head: bool  # a delta whose logical size is wanted
    folder: bool  # a folder that may hold no user file


def _finished(
    store: ObjectStore, bucket: str, chunk: list[ListEntry], logical_sizes: bool, concurrency: int
) -> list[ListEntry]:
    checks = [
        _Check(
            e,
            head=logical_sizes and e.stored_key.endswith(DELTA_SUFFIX),
            folder=e.is_prefix,
        )
        for e in chunk
    ]

    def finish(check: _Check) -> ListEntry | None:
        if check.folder:
            return check.entry if holds_files(store, bucket, check.entry.key) else None
        if check.head:
            head = store.head(bucket, check.entry.stored_key)
            if head is not None and classify(head.key, head.metadata) is ObjectKind.DELTA:
                size = recorded_size(head.metadata)
                if size is not None:
                    return replace(check.entry, size=size, head=head)
        return check.entry

    if not any(c.head or c.folder for c in checks):
        return chunk
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return [e for e in pool.map(finish, checks) if e is not None]


@dataclass(frozen=True)
class ListingSummary:
    """`ls --summarize`: how many files, their size, and what they take in the bucket with
    the references they need."""

    objects: int
    size: int
    stored: int


def summarize(
    store: ObjectStore, bucket: str, entries: Iterator[ListEntry], told: Subscriber
) -> ListingSummary:
    """The totals of listed `entries` (folders count nothing), each entry told to
    `told.on_done(entry=)` as it passes; references are HEADed once each at the end."""
    count = total = stored = 0
    references: set[str] = set()
    for entry in entries:
        told.on_done(entry=entry)
        if entry.is_prefix:
            continue
        count += 1
        total += entry.size
        stored += entry.stored_size
        if entry.head is not None:
            references.add(delta_reference(entry.head.metadata, entry.head.key))
    stored += sum(head.size for key in sorted(references) if (head := store.head(bucket, key)))
    return ListingSummary(count, total, stored)


def holds_files(store: ObjectStore, bucket: str, prefix: str) -> bool:
    """Whether a folder holds any user file: not only references or internal objects, and not
    an empty folder some servers keep after its last object went."""
    return any(
        not is_internal_key(logical_key_of(head.key))
        for head in stored_objects(store, bucket, prefix)
    )


def stored_objects(store: ObjectStore, bucket: str, prefix: str) -> Iterator[ObjectHead]:
    """Every stored object under `prefix` as listed (no metadata), internal ones included."""
    for page in store.iter_listing(bucket, prefix):
        yield from (item for item in page if isinstance(item, ObjectHead))


def space_has_deltas(store: ObjectStore, bucket: str, space: str) -> bool:
    """Whether any `.delta` object lies directly in `space` (not in its sub-folders)."""
    listing_prefix = f"{space}/" if space else ""
    return any(
        isinstance(item, ObjectHead) and item.key.endswith(DELTA_SUFFIX)
        for page in store.iter_listing(bucket, listing_prefix, "/")
        for item in page
    )

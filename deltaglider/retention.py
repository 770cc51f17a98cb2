"""Delta-aware retention (`deltaglider prune`): which old versions of each series (or folder)
go, by count (`keep_last`) and age (`older_than`), and what deleting them frees.

Owns: ordering a group's versions (natural order of their keys, `1.9` before `1.10`, the order
`analyze` uses), choosing what goes (not among the newest `keep_last`, and older than
`older_than` when both are given), predicting the bytes freed (the files' stored bytes, plus
each reference no remaining delta needs: a folder's `reference.bin` once its folder keeps no
`.delta`, a shared reference once every user marker belongs to a deleted delta), and deleting
through `Engine.delete`, which removes a reference only once no remaining delta needs it — so
what stays always restores. Must not re-encode anything. Called by the engine, which hands
it itself and its store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from deltaglider.listing import stored_objects
from deltaglider.metadata import (
    DELTA_SUFFIX,
    REFERENCE_NAME,
    is_shared_reference,
    now,
    reference_key,
    user_marker_key,
    users_prefix,
)
from deltaglider.models import ListEntry
from deltaglider.s3 import Store
from deltaglider.series import natural_key, series_of
from deltaglider.urls import base_name, parent_prefix

if TYPE_CHECKING:
    from deltaglider.engine import Engine


@dataclass(frozen=True)
class PruneResult:
    """What `prune` deleted (or, with dryrun, would delete) and the stored bytes that frees."""

    deleted: tuple[str, ...]  # logical keys, oldest first within each group
    kept: int  # logical files under the prefix that stay
    references: tuple[str, ...]  # references no remaining delta needs, removed with them
    freed_bytes: int
    dryrun: bool


def choose(
    entries: list[ListEntry],
    by: str,
    keep_last: int | None,
    older_than: timedelta | None,
    moment: datetime,
) -> list[ListEntry]:
    """The entries to delete: per group, not among the newest `keep_last` (natural key
    order) and, when `older_than` is given, last modified before `moment - older_than`."""
    groups: dict[str, list[ListEntry]] = {}
    for entry in entries:
        group = parent_prefix(entry.key) if by == "folder" else series_of(entry.key)
        groups.setdefault(group, []).append(entry)
    doomed: list[ListEntry] = []
    for name in sorted(groups):
        versions = sorted(groups[name], key=lambda entry: natural_key(entry.key))
        candidates = versions[: max(len(versions) - keep_last, 0)] if keep_last else versions
        if older_than is not None:
            cutoff = moment - older_than
            candidates = [e for e in candidates if e.last_modified and e.last_modified < cutoff]
        doomed += candidates
    return doomed


def prune(
    engine: Engine,
    store: Store,
    bucket: str,
    prefix: str,
    *,
    by: str,
    keep_last: int | None,
    older_than: timedelta | None,
    dryrun: bool,
    say: Callable[[str], None],
) -> PruneResult:
    entries = list(engine.listing(bucket, prefix, recursive=True, logical_sizes=True))
    doomed = choose(entries, by, keep_last, older_than, now())
    going = {entry.key for entry in doomed}
    predicted = _freed_references(engine, store, bucket, entries, going)
    mark = "(dryrun) " if dryrun else ""
    removed: list[str] = []
    for entry in doomed:
        say(f"{mark}delete: s3://{bucket}/{entry.key}")
        if not dryrun:
            result = engine.delete(bucket, entry.key)
            removed += [
                key
                for key in result.removed
                if key in predicted or base_name(key) == REFERENCE_NAME
            ]
    references = sorted(predicted) if dryrun else sorted(set(removed))
    for key in references:
        say(f"{mark}delete: s3://{bucket}/{key} (a reference no remaining delta needs)")
    freed = sum(entry.stored_size for entry in doomed) + sum(
        predicted.get(k, 0) for k in references
    )
    return PruneResult(
        tuple(entry.key for entry in doomed),
        len(entries) - len(doomed),
        tuple(references),
        freed,
        dryrun,
    )


def _freed_references(
    engine: Engine, store: Store, bucket: str, entries: list[ListEntry], going: set[str]
) -> dict[str, int]:
    """References that no delta needs once `going` is deleted, with their stored bytes."""
    freed: dict[str, int] = {}
    kept_deltas: dict[str, int] = {}  # folder -> deltas that stay there
    shared_users: dict[str, set[str]] = {}  # shared reference -> markers of deltas going
    for entry in entries:
        if not entry.stored_key.endswith(DELTA_SUFFIX):
            continue
        folder = parent_prefix(entry.stored_key)
        kept_deltas.setdefault(folder, 0)
        if entry.key not in going:
            kept_deltas[folder] += 1
            continue
        if entry.head is not None and is_shared_reference(
            ref := engine.reference_key_of(entry.head)
        ):
            shared_users.setdefault(ref, set()).add(user_marker_key(ref, entry.stored_key))
    for folder, remaining in sorted(kept_deltas.items()):
        if remaining:
            continue
        reference = store.head(bucket, reference_key(folder))
        if reference is not None and not _folder_has_other_deltas(store, bucket, folder, entries):
            freed[reference.key] = reference.size
    for ref, markers in sorted(shared_users.items()):
        users = {head.key for head in stored_objects(store, bucket, users_prefix(ref))}
        if users <= markers:
            head = store.head(bucket, ref)
            if head is not None:
                freed[ref] = head.size
    return freed


def _folder_has_other_deltas(
    store: Store, bucket: str, folder: str, entries: list[ListEntry]
) -> bool:
    """Whether `folder` holds a `.delta` that the listing under the prefix did not show (the
    prefix may cut a folder in two)."""
    listed = {entry.stored_key for entry in entries}
    return any(
        head.key.endswith(DELTA_SUFFIX) and head.key not in listed
        for head in stored_objects(store, bucket, f"{folder}/" if folder else "")
        if parent_prefix(head.key) == folder
    )

"""Delta-aware retention (`deltaglider prune`): which old versions of each series (or folder)
go, by count (`keep_last`) and age (`older_than`), and what deleting them frees.

Owns: ordering a group's versions (natural order of their keys, `1.9` before `1.10`, the order
`analyze` uses), choosing what goes (not among the newest `keep_last`, and older than
`older_than` when both are given), predicting the bytes freed (the files' stored bytes, plus
each reference no remaining delta needs: a folder's `reference.bin` once its folder keeps no
`.delta`, a shared reference once every user marker belongs to a deleted delta), and deleting
through `Engine.delete`, which removes a reference only once no remaining delta needs it — so
what stays always restores. Plans first (`plan_prune`), deletes second (`execute_prune`).
Sits above the engine and reaches the bucket only through it. Must not re-encode anything
or print.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deltaglider.engine import Engine
from deltaglider.errors import NotFoundError, UsageError
from deltaglider.events import Subscriber
from deltaglider.metadata import (
    DELTA_SUFFIX,
    REFERENCE_NAME,
    TRASH_PREFIX,
    KeyRole,
    is_shared_reference,
    logical_key_of,
    marker_delta_key,
    now,
    reference_key,
    role_of,
    series_refs_prefix,
    trashed_reference_key,
    user_marker_key,
    users_prefix,
)
from deltaglider.models import GROUPINGS, DeleteResult, GroupBy, ListEntry, ObjectHead
from deltaglider.series import natural_key, series_id, series_of
from deltaglider.urls import base_name, parent_prefix


@dataclass(frozen=True)
class PruneResult:
    """What `prune` deleted (or, with dryrun, would delete) and the stored bytes that frees."""

    deleted: tuple[str, ...]  # logical keys, oldest first within each group
    kept: int  # logical files under the prefix that stay
    references: tuple[str, ...]  # references no remaining delta needs, removed with them
    freed_bytes: int
    dryrun: bool

    @classmethod
    def predicted(cls, plan: PrunePlan) -> PruneResult:
        """What `plan` would delete and free (`prune --dryrun`)."""
        return cls(
            plan.deleted, plan.kept, tuple(sorted(plan.freed_references)), plan.freed_bytes, True
        )


def choose(
    entries: list[ListEntry],
    by: GroupBy,
    keep_last: int | None,
    older_than: timedelta | None,
    moment: datetime,
) -> list[ListEntry]:
    """The entries to delete: per group, not among the newest `keep_last` (natural key
    order) and, when `older_than` is given, last modified before `moment - older_than`."""
    groups: dict[str, list[ListEntry]] = {}
    for entry in entries:
        group = parent_prefix(entry.key) if by is GroupBy.FOLDER else series_of(entry.key)
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


@dataclass(frozen=True)
class PrunePlan:
    """What a prune would delete (`plan_prune`), before anything is: the versions, the
    files that stay, and the references no remaining delta needs with their stored bytes."""

    bucket: str
    doomed: tuple[ListEntry, ...]  # oldest first within each group
    kept: int
    freed_references: dict[str, int]  # reference key -> stored bytes freed with it
    # what a killed earlier run left, released after the deletions: (shared reference, delta)
    # for a user marker whose delta is gone, (reference, None) for a reference no delta needs
    # (and its trash copies)
    orphans: tuple[tuple[str, str | None], ...] = ()

    @property
    def deleted(self) -> tuple[str, ...]:
        return tuple(entry.key for entry in self.doomed)

    @property
    def freed_bytes(self) -> int:
        return sum(e.stored_size for e in self.doomed) + sum(self.freed_references.values())


def plan_prune(
    engine: Engine,
    bucket: str,
    prefix: str,
    *,
    by: GroupBy | str = GroupBy.SERIES,
    keep_last: int | None = None,
    older_than: timedelta | None = None,
) -> PrunePlan:
    """Which versions under `prefix` go (per series or folder) and what that frees."""
    if keep_last is None and older_than is None:
        raise UsageError("prune needs --keep-last N, --older-than AGE, or both")
    if by not in GROUPINGS:
        raise UsageError(f"--by must be series or folder, not {by!r}")
    entries = list(engine.listing(bucket, prefix, recursive=True, logical_sizes=True))
    doomed = choose(entries, GroupBy(by), keep_last, older_than, now())
    scope = _Scope(bucket, prefix, entries, {entry.key for entry in doomed}, _trash(engine, bucket))
    folder_freed, folder_orphans = _folder_references(engine, scope)
    shared_freed, shared_orphans = _shared_references(engine, scope)
    return PrunePlan(
        bucket,
        tuple(doomed),
        len(entries) - len(doomed),
        {**folder_freed, **shared_freed},
        folder_orphans + shared_orphans,
    )


@dataclass(frozen=True)
class _Scope:
    """What a prune plan looks at: the listing under the prefix, the versions going, and
    the trash copies by the reference each copies (what an interrupted removal left)."""

    bucket: str
    prefix: str
    entries: list[ListEntry]
    going: set[str]
    trash: dict[str, list[ObjectHead]]

    def trash_of(self, ref_key: str) -> dict[str, int]:
        return {copy.key: copy.size for copy in self.trash.get(ref_key, [])}


def _trash(engine: Engine, bucket: str) -> dict[str, list[ObjectHead]]:
    """The trash copies (one listing, normally empty) by the reference key each copies."""
    found: dict[str, list[ObjectHead]] = {}
    for item in engine.stored_objects(bucket, TRASH_PREFIX):
        head = engine.head_stored(bucket, item.key)
        ref_key = trashed_reference_key(head.metadata) if head is not None else None
        if head is not None and ref_key is not None:
            found.setdefault(ref_key, []).append(head)
    return found


Orphans = tuple[tuple[str, str | None], ...]


def _folder_references(engine: Engine, scope: _Scope) -> tuple[dict[str, int], Orphans]:
    """Folder references no delta needs once the doomed versions go (with their stored
    bytes and those of their trash copies), and the releases that finish what a killed run
    left: a reference whose folder has no delta at all, or trash copies of one."""
    bucket, prefix = scope.bucket, scope.prefix
    stored = {head.key: head for head in engine.stored_objects(bucket, prefix)}
    kept: dict[str, int] = {}  # folder -> deltas that stay there
    for key in stored:
        if key.endswith(DELTA_SUFFIX) and role_of(key) is KeyRole.DELTA:
            folder = parent_prefix(key)
            kept[folder] = kept.get(folder, 0) + (logical_key_of(key) not in scope.going)
    folders = set(kept) | {
        parent_prefix(key) for key in stored if role_of(key) is KeyRole.FOLDER_REFERENCE
    }
    folders |= {
        parent_prefix(ref)
        for ref in scope.trash
        if not is_shared_reference(ref) and (ref.startswith(prefix) or parent_prefix(ref) in kept)
    }
    freed: dict[str, int] = {}
    orphans: list[tuple[str, str | None]] = []
    for folder in sorted(folders):
        if kept.get(folder, 0) or (
            not f"{folder}/".startswith(prefix)
            and _folder_has_other_deltas(engine, bucket, folder, set(stored))
        ):
            continue
        ref_key = reference_key(folder)
        head = stored.get(ref_key) if ref_key.startswith(prefix) else None
        head = head or engine.head_stored(bucket, ref_key)
        freed.update({ref_key: head.size} if head is not None else {})
        freed.update(scope.trash_of(ref_key))
        if (head is not None and folder not in kept) or scope.trash_of(ref_key):
            orphans.append((ref_key, None))
    return freed, tuple(orphans)


def _shared_references(engine: Engine, scope: _Scope) -> tuple[dict[str, int], Orphans]:
    """Shared references of the series under the prefix that no delta needs once the
    doomed versions go, and the releases that finish what a killed run left: each marker
    whose delta under the prefix is gone (or names another reference), then each reference
    with no marker left or with trash copies. Only a marker no listed delta accounts for is
    HEADed (normally none, but each chain link's marker on its base). In a chain (FORMAT
    "Delta chains") a reference that stays keeps its base, and that base its own."""
    named = {
        entry.stored_key: engine.reference_key_of(entry.head)
        for entry in scope.entries
        if entry.head is not None
    }
    kept_refs = {ref for key, ref in named.items() if logical_key_of(key) not in scope.going}
    freed: dict[str, int] = {}
    orphans: list[tuple[str, str | None]] = []
    for series in sorted({series_of(entry.key) for entry in scope.entries}):
        heads = list(engine.stored_objects(scope.bucket, series_refs_prefix(series_id(series))))
        refs = {h.key: h for h in heads if is_shared_reference(h.key)}
        trashed = [r for r in scope.trash if r.startswith(series_refs_prefix(series_id(series)))]
        base_of: dict[str, str] = {}  # a chain link -> the reference it is a delta against
        needed, unmarked = set(kept_refs), set()
        for ref_key in sorted(set(refs) | set(trashed)):
            markers = [h.key for h in heads if h.key.startswith(users_prefix(ref_key))]
            stale = _marker_users(engine, scope, named, ref_key, markers, refs, base_of)
            orphans += [(ref_key, delta) for delta in stale if delta is not None]
            needed |= {ref_key} if None in stale else set()
            unmarked |= {ref_key} if not markers else set()
        needed = _with_bases(needed, base_of)
        for ref_key in sorted(set(refs) | set(trashed)):
            if ref_key in needed:
                continue
            freed.update({ref_key: refs[ref_key].size} if ref_key in refs else {})
            freed.update(scope.trash_of(ref_key))
            if (ref_key in refs and ref_key in unmarked) or scope.trash_of(ref_key):
                orphans.append((ref_key, None))
    return freed, tuple(orphans)


def _marker_users(
    engine: Engine,
    scope: _Scope,
    named: dict[str, str],
    ref_key: str,
    markers: list[str],
    refs: dict[str, ObjectHead],
    base_of: dict[str, str],
) -> list[str | None]:
    """The markers beside `ref_key` that no listed delta accounts for: the gone deltas under
    the prefix they name (stale), None once for any that keeps the reference (a delta outside
    the prefix, or a marker cleanup judges); a chain link's marker goes into `base_of`."""
    accounted = {user_marker_key(ref_key, key) for key, ref in named.items() if ref == ref_key}
    found: list[str | None] = []
    for marker in (m for m in markers if m not in accounted):
        head = engine.head_stored(scope.bucket, marker)
        delta = marker_delta_key(head.metadata) if head is not None else None
        if delta is not None and delta in refs:
            base_of[delta] = ref_key  # decided with the chain: kept if that link is kept
        elif delta is not None and (delta.startswith(scope.prefix) or is_shared_reference(delta)):
            found.append(delta)  # its delta (or link) is gone
        elif None not in found:
            found.append(None)
    return found


def _with_bases(needed: set[str], base_of: dict[str, str]) -> set[str]:
    """`needed` and, for each chain link in it, its base, and that base's, down the chain."""
    closed, pending = set(needed), list(needed)
    while pending:
        base = base_of.get(pending.pop())
        if base is not None and base not in closed:
            closed.add(base)
            pending.append(base)
    return closed


def execute_prune(
    engine: Engine, plan: PrunePlan, subscriber: Subscriber | None = None
) -> PruneResult:
    """Delete what `plan` names through `Engine.delete` (which removes a reference only once
    no remaining delta needs it), telling `subscriber.on_done(result=)` each deletion."""
    told = subscriber or Subscriber()
    removed: list[str] = []
    for entry in plan.doomed:
        try:
            result = engine.delete(plan.bucket, entry.key)
        except NotFoundError as error:
            if error.code != "NoSuchKey":
                raise
            result = DeleteResult(plan.bucket, entry.key, ())  # deleted by someone else: done
        told.on_done(result=result)
        removed += [
            key
            for key in result.removed
            if key in plan.freed_references or base_name(key) == REFERENCE_NAME
        ]
    for ref_key, delta in plan.orphans:  # what a killed earlier run left: released now
        removed += engine.release_reference(plan.bucket, ref_key, delta)
    references = sorted(set(removed))
    freed = sum(e.stored_size for e in plan.doomed) + sum(
        plan.freed_references.get(k, 0)
        for k in references  # only what really went
    )
    return PruneResult(plan.deleted, plan.kept, tuple(references), freed, dryrun=False)


def _folder_has_other_deltas(engine: Engine, bucket: str, folder: str, listed: set[str]) -> bool:
    """Whether `folder` holds a `.delta` that the listing under the prefix did not show (the
    prefix may cut a folder in two)."""
    return any(
        head.key.endswith(DELTA_SUFFIX) and head.key not in listed
        for head in engine.stored_objects(bucket, f"{folder}/" if folder else "")
        if parent_prefix(head.key) == folder
    )

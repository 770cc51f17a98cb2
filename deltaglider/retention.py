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
    delta_key,
    is_shared_reference,
    logical_key_of,
    marker_delta_key,
    now,
    reference_key,
    series_refs_prefix,
    user_marker_key,
    users_prefix,
)
from deltaglider.models import GROUPINGS, DeleteResult, GroupBy, ListEntry
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
    # (shared reference, delta) of each user marker whose delta is gone: what a killed earlier
    # run left behind, released by this one
    orphans: tuple[tuple[str, str], ...] = ()

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
    going = {entry.key for entry in doomed}
    predicted = _freed_references(engine, bucket, entries, going)
    orphans, freed = _orphans(engine, bucket, prefix, entries, going)
    return PrunePlan(
        bucket, tuple(doomed), len(entries) - len(doomed), {**predicted, **freed}, orphans
    )


def _orphans(
    engine: Engine, bucket: str, prefix: str, entries: list[ListEntry], going: set[str]
) -> tuple[tuple[tuple[str, str], ...], dict[str, int]]:
    """The user markers whose delta (under `prefix`) is gone, as a killed prune leaves them,
    among the shared references of the series under `prefix` that no kept delta names (one
    a kept delta uses stays anyway); and those references, once no marker is left.
    Whether a delta is there is the listing's answer: no HEAD per delta."""
    listed = {
        delta_key(e.key) for e in entries if e.both_forms or e.stored_key.endswith(DELTA_SUFFIX)
    }
    named = {engine.reference_key_of(e.head) for e in entries if e.head and e.key not in going}
    found: list[tuple[str, str]] = []
    freed: dict[str, int] = {}
    for series in sorted({series_of(entry.key) for entry in entries}):
        heads = list(engine.stored_objects(bucket, series_refs_prefix(series_id(series))))
        for ref in [h for h in heads if is_shared_reference(h.key) and h.key not in named]:
            markers = [h.key for h in heads if h.key.startswith(users_prefix(ref.key))]
            stale = 0
            for marker in markers:
                head = engine.head_stored(bucket, marker)
                delta = marker_delta_key(head.metadata) if head is not None else None
                if delta is None or not delta.startswith(prefix):
                    continue
                if logical_key_of(delta) in going:
                    stale += 1  # released with its version
                elif delta not in listed:
                    found.append((ref.key, delta))
                    stale += 1
            if markers and stale == len(markers) and any(r == ref.key for r, _ in found):
                freed[ref.key] = ref.size
    return tuple(found), freed


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


def _freed_references(
    engine: Engine, bucket: str, entries: list[ListEntry], going: set[str]
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
        reference = engine.head_stored(bucket, reference_key(folder))
        if reference is not None and not _folder_has_other_deltas(engine, bucket, folder, entries):
            freed[reference.key] = reference.size
    for ref, markers in sorted(shared_users.items()):
        users = {head.key for head in engine.stored_objects(bucket, users_prefix(ref))}
        if users <= markers:
            head = engine.head_stored(bucket, ref)
            if head is not None:
                freed[ref] = head.size
    return freed


def _folder_has_other_deltas(
    engine: Engine, bucket: str, folder: str, entries: list[ListEntry]
) -> bool:
    """Whether `folder` holds a `.delta` that the listing under the prefix did not show (the
    prefix may cut a folder in two)."""
    listed = {entry.stored_key for entry in entries}
    return any(
        head.key.endswith(DELTA_SUFFIX) and head.key not in listed
        for head in engine.stored_objects(bucket, f"{folder}/" if folder else "")
        if parent_prefix(head.key) == folder
    )

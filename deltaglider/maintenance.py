"""Bucket repair after crashes: `deltaglider cleanup`.

Owns: aborting multipart uploads a killed process left unfinished, putting back a reference
from `.deltaglider/trash/` when a delta still needs it (a crash inside the reference-removal
protocol), emptying the trash, deleting expired presigned-URL rehydrations, removing
references no delta needs, and naming every delta that still cannot be read. Must not touch
a delta or direct object: it only ever removes what no user file depends on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from deltaglider.engine import TRASH_PREFIX, Engine
from deltaglider.errors import DeltagliderError
from deltaglider.metadata import (
    DELTA_SUFFIX,
    INTERNAL_PREFIX,
    REFERENCE_NAME,
    TMP_PREFIX,
    DeltaMeta,
    lookup,
    now,
    parse_time,
)
from deltaglider.s3 import ObjectHead
from deltaglider.urls import base_name, parent_prefix


@dataclass
class CleanupReport:
    """What `cleanup` did (or, with dryrun, would do), one line per action."""

    actions: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # deltas whose reference is lost


def cleanup(
    engine: Engine,
    bucket: str,
    prefix: str,
    *,
    older_than: float = 3600.0,
    dryrun: bool = False,
    say: Callable[[str], None] | None = None,
) -> CleanupReport:
    """Repair what interrupted operations left under `prefix` in `bucket`.

    Multipart uploads and trash younger than `older_than` seconds are left alone: they may
    belong to an operation still running."""
    report = CleanupReport()
    store = engine.store
    cutoff = now() - timedelta(seconds=older_than)

    def act(line: str) -> None:
        report.actions.append(line)
        if say is not None:
            say(f"(dryrun) {line}" if dryrun else line)

    for key, upload_id, initiated in store.incomplete_uploads(bucket, prefix):
        if initiated <= cutoff:
            act(f"abort_multipart_upload: s3://{bucket}/{key} ({upload_id})")
            if not dryrun:
                store.abort_upload(bucket, key, upload_id)

    spaces: set[str] = set()
    deltas: list[str] = []
    for page in store.iter_listing(bucket, prefix):
        for item in page:
            if isinstance(item, ObjectHead) and not item.key.startswith(INTERNAL_PREFIX):
                if item.key.endswith(DELTA_SUFFIX):
                    deltas.append(item.key)
                    spaces.add(parent_prefix(item.key))
                elif base_name(item.key) == REFERENCE_NAME:
                    spaces.add(parent_prefix(item.key))

    trash: dict[str, ObjectHead] = {}
    for page in store.iter_listing(bucket, TRASH_PREFIX):
        for item in page:
            if isinstance(item, ObjectHead) and (saved := store.head(bucket, item.key)):
                trash[item.key] = saved
    for delta in deltas:
        head = store.head(bucket, delta)
        if head is None:
            continue
        try:
            meta = DeltaMeta.from_dict(head.metadata, delta)
        except DeltagliderError as error:
            report.unreadable.append(f"s3://{bucket}/{delta}: {error}")
            continue
        reference = store.head(bucket, meta.ref_key)
        if reference is not None and lookup(reference.metadata, "file_sha256") == meta.ref_sha256:
            continue
        copy = next(
            (k for k, h in trash.items() if lookup(h.metadata, "file_sha256") == meta.ref_sha256),
            None,
        )
        if reference is None and copy is not None:
            act(f"restore: s3://{bucket}/{meta.ref_key} (needed by {base_name(delta)})")
            if not dryrun:
                store.copy_within(bucket, copy, meta.ref_key)
            continue
        report.unreadable.append(
            f"s3://{bucket}/{delta}: its reference s3://{bucket}/{meta.ref_key} is "
            + ("missing" if reference is None else "different from the one it was made with")
        )

    for key, head in trash.items():
        if head.last_modified <= cutoff:
            act(f"delete: s3://{bucket}/{key} (trash)")
            if not dryrun:
                store.delete(bucket, key)

    for key in purge_rehydrations(engine, bucket, dryrun=dryrun)[0]:
        act(f"delete: s3://{bucket}/{key} (expired rehydration)")

    for space in sorted(spaces):
        if not dryrun:
            for removed in engine.drop_unused_reference(bucket, space):
                act(f"delete: s3://{bucket}/{removed} (no delta needs it)")
    return report


def purge_rehydrations(
    engine: Engine, bucket: str, *, dryrun: bool = False
) -> tuple[list[str], int]:
    """Delete presigned-URL rehydrations under `.deltaglider/tmp/` whose `dg-expires-at` has
    passed (compared as aware UTC times). Returns the deleted keys and how many were kept."""
    deleted: list[str] = []
    kept = 0
    moment = now()
    for page in engine.store.iter_listing(bucket, TMP_PREFIX):
        for item in page:
            head = engine.store.head(bucket, item.key) if isinstance(item, ObjectHead) else None
            if head is None:
                continue
            expires = head.metadata.get("dg-expires-at")
            if expires is None or parse_time(expires) <= moment:
                if not dryrun:
                    engine.store.delete(bucket, head.key)
                deleted.append(head.key)
            else:
                kept += 1
    return deleted, kept

"""Bucket repair after crashes (`deltaglider cleanup`) and presigned-URL rehydrations.

Owns: aborting multipart uploads a killed process left unfinished, putting back a reference
from `.deltaglider/trash/` when a delta still needs it (a crash inside the reference-removal
protocol), keeping the user markers of shared references true (restoring a missing one,
deleting one whose delta is gone), emptying the trash, writing and purging presigned-URL
rehydrations under `.deltaglider/tmp/` (FORMAT "Objects"), removing references no delta
needs, and naming every delta that still cannot be read, and presigned URLs (a delta's serves
its rehydrated copy). Must not touch a delta or direct object: it only ever removes what no
user file depends on. Called by the engine, which hands it its parts.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from deltaglider.errors import DeltagliderError
from deltaglider.events import Subscriber
from deltaglider.files import HashingWriter
from deltaglider.listing import space_has_deltas, stored_objects
from deltaglider.metadata import (
    REFS_PREFIX,
    TMP_PREFIX,
    TRASH_PREFIX,
    DeltaMeta,
    KeyRole,
    ObjectKind,
    RehydrationMeta,
    is_removal_marker,
    is_shared_reference,
    logical_key_of,
    lookup,
    marker_delta_key,
    named_reference,
    now,
    reference_key,
    role_of,
    untrashed_meta,
    user_marker_key,
    user_marker_meta,
    users_prefix,
)
from deltaglider.models import ObjectHead
from deltaglider.parts import EngineParts
from deltaglider.reading import Located, locate, reconstruct
from deltaglider.references import References
from deltaglider.s3 import ObjectStore
from deltaglider.urls import base_name, parent_prefix

DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 reports for an object stored without one


@dataclass
class CleanupReport:
    """What `cleanup` did (or, with dryrun, would do), one line per action."""

    actions: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # deltas whose reference is lost
    checked: int = 0  # deltas whose reference was checked (bytes hashed, once per reference)


@dataclass
class _Repair:
    """One cleanup run: what it has done, or with `dryrun` would have done, so that a dry
    run follows exactly the path of a real one (a reference it would restore counts as
    there, a marker it would restore as present)."""

    store: ObjectStore
    references: References
    bucket: str
    dryrun: bool
    told: Subscriber
    report: CleanupReport
    restored: set[str] = field(default_factory=set)  # references put back from the trash
    markers: set[str] = field(default_factory=set)  # user markers put back

    def act(self, line: str) -> None:
        self.report.actions.append(line)
        self.told.on_done(line=f"(dryrun) {line}" if self.dryrun else line)

    def exists(self, key: str) -> bool:
        return key in self.restored or self.store.head(self.bucket, key) is not None


def cleanup(
    store: ObjectStore,
    references: References,
    bucket: str,
    prefix: str,
    *,
    older_than: float = 3600.0,
    dryrun: bool = False,
    subscriber: Subscriber | None = None,
) -> CleanupReport:
    """Repair what interrupted operations left under `prefix` in `bucket`; `subscriber`
    is told each repair (`on_done(line=)`, `(dryrun) ` before it with `dryrun`: the same
    lines a real run prints, chained repairs included).

    Multipart uploads and trash younger than `older_than` seconds are left alone: they may
    belong to an operation still running."""
    run = _Repair(store, references, bucket, dryrun, subscriber or Subscriber(), CleanupReport())
    cutoff = now() - timedelta(seconds=older_than)
    for key, upload_id, initiated in store.incomplete_uploads(bucket, prefix):
        if initiated <= cutoff:
            run.act(f"abort_multipart_upload: s3://{bucket}/{key} ({upload_id})")
            if not dryrun:
                store.abort_upload(bucket, key, upload_id)
    spaces: set[str] = set()
    deltas: list[str] = []
    for item in stored_objects(store, bucket, prefix):
        role = role_of(item.key)
        if role is KeyRole.DELTA:
            deltas.append(item.key)
        if role in (KeyRole.DELTA, KeyRole.FOLDER_REFERENCE):
            spaces.add(parent_prefix(item.key))
    trash: dict[str, ObjectHead] = {}
    for item in stored_objects(store, bucket, TRASH_PREFIX):
        if saved := store.head(bucket, item.key):
            trash[item.key] = saved
    _check_deltas(run, deltas, trash)
    _sweep_shared_references(run, prefix, cutoff)
    for key, head in trash.items():
        if head.last_modified <= cutoff:
            run.act(f"delete: s3://{bucket}/{key} (trash)")
            if not dryrun:
                store.delete(bucket, key)
    for key in purge_rehydrations(store, bucket, dryrun=dryrun).deleted:
        run.act(f"delete: s3://{bucket}/{key} (expired rehydration)")
    for space in sorted(spaces):
        if not dryrun:
            for removed in references.drop_unused(bucket, space):
                run.act(f"delete: s3://{bucket}/{removed} (no delta needs it)")
        elif not space_has_deltas(store, bucket, space) and run.exists(reference_key(space)):
            run.act(f"delete: s3://{bucket}/{reference_key(space)} (no delta needs it)")
    return run.report


def _check_deltas(run: _Repair, deltas: list[str], trash: dict[str, ObjectHead]) -> None:
    """Each delta's reference: there with the recorded bytes (hashed once per reference),
    put back from the trash, or reported unreadable."""
    store, bucket, report = run.store, run.bucket, run.report
    hashed: dict[str, str] = {}  # reference key -> SHA-256 of its bytes, hashed once
    for delta in deltas:
        head = store.head(bucket, delta)
        if head is None:
            continue
        report.checked += 1
        try:
            meta = DeltaMeta.from_dict(head.metadata, delta)
        except DeltagliderError as error:
            report.unreadable.append(f"s3://{bucket}/{delta}: {error}")
            continue
        if meta.ref_key in run.restored:  # put back (or, dry, to be) for an earlier delta
            _keep_marker(run, meta.ref_key, delta)
            continue
        reference = store.head(bucket, meta.ref_key)
        if reference is not None and lookup(reference.metadata, "file_sha256") == meta.ref_sha256:
            if meta.ref_key not in hashed:
                writer = HashingWriter(None)
                store.download(bucket, meta.ref_key, writer)
                hashed[meta.ref_key] = writer.digest.sha256
            if hashed[meta.ref_key] != meta.ref_sha256:
                report.unreadable.append(
                    f"s3://{bucket}/{delta}: its reference s3://{bucket}/{meta.ref_key} does "
                    "not hold the bytes its metadata records (corrupted)"
                )
                continue
            _keep_marker(run, meta.ref_key, delta)
            continue
        copy = next(
            (k for k, h in trash.items() if lookup(h.metadata, "file_sha256") == meta.ref_sha256),
            None,
        )
        if reference is None and copy is not None:
            run.act(f"restore: s3://{bucket}/{meta.ref_key} (needed by {base_name(delta)})")
            if not run.dryrun:
                store.copy_within(bucket, copy, meta.ref_key, untrashed_meta(trash[copy].metadata))
            run.restored.add(meta.ref_key)
            _keep_marker(run, meta.ref_key, delta)
            continue
        report.unreadable.append(
            f"s3://{bucket}/{delta}: its reference s3://{bucket}/{meta.ref_key} is "
            + ("missing" if reference is None else "different from the one it was made with")
        )


def _keep_marker(run: _Repair, ref_key: str, delta: str) -> None:
    """A delta against a shared reference must have its user marker (FORMAT "Deleting and
    references"): put back one that is missing."""
    if not is_shared_reference(ref_key):
        return
    marker = user_marker_key(ref_key, delta)
    if marker not in run.markers and run.store.head(run.bucket, marker) is None:
        run.act(f"restore: s3://{run.bucket}/{marker} (marks {base_name(delta)} as a user)")
        if not run.dryrun:
            run.store.put_bytes(run.bucket, marker, b"", user_marker_meta(delta))
        run.markers.add(marker)


def _sweep_shared_references(run: _Repair, prefix: str, cutoff: datetime) -> None:
    """Drop removal markers an interrupted removal left (older than `cutoff`), user markers
    whose delta (under `prefix`) is gone or made against another reference, then shared
    references older than `cutoff` that no marker is left for."""
    store, bucket = run.store, run.bucket
    listed = list(stored_objects(store, bucket, REFS_PREFIX))
    for stale in (o for o in listed if is_removal_marker(o.key) and o.last_modified <= cutoff):
        run.act(f"delete: s3://{bucket}/{stale.key} (an interrupted removal's marker)")
        if not run.dryrun:
            store.delete(bucket, stale.key)
    shared = [o for o in listed if is_shared_reference(o.key)]
    for reference in shared:
        left = sum(1 for m in run.markers if m.startswith(users_prefix(reference.key)))
        for marker in stored_objects(store, bucket, users_prefix(reference.key)):
            head = store.head(bucket, marker.key)
            delta = marker_delta_key(head.metadata) if head is not None else None
            if delta is not None and not delta.startswith(prefix):
                left += 1
                continue
            delta_head = store.head(bucket, delta) if delta is not None else None
            named = named_reference(delta_head.metadata, delta_head.key) if delta_head else ""
            if named is None or named == reference.key:  # None: keep what it might need
                left += marker.key not in run.markers
                continue
            run.act(f"delete: s3://{bucket}/{marker.key} (its delta is gone)")
            if not run.dryrun:
                store.delete(bucket, marker.key)
        if reference.last_modified > cutoff:
            continue
        if not run.dryrun:
            for removed in run.references.drop_unused_shared(bucket, reference.key):
                run.act(f"delete: s3://{bucket}/{removed} (no delta needs it)")
        elif not left:
            run.act(f"delete: s3://{bucket}/{reference.key} (no delta needs it)")


def rehydration_key(sha256: str, name: str) -> str:
    """Where the presigned-URL copy of a file with this SHA-256 and name lives."""
    return f"{TMP_PREFIX}{sha256}/{name}"


def presigned_url(
    parts: EngineParts,
    method: str,
    params: dict[str, Any],
    expires_in: int,
    http_method: str | None = None,
) -> str:
    """A presigned URL; for `get_object` of a delta the URL serves a rehydrated whole copy
    (kept until it expires), for any other object the stored key itself."""
    params = dict(params)
    if method == "get_object":
        located = locate(parts, params["Bucket"], params["Key"])
        copy = rehydrated_key(parts, params["Bucket"], params["Key"], expires_in, located)
        params["Key"] = copy or located.stored_key
    return parts.store.presigned_url(method, params, expires_in, http_method)


def rehydrated_key(
    parts: EngineParts, bucket: str, key: str, expires_in: int, located: Located | None = None
) -> str | None:
    """The key of a whole, verified copy of the delta at logical `key` under
    `.deltaglider/tmp/`, kept at least `expires_in` seconds; None for a direct or plain object
    (a presigned URL serves it as it is)."""
    located = located or locate(parts, bucket, key)
    if located.kind is not ObjectKind.DELTA:
        return None
    started = time.monotonic()
    with parts.work_directory() as scratch:
        copy = rehydrate(
            parts.store,
            bucket,
            logical_key_of(located.stored_key),
            located.sha256 or "unknown",
            located.head.content_type,
            expires_in,
            Path(scratch),
            lambda out: reconstruct(parts, bucket, located, out),
        )
    parts.metrics.timing("rehydrate.duration", time.monotonic() - started)
    parts.metrics.increment("rehydrate.completed")
    return copy


def purge(parts: EngineParts, bucket: str, *, dryrun: bool = False) -> PurgeResult:
    """`purge_rehydrations` with its metrics (a dry run deletes nothing and counts nothing)."""
    result = purge_rehydrations(parts.store, bucket, dryrun=dryrun)
    if not dryrun:
        parts.metrics.timing("purge.duration", result.seconds)
        parts.metrics.gauge("purge.deleted_count", len(result.expired), "Count")
        parts.metrics.gauge("purge.size_freed", result.freed_bytes, "Bytes")
    return result


def rehydrate(
    store: ObjectStore,
    bucket: str,
    key: str,
    sha256: str,
    content_type: str | None,
    expires_in: int,
    scratch: Path,
    reconstruct: Callable[[BinaryIO], object],
) -> str:
    """The key of a whole copy of logical `key` (a delta) under `.deltaglider/tmp/`, kept at
    least `expires_in` seconds and served with its original name; reused while it lasts.
    `reconstruct` writes the verified logical bytes."""
    name = base_name(key)
    temp_key = rehydration_key(sha256, name)
    until = now() + timedelta(seconds=expires_in)
    existing = store.head(bucket, temp_key)
    if existing is not None:
        meta = RehydrationMeta.from_dict(existing.metadata)
        if meta is not None and meta.expires_at >= until:
            return temp_key
    path = scratch / "rehydrated"
    with path.open("wb") as out:
        reconstruct(out)
    headers = {
        "ContentDisposition": _content_disposition(name),
        "ContentType": content_type or DEFAULT_CONTENT_TYPE,
    }
    meta_dict = RehydrationMeta(until, key).to_dict()
    store.put_file(bucket, temp_key, path, meta_dict, sha256=None, headers=headers)
    return temp_key


def _content_disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace('"', "'")
    quoted = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}"


@dataclass(frozen=True)
class PurgeResult:
    """What `purge` deleted (with dryrun: would delete) under `.deltaglider/tmp/`."""

    bucket: str
    expired: tuple[tuple[str, int], ...]  # (key, stored bytes) of each copy that went
    kept: int
    dryrun: bool
    seconds: float

    @property
    def deleted(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.expired)

    @property
    def freed_bytes(self) -> int:
        return sum(size for _, size in self.expired)


def purge_rehydrations(store: ObjectStore, bucket: str, *, dryrun: bool = False) -> PurgeResult:
    """Delete presigned-URL rehydrations under `.deltaglider/tmp/` whose `dg-expires-at` has
    passed (or is unreadable); the others are kept."""
    started = time.monotonic()
    expired: list[tuple[str, int]] = []
    kept = 0
    moment = now()
    for item in stored_objects(store, bucket, TMP_PREFIX):
        head = store.head(bucket, item.key)
        if head is None:
            continue
        meta = RehydrationMeta.from_dict(head.metadata)
        if meta is None or meta.expires_at <= moment:
            if not dryrun:
                store.delete(bucket, head.key)
            expired.append((head.key, head.size))
        else:
            kept += 1
    return PurgeResult(bucket, tuple(expired), kept, dryrun, time.monotonic() - started)

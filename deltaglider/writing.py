"""Writing: how each artifact is stored (FORMAT "Writing").

Owns: the upload decision (`decide_upload`: unchanged, direct, new reference, delta, or stored
whole over the max ratio), choosing the reference a delta is encoded against (the group a new
one serves is `buckets.BucketConfig.reference_group`'s rule), encoding and decoding every new
delta once before it is stored, writing the delta or direct object with the user's metadata,
settling a key's two forms after a write, and the flows built on that: `upload`, `estimate`
(the same path, nothing written), `copy` and `compact`. Must not call boto3 (`s3`), start
subprocesses (`xdelta`) or read the logical view.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from deltaglider import chains, xdelta
from deltaglider.buckets import ReferenceGroup, group_of
from deltaglider.decision import (
    Artifact,
    Decision,
    DeltaTrial,
    decide_upload,
    wants_delta,
)
from deltaglider.errors import IntegrityError, NotFoundError, ReferenceMismatch, UsageError
from deltaglider.files import Progress, digest_file
from deltaglider.log import get_logger, step
from deltaglider.metadata import (
    DELTA_SUFFIX,
    ZERO_DIFF_NOTE,
    DeltaMeta,
    DirectMeta,
    LinkMeta,
    ObjectKind,
    check_metadata,
    check_user_key,
    check_user_metadata,
    classify,
    delta_key,
    now,
    user_metadata,
)
from deltaglider.models import (
    ObjectHead,
    ReferenceMode,
    StoredAs,
    UploadOptions,
    UploadResult,
)
from deltaglider.parts import EngineParts
from deltaglider.reading import (
    Located,
    chosen_form,
    download,
    heads,
    newest_first_key,
    reconstruct,
    reference_of,
)
from deltaglider.references import SERIES_CANDIDATES, Reference
from deltaglider.s3 import AlreadyExists
from deltaglider.series import series_of
from deltaglider.urls import base_name, parent_prefix

log = get_logger(__name__)

REFERENCE_ATTEMPTS = 3


@dataclass(frozen=True)
class Upload:
    """One upload on its way: the file, the ratio it is held to, and how it is written."""

    item: Artifact
    max_ratio: float
    write: bool = True  # False: `estimate`, the same decision and encoding, nothing written
    settle: bool = True  # after the write, remove the key's other form if older (not compact)
    absent: bool = False  # a listing just showed neither form: none is looked up or removed


@dataclass(frozen=True)
class Asked:
    """Requests an upload sent before its decision: the HEADs of `key` and `key.delta` (None
    when a listing just showed neither) and its series' shared references (None: no delta)."""

    heads: list[Future[ObjectHead | None]] | None
    listed: Future[list[Reference]] | None


@dataclass(frozen=True)
class EncodedDelta:
    """A delta file in scratch space, as the codec made it."""

    path: Path
    size: int
    encoding: xdelta.Encoding


@dataclass(frozen=True)
class Chained:
    """A chain link about to be stored: its fields, its body, and the base it was made
    against (kept fetched at `base_path` until the link is in place)."""

    link: LinkMeta
    body: EncodedDelta
    base: chains.Member
    base_path: Path


Stored = tuple[Decision, int]  # what was stored, and the bytes it added to the bucket


# ----------------------------------------------------------------------------- the flows


def upload(
    parts: EngineParts,
    path: Path,
    bucket: str,
    key: str,
    options: UploadOptions | None = None,
    progress: Progress | None = None,
    *,
    absent: bool = False,
) -> UploadResult:
    """Store a local file under a logical key as a new reference, a delta, or direct.

    `options.metadata` (the user's own, as `aws s3 cp --metadata`) and `content_type` are kept
    on the stored object and returned by reads. `progress` is told the file's bytes as they are
    done (read for a delta, sent for a direct object), summing to its size. `absent`: a listing
    just showed neither form of the key (sync), so it is not looked up and the other form is
    not looked for after the write (FORMAT "Writing")."""
    check_user_key(key)
    options = options or UploadOptions()
    asked = _ask(parts, bucket, key, options, absent) if path.is_file() else None
    # the file is hashed while those requests are out
    item = artifact(path, bucket, key, options, progress)
    return _store(parts, Upload(item, _max_ratio(parts, options), absent=absent), asked)


def estimate(
    parts: EngineParts, path: Path, bucket: str, key: str, options: UploadOptions | None = None
) -> UploadResult:
    """What `upload` would store for this file, with nothing written to the bucket."""
    item = artifact(path, bucket, key, options)
    return _store(parts, Upload(item, _max_ratio(parts, item.options), write=False))


def copy(
    parts: EngineParts,
    src_bucket: str,
    src_key: str,
    dst_bucket: str,
    dst_key: str,
    options: UploadOptions | None = None,
    progress: Progress | None = None,
) -> UploadResult:
    """S3 to S3, logically: the destination gets its own delta or direct object (with the
    source's metadata and content type unless `options` gives others)."""
    check_user_key(dst_key)
    options = options or UploadOptions()
    with parts.work_directory() as scratch:
        local = Path(scratch) / "object"
        source = download(parts, src_bucket, src_key, local, progress)
        own = replace(
            options,
            metadata=source.metadata if options.metadata is None else options.metadata,
            content_type=options.content_type or source.content_type,
        )
        return upload(parts, local, dst_bucket, dst_key, own)


def compact(parts: EngineParts, bucket: str, key: str) -> UploadResult:
    """`migrate --in-place` for one key: a plain (or direct) object becomes its delta form at
    the same logical key, and readers never miss it or get other bytes. The delta is written
    beside the plain object (decoded before it is stored, and newer, so reads take it), read
    back from the bucket and checked against the plain object's SHA-256; only then is the plain
    object deleted, and only if it is still the one read (a concurrent writer's newer object
    stays). A run killed at any point leaves both forms or one, each whole; running it again
    finishes."""
    check_user_key(key)
    plain_head = parts.store.head(bucket, key)
    if plain_head is None:
        raise NotFoundError(f"s3://{bucket}/{key}: no such object")
    plain = Located(key, plain_head, classify(key, plain_head.metadata))
    options = UploadOptions(
        metadata=user_metadata(plain_head.metadata), content_type=plain_head.content_type
    )
    with parts.work_directory() as scratch:
        local = Path(scratch) / "file"
        with local.open("wb") as out:
            digest = reconstruct(parts, bucket, plain, out)
        item = artifact(local, bucket, key, options)
        if plain.md5 is not None and item.digest.md5 != plain.md5:
            raise IntegrityError(f"s3://{bucket}/{key}: read back other bytes than its ETag")
        result = _store(parts, Upload(item, _max_ratio(parts, options), settle=False))
    if result.stored_as is StoredAs.DIRECT:
        return result  # rewritten as itself, same bytes: nothing to remove
    compact_head = parts.store.head(bucket, delta_key(key))
    if compact_head is None:
        raise IntegrityError(f"s3://{bucket}/{delta_key(key)}: missing after it was written")
    written = Located(delta_key(key), compact_head, ObjectKind.DELTA)
    if reconstruct(parts, bucket, written, None).sha256 != digest.sha256:
        raise IntegrityError(f"s3://{bucket}/{written.stored_key}: does not read back")
    current = parts.store.head(bucket, key)
    if current is not None and current.etag == plain_head.etag:
        parts.store.delete(bucket, key)
    return result


def artifact(
    path: Path,
    bucket: str,
    key: str,
    options: UploadOptions | None,
    progress: Progress | None = None,
) -> Artifact:
    """A local file checked and hashed for an upload to `key`."""
    check_user_key(key)
    if path.is_dir():
        raise UsageError(f"{path} is a directory (use --recursive to copy a folder)")
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    options = options or UploadOptions()
    # a delta's time goes into reading and encoding, a direct object's into sending it
    reading = progress if wants_delta(key, options.policy) else None
    try:
        digest = digest_file(path, reading)
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    checked = check_user_metadata(options.metadata or {})
    sending = progress if reading is None else None
    return Artifact(path, digest, bucket, key, options, checked, sending)


def _max_ratio(parts: EngineParts, options: UploadOptions) -> float:
    return parts.settings.max_ratio if options.max_ratio is None else options.max_ratio


def _ask(parts: EngineParts, bucket: str, key: str, options: UploadOptions, absent: bool) -> Asked:
    """Send what an upload's decision needs: the HEADs of both forms of the key (unless a
    listing just showed neither) and, for a delta, its series' shared references (one
    listing page; botocore's retries only, so a failing endpoint fails it as fast as the
    HEADs)."""
    sent = None if absent else heads(parts, bucket, key)
    listed = None
    if wants_delta(key, options.policy):
        listed = parts.requests.submit(parts.references.shared_candidates, bucket, series_of(key))
    return Asked(sent, listed)


# -------------------------------------------------------------------------- one upload


def _store(parts: EngineParts, upload: Upload, asked: Asked | None = None) -> UploadResult:
    started = time.monotonic()
    item = upload.item
    with step(log, "located", key=item.key) as found:
        asked = asked or _ask(parts, item.bucket, item.key, item.options, upload.absent)
        existing = None if asked.heads is None else chosen_form(item.key, asked.heads)
        found.update(existing=existing.stored_key if existing else None)
    decision = decide_upload(item, existing, upload.max_ratio)
    stored_size = 0
    if decision.stored_as is None:
        decision, stored_size = _via_delta(parts, upload, asked.listed)
    elif decision.stored_as is StoredAs.DIRECT:
        stored_size = _put_direct(parts, upload)
    elif decision.stored_as is StoredAs.UNCHANGED and upload.write and existing is not None:
        # as a re-upload would, bring the object's time forward (a server-side copy onto
        # itself, metadata kept), so `sync` sees it up to date and settles
        parts.store.copy_within(
            item.bucket, existing.stored_key, existing.stored_key, existing.head.metadata
        )
    if upload.write and decision.stored_as is not StoredAs.UNCHANGED:
        written = item.key if decision.stored_as is StoredAs.DIRECT else delta_key(item.key)
        if upload.settle and not upload.absent:
            _settle_forms(parts, item.bucket, item.key, written, existing)
        log.info(
            "uploaded",
            bucket=item.bucket,
            key=item.key,
            stored_as=decision.stored_as.value if decision.stored_as else None,
            file_size=item.digest.size,
            stored_size=stored_size,
        )
        _count_upload(parts, decision, item.digest.size, stored_size, started)
    assert decision.stored_as is not None
    digest = item.digest
    return UploadResult(
        item.bucket,
        item.key,
        decision.stored_as,
        digest.size,
        stored_size,
        digest.sha256,
        time.monotonic() - started,
        decision.note,
        digest.md5,
    )


_CREATED = {
    StoredAs.REFERENCE: "reference.created",
    StoredAs.DELTA: "delta.created",
    StoredAs.DIRECT: "direct.uploaded",
}


def _count_upload(
    parts: EngineParts, decision: Decision, size: int, stored: int, started: float
) -> None:
    """deltaglider 6.x's metrics of a write (metrics.py)."""
    parts.metrics.timing("put.duration", time.monotonic() - started)
    if decision.stored_as in _CREATED:
        parts.metrics.increment(_CREATED[decision.stored_as])
    if decision.stored_as is StoredAs.DELTA and size:
        parts.metrics.gauge("delta.ratio", stored / size)


def _via_delta(
    parts: EngineParts, upload: Upload, listed: Future[list[Reference]] | None
) -> Stored:
    """Store the file against its group's reference, creating the reference if there is
    none. A delta is only reported stored once its reference is confirmed in place after
    the delta was written (a concurrent `rm` may have removed it: it is put back, or the
    upload starts again without it); if the reference was replaced by different bytes the
    delta is made again. `listed`: the series' shared references, already asked for."""
    lost: set[str] = set()  # references found gone: not candidates again
    for attempt in range(REFERENCE_ATTEMPTS):
        shared = listed.result() if listed is not None and attempt == 0 else None
        stored = _try_delta(parts, upload, shared, lost)
        if stored is not None:
            return stored
        log.warning(
            "reference_changed_during_upload", bucket=upload.item.bucket, key=upload.item.key
        )
    if upload.write:
        parts.store.delete(upload.item.bucket, delta_key(upload.item.key))
    decision = Decision(StoredAs.DIRECT, "its reference kept changing during the upload")
    return decision, _put_direct(parts, upload)


def _group(parts: EngineParts, upload: Upload) -> ReferenceGroup:
    """The group this upload's reference serves. In folder mode the folder's own reference
    when it has one (or for an estimate, which probes nothing); otherwise the one rule
    (`BucketConfig.reference_group`)."""
    bucket, key = upload.item.bucket, upload.item.key
    if parts.buckets.reference_mode(bucket) is ReferenceMode.FOLDER and (
        not upload.write or parts.references.find(bucket, parent_prefix(key)) is not None
    ):
        return group_of(bucket, key, ReferenceMode.FOLDER)
    return parts.buckets.reference_group(bucket, key)


def _candidates(
    parts: EngineParts, group: ReferenceGroup, key: str, shared: list[Reference] | None
) -> Iterator[Reference]:
    """What an upload may encode against, best guess first: the newest shared references
    of its series (shared group; `shared` if already listed), then the folder's own
    `reference.bin`, looked up only when the loop asks for it."""
    if group.mode is ReferenceMode.SHARED:
        if shared is None:
            shared = parts.references.shared_candidates(group.bucket, group.name)
        yield from shared
    folder = parts.references.find(group.bucket, parent_prefix(key))
    if folder is not None:
        yield folder


def _try_delta(
    parts: EngineParts, upload: Upload, shared: list[Reference] | None, lost: set[str]
) -> Stored | None:
    """One attempt; None when a reference was lost to a race (start again; a reference
    found gone is added to `lost`)."""
    item = upload.item
    group = _group(parts, upload)
    if group.mode is ReferenceMode.CHAIN:
        return _chain_version(parts, upload, group, shared)
    with step(log, "candidates", key=item.key, group=group.name) as listed:
        found = (c for c in _candidates(parts, group, item.key, shared) if c.key not in lost)
        first = next(found, None)
        listed.update(first=first.key if first else None)
    if first is None:
        return _new_reference(parts, upload, group)
    with contextlib.ExitStack() as held:  # fetched references stay until the decision
        scratch = Path(held.enter_context(parts.work_directory()))
        best = _best_trial(
            parts, upload, group, itertools.chain([first], found), held, scratch, lost
        )
        if best is None:
            return None
        reference, ref, delta = best
        decision = decide_upload(
            item,
            None,
            upload.max_ratio,
            DeltaTrial(delta.size),
            mode=group.mode,
            renew_ratio=parts.settings.renewal,
        )
        if decision.stored_as is StoredAs.REFERENCE:
            return _new_reference(parts, upload, group, decision)
        if decision.stored_as is StoredAs.DIRECT:
            log.info(
                "delta_over_ratio",
                key=item.key,
                delta_size=delta.size,
                file_size=item.digest.size,
                max_ratio=upload.max_ratio,
            )
            return decision, _put_direct(parts, upload)
        if upload.write:
            with step(log, "checked", key=item.key):
                _check_delta(ref, item, delta)
            with step(log, "stored", key=delta_key(item.key), size=delta.size):
                if not parts.references.protect(item.bucket, reference, delta_key(item.key), ref):
                    lost.add(reference.key)  # being removed: not a candidate again
                    return None
                _put_delta(parts, item, delta, reference, zero_diff=False)
            if not parts.references.in_place(item.bucket, reference, ref, delta_key(item.key)):
                lost.add(reference.key)
                return None
    return decision, delta.size


def _best_trial(
    parts: EngineParts,
    upload: Upload,
    group: ReferenceGroup,
    candidates: Iterator[Reference],
    held: contextlib.ExitStack,
    scratch: Path,
    lost: set[str],
) -> tuple[Reference, Path, EncodedDelta] | None:
    """Encode against the candidates, best guess first, and return the smallest delta; for
    shared references a second candidate only when the first delta is over the renewal
    ratio. None when the first candidate was removed or replaced after it was found."""
    item = upload.item
    renew = parts.settings.renewal if group.mode is ReferenceMode.SHARED else None
    trials: list[tuple[Reference, Path, EncodedDelta]] = []
    for number, candidate in enumerate(candidates):
        try:
            fetching = time.perf_counter()
            ref = held.enter_context(
                parts.references.fetch(item.bucket, candidate.key, candidate.sha256)
            )
        except (NotFoundError, ReferenceMismatch):
            lost.add(candidate.key)
            if not trials:
                return None  # removed or replaced after it was found: again
            if number + 1 >= SERIES_CANDIDATES:
                break
            continue
        waited = round((time.perf_counter() - fetching) * 1000, 1)
        log.debug("reference_ready", ref_key=candidate.key, ms=waited)
        with step(log, "encoded", key=item.key, ref_key=candidate.key) as done:
            delta = _encode(parts, ref, item, scratch / f"{number}.delta", check=False)
            done.update(delta_size=delta.size)
        trials.append((candidate, ref, delta))
        if number + 1 >= SERIES_CANDIDATES or renew is None:
            break
        if delta.size <= renew * item.digest.size:
            break  # good enough: the next candidate is not looked up
    return min(trials, key=lambda trial: trial[2].size)


def _chain_version(
    parts: EngineParts, upload: Upload, group: ReferenceGroup, shared: list[Reference] | None
) -> Stored | None:
    """`references=chain` (FORMAT "Delta chains"): the file becomes its series' newest
    reference, a link against the member the skip-delta rule names (whole for the first
    version, or when that delta is over the max ratio), and its key holds its self-delta."""
    item = upload.item
    latest = chains.newest(parts, item.bucket, group.name, shared)
    if latest is None:
        return _new_reference(parts, upload, group, start=LinkMeta(0))
    base, seq = chains.base_for(parts, item.bucket, latest), latest.link.seq + 1
    with contextlib.ExitStack() as held:
        scratch = Path(held.enter_context(parts.work_directory()))
        ref = base.reference
        path = held.enter_context(
            chains.fetch(parts, item.bucket, ref.key, ref.sha256, linked=base.linked)
        )
        body = _encode(parts, path, item, scratch / "link.delta", check=upload.write)
        ratio = body.size / item.digest.size
        if ratio > upload.max_ratio:
            note = f"new chain start for its series (best delta {ratio:.0%} of the file)"
            decision = Decision(StoredAs.REFERENCE, note)
            return _new_reference(parts, upload, group, decision, start=LinkMeta(seq))
        tag, size = body.encoding.tag, item.digest.size
        link = LinkMeta(seq, ref.key, ref.sha256, base.linked, tag, size)
        note = f"chained to version {base.link.seq} of its series"
        chained = Chained(link, body, base, path)
        return _new_reference(parts, upload, group, Decision(StoredAs.DELTA, note), chained)


def _new_reference(
    parts: EngineParts,
    upload: Upload,
    group: ReferenceGroup,
    decision: Decision | None = None,
    chained: Chained | None = None,
    start: LinkMeta | None = None,
) -> Stored | None:
    """Make the file a new reference of its group (in a chain: a link, or a `start`) and
    store its self-delta at its own key; None when another writer's folder reference won
    the race (encode against it instead)."""
    item, write = upload.item, upload.write
    digest, name = item.digest, base_name(item.key)
    body = chained.body.path if chained else item.path  # what the reference object holds
    if group.mode is ReferenceMode.FOLDER:
        reference = Reference.new(group.name, name, digest.sha256)
    else:
        reference = Reference.new_shared(
            group.name, name, digest.sha256, chained.link if chained else start
        )
    pending = write and not reference.shared
    if pending and parts.references.restore_pending(item.bucket, reference.key):
        return None  # its folder's reference was being removed: encode against it
    base = chained.base.whole_form() if chained else None
    if (
        write
        and chained
        and base
        and not parts.references.protect(item.bucket, base, reference.key, chained.base_path)
    ):
        return None  # its base is being removed: the series' newest is looked up again
    try:
        if write:
            try:
                with step(log, "reference_created", ref_key=reference.key, size=digest.size):
                    # its own marker first: no removal takes a reference that has one
                    parts.references.add_user(item.bucket, reference, delta_key(item.key))
                    parts.references.create(item.bucket, reference, body)
            except AlreadyExists:
                log.info("reference_race_lost", bucket=item.bucket, ref_key=reference.key)
                return None
            parts.references.remember(reference, item.path)
        with parts.work_directory() as scratch:
            delta = _encode(parts, item.path, item, Path(scratch) / "self.delta", check=write)
            decision = decision or decide_upload(
                item, None, upload.max_ratio, DeltaTrial(delta.size, True), mode=group.mode
            )
            if write:
                _put_delta(parts, item, delta, reference, zero_diff=True, linked=bool(chained))
    except Exception:  # not on an interrupt: what a kill leaves is cleanup's
        if write and reference.shared:  # an uploader that encoded against it meanwhile
            # has its marker there, so it stays
            _withdraw(parts, item.bucket, reference, delta_key(item.key), base)
        raise
    if write and not parts.references.in_place(item.bucket, reference, body, delta_key(item.key)):
        return None
    return decision, (chained.body.size if chained else digest.size) + delta.size


def _withdraw(
    parts: EngineParts, bucket: str, reference: Reference, stored_key: str, base: Reference | None
) -> None:
    """A failed first upload takes back the shared reference it created (and its marker; for
    a chain link also its marker beside its base), so it leaves nothing behind; best effort:
    `cleanup` removes what a crash leaves."""
    try:  # its marker goes, then the reference itself once no marker is left
        parts.references.release(bucket, reference.key, stored_key)
        if base is not None:
            parts.references.release(bucket, base.key, reference.key)
    except Exception as error:  # the upload's own error is the one to report
        log.warning("reference_not_withdrawn", ref_key=reference.key, error=str(error))


# ------------------------------------------------------------------ encoding and writing


def _encode(
    parts: EngineParts, ref_path: Path, item: Artifact, out: Path, *, check: bool
) -> EncodedDelta:
    encoding = xdelta.encode(
        ref_path,
        item.path,
        out,
        codec=parts.buckets.codec(item.bucket),
        budget=parts.settings.codec_memory_bytes,
    )
    delta = EncodedDelta(out, out.stat().st_size, encoding)
    if check:
        _check_delta(ref_path, item, delta)
    return delta


def _check_delta(ref_path: Path, item: Artifact, delta: EncodedDelta) -> None:
    """Every new delta is decoded once before it is stored (FORMAT "Writing")."""
    check = xdelta.decode(ref_path, delta.path, None, tag=delta.encoding.tag)
    if check.sha256 != item.digest.sha256:
        raise IntegrityError(
            f"{item.path}: the new delta did not decode to the file's bytes (did the "
            "file change while uploading?); nothing was stored"
        )


def _put_delta(
    parts: EngineParts,
    item: Artifact,
    delta: EncodedDelta,
    reference: Reference,
    *,
    zero_diff: bool,
    linked: bool = False,
) -> None:
    digest = item.digest
    meta = DeltaMeta(
        original_name=base_name(item.key),
        file_sha256=digest.sha256,
        file_size=digest.size,
        created_at=now(),
        ref_key=reference.key,
        ref_sha256=reference.sha256,
        delta_size=delta.size,
        delta_cmd=delta.encoding.command,
        note=ZERO_DIFF_NOTE if zero_diff else None,
        codec=delta.encoding.tag,
        md5=digest.md5,
        ref_linked=linked,
    )
    _put_object(parts, item, delta_key(item.key), delta.path, meta.to_dict(), None)


def _put_direct(parts: EngineParts, upload: Upload) -> int:
    """Store the file whole at its key (nothing for an estimate); its stored bytes."""
    item = upload.item
    digest = item.digest
    if upload.write:
        meta = DirectMeta(base_name(item.key), digest.sha256, digest.size, now(), digest.md5)
        _put_object(parts, item, item.key, item.path, meta.to_dict(), digest.sha256, item.progress)
    return digest.size


def _put_object(
    parts: EngineParts,
    item: Artifact,
    stored_key: str,
    body: Path,
    format_meta: dict[str, str],
    sha256: str | None,
    progress: Progress | None = None,
) -> None:
    """Upload a delta or direct object carrying our metadata and the user's."""
    meta = check_metadata({**item.user_metadata, **format_meta}, stored_key)
    headers = {"ContentType": item.options.content_type, "Tagging": item.options.tagging}
    parts.store.put_file(
        item.bucket,
        stored_key,
        body,
        meta,
        sha256=sha256,
        headers={k: v for k, v in headers.items() if v},
        progress=progress,
    )


def _settle_forms(
    parts: EngineParts, bucket: str, key: str, stored_key: str, replaced: Located | None
) -> None:
    """After writing `stored_key`: release the reference a replaced delta at the same key
    used (if ours uses another), and remove the logical key's other form (`k` vs `k.delta`)
    if it is older than what was just written; a newer one is a concurrent writer's."""
    store = parts.store
    ours: ObjectHead | None = None
    if (
        replaced is not None
        and replaced.stored_key == stored_key
        and replaced.kind is ObjectKind.DELTA
    ):
        ours = store.head(bucket, stored_key)
        if ours is None:
            return
        if reference_of(replaced.head) != reference_of(ours):
            parts.references.release(bucket, reference_of(replaced.head), stored_key)
    other = delta_key(key) if stored_key == key else key
    other_head = store.head(bucket, other)
    if other_head is None:
        return
    ours = ours or store.head(bucket, stored_key)
    if ours is None:
        return
    pair = [
        Located(k, h, classify(k, h.metadata)) for k, h in ((stored_key, ours), (other, other_head))
    ]
    if max(pair, key=lambda f: newest_first_key(f, key, pair)).stored_key == other:
        return  # theirs is newer by the read rule: a concurrent writer's, and it wins
    store.delete(bucket, other)
    if other.endswith(DELTA_SUFFIX):
        parts.references.release(bucket, reference_of(other_head), other)

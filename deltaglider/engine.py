"""Decide, encode, reconstruct: how each artifact is stored and how it comes back.

Owns: the upload decision (`decide_upload`: unchanged, direct, new reference, delta, or direct
over the max ratio; FORMAT "Writing"), encoding and decoding every new delta once before it is
stored, the read decision between a key's two forms (FORMAT "How a read decides"), SHA-256
verification of everything read, and the one door CLI, SDK and maintenance go through: every
operation they need is a method here. References are `references.References`' job, listings
`listing`'s, bucket repair `maintenance`'s. Must not call boto3 (s3.Store does) or start
subprocesses (xdelta does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from deltaglider import listing, maintenance, retention, stats, xdelta
from deltaglider.cache import ReferenceCache, open_cache
from deltaglider.config import Settings
from deltaglider.errors import (
    CodecError,
    DeltagliderError,
    IntegrityError,
    NotFoundError,
    ReferenceMismatch,
    UsageError,
)
from deltaglider.files import (
    CHUNK_SIZE,
    Digest,
    HashingWriter,
    Progress,
    atomic_output,
    digest_file,
)
from deltaglider.log import get_logger, step
from deltaglider.metadata import (
    DELTA_SUFFIX,
    INTERNAL_PREFIX,
    REFERENCE_NAME,
    SETTINGS_KEY,
    ZERO_DIFF_NOTE,
    BucketSettings,
    DeltaMeta,
    DirectMeta,
    ObjectKind,
    check_metadata,
    check_user_key,
    check_user_metadata,
    classify,
    delta_key,
    is_internal_key,
    logical_key_of,
    lookup,
    named_reference,
    now,
    parse_time,
    recorded_size,
    reference_key,
    user_metadata,
)
from deltaglider.models import (
    DeleteResult,
    DeltaPolicy,
    DownloadResult,
    ListEntry,
    LogicalPage,
    StoredAs,
    UploadOptions,
    UploadResult,
    VerifyResult,
)
from deltaglider.references import SERIES_CANDIDATES, Reference, References
from deltaglider.s3 import AlreadyExists, Bucket, ObjectHead, Store, make_client
from deltaglider.series import series_of
from deltaglider.urls import MAX_KEY_BYTES, base_name, parent_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = get_logger(__name__)

# The old tool's list (FORMAT), then zip-based formats it missed. Matched case-insensitively
# against the end of the name, so `.tar.gz` is covered by `.gz` too.
DELTA_EXTENSIONS = (
    ".zip",
    ".tar",
    ".gz",
    ".tgz",
    ".bz2",
    ".xz",
    ".7z",
    ".rar",
    ".dmg",
    ".iso",
    ".pkg",
    ".deb",
    ".rpm",
    ".apk",
    ".jar",
    ".war",
    ".ear",
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".whl",
    ".nupkg",
    ".vsix",
    ".aar",
    ".ipa",
    ".apks",
    ".egg",
)


REFERENCE_ATTEMPTS = 3


def wants_delta(key: str, policy: DeltaPolicy) -> bool:
    """Whether an upload to `key` is tried as a delta under `policy`."""
    return policy is DeltaPolicy.ALWAYS or (
        policy is DeltaPolicy.AUTO and is_delta_eligible(base_name(key))
    )


def is_delta_eligible(name: str) -> bool:
    """True when a file of this name is tried as a delta by default."""
    return name.lower().endswith(DELTA_EXTENSIONS)


def written_at(head: ObjectHead) -> datetime:
    """When an object was written: our microsecond `dg-created-at` (S3's LastModified has
    one-second resolution, too coarse to order two uploads of one CI job), else LastModified."""
    raw = lookup(head.metadata, "created_at")
    if raw:
        with contextlib.suppress(ValueError):
            return parse_time(raw)
    return head.last_modified


def newest_first_key(candidate: Located, key: str, found: list[Located]) -> tuple[datetime, bool]:
    """How a read orders a key's two forms (FORMAT "How a read decides"): by when each was
    written, `key` itself winning a tie. When either lacks `dg-created-at` (another tool wrote
    it), both are compared at S3's one-second resolution."""
    moment = written_at(candidate.head)
    if any(lookup(f.head.metadata, "created_at") is None for f in found):
        moment = moment.replace(microsecond=0)
    return moment, candidate.stored_key == key


@dataclass(frozen=True)
class Located:
    """Where a logical key is stored and what it is."""

    stored_key: str
    head: ObjectHead
    kind: ObjectKind

    @property
    def sha256(self) -> str | None:
        return lookup(self.head.metadata, "file_sha256") if self.kind != ObjectKind.PLAIN else None

    @property
    def md5(self) -> str | None:
        """MD5 of the logical file when known: our `dg-md5`, or a plain object's own ETag."""
        if self.kind is ObjectKind.PLAIN:
            return self.head.etag if "-" not in self.head.etag else None
        return lookup(self.head.metadata, "md5")

    @property
    def logical_size(self) -> int:
        size = recorded_size(self.head.metadata)
        return self.head.size if size is None else size


@dataclass(frozen=True)
class Artifact:
    """A local file on its way to a logical key, checked and hashed."""

    path: Path
    digest: Digest
    bucket: str
    key: str
    options: UploadOptions
    user_metadata: dict[str, str]  # options.metadata checked, or {} when not given
    progress: Progress | None = None  # told the bytes sent of a direct object


@dataclass(frozen=True)
class Asked:
    """Requests an upload sent before its decision: the HEADs of `key` and `key.delta` (None
    when a listing just showed neither) and its series' shared references (None: no delta)."""

    heads: list[Future[ObjectHead | None]] | None
    listed: Future[list[Reference]] | None


@dataclass(frozen=True)
class DeltaTrial:
    """A delta encoded for an upload: its size, and whether it is the self-delta of a space's
    new reference."""

    size: int
    new_reference: bool = False


@dataclass(frozen=True)
class Decision:
    """What an upload stores and why. `stored_as` None: encode a delta, then decide again
    with its `DeltaTrial`."""

    stored_as: StoredAs | None
    note: str = ""


def decide_upload(
    item: Artifact,
    existing: Located | None,
    max_ratio: float,
    trial: DeltaTrial | None = None,
    renew_ratio: float | None = None,
) -> Decision:
    """The upload decision (FORMAT "Writing"), the same for upload, estimate and sync.

    Unchanged when the key already holds these bytes (and, when given, this user metadata and
    content type); direct when the name is not delta-eligible under the policy or the file is
    empty; otherwise a delta against the best reference: a new reference when there is none,
    or with shared references (`renew_ratio` given) when the best delta is over `renew_ratio`
    of the file (renewal); direct when the delta is over `max_ratio`."""
    digest, options = item.digest, item.options
    if (
        existing is not None
        and existing.sha256 == digest.sha256
        and (
            options.metadata is None or user_metadata(existing.head.metadata) == item.user_metadata
        )
        and options.content_type in (None, existing.head.content_type)
    ):
        return Decision(StoredAs.UNCHANGED, "identical file already stored")
    if not wants_delta(item.key, options.policy):
        return Decision(StoredAs.DIRECT)
    if len(delta_key(item.key).encode("utf-8")) > MAX_KEY_BYTES:
        return Decision(StoredAs.DIRECT, f"key too long for its {DELTA_SUFFIX} form")
    if digest.size == 0:
        return Decision(StoredAs.DIRECT, "empty file")
    if trial is None:
        return Decision(None)
    whose = "folder" if renew_ratio is None else "series"
    if trial.new_reference:
        return Decision(StoredAs.REFERENCE, f"new reference for its {whose}")
    if renew_ratio is not None and trial.size > renew_ratio * digest.size:
        return Decision(
            StoredAs.REFERENCE,
            f"new reference for its series (best delta {trial.size / digest.size:.0%} of the file)",
        )
    if trial.size > max_ratio * digest.size:
        return Decision(StoredAs.DIRECT, f"delta over max ratio {max_ratio:g}")
    return Decision(StoredAs.DELTA)


def _result(item: Artifact, started: float, decision: Decision, stored_size: int) -> UploadResult:
    digest = item.digest
    assert decision.stored_as is not None
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


class Engine:
    """One S3 store, one reference cache, one set of settings."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        cache: ReferenceCache | None = None,
        *,
        credentials: dict[str, str] | None = None,
        boto3_methods: bool = False,
    ) -> None:
        """`credentials` (aws_access_key_id, aws_secret_access_key, aws_session_token) override
        boto3's usual chain; they go to the client and are never kept or logged here.
        `boto3_methods`: a boto3 client (the SDK passes its extra methods through), not a
        plain botocore one."""
        self.settings = settings
        self._store = store or Store(
            make_client(settings, credentials, boto3_methods=boto3_methods), settings
        )
        self._cache = cache or open_cache(settings)
        self.references = References(self._store, self._cache, settings)
        # small requests one operation sends together (HEADs, the settings, a listing page);
        # only leaf calls run here, never one that submits more
        self._requests = ThreadPoolExecutor(
            max_workers=4 * max(settings.max_concurrency, 2),
            thread_name_prefix="deltaglider-request",
        )
        self._bucket_settings: dict[str, BucketSettings] = {}
        self._settings_stored: set[str] = set()  # buckets that have a settings object
        self._settings_lock = threading.Lock()

    # ------------------------------------------------------------------ process

    @property
    def boto3_client(self) -> S3Client:
        """The underlying boto3 client: only for the SDK's pass-through methods (calls
        deltaglider does not change, such as bucket policies and presigning)."""
        return self._store.client

    def work_directory(self) -> tempfile.TemporaryDirectory[str]:
        """A private scratch directory, removed with the cache by the next process if a
        killed one left it behind."""
        return self._cache.work_directory()

    def close(self) -> None:
        """Remove this process's scratch files (and its cached references, unless the cache
        is the persistent one)."""
        self._requests.shutdown(wait=False, cancel_futures=True)
        self._cache.close()

    # ----------------------------------------------------------------- upload

    def upload(
        self,
        path: Path,
        bucket: str,
        key: str,
        options: UploadOptions | None = None,
        progress: Progress | None = None,
        *,
        absent: bool = False,
    ) -> UploadResult:
        """Store a local file under a logical key as reference+delta, delta, or direct.

        `options.metadata` (the user's own, as `aws s3 cp --metadata`) and `content_type` are
        kept on the stored object and returned by reads. `progress` is told the file's bytes
        as they are done (read for a delta, sent for a direct object), summing to its size.
        `absent`: a listing just showed neither form of the key (sync), so it is not looked
        up and the other form is not looked for after the write (FORMAT "Writing")."""
        check_user_key(key)
        asked = (
            self._ask(bucket, key, options or UploadOptions(), absent) if path.is_file() else None
        )
        # the file is hashed while those requests are out
        item = self._artifact(path, bucket, key, options, progress)
        return self._store_file(item, write=True, absent=absent, asked=asked)

    def _ask(self, bucket: str, key: str, options: UploadOptions, absent: bool) -> Asked:
        """Send what an upload's decision needs: the HEADs of both forms of the key (unless a
        listing just showed neither) and, for a delta, its series' shared references (one
        listing page; botocore's retries only, so a failing endpoint fails it as fast as the
        HEADs)."""
        heads = None if absent else self._heads(bucket, key)
        listed = None
        if wants_delta(key, options.policy):
            listed = self._requests.submit(
                self.references.shared_candidates, bucket, series_of(key)
            )
        return Asked(heads, listed)

    def _heads(self, bucket: str, key: str) -> list[Future[ObjectHead | None]]:
        return [self._requests.submit(self._store.head, bucket, k) for k in (key, delta_key(key))]

    def estimate(
        self, path: Path, bucket: str, key: str, options: UploadOptions | None = None
    ) -> UploadResult:
        """What `upload` would store for this file: the same decision and encoding, with
        nothing written to the bucket."""
        return self._store_file(self._artifact(path, bucket, key, options), write=False)

    @staticmethod
    def _artifact(
        path: Path,
        bucket: str,
        key: str,
        options: UploadOptions | None,
        progress: Progress | None = None,
    ) -> Artifact:
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

    def compact(self, bucket: str, key: str) -> UploadResult:
        """`migrate --in-place` for one key: a plain (or direct) object becomes its delta
        form at the same logical key, and readers never miss it or get other bytes. The delta
        is written beside the plain object (decoded before it is stored, and newer, so reads
        take it), read back from the bucket and checked against the plain object's SHA-256;
        only then is the plain object deleted, and only if it is still the one read (a
        concurrent writer's newer object stays). A run killed at any point leaves both forms
        or one, each whole; running it again finishes."""
        check_user_key(key)
        plain_head = self._store.head(bucket, key)
        if plain_head is None:
            raise NotFoundError(f"s3://{bucket}/{key}: no such object")
        plain = Located(key, plain_head, classify(key, plain_head.metadata))
        options = UploadOptions(
            metadata=user_metadata(plain_head.metadata), content_type=plain_head.content_type
        )
        with self.work_directory() as scratch:
            local = Path(scratch) / "file"
            with local.open("wb") as out:
                digest = self.reconstruct(bucket, plain, out)
            item = self._artifact(local, bucket, key, options)
            if plain.md5 is not None and item.digest.md5 != plain.md5:
                raise IntegrityError(f"s3://{bucket}/{key}: read back other bytes than its ETag")
            result = self._store_file(item, write=True, settle=False)
        if result.stored_as is StoredAs.DIRECT:
            return result  # rewritten as itself, same bytes: nothing to remove
        compact_head = self._store.head(bucket, delta_key(key))
        if compact_head is None:
            raise IntegrityError(f"s3://{bucket}/{delta_key(key)}: missing after it was written")
        compact = Located(delta_key(key), compact_head, ObjectKind.DELTA)
        if self.reconstruct(bucket, compact, None).sha256 != digest.sha256:
            raise IntegrityError(f"s3://{bucket}/{compact.stored_key}: does not read back")
        current = self._store.head(bucket, key)
        if current is not None and current.etag == plain_head.etag:
            self._store.delete(bucket, key)
        return result

    def _store_file(
        self,
        item: Artifact,
        *,
        write: bool,
        settle: bool = True,
        absent: bool = False,
        asked: Asked | None = None,
    ) -> UploadResult:
        started = time.monotonic()
        ratio = (
            self.settings.max_ratio if item.options.max_ratio is None else item.options.max_ratio
        )
        with step(log, "located", key=item.key) as found:
            asked = asked or self._ask(item.bucket, item.key, item.options, absent)
            existing = None if asked.heads is None else self._located(item.key, asked.heads)
            listed = asked.listed
            found.update(existing=existing.stored_key if existing else None)
        decision = decide_upload(item, existing, ratio)
        stored_size = 0
        if decision.stored_as is None:
            decision, stored_size = self._store_via_delta(item, ratio, write, listed)
        elif decision.stored_as is StoredAs.DIRECT:
            stored_size = self._put_direct(item) if write else item.digest.size
        if write and decision.stored_as is not StoredAs.UNCHANGED:
            direct = decision.stored_as is StoredAs.DIRECT
            written = item.key if direct else delta_key(item.key)
            if settle and not absent:
                self._settle_forms(item.bucket, item.key, written, existing)
            log.info(
                "uploaded",
                bucket=item.bucket,
                key=item.key,
                stored_as=decision.stored_as.value if decision.stored_as else None,
                file_size=item.digest.size,
                stored_size=stored_size,
            )
        return _result(item, started, decision, stored_size)

    def _store_via_delta(
        self,
        item: Artifact,
        ratio: float,
        write: bool,
        listed: Future[list[Reference]] | None = None,
    ) -> tuple[Decision, int]:
        """Store `item` against its space's reference, creating the reference if there is
        none. A delta is only reported stored once its reference is confirmed in place after
        the delta was written (a concurrent `rm` may have removed it: it is put back, or the
        upload starts again without it); if the reference was replaced by different bytes
        the delta is made again. `listed`: the series' shared references, already asked for."""
        lost: set[str] = set()  # references found gone: not candidates again
        for attempt in range(REFERENCE_ATTEMPTS):
            shared = listed.result() if listed is not None and attempt == 0 else None
            stored = self._try_delta(item, ratio, write, shared, lost)
            if stored is not None:
                return stored
            log.warning("reference_changed_during_upload", bucket=item.bucket, key=item.key)
        if write:
            self._store.delete(item.bucket, delta_key(item.key))
        decision = Decision(
            StoredAs.DIRECT, "the folder's reference kept changing during the upload"
        )
        return decision, self._put_direct(item) if write else item.digest.size

    def _candidates(
        self, bucket: str, key: str, series: str | None, shared: list[Reference] | None
    ) -> Iterator[Reference]:
        """What an upload may encode against, best guess first: the newest shared references
        of its series (when `series` is given; `shared` if already listed), then the folder's
        own `reference.bin`, looked up only when the loop asks for it."""
        if series is not None:
            if shared is None:
                shared = self.references.shared_candidates(bucket, series)
            yield from shared
        folder = self.references.find(bucket, parent_prefix(key))
        if folder is not None:
            yield folder

    def _try_delta(
        self,
        item: Artifact,
        ratio: float,
        write: bool,
        shared: list[Reference] | None = None,
        lost: set[str] | None = None,
    ) -> tuple[Decision, int] | None:
        """One attempt; None when a reference was lost to a race (start again; a reference
        found gone is added to `lost`).

        Candidates (`_candidates`) are tried best guess first; with shared references a
        second one only when the first gives a delta over the renewal ratio."""
        lost = set() if lost is None else lost
        bucket = item.bucket
        series: str | None = series_of(item.key)
        if self.reference_mode(bucket) == "folder" and (
            not write
            or self.references.find(bucket, parent_prefix(item.key)) is not None
            or self.conditional_writes(bucket)
        ):
            # Folder references, unless the folder has none yet and the server ignores
            # If-None-Match: then racing writers could each create one, while a shared
            # reference's key is ours alone (FORMAT "Writing").
            series = None
        renew = self.settings.renewal if series is not None else None
        with step(log, "candidates", key=item.key, series=series) as listed:
            found = (
                c for c in self._candidates(bucket, item.key, series, shared) if c.key not in lost
            )
            first = next(found, None)
            listed.update(first=first.key if first else None)
        if first is None:
            return self._new_reference(item, ratio, write, series)
        with contextlib.ExitStack() as held:  # fetched references stay until the decision
            scratch = Path(held.enter_context(self.work_directory()))
            trials: list[tuple[Reference, Path, EncodedDelta]] = []
            for number, candidate in enumerate(itertools.chain([first], found)):
                try:
                    fetching = time.perf_counter()
                    ref = held.enter_context(
                        self.references.fetch(bucket, candidate.key, candidate.sha256)
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
                    delta = self._encode(ref, item, scratch / f"{number}.delta", check=False)
                    done.update(delta_size=delta.size)
                trials.append((candidate, ref, delta))
                if number + 1 >= SERIES_CANDIDATES or renew is None:
                    break
                if delta.size <= renew * item.digest.size:
                    break  # good enough: the next candidate is not looked up
            reference, ref, delta = min(trials, key=lambda trial: trial[2].size)
            decision = decide_upload(item, None, ratio, DeltaTrial(delta.size), renew)
            if decision.stored_as is StoredAs.REFERENCE:
                return self._new_reference(item, ratio, write, series, decision)
            if decision.stored_as is StoredAs.DIRECT:
                log.info(
                    "delta_over_ratio",
                    key=item.key,
                    delta_size=delta.size,
                    file_size=item.digest.size,
                    max_ratio=ratio,
                )
                return decision, self._put_direct(item) if write else item.digest.size
            if write:
                with step(log, "checked", key=item.key):
                    self._check_delta(ref, item, delta)
                with step(log, "stored", key=delta_key(item.key), size=delta.size):
                    self.references.add_user(bucket, reference, delta_key(item.key))
                    self._put_delta(item, delta, reference, zero_diff=False)
                if not self.references.in_place(bucket, reference, ref, delta_key(item.key)):
                    lost.add(reference.key)
                    return None
        return decision, delta.size

    def _new_reference(
        self,
        item: Artifact,
        ratio: float,
        write: bool,
        series: str | None,
        decision: Decision | None = None,
    ) -> tuple[Decision, int] | None:
        """Make the file a new reference (shared when `series` is given, else its folder's)
        and store its self-delta at its own key; None when another writer's folder reference
        won the race (encode against it instead)."""
        digest = item.digest
        name = base_name(item.key)
        if series is not None:
            reference = Reference.new_shared(series, name, digest.sha256)
        else:
            reference = Reference.new(parent_prefix(item.key), name, digest.sha256)
        if (
            write
            and not reference.shared
            and self.references.restore_pending(item.bucket, reference.key)
        ):
            return None  # its folder's reference was being removed: encode against it
        if write:
            try:
                with step(log, "reference_created", ref_key=reference.key, size=digest.size):
                    self.references.create(item.bucket, reference, item.path)
            except AlreadyExists:
                log.info("reference_race_lost", bucket=item.bucket, ref_key=reference.key)
                return None
            self.references.remember(reference, item.path)
        renew = self.settings.renewal if series is not None else None
        with self.work_directory() as scratch:
            delta = self._encode(item.path, item, Path(scratch) / "self.delta", check=write)
            decision = decision or decide_upload(
                item, None, ratio, DeltaTrial(delta.size, True), renew
            )
            if write:
                self.references.add_user(item.bucket, reference, delta_key(item.key))
                self._put_delta(item, delta, reference, zero_diff=True)
        if write and not self.references.in_place(
            item.bucket, reference, item.path, delta_key(item.key)
        ):
            return None
        return decision, digest.size + delta.size

    def _encode(self, ref_path: Path, item: Artifact, out: Path, *, check: bool) -> EncodedDelta:
        encoding = xdelta.encode(
            ref_path,
            item.path,
            out,
            codec=self.codec(item.bucket),
            budget=self.settings.codec_memory_bytes,
        )
        delta = EncodedDelta(out, out.stat().st_size, encoding)
        if check:
            self._check_delta(ref_path, item, delta)
        return delta

    @staticmethod
    def _check_delta(ref_path: Path, item: Artifact, delta: EncodedDelta) -> None:
        """Every new delta is decoded once before it is stored (FORMAT "Writing")."""
        check = xdelta.decode(ref_path, delta.path, None, tag=delta.encoding.tag)
        if check.sha256 != item.digest.sha256:
            raise IntegrityError(
                f"{item.path}: the new delta did not decode to the file's bytes (did the "
                "file change while uploading?); nothing was stored"
            )

    def _put_delta(
        self, item: Artifact, delta: EncodedDelta, reference: Reference, *, zero_diff: bool
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
        )
        self._put_object(item, delta_key(item.key), delta.path, meta.to_dict(), None)

    def _put_direct(self, item: Artifact) -> int:
        digest = item.digest
        meta = DirectMeta(base_name(item.key), digest.sha256, digest.size, now(), digest.md5)
        self._put_object(
            item, item.key, item.path, meta.to_dict(), digest.sha256, progress=item.progress
        )
        return digest.size

    def _put_object(
        self,
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
        self._store.put_file(
            item.bucket,
            stored_key,
            body,
            meta,
            sha256=sha256,
            headers={k: v for k, v in headers.items() if v},
            progress=progress,
        )

    def _settle_forms(
        self, bucket: str, key: str, stored_key: str, replaced: Located | None
    ) -> None:
        """After writing `stored_key`: release the reference a replaced delta at the same key
        used (if ours uses another), and remove the logical key's other form (`k` vs
        `k.delta`) if it is older than what was just written; a newer one is a concurrent
        writer's."""
        ours: ObjectHead | None = None
        if (
            replaced is not None
            and replaced.stored_key == stored_key
            and replaced.kind is ObjectKind.DELTA
        ):
            ours = self._store.head(bucket, stored_key)
            if ours is None:
                return
            if _ref_key(replaced.head) != _ref_key(ours):
                self.references.release(bucket, _ref_key(replaced.head), stored_key)
        other = delta_key(key) if stored_key == key else key
        other_head = self._store.head(bucket, other)
        if other_head is None:
            return
        ours = ours or self._store.head(bucket, stored_key)
        if ours is None:
            return
        pair = [
            Located(k, h, classify(k, h.metadata))
            for k, h in ((stored_key, ours), (other, other_head))
        ]
        if max(pair, key=lambda f: newest_first_key(f, key, pair)).stored_key == other:
            return  # theirs is newer by the read rule: a concurrent writer's, and it wins
        self._store.delete(bucket, other)
        if other.endswith(DELTA_SUFFIX):
            self.references.release(bucket, _ref_key(other_head), other)

    def copy(
        self,
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
        with self.work_directory() as scratch:
            local = Path(scratch) / "object"
            source = self.download(src_bucket, src_key, local, progress)
            own = UploadOptions(
                options.policy,
                options.max_ratio,
                source.metadata if options.metadata is None else options.metadata,
                options.content_type or source.content_type,
                options.tagging,
            )
            return self.upload(local, dst_bucket, dst_key, own)

    # --------------------------------------------------------------- download

    def find(self, bucket: str, key: str) -> Located | None:
        """FORMAT "How a read decides": `key` and `key.delta`, or None when neither exists.

        Both are looked at: when two writers left both forms (each deletes the other only if
        it is older than its own), the newer wins and `key` wins a tie, so every reader
        agrees on one of the writes."""
        return self._located(key, self._heads(bucket, key))

    @staticmethod
    def _located(key: str, heads: list[Future[ObjectHead | None]]) -> Located | None:
        """`find`'s choice from the HEADs of `key` and `key.delta` (in that order)."""
        found = [
            Located(stored_key, head, classify(stored_key, head.metadata))
            for stored_key, future in zip((key, delta_key(key)), heads, strict=True)
            if (head := future.result()) is not None
        ]
        if not found:
            return None
        return max(found, key=lambda f: newest_first_key(f, key, found))

    def locate(self, bucket: str, key: str) -> Located:
        """As `find`, but NotFoundError (naming a missing bucket as such) when neither exists
        and UsageError when `key` names a folder."""
        if not base_name(key):
            raise UsageError(f"s3://{bucket}/{key} names a folder, not an object")
        located = self.find(bucket, key)
        if located is not None:
            return located
        if not self._store.bucket_exists(bucket):
            raise NotFoundError(f"s3://{bucket}: bucket does not exist", "NoSuchBucket")
        raise NotFoundError(f"s3://{bucket}/{key}: no such object")

    def download(
        self,
        bucket: str,
        key: str,
        destination: Path,
        progress: Progress | None = None,
        *,
        stored_key: str = "",
    ) -> DownloadResult:
        """Reconstruct a logical key into `destination`, which only ever receives a complete,
        verified file (or is left untouched). `stored_key`: the one form of the key a listing
        just showed (`key` or `key.delta`), read without HEADs; as with `aws s3 sync`, a
        write after that listing may or may not be seen."""
        started = time.monotonic()
        with atomic_output(destination) as (out, _):
            read: tuple[Located, Digest] | None = None
            if stored_key in (key, delta_key(key)):
                try:
                    read = self._read_listed(bucket, key, stored_key, out, progress)
                except NotFoundError as error:
                    if error.code == "NoSuchBucket":
                        raise
                if read is None:  # gone or changed since the listing: read it by the rule
                    out.seek(0)
                    out.truncate()
            if read is None:
                located = self.locate(bucket, key)
                read = located, self.reconstruct(bucket, located, out, progress)
            located, digest = read
        return DownloadResult(
            bucket,
            key,
            located.kind.value,
            digest.size,
            digest.sha256,
            located.kind is not ObjectKind.PLAIN,
            time.monotonic() - started,
            located.head.last_modified,
            user_metadata(located.head.metadata),
            located.head.content_type,
        )

    def verify(self, bucket: str, key: str) -> VerifyResult:
        """Reconstruct a logical key without writing it anywhere and check its SHA-256.

        A mismatch raises IntegrityError, like a download does. References are read from the
        bucket, never the local cache: what is checked is what is stored."""
        located = self.locate(bucket, key)
        digest = self.reconstruct(bucket, located, None, fresh=True)
        return VerifyResult(
            bucket,
            key,
            located.kind.value,
            located.sha256 or digest.sha256,
            digest.sha256,
            digest.size,
        )

    def reconstruct(
        self,
        bucket: str,
        located: Located,
        out: BinaryIO | None,
        progress: Progress | None = None,
        fetched_delta: Path | None = None,
        *,
        fresh: bool = False,
    ) -> Digest:
        """Write the verified logical bytes of a located object into `out` (seekable; may
        be None to only check). A failed check raises IntegrityError; `out` is then empty.
        `fetched_delta`: the delta's bytes, already downloaded; `fresh`: the reference is read
        from the bucket, not the cache (verify checks what is stored)."""
        where = f"s3://{bucket}/{located.stored_key}"
        if located.kind is not ObjectKind.DELTA:
            writer = HashingWriter(out, progress=progress)
            self._store.download(bucket, located.stored_key, writer)
            return self._checked_whole(where, located, writer, out)

        meta = DeltaMeta.from_dict(located.head.metadata, located.stored_key)
        with self.work_directory() as scratch:
            delta_path = fetched_delta or Path(scratch) / "in.delta"
            pending: Future[None] | None = None
            if fetched_delta is None and meta.file_sha256 != meta.ref_sha256:
                # the delta's GET goes alongside the reference's (or its cache check)
                pending = self._requests.submit(
                    self._download_to, bucket, located.stored_key, delta_path
                )
            try:
                with self.references.fetch(
                    bucket, meta.ref_key, meta.ref_sha256, fresh=fresh
                ) as ref_path:
                    if meta.file_sha256 == meta.ref_sha256:
                        # the file is its reference (a first upload's self-delta): serve the
                        # checked reference bytes; 6.2.0's self-deltas of .tar.gz files do not
                        # decode to them
                        writer = HashingWriter(out, progress=progress)
                        with ref_path.open("rb") as source:
                            while chunk := source.read(CHUNK_SIZE):
                                writer.write(chunk)
                        return writer.digest
                    if pending is not None:
                        with step(log, "delta_fetched", key=located.stored_key):
                            pending.result()
                    with step(
                        log, "decoded_and_checked", key=located.stored_key, ref_key=meta.ref_key
                    ):
                        return self._decode_checked(
                            ref_path, delta_path, meta, out, where, progress
                        )
            finally:
                if pending is not None:
                    wait([pending])  # never leave a GET writing into a removed directory

    def _download_to(self, bucket: str, key: str, path: Path) -> None:
        with path.open("wb") as handle:
            self._store.download(bucket, key, handle)

    @staticmethod
    def _checked_whole(
        where: str, located: Located, writer: HashingWriter, out: BinaryIO | None
    ) -> Digest:
        """A direct or plain object's bytes, read through `writer`, against its recorded
        SHA-256 (a plain object has none); on a mismatch `out` is emptied."""
        expected = located.sha256
        if expected is not None and writer.digest.sha256 != expected.lower():
            if out is not None:
                out.seek(0)
                out.truncate()
            raise IntegrityError(f"{where}: content does not match its recorded SHA-256")
        return writer.digest

    def _read_listed(
        self, bucket: str, key: str, stored_key: str, out: BinaryIO, progress: Progress | None
    ) -> tuple[Located, Digest] | None:
        """Read a logical key whose one stored form a listing just showed: its GET says what
        a HEAD would, so no HEAD is made. None when the object is not what the name says
        (read it by the rule instead); NotFoundError when it is gone."""
        where = f"s3://{bucket}/{stored_key}"
        if stored_key == key:
            writer = HashingWriter(out, progress=progress)
            head = self._store.download(bucket, stored_key, writer)
            located = Located(stored_key, head, classify(stored_key, head.metadata))
            if located.kind is ObjectKind.DELTA:
                return None
            return located, self._checked_whole(where, located, writer, out)
        with self.work_directory() as scratch:
            delta_path = Path(scratch) / "listed.delta"
            with delta_path.open("wb") as handle:
                head = self._store.download(bucket, stored_key, handle)
            located = Located(stored_key, head, classify(stored_key, head.metadata))
            if located.kind is not ObjectKind.DELTA:
                return None
            return located, self.reconstruct(bucket, located, out, progress, delta_path)

    @staticmethod
    def _decode_checked(
        ref_path: Path,
        delta_path: Path,
        meta: DeltaMeta,
        out: BinaryIO | None,
        where: str,
        progress: Progress | None = None,
    ) -> Digest:
        """Decode exactly (`-D -R`); for deltas of unknown provenance also as 6.x did. Any
        result that fails the SHA-256 check is discarded."""
        attempts = [False] if meta.codec is not None else [False, True]
        failure = ""
        for legacy in attempts:
            if out is not None:
                out.seek(0)
                out.truncate()
            try:
                digest = xdelta.decode(
                    ref_path, delta_path, out, tag=meta.codec, legacy=legacy, progress=progress
                )
            except CodecError as error:
                failure = str(error)
                continue
            if digest.sha256 == meta.file_sha256:
                return digest
            failure = "reconstructed bytes do not match the recorded SHA-256"
        if out is not None:
            out.seek(0)
            out.truncate()
        if meta.codec is None and failure.startswith("reconstructed"):
            raise IntegrityError(
                f"{where}: {failure}; this delta was stored undecodable by an older deltaglider "
                "(made without xdelta3 -D from a compressed file) or has been corrupted"
            )
        raise IntegrityError(f"{where}: {failure}")

    # --------------------------------------------------------------- listings

    def listing(
        self,
        bucket: str,
        prefix: str,
        *,
        recursive: bool = False,
        logical_sizes: bool = False,
    ) -> Iterator[ListEntry]:
        """The logical view under `prefix` (FORMAT "The logical view"), streamed in logical
        key order: folders and files, or with `recursive` every file below."""
        return listing.logical_listing(
            self._store,
            bucket,
            prefix,
            delimiter="" if recursive else "/",
            logical_sizes=logical_sizes,
            concurrency=self.settings.max_concurrency,
        )

    def listing_page(
        self,
        bucket: str,
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> LogicalPage:
        """One page of the logical view with logical sizes: what `list_objects_v2` returns."""
        return listing.logical_page(
            self._store,
            bucket,
            prefix,
            delimiter=delimiter,
            start_after=start_after,
            max_keys=max_keys,
            concurrency=self.settings.max_concurrency,
        )

    @staticmethod
    def reference_key_of(head: ObjectHead) -> str:
        """The key of the reference a delta (as HEADed) was made against."""
        return _ref_key(head)

    def stored_sizes(self, bucket: str, keys: list[str]) -> int:
        """The bytes these stored objects take (missing ones count nothing)."""
        return sum(head.size for key in keys if (head := self._store.head(bucket, key)))

    # ---------------------------------------------------------------- deletes

    def delete(self, bucket: str, key: str) -> DeleteResult:
        """Delete a logical object, both its forms (`k` and `k.delta`) if two writers left
        both; a reference goes too once no delta needs it. A folder marker (`name/`, zero
        bytes, as S3 consoles make folders) is deleted as it is."""
        if key.endswith("/") and not key.startswith(INTERNAL_PREFIX):
            marker = self._store.head(bucket, key)
            if marker is None or marker.size:
                raise NotFoundError(f"s3://{bucket}/{key}: no such folder marker")
            self._store.delete(bucket, key)
            return DeleteResult(bucket, key, (key,))
        check_user_key(key)
        located = self.locate(bucket, key)
        removed: list[str] = []
        for stored_key in (key, delta_key(key)):  # every form: an older one must not resurface
            head = located.head if stored_key == located.stored_key else None
            head = head or self._store.head(bucket, stored_key)
            if head is None:
                continue
            self._store.delete(bucket, stored_key)
            removed.append(stored_key)
            if classify(stored_key, head.metadata) is ObjectKind.DELTA:
                removed += self.references.release(bucket, _ref_key(head), stored_key)
        return DeleteResult(bucket, key, tuple(removed))

    def delete_recursive(
        self,
        bucket: str,
        prefix: str,
        *,
        on_delete: Callable[[DeleteResult], None] | None = None,
    ) -> list[DeleteResult]:
        """Delete every stored object under `prefix`, internal ones included (as `rb --force`
        needs), then every reference that no remaining delta needs."""
        results: list[DeleteResult] = []
        spaces: set[str] = set()
        batch: list[str] = []

        def flush() -> None:
            failed = set(self._store.delete_many(bucket, batch))
            for stored_key in batch:
                if stored_key in failed:
                    continue
                logical = stored_key if is_internal_key(stored_key) else logical_key_of(stored_key)
                result = DeleteResult(bucket, logical, (stored_key,))
                results.append(result)
                if on_delete:
                    on_delete(result)
            if failed:
                raise IntegrityError(
                    f"s3://{bucket}: {len(failed)} objects could not be deleted, e.g. "
                    f"{sorted(failed)[0]!r}"
                )
            batch.clear()

        for head in listing.stored_objects(self._store, bucket, prefix):
            if head.key.endswith(DELTA_SUFFIX) or base_name(head.key) == REFERENCE_NAME:
                spaces.add(parent_prefix(head.key))
            if base_name(head.key) != REFERENCE_NAME:
                batch.append(head.key)
                if len(batch) == 1000:
                    flush()
        if batch:
            flush()
        for space in sorted(spaces):
            self.references.drop_unused(bucket, space)
        return results

    # ---------------------------------------------------------------- buckets

    def reference_mode(self, bucket: str) -> str:
        """Where new references go in `bucket`: `shared` or `folder` (FORMAT "Bucket
        settings"): `--references`/DG_REFERENCES, else the bucket's setting, else shared."""
        return self.settings.references or self.bucket_settings(bucket).references

    def codec(self, bucket: str) -> str:
        """The codec new deltas in `bucket` use: `--codec`/DG_CODEC, else the bucket's
        setting (FORMAT "Bucket settings"), else xdelta3, which deltaglider 6.x reads."""
        return self.settings.codec or self.bucket_settings(bucket).codec or xdelta.XDELTA3

    def conditional_writes(self, bucket: str) -> bool:
        """Whether the server honours `If-None-Match: *`: the bucket settings' remembered
        answer, else probed once (FORMAT "Writing") and, in a bucket that has a settings
        object, remembered there for later writers (none is created just for this)."""
        remembered = self.bucket_settings(bucket).conditional_writes
        answer = self.references.conditional_writes(bucket, remembered)
        if remembered is None and bucket in self._settings_stored:
            current = self.bucket_settings(bucket)
            try:
                self.set_bucket_settings(
                    bucket, dataclasses.replace(current, conditional_writes=answer)
                )
            except DeltagliderError as error:  # only a speed-up for the next writer
                log.warning("probe_not_remembered", bucket=bucket, error=str(error))
        return answer

    def bucket_settings(self, bucket: str) -> BucketSettings:
        """The bucket's `.deltaglider/config.json`, read once per process (defaults when
        there is none)."""
        with self._settings_lock:
            known = self._bucket_settings.get(bucket)
            if known is None:
                out = io.BytesIO()
                try:
                    self._store.download(bucket, SETTINGS_KEY, out)
                    known = BucketSettings.from_json(
                        out.getvalue(), f"s3://{bucket}/{SETTINGS_KEY}"
                    )
                    self._settings_stored.add(bucket)
                except NotFoundError as error:
                    if error.code == "NoSuchBucket":
                        raise
                    known = BucketSettings()
                self._bucket_settings[bucket] = known
            return known

    def set_bucket_settings(self, bucket: str, settings: BucketSettings) -> None:
        self._store.put_bytes(bucket, SETTINGS_KEY, settings.to_json(), {})
        with self._settings_lock:
            self._bucket_settings[bucket] = settings
            self._settings_stored.add(bucket)

    def bucket_exists(self, bucket: str) -> bool:
        return self._store.bucket_exists(bucket)

    def bucket_region(self, bucket: str) -> str | None:
        return self._store.bucket_region(bucket)

    def list_buckets(self) -> list[Bucket]:
        return self._store.list_buckets()

    def create_bucket(self, bucket: str) -> None:
        self._store.create_bucket(bucket, self.settings.region)

    def delete_bucket(self, bucket: str) -> None:
        """Remove an empty bucket."""
        self._store.delete_bucket(bucket)

    def incomplete_uploads(self, bucket: str, prefix: str) -> list[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of every unfinished multipart upload under `prefix`."""
        return self._store.incomplete_uploads(bucket, prefix)

    # ------------------------------------------------------------ maintenance

    def cleanup(
        self,
        bucket: str,
        prefix: str,
        *,
        older_than: float = 3600.0,
        dryrun: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> maintenance.CleanupReport:
        """Repair what interrupted operations left under `prefix` (`deltaglider cleanup`)."""
        return maintenance.cleanup(
            self._store,
            self.references,
            bucket,
            prefix,
            older_than=older_than,
            dryrun=dryrun,
            say=say,
        )

    def rehydrate(self, bucket: str, located: Located, expires_in: int) -> str:
        """The key of a whole, verified copy of a delta under `.deltaglider/tmp/` that stays at
        least `expires_in` seconds: what a presigned GET of a delta serves."""
        key = logical_key_of(located.stored_key)
        with self.work_directory() as scratch:
            return maintenance.rehydrate(
                self._store,
                bucket,
                key,
                located.sha256 or "unknown",
                located.head.content_type,
                expires_in,
                Path(scratch),
                lambda out: self.reconstruct(bucket, located, out),
            )

    def presigned_url(
        self,
        method: str,
        params: dict[str, Any],
        expires_in: int,
        http_method: str | None = None,
    ) -> str:
        """A presigned URL; for `get_object` of a delta the URL serves a rehydrated whole copy
        (kept until it expires), for any other object the stored key itself."""
        params = dict(params)
        if method == "get_object":
            located = self.locate(params["Bucket"], params["Key"])
            if located.kind is ObjectKind.DELTA:
                params["Key"] = self.rehydrate(params["Bucket"], located, expires_in)
            else:
                params["Key"] = located.stored_key
        return self._store.presigned_url(method, params, expires_in, http_method)

    def bucket_acl(self, bucket: str) -> dict[str, Any]:
        return self._store.bucket_acl(bucket)

    def put_bucket_acl(self, bucket: str, acl: dict[str, Any]) -> None:
        self._store.put_bucket_acl(bucket, acl)

    def purge_rehydrations(self, bucket: str) -> tuple[list[str], int]:
        """Delete expired presigned-URL copies: (deleted keys, how many were kept)."""
        return maintenance.purge_rehydrations(self._store, bucket)

    def prune(
        self,
        bucket: str,
        prefix: str,
        *,
        by: str = "series",
        keep_last: int | None = None,
        older_than: timedelta | None = None,
        dryrun: bool = False,
        say: Callable[[str], None] = lambda line: None,
    ) -> retention.PruneResult:
        """Delete old versions under `prefix` per series (or folder), keeping every remaining
        file restorable (`deltaglider prune`)."""
        if keep_last is None and older_than is None:
            raise UsageError("prune needs --keep-last N, --older-than AGE, or both")
        if by not in ("series", "folder"):
            raise UsageError(f"--by must be series or folder, not {by!r}")
        return retention.prune(
            self,
            self._store,
            bucket,
            prefix,
            by=by,
            keep_last=keep_last,
            older_than=older_than,
            dryrun=dryrun,
            say=say,
        )

    # ------------------------------------------------------------------ stats

    def stats(
        self,
        bucket: str,
        prefix: str = "",
        *,
        mode: stats.Mode = stats.Mode.QUICK,
        by: str = "series",
        use_cache: bool = True,
        refresh: bool = False,
        progress: stats.Progress | None = None,
    ) -> stats.BucketStats:
        """What `prefix` stores and would take stored whole (`deltaglider stats`)."""
        if not self._store.bucket_exists(bucket):
            raise NotFoundError(f"s3://{bucket}/: no such bucket", code="NoSuchBucket")
        return stats.compute(
            self._store,
            bucket,
            prefix,
            mode=mode,
            by=by,
            use_cache=use_cache,
            refresh=refresh,
            concurrency=self.settings.max_concurrency,
            progress=progress,
        )


def _ref_key(head: ObjectHead) -> str:
    """The reference a delta names; its folder's `reference.bin` when it names none (what
    the old tool would assume)."""
    return named_reference(head.metadata, head.key) or reference_key(parent_prefix(head.key))


@dataclass(frozen=True)
class EncodedDelta:
    """A delta file in scratch space, as the codec made it."""

    path: Path
    size: int
    encoding: xdelta.Encoding

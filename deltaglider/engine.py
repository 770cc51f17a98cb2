"""Decide, encode, reconstruct: how each artifact is stored and how it comes back.

Owns: the reference / delta / direct decision, the reference-creation protocol (conditional
write, encode against the winner on 412), max-ratio enforcement, decoding every new delta once
before it is stored, SHA-256 verification of everything read, and the logical view used by
listing and deletion (FORMAT "Objects", "How a read decides"). Must not call boto3 (s3.Store
does) or start subprocesses (xdelta does).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from deltaglider import xdelta
from deltaglider.cache import ReferenceCache, open_cache
from deltaglider.config import Settings
from deltaglider.errors import (
    CodecError,
    IntegrityError,
    NotFoundError,
    ReferenceMismatch,
    UsageError,
)
from deltaglider.files import Digest, HashingWriter, Sink, atomic_output, digest_file
from deltaglider.log import get_logger
from deltaglider.metadata import (
    DELTA_SUFFIX,
    INTERNAL_PREFIX,
    REFERENCE_NAME,
    ZERO_DIFF_NOTE,
    DeltaMeta,
    DirectMeta,
    ObjectKind,
    ReferenceMeta,
    check_metadata,
    check_user_metadata,
    classify,
    delta_key,
    is_internal_key,
    logical_key_of,
    lookup,
    now,
    parse_time,
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
    UploadResult,
    VerifyResult,
)
from deltaglider.s3 import AlreadyExists, ListedPrefix, ObjectHead, Store, make_client
from deltaglider.urls import base_name, parent_prefix

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
TRASH_PREFIX = f"{INTERNAL_PREFIX}trash/"


def _unseen_bound(position: str, prefix: str) -> str:
    """Every logical key still unseen after raw listing position `position` sorts at or above
    the value returned (see `Engine.logical_page`)."""
    for end in range(len(prefix) + 1, len(position)):
        if position[:end] + DELTA_SUFFIX > position:
            return position[:end]
    return position


def _result(
    item: Artifact, started: float, stored_as: StoredAs, stored_size: int, note: str = ""
) -> UploadResult:
    digest = item.digest
    return UploadResult(
        item.bucket,
        item.key,
        stored_as,
        digest.size,
        stored_size,
        digest.sha256,
        time.monotonic() - started,
        note,
        digest.md5,
    )


def _delta_size(head: ObjectHead | None) -> int | None:
    """The logical size of a delta object, or None when `head` is not one."""
    if head is None or classify(head.key, head.metadata) is not ObjectKind.DELTA:
        return None
    return Located(head.key, head, ObjectKind.DELTA).logical_size


def written_at(head: ObjectHead) -> datetime:
    """When an object was written: our microsecond `dg-created-at` (S3's LastModified has
    one-second resolution, too coarse to order two uploads of one CI job), else LastModified."""
    raw = lookup(head.metadata, "created_at")
    if raw:
        with contextlib.suppress(ValueError):
            return parse_time(raw)
    return head.last_modified


def wants_delta(key: str, policy: DeltaPolicy) -> bool:
    """Whether an upload to `key` is tried as a delta under `policy`."""
    return policy is DeltaPolicy.ALWAYS or (
        policy is DeltaPolicy.AUTO and is_delta_eligible(base_name(key))
    )


def is_delta_eligible(name: str) -> bool:
    """True when a file of this name is tried as a delta by default."""
    return name.lower().endswith(DELTA_EXTENSIONS)


def check_user_key(key: str) -> None:
    """Refuse logical keys that would collide with deltaglider's own objects."""
    name = base_name(key)
    if not name:
        raise UsageError(f"no file name in key {key!r}")
    if name == REFERENCE_NAME:
        raise UsageError(f"{key!r}: the name {REFERENCE_NAME!r} is reserved for delta references")
    if name.endswith(DELTA_SUFFIX):
        raise UsageError(f"{key!r}: names ending in {DELTA_SUFFIX!r} are reserved for deltas")
    if key.startswith(INTERNAL_PREFIX):
        raise UsageError(f"{key!r}: keys under {INTERNAL_PREFIX!r} are reserved")


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
        size = lookup(self.head.metadata, "file_size")
        return int(size) if size and size.isdigit() else self.head.size


@dataclass(frozen=True)
class Artifact:
    """A local file on its way to a logical key."""

    path: Path
    digest: Digest
    bucket: str
    key: str
    user_metadata: dict[str, str]
    content_type: str | None
    tagging: str | None = None


@dataclass(frozen=True)
class Reference:
    """A space's reference as an encode needs it (metadata to put it back if it vanishes)."""

    key: str
    sha256: str
    size: int
    metadata: dict[str, str]


class Engine:
    """One S3 store, one reference cache, one set of settings."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        cache: ReferenceCache | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or Store(make_client(settings), settings)
        self.cache = cache or open_cache(
            settings.cache_backend, settings.cache_memory_bytes, settings.cache_encryption_key
        )
        self._conditional: dict[str, bool] = {}
        self._probe_lock = threading.Lock()

    # ----------------------------------------------------------------- upload

    def upload(
        self,
        path: Path,
        bucket: str,
        key: str,
        *,
        policy: DeltaPolicy = DeltaPolicy.AUTO,
        max_ratio: float | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        tagging: str | None = None,
    ) -> UploadResult:
        """Store a local file under a logical key as reference+delta, delta, or direct.

        `metadata` (the user's own, as `aws s3 cp --metadata`) and `content_type` are kept on
        the stored object and returned by reads."""
        started = time.monotonic()
        check_user_key(key)
        if path.is_dir():
            raise UsageError(f"{path} is a directory (use --recursive to copy a folder)")
        if not path.exists():
            raise NotFoundError(f"{path}: no such file")
        try:
            digest = digest_file(path)
        except OSError as error:
            raise UsageError(f"{path}: cannot read ({error.strerror})") from None
        item = Artifact(
            path, digest, bucket, key, check_user_metadata(metadata or {}), content_type, tagging
        )
        ratio = self.settings.max_ratio if max_ratio is None else max_ratio

        existing = self.locate(bucket, key, missing_ok=True)
        if (
            existing is not None
            and existing.sha256 == digest.sha256
            and (metadata is None or user_metadata(existing.head.metadata) == item.user_metadata)
            and content_type in (None, existing.head.content_type)
        ):
            return _result(item, started, StoredAs.UNCHANGED, 0, "identical file already stored")

        eligible = wants_delta(key, policy)
        if eligible and digest.size > 0:
            stored_as, stored_size, note = self._put_delta(item, ratio)
        else:
            note = "empty file" if eligible else ""
            stored_as, stored_size = StoredAs.DIRECT, self._put_direct(item)

        self._drop_other_form(bucket, key, key if stored_as is StoredAs.DIRECT else delta_key(key))
        log.info(
            "uploaded",
            bucket=bucket,
            key=key,
            stored_as=stored_as.value,
            file_size=digest.size,
            stored_size=stored_size,
        )
        return _result(item, started, stored_as, stored_size, note)

    def estimate(
        self,
        path: Path,
        bucket: str,
        key: str,
        *,
        policy: DeltaPolicy = DeltaPolicy.AUTO,
        max_ratio: float | None = None,
    ) -> UploadResult:
        """What `upload` would store for this file, computed (encoding included) without
        writing anything to the bucket."""
        started = time.monotonic()
        check_user_key(key)
        digest = digest_file(path)
        item = Artifact(path, digest, bucket, key, {}, None)
        ratio = self.settings.max_ratio if max_ratio is None else max_ratio
        existing = self.locate(bucket, key, missing_ok=True)

        def result(stored_as: StoredAs, size: int, note: str = "") -> UploadResult:
            return _result(item, started, stored_as, size, note)

        if existing is not None and existing.sha256 == digest.sha256:
            return result(StoredAs.UNCHANGED, 0, "identical file already stored")
        if not wants_delta(key, policy) or digest.size == 0:
            return result(StoredAs.DIRECT, digest.size)
        ref_key = reference_key(parent_prefix(key))
        ref_head = self.store.head(bucket, ref_key)
        with self.cache.work_directory() as scratch:
            delta_path = Path(scratch) / "estimate.delta"
            if ref_head is None:
                self._encode(path, path, delta_path)
                return result(
                    StoredAs.REFERENCE,
                    digest.size + delta_path.stat().st_size,
                    "new reference for its folder",
                )
            ref_sha = ReferenceMeta.from_dict(ref_head.metadata, ref_key).file_sha256
            with self._reference(bucket, ref_key, ref_sha) as ref_path:
                self._encode(ref_path, path, delta_path)
            delta_size = delta_path.stat().st_size
        if delta_size > ratio * digest.size:
            return result(StoredAs.DIRECT, digest.size, f"delta over max ratio {ratio:g}")
        return result(StoredAs.DELTA, delta_size)

    def _put_direct(self, item: Artifact) -> int:
        meta = DirectMeta(
            base_name(item.key), item.digest.sha256, item.digest.size, now(), item.digest.md5
        )
        self._store_object(item, item.key, item.path, meta.to_dict(), item.digest.sha256)
        return item.digest.size

    def _store_object(
        self,
        item: Artifact,
        stored_key: str,
        body: Path,
        format_meta: dict[str, str],
        sha256: str | None,
    ) -> None:
        """Upload a delta or direct object carrying our metadata and the user's."""
        meta = check_metadata({**item.user_metadata, **format_meta}, stored_key)
        headers = {"ContentType": item.content_type, "Tagging": item.tagging}
        self.store.put_file(
            item.bucket,
            stored_key,
            body,
            meta,
            sha256=sha256,
            headers={k: v for k, v in headers.items() if v},
        )

    def _put_delta(self, item: Artifact, max_ratio: float) -> tuple[StoredAs, int, str]:
        """Store `item` against its space's reference, creating the reference if there is
        none. A delta is only reported stored once its reference is confirmed in place after
        the delta was written (a concurrent `rm` may have removed it: it is put back); if the
        reference was replaced by different bytes the delta is made again."""
        for _ in range(REFERENCE_ATTEMPTS):
            stored = self._try_put_delta(item, max_ratio)
            if stored is not None:
                return stored
            log.warning("reference_changed_during_upload", bucket=item.bucket, key=item.key)
        self.store.delete(item.bucket, delta_key(item.key))
        return (
            StoredAs.DIRECT,
            self._put_direct(item),
            "the folder's reference kept changing during the upload",
        )

    def _try_put_delta(self, item: Artifact, max_ratio: float) -> tuple[StoredAs, int, str] | None:
        bucket, digest = item.bucket, item.digest
        ref_key = reference_key(parent_prefix(item.key))
        ref_head = self.store.head(bucket, ref_key)
        if ref_head is None:
            meta = check_metadata(
                ReferenceMeta(base_name(item.key), digest.sha256, now()).to_dict(), ref_key
            )
            reference = Reference(ref_key, digest.sha256, digest.size, meta)
            try:
                self._create_reference(bucket, reference, item.path)
            except AlreadyExists:
                log.info("reference_race_lost", bucket=bucket, ref_key=ref_key)
                return None
            self.cache.store(digest.sha256, item.path)
            delta_size = self._store_delta(item, item.path, reference, None)
            assert delta_size is not None
            if not self._reference_in_place(bucket, reference, item.path):
                return None
            return StoredAs.REFERENCE, digest.size + delta_size, "new reference for its folder"

        ref_sha = ReferenceMeta.from_dict(ref_head.metadata, ref_key).file_sha256
        reference = Reference(ref_key, ref_sha, ref_head.size, ref_head.metadata)
        try:
            with self._reference(bucket, ref_key, ref_sha) as ref_path:
                delta_size = self._store_delta(item, ref_path, reference, max_ratio)
                if delta_size is not None and not self._reference_in_place(
                    bucket, reference, ref_path
                ):
                    return None
        except (NotFoundError, ReferenceMismatch):
            return None  # removed or replaced between our HEAD and GET: start again
        if delta_size is None:
            return StoredAs.DIRECT, self._put_direct(item), f"delta over max ratio {max_ratio:g}"
        return StoredAs.DELTA, delta_size, ""

    def _create_reference(self, bucket: str, reference: Reference, source: Path) -> None:
        """Create `reference.key` from `source` unless it exists (AlreadyExists then).

        With conditional writes this is one `If-None-Match: *` request. On a server that
        ignores the condition (detected once per bucket) the reference is written, left to
        settle for `settle_seconds`, and read back: a writer whose bytes did not win raises
        AlreadyExists and encodes against the winner, as on 412."""
        conditional = self._supports_conditional_writes(bucket)
        if not conditional and self.store.head(bucket, reference.key) is not None:
            raise AlreadyExists(reference.key)
        self.store.put_file(
            bucket,
            reference.key,
            source,
            reference.metadata,
            sha256=reference.sha256,
            exclusive=conditional,
        )
        if not conditional:
            time.sleep(self.settings.settle_seconds)
            head = self.store.head(bucket, reference.key)
            if head is None or lookup(head.metadata, "file_sha256") != reference.sha256:
                raise AlreadyExists(reference.key)

    def _supports_conditional_writes(self, bucket: str) -> bool:
        """Probe once per bucket: does a second `If-None-Match: *` PUT get 412?"""
        with self._probe_lock:
            known = self._conditional.get(bucket)
            if known is None:
                known = self.store.conditional_writes_work(bucket, f"{INTERNAL_PREFIX}probe/")
                if not known:
                    log.warning(
                        "conditional_writes_unsupported",
                        bucket=bucket,
                        fallback="write, settle, read back",
                    )
                self._conditional[bucket] = known
            return known

    def _reference_in_place(self, bucket: str, reference: Reference, source: Path) -> bool:
        """After a delta was written: is its reference (same SHA-256) still there? If it was
        removed meanwhile, put the same bytes back. False when other bytes took its place."""
        head = self.store.head(bucket, reference.key)
        if head is None:
            log.warning("reference_restored", bucket=bucket, ref_key=reference.key)
            try:
                self._create_reference(bucket, reference, source)
                return True
            except AlreadyExists:
                head = self.store.head(bucket, reference.key)
        return head is not None and lookup(head.metadata, "file_sha256") == reference.sha256

    def _store_delta(
        self, item: Artifact, ref_path: Path, reference: Reference, max_ratio: float | None
    ) -> int | None:
        """Encode, decode-check and upload `<key>.delta`; None (nothing stored) when the delta
        exceeds `max_ratio` of the file. `max_ratio=None` marks the self-delta of a new space."""
        digest = item.digest
        with self.cache.work_directory() as scratch:
            delta_path = Path(scratch) / "out.delta"
            encoding = self._encode(ref_path, item.path, delta_path)
            delta_size = delta_path.stat().st_size
            if max_ratio is not None and delta_size > max_ratio * digest.size:
                log.info(
                    "delta_over_ratio",
                    key=item.key,
                    delta_size=delta_size,
                    file_size=digest.size,
                    max_ratio=max_ratio,
                )
                return None
            check = xdelta.decode(ref_path, delta_path, None, tag=encoding.tag)
            if check.sha256 != digest.sha256:
                raise IntegrityError(
                    f"{item.path}: the new delta did not decode to the file's bytes (did the "
                    "file change while uploading?); nothing was stored"
                )
            meta = DeltaMeta(
                original_name=base_name(item.key),
                file_sha256=digest.sha256,
                file_size=digest.size,
                created_at=now(),
                ref_key=reference.key,
                ref_sha256=reference.sha256,
                delta_size=delta_size,
                delta_cmd=encoding.command,
                note=ZERO_DIFF_NOTE if max_ratio is None else None,
                codec=encoding.tag,
                md5=digest.md5,
            )
            self._store_object(item, delta_key(item.key), delta_path, meta.to_dict(), None)
        return delta_size

    def _encode(self, ref_path: Path, path: Path, delta_path: Path) -> xdelta.Encoding:
        return xdelta.encode(
            ref_path,
            path,
            delta_path,
            codec=self.settings.codec,
            budget=self.settings.codec_memory_bytes,
        )

    def _reference(
        self, bucket: str, ref_key: str, ref_sha: str
    ) -> contextlib.AbstractContextManager[Path]:
        def fetch(out: Sink) -> None:
            self.store.download(bucket, ref_key, out)

        return self.cache.reference(ref_sha, fetch, f"s3://{bucket}/{ref_key}")

    # --------------------------------------------------------------- download

    def locate(self, bucket: str, key: str, *, missing_ok: bool = False) -> Located | None:
        """FORMAT "How a read decides": `key`, then `key.delta`. NotFoundError unless
        `missing_ok` when neither exists (naming a missing bucket as such).

        Both are looked at: when two writers left both forms (each deletes the other only if
        it is older than its own), the newer wins and `key` wins a tie, so every reader
        agrees on one of the writes."""
        found = [
            Located(stored_key, head, classify(stored_key, head.metadata))
            for stored_key in (key, delta_key(key))
            if (head := self.store.head(bucket, stored_key)) is not None
        ]
        if found:
            return max(found, key=lambda f: (written_at(f.head), f.stored_key == key))
        if missing_ok:
            return None
        if not self.store.bucket_exists(bucket):
            raise NotFoundError(f"s3://{bucket}: bucket does not exist", "NoSuchBucket")
        raise NotFoundError(f"s3://{bucket}/{key}: no such object")

    def _drop_other_form(self, bucket: str, key: str, stored_key: str) -> None:
        """After writing `stored_key`, remove the logical key's other form (`k` vs `k.delta`)
        if it is older than what was just written; a newer one is a concurrent writer's."""
        other = delta_key(key) if stored_key == key else key
        other_head = self.store.head(bucket, other)
        if other_head is None:
            return
        ours = self.store.head(bucket, stored_key)
        if ours is None:
            return
        theirs_at, ours_at = written_at(other_head), written_at(ours)
        if theirs_at > ours_at or (theirs_at == ours_at and other == key):
            return
        self.store.delete(bucket, other)
        if other.endswith(DELTA_SUFFIX):
            self.drop_unused_reference(bucket, parent_prefix(key))

    def download(self, bucket: str, key: str, destination: Path) -> DownloadResult:
        """Reconstruct a logical key into `destination`, which only ever receives a complete,
        verified file (or is left untouched)."""
        started = time.monotonic()
        located = self._locate_readable(bucket, key)
        with atomic_output(destination) as (out, _):
            digest = self.reconstruct(bucket, located, out)
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

        A mismatch raises IntegrityError, like a download does."""
        located = self._locate_readable(bucket, key)
        digest = self.reconstruct(bucket, located, None)
        return VerifyResult(
            bucket,
            key,
            located.kind.value,
            located.sha256 or digest.sha256,
            digest.sha256,
            digest.size,
        )

    def _locate_readable(self, bucket: str, key: str) -> Located:
        if not base_name(key):
            raise UsageError(f"s3://{bucket}/{key} names a folder, not an object")
        located = self.locate(bucket, key)
        assert located is not None
        return located

    def reconstruct(self, bucket: str, located: Located, out: BinaryIO | None) -> Digest:
        """Write the verified logical bytes of a located object into `out` (seekable; may
        be None to only check). A failed check raises IntegrityError; `out` is then empty."""
        where = f"s3://{bucket}/{located.stored_key}"
        if located.kind is not ObjectKind.DELTA:
            writer = HashingWriter(out)
            self.store.download(bucket, located.stored_key, writer)
            expected = located.sha256
            if expected is not None and writer.digest.sha256 != expected.lower():
                if out is not None:
                    out.seek(0)
                    out.truncate()
                raise IntegrityError(f"{where}: content does not match its recorded SHA-256")
            return writer.digest

        meta = DeltaMeta.from_dict(located.head.metadata, located.stored_key)
        with (
            self._reference(bucket, meta.ref_key, meta.ref_sha256) as ref_path,
            self.cache.work_directory() as scratch,
        ):
            delta_path = Path(scratch) / "in.delta"
            with delta_path.open("wb") as handle:
                self.store.download(bucket, located.stored_key, handle)
            return self._decode_checked(ref_path, delta_path, meta, out, where)

    @staticmethod
    def _decode_checked(
        ref_path: Path, delta_path: Path, meta: DeltaMeta, out: BinaryIO | None, where: str
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
                digest = xdelta.decode(ref_path, delta_path, out, tag=meta.codec, legacy=legacy)
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

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        policy: DeltaPolicy = DeltaPolicy.AUTO,
        max_ratio: float | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> UploadResult:
        """S3 to S3, logically: the destination gets its own delta or direct object (with the
        source's metadata and content type unless others are given)."""
        check_user_key(dst_key)
        with self.cache.work_directory() as scratch:
            local = Path(scratch) / "object"
            source = self.download(src_bucket, src_key, local)
            return self.upload(
                local,
                dst_bucket,
                dst_key,
                policy=policy,
                max_ratio=max_ratio,
                metadata=source.metadata if metadata is None else metadata,
                content_type=content_type or source.content_type,
            )

    # ------------------------------------------------------------ list / delete

    def logical_listing(
        self, bucket: str, prefix: str, *, recursive: bool = False, logical_sizes: bool = False
    ) -> Iterator[ListEntry]:
        """The logical view: `.delta` stripped, references and `.deltaglider/` hidden. Streams
        page by page (sorted within a page) with no request per object, so a delta's size is
        its stored size unless `logical_sizes` asks for a HEAD of each delta."""
        for page in self.store.iter_listing(bucket, prefix, "" if recursive else "/"):
            folders = [
                ListEntry(key=e.prefix, is_prefix=True)
                for e in page
                if isinstance(e, ListedPrefix) and e.prefix != INTERNAL_PREFIX
            ]
            objects = [e for e in page if isinstance(e, ObjectHead) and not is_internal_key(e.key)]
            entries = {e.key: e for e in folders}
            for entry in self._logical_entries(bucket, objects, logical_sizes):
                entries.setdefault(entry.key, entry)  # `k` wins over `k.delta`, as reads do
            yield from sorted(entries.values(), key=lambda e: e.key)

    def logical_page(
        self,
        bucket: str,
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> LogicalPage:
        """Up to `max_keys` logical entries after `start_after`, in logical key order, with
        logical sizes: the page `list_objects_v2` returns.

        Stripping `.delta` reorders keys (`a.zip.delta` sorts after `a.zip-2`, `a.zip` before
        it), so raw pages are read until no key still unseen could sort before what is returned:
        an unseen `L.delta` can only precede a seen position `pos` when `L` is a prefix of `pos`
        with `L.delta > pos`, so entries below the shortest such prefix are final.
        """
        found: dict[str, ListEntry] = {}
        objects: dict[str, ObjectHead] = {}
        final: list[str] = []
        for raw_page in self.store.iter_listing(bucket, prefix, delimiter, start_after):
            position = ""
            for item in raw_page:
                raw_key = item.prefix if isinstance(item, ListedPrefix) else item.key
                position = max(position, raw_key)
                if isinstance(item, ListedPrefix):
                    if item.prefix != INTERNAL_PREFIX and item.prefix > start_after:
                        found.setdefault(item.prefix, ListEntry(key=item.prefix, is_prefix=True))
                    continue
                logical = logical_key_of(item.key)
                if is_internal_key(item.key) or logical <= start_after:
                    continue
                if logical not in objects or objects[logical].key.endswith(DELTA_SUFFIX):
                    objects[logical] = item  # `k` wins over `k.delta`, as reads do
                    found[logical] = ListEntry(
                        logical,
                        item.size,
                        item.last_modified,
                        stored_size=item.size,
                        etag=item.etag,
                    )
            bound = _unseen_bound(position, prefix)
            final = sorted(k for k in found if k < bound)
            if len(final) > max_keys:
                break
        else:
            final = sorted(found)
        chosen = final[:max_keys]
        entries = [
            found[k] for k in chosen if not found[k].is_prefix or self._holds_files(bucket, k)
        ]
        entries = self._with_logical_sizes(bucket, entries, objects)
        return LogicalPage(entries, len(final) > max_keys)

    def _holds_files(self, bucket: str, prefix: str) -> bool:
        """Whether a common prefix holds any user file: not only a reference or internal
        objects, and not an empty folder some servers keep after its last object went."""
        return any(
            isinstance(e, ObjectHead) and not is_internal_key(e.key)
            for page in self.store.iter_listing(bucket, prefix)
            for e in page
        )

    def _with_logical_sizes(
        self, bucket: str, entries: list[ListEntry], objects: dict[str, ObjectHead]
    ) -> list[ListEntry]:
        """Replace deltas' stored sizes with logical ones (concurrent HEADs); attach heads."""
        deltas = [
            objects[e.key].key
            for e in entries
            if not e.is_prefix and objects[e.key].key.endswith(DELTA_SUFFIX)
        ]
        heads = self._heads(bucket, deltas)
        result = []
        for entry in entries:
            head = heads.get(objects[entry.key].key) if not entry.is_prefix else None
            size = _delta_size(head)
            if head is not None and size is not None:
                entry = replace(entry, size=size, head=head)
            result.append(entry)
        return result

    def _heads(self, bucket: str, keys: list[str]) -> dict[str, ObjectHead | None]:
        """HEAD of each key, `max_concurrency` at a time."""
        if not keys:
            return {}
        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            return dict(
                zip(keys, pool.map(lambda k: self.store.head(bucket, k), keys), strict=True)
            )

    def _logical_entries(
        self, bucket: str, objects: list[ObjectHead], logical_sizes: bool
    ) -> list[ListEntry]:
        deltas = [o.key for o in objects if o.key.endswith(DELTA_SUFFIX)]
        heads = self._heads(bucket, deltas) if logical_sizes else {}
        entries = []
        for obj in sorted(objects, key=lambda o: o.key.endswith(DELTA_SUFFIX)):
            stored = ListEntry(obj.key, obj.size, obj.last_modified, stored_size=obj.size)
            if not obj.key.endswith(DELTA_SUFFIX):
                entries.append(stored)
            elif not logical_sizes:
                entries.append(replace(stored, key=logical_key_of(obj.key)))
            elif (head := heads[obj.key]) is not None:
                size = _delta_size(head)
                if size is not None:
                    entries.append(replace(stored, key=logical_key_of(obj.key), size=size))
                else:  # a file named *.delta that no deltaglider wrote
                    entries.append(stored)
        return entries

    def delete(self, bucket: str, key: str) -> DeleteResult:
        """Delete a logical object; its space's reference goes too once no delta needs it."""
        check_user_key(key)
        located = self.locate(bucket, key)
        assert located is not None
        self.store.delete(bucket, located.stored_key)
        removed = [located.stored_key]
        if located.kind is ObjectKind.DELTA:
            removed += self.drop_unused_reference(bucket, parent_prefix(key))
        return DeleteResult(bucket, key, tuple(removed))

    def delete_recursive(
        self,
        bucket: str,
        prefix: str,
        *,
        dryrun: bool = False,
        on_delete: Callable[[DeleteResult], None] | None = None,
    ) -> list[DeleteResult]:
        """Delete every logical object under `prefix` (as `aws s3 rm --recursive`), then every
        reference that no remaining delta needs."""
        results: list[DeleteResult] = []
        spaces: set[str] = set()
        for page in self.store.iter_listing(bucket, prefix):
            keys = [e.key for e in page if isinstance(e, ObjectHead)]
            doomed = [k for k in keys if base_name(k) != REFERENCE_NAME]
            spaces.update(
                parent_prefix(k)
                for k in keys
                if k.endswith(DELTA_SUFFIX) or base_name(k) == REFERENCE_NAME
            )
            failed = set() if dryrun else set(self.store.delete_many(bucket, doomed))
            for stored_key in doomed:
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
        if not dryrun:
            for space in sorted(spaces):
                self.drop_unused_reference(bucket, space)
        return results

    def drop_unused_reference(self, bucket: str, space: str) -> list[str]:
        """Delete `<space>/reference.bin` when no `.delta` is left directly in the space.

        An upload may write a delta between our listing and our delete, so the reference is
        first copied to `.deltaglider/trash/`, then deleted, then the space is listed again:
        if a delta appeared, the reference is put back from the trash. (The uploader also
        checks after writing its delta and restores the reference itself if it is gone.)
        `deltaglider cleanup` finishes what a crash between these steps left behind."""
        if self._space_has_deltas(bucket, space):
            return []
        ref_key = reference_key(space)
        if self.store.head(bucket, ref_key) is None:
            return []
        trash_key = f"{TRASH_PREFIX}{uuid.uuid4().hex}"
        try:
            self.store.copy_within(bucket, ref_key, trash_key)
        except NotFoundError:
            return []  # another deleter got there first
        self.store.delete(bucket, ref_key)
        if self._space_has_deltas(bucket, space):
            log.warning(
                "reference_kept",
                bucket=bucket,
                ref_key=ref_key,
                reason="a delta arrived while it was being removed",
            )
            if self.store.head(bucket, ref_key) is None:
                self.store.copy_within(bucket, trash_key, ref_key)
            self.store.delete(bucket, trash_key)
            return []
        self.store.delete(bucket, trash_key)
        log.info("reference_removed", bucket=bucket, ref_key=ref_key, reason="no deltas left")
        return [ref_key]

    def _space_has_deltas(self, bucket: str, space: str) -> bool:
        listing_prefix = f"{space}/" if space else ""
        return any(
            isinstance(e, ObjectHead) and e.key.endswith(DELTA_SUFFIX)
            for page in self.store.iter_listing(bucket, listing_prefix, "/")
            for e in page
        )

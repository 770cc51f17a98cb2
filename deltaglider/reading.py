"""Reading: where a logical key is stored, and its verified bytes back.

Owns: the read decision between a key's two forms (FORMAT "How a read decides"), downloading
a direct or plain object and reconstructing a delta against its reference (the delta's GET
alongside the reference's), SHA-256 verification of everything read, reading the one form a
listing just showed without HEADs, and `verify`. Must not write to the bucket (rehydration
copies are `maintenance`'s), call boto3 or start subprocesses (`xdelta` does).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from deltaglider import chains, xdelta
from deltaglider.errors import CodecError, IntegrityError, NotFoundError, UsageError
from deltaglider.files import CHUNK_SIZE, Digest, HashingWriter, Progress, atomic_output
from deltaglider.log import get_logger, step
from deltaglider.metadata import (
    DeltaMeta,
    ObjectKind,
    classify,
    delta_key,
    delta_reference,
    lookup,
    parse_time,
    recorded_size,
    user_metadata,
)
from deltaglider.models import DownloadResult, ObjectHead, VerifyResult
from deltaglider.parts import EngineParts
from deltaglider.urls import base_name

log = get_logger(__name__)


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


def reference_of(head: ObjectHead) -> str:
    """The reference a delta (as HEADed) names; its folder's `reference.bin` when it names
    none (what the old tool would assume)."""
    return delta_reference(head.metadata, head.key)


def heads(parts: EngineParts, bucket: str, key: str) -> list[Future[ObjectHead | None]]:
    """The HEADs of `key` and `key.delta`, sent together."""
    return [parts.requests.submit(parts.store.head, bucket, k) for k in (key, delta_key(key))]


def find(parts: EngineParts, bucket: str, key: str) -> Located | None:
    """FORMAT "How a read decides": `key` and `key.delta`, or None when neither exists.

    Both are looked at: when two writers left both forms (each deletes the other only if
    it is older than its own), the newer wins and `key` wins a tie, so every reader
    agrees on one of the writes."""
    return chosen_form(key, heads(parts, bucket, key))


def chosen_form(key: str, sent: list[Future[ObjectHead | None]]) -> Located | None:
    """`find`'s choice from the HEADs of `key` and `key.delta` (in that order)."""
    found = [
        Located(stored_key, head, classify(stored_key, head.metadata))
        for stored_key, future in zip((key, delta_key(key)), sent, strict=True)
        if (head := future.result()) is not None
    ]
    if not found:
        return None
    return max(found, key=lambda f: newest_first_key(f, key, found))


def locate(parts: EngineParts, bucket: str, key: str) -> Located:
    """As `find`, but NotFoundError (naming a missing bucket as such) when neither exists
    and UsageError when `key` names a folder."""
    if not base_name(key):
        raise UsageError(f"s3://{bucket}/{key} names a folder, not an object")
    found = find(parts, bucket, key)
    if found is not None:
        return found
    if not parts.store.bucket_exists(bucket):
        raise NotFoundError(f"s3://{bucket}: bucket does not exist", "NoSuchBucket")
    raise NotFoundError(f"s3://{bucket}/{key}: no such object")


READ_ATTEMPTS = 3


def read_by_rule(
    parts: EngineParts,
    bucket: str,
    key: str,
    out: BinaryIO | None,
    progress: Progress | None = None,
    *,
    fresh: bool = False,
) -> tuple[Located, Digest]:
    """Locate `key` by the rule and reconstruct it into `out`. The form a HEAD chose may be
    gone by its GET (a writer replaced `k` with `k.delta`, or the reverse, as `compact` and
    uploads do): then the key is looked up again, so a reader gets one of the writes, never
    a NoSuchKey for a key that exists."""
    for attempt in range(READ_ATTEMPTS):
        located = locate(parts, bucket, key)
        try:
            return located, reconstruct(parts, bucket, located, out, progress, fresh=fresh)
        except NotFoundError as error:
            if error.code == "NoSuchBucket" or attempt + 1 == READ_ATTEMPTS:
                raise
            if find(parts, bucket, key) == located:
                raise  # still what it was: its reference is the one gone
            log.info("read_again", bucket=bucket, key=key, gone=located.stored_key)
            if out is not None:
                out.seek(0)
                out.truncate()
    raise AssertionError("unreachable")


def download(
    parts: EngineParts,
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
                read = _read_listed(parts, bucket, key, stored_key, out, progress)
            except NotFoundError as error:
                if error.code == "NoSuchBucket":
                    raise
            if read is None:  # gone or changed since the listing: read it by the rule
                out.seek(0)
                out.truncate()
        if read is None:
            read = read_by_rule(parts, bucket, key, out, progress)
        located, digest = read
    parts.metrics.timing("get.duration", time.monotonic() - started)
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


def verify(parts: EngineParts, bucket: str, key: str) -> VerifyResult:
    """Reconstruct a logical key without writing it anywhere and check its SHA-256.

    A mismatch raises IntegrityError, like a download does. References are read from the
    bucket, never the local cache: what is checked is what is stored."""
    started = time.monotonic()
    located, digest = read_by_rule(parts, bucket, key, None, fresh=True)
    parts.metrics.timing("verify.duration", time.monotonic() - started)
    return VerifyResult(
        bucket,
        key,
        located.kind.value,
        located.sha256 or digest.sha256,
        digest.sha256,
        digest.size,
    )


def reconstruct(
    parts: EngineParts,
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
        parts.store.download(bucket, located.stored_key, writer)
        return _checked_whole(where, located, writer, out)

    meta = DeltaMeta.from_dict(located.head.metadata, located.stored_key)
    with parts.work_directory() as scratch:
        delta_path = fetched_delta or Path(scratch) / "in.delta"
        pending: Future[None] | None = None
        if fetched_delta is None and meta.file_sha256 != meta.ref_sha256:
            # the delta's GET goes alongside the reference's (or its cache check)
            pending = parts.requests.submit(
                _download_to, parts, bucket, located.stored_key, delta_path
            )
        try:
            with chains.fetch(
                parts, bucket, meta.ref_key, meta.ref_sha256, linked=meta.ref_linked, fresh=fresh
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
                with step(log, "decoded_and_checked", key=located.stored_key, ref_key=meta.ref_key):
                    return _decode_checked(ref_path, delta_path, meta, out, where, progress)
        finally:
            if pending is not None:
                wait([pending])  # never leave a GET writing into a removed directory


def _download_to(parts: EngineParts, bucket: str, key: str, path: Path) -> None:
    with path.open("wb") as handle:
        parts.store.download(bucket, key, handle)


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
    parts: EngineParts,
    bucket: str,
    key: str,
    stored_key: str,
    out: BinaryIO,
    progress: Progress | None,
) -> tuple[Located, Digest] | None:
    """Read a logical key whose one stored form a listing just showed: its GET says what
    a HEAD would, so no HEAD is made. None when the object is not what the name says
    (read it by the rule instead); NotFoundError when it is gone."""
    where = f"s3://{bucket}/{stored_key}"
    if stored_key == key:
        writer = HashingWriter(out, progress=progress)
        head = parts.store.download(bucket, stored_key, writer)
        located = Located(stored_key, head, classify(stored_key, head.metadata))
        if located.kind is ObjectKind.DELTA:
            return None
        return located, _checked_whole(where, located, writer, out)
    with parts.work_directory() as scratch:
        delta_path = Path(scratch) / "listed.delta"
        with delta_path.open("wb") as handle:
            head = parts.store.download(bucket, stored_key, handle)
        located = Located(stored_key, head, classify(stored_key, head.metadata))
        if located.kind is not ObjectKind.DELTA:
            return None
        return located, reconstruct(parts, bucket, located, out, progress, delta_path)


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
                ref_path,
                delta_path,
                out,
                tag=meta.codec,
                legacy=legacy,
                progress=progress,
                limit=meta.file_size,
            )
        except CodecError as error:
            failure = str(error)
            continue
        if digest.sha256 == meta.file_sha256 and digest.size == meta.file_size:
            return digest
        failure = "reconstructed bytes do not match the recorded SHA-256"
        if digest.sha256 == meta.file_sha256:
            failure = f"reconstructed {digest.size} bytes, not its recorded {meta.file_size}"
    if out is not None:
        out.seek(0)
        out.truncate()
    if meta.codec is None and failure.startswith("reconstructed"):
        raise IntegrityError(
            f"{where}: {failure}; this delta was stored undecodable by an older deltaglider "
            "(made without xdelta3 -D from a compressed file) or has been corrupted"
        )
    raise IntegrityError(f"{where}: {failure}")

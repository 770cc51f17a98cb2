"""Local file handling: streaming SHA-256 and atomic, verified writes into a destination.

Owns: reading files in bounded chunks and the temp-file-then-rename protocol that guarantees a
destination only ever holds a complete, checked file. Must not touch S3 or run subprocesses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_SIZE = 1024 * 1024


class Sink(Protocol):
    """Anything bytes can be written to: a file, a HashingWriter, a socket wrapper."""

    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class Digest:
    """SHA-256 and MD5 (hex) and length of a byte stream. MD5 is what S3 reports as a single
    upload's ETag, so the client can give boto3-compatible ETags; SHA-256 is what we trust."""

    sha256: str
    size: int
    md5: str = ""


def temp_root() -> Path:
    """The temporary directory, chosen as `tempfile` would (TMPDIR, TEMP, TMP, /tmp, …) but
    without `tempfile.gettempdir()`'s probe file: a process killed while that probe exists
    leaves a stray file behind that nothing can attribute to it."""
    if tempfile.tempdir:  # set by the program (or a test), as tempfile itself honours it
        return Path(tempfile.tempdir)
    names = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    names += ["/tmp", "/var/tmp", "/usr/tmp"]  # noqa: S108 - the same list as tempfile's
    for candidate in [*(Path(n) for n in names if n), Path.cwd()]:
        if candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise OSError("no writable temporary directory (set TMPDIR)")


Progress = Callable[[int], None]  # told each number of file bytes done, summing to the size


def digest_file(path: Path, progress: Progress | None = None) -> Digest:
    """Hash a file in bounded memory."""
    writer = HashingWriter(None, md5=True, progress=progress)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            writer.write(chunk)
    return writer.digest


class HashingWriter:
    """Writes through to a file object while hashing what passes: SHA-256 always, MD5 only
    when asked (an upload's ETag; checks of reconstructed bytes need only SHA-256)."""

    def __init__(
        self, target: Sink | None, *, md5: bool = False, progress: Progress | None = None
    ) -> None:
        self._target = target
        self._hasher = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._progress = progress
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self.size += len(data)
        if self._target is not None:
            self._target.write(data)
        if self._progress is not None:
            self._progress(len(data))
        return len(data)

    @property
    def digest(self) -> Digest:
        md5 = self._md5.hexdigest() if self._md5 is not None else ""
        return Digest(self._hasher.hexdigest(), self.size, md5)


PARTIAL_SUFFIX = ".dgtmp"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: setting it to read it is not thread-safe


def is_partial_download(name: str) -> bool:
    """Whether a file name is one of `atomic_output`'s temp files (`.NAME.*.dgtmp`): a
    download a killed process left half written, never to be uploaded as a file."""
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX)


@contextlib.contextmanager
def atomic_output(destination: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield a temp file beside `destination`; rename it into place only if the block returns.

    If the block raises (a failed check, a full disk, an interrupt) the temp file is removed and
    `destination` is left as it was.
    """
    directory = destination.parent
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{destination.name[:64]}.", suffix=PARTIAL_SUFFIX, dir=directory
    )
    tmp_path = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp_path
            handle.flush()
            os.fsync(handle.fileno())
        tmp_path.chmod(0o666 & ~_UMASK)  # the mode any new file gets, as aws gives it
        tmp_path.replace(destination)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise

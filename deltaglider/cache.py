"""The per-process reference cache, addressed by the reference's SHA-256.

Owns: keeping references fetched once per process (encrypted and authenticated at rest in a
0700 directory removed at exit, or in memory under an LRU byte bound), re-verifying every entry
by SHA-256 before use, and dropping corrupt or tampered entries. Must not talk to S3: callers
pass a `fetch` function that writes the reference's bytes.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import hashlib
import os
import shutil
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deltaglider.errors import CacheError, ReferenceMismatch
from deltaglider.files import CHUNK_SIZE, HashingWriter, Sink, temp_root
from deltaglider.log import get_logger

log = get_logger(__name__)

Fetch = Callable[[Sink], None]

_MAGIC = b"DGC1"
_DIR_PREFIX = "deltaglider-cache-"
_TAG = 16


def parse_key(text: str) -> bytes:
    """DG_CACHE_ENCRYPTION_KEY: 32 bytes, base64 (URL-safe or standard; a Fernet key works)."""
    try:
        padded = text.strip() + "=" * (-len(text.strip()) % 4)
        key = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise CacheError("DG_CACHE_ENCRYPTION_KEY is not valid base64") from None
    if len(key) != 32:
        raise CacheError(
            f"DG_CACHE_ENCRYPTION_KEY must decode to 32 bytes, not {len(key)} "
            '(make one with: python -c "import os,base64;print(base64.urlsafe_b64encode('
            'os.urandom(32)).decode())")'
        )
    return key


class ReferenceCache:
    """Interface: `reference(sha, fetch)` yields a plaintext path valid inside the block."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def reference(self, sha256: str, fetch: Fetch, label: str) -> Iterator[Path]:
        """A plaintext copy of the reference with this SHA-256, fetched at most once per process
        (unless the cached copy fails its check). Raises IntegrityError naming `label` when
        freshly fetched bytes do not match `sha256`."""
        fd, name = tempfile.mkstemp(prefix="ref.", dir=self._scratch)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                restored = self._restore(sha256, out)
            if not restored:
                with path.open("wb") as out:
                    writer = HashingWriter(out)
                    fetch(writer)
                if writer.digest.sha256 != sha256:
                    raise ReferenceMismatch(
                        f"reference {label} has SHA-256 {writer.digest.sha256[:12]}…, but its "
                        f"deltas were made against {sha256[:12]}… (replaced or corrupted)"
                    )
                self.store(sha256, path)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def work_directory(self) -> tempfile.TemporaryDirectory[str]:
        """A private temporary directory inside this process's cache directory, so whatever a
        killed process leaves behind is removed with it by the next process."""
        return tempfile.TemporaryDirectory(prefix="work-", dir=self._scratch)

    def store(self, sha256: str, source: Path) -> None:
        """Keep a verified local copy of a reference (e.g. one this process just uploaded)."""
        raise NotImplementedError

    def _restore(self, sha256: str, out: BinaryIO) -> bool:
        """Write the cached bytes to `out` if present and intact; drop a bad entry."""
        raise NotImplementedError

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


class FileCache(ReferenceCache):
    """Encrypted, authenticated files in a private 0700 directory, removed at exit.

    Each entry is AES-256-GCM in 1 MiB segments: a random 8-byte nonce prefix per file, a
    segment counter in each nonce, and the SHA-256 plus a last-segment flag as associated data,
    so truncation, reordering and substitution are all detected.
    """

    def __init__(self, key: bytes | None = None) -> None:
        remove_stale_directories()
        root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=temp_root()))
        root.chmod(0o700)
        super().__init__(root)
        self.directory = root
        self._aead = AESGCM(key if key is not None else AESGCM.generate_key(bit_length=256))
        atexit.register(self.close)

    def entry_path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.enc"

    def store(self, sha256: str, source: Path) -> None:
        fd, name = tempfile.mkstemp(prefix="entry.", dir=self.directory)
        prefix = os.urandom(8)
        try:
            with source.open("rb") as src, os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + prefix)
                chunk = src.read(CHUNK_SIZE)
                counter = 0
                while True:
                    following = src.read(CHUNK_SIZE) if chunk else b""
                    last = not following
                    out.write(self._seal(prefix, counter, sha256, last, chunk))
                    if last:
                        break
                    chunk, counter = following, counter + 1
            Path(name).replace(self.entry_path(sha256))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _seal(self, prefix: bytes, counter: int, sha256: str, last: bool, data: bytes) -> bytes:
        nonce = prefix + struct.pack(">I", counter)
        return self._aead.encrypt(nonce, data, _aad(sha256, last))

    def _restore(self, sha256: str, out: BinaryIO) -> bool:
        entry = self.entry_path(sha256)
        if not entry.exists():
            return False
        writer = HashingWriter(out)
        try:
            with entry.open("rb") as src:
                header = src.read(len(_MAGIC) + 8)
                if header[: len(_MAGIC)] != _MAGIC:
                    raise InvalidTag
                prefix = header[len(_MAGIC) :]
                counter = 0
                sealed = src.read(CHUNK_SIZE + _TAG)
                while True:
                    following = src.read(CHUNK_SIZE + _TAG)
                    last = not following
                    nonce = prefix + struct.pack(">I", counter)
                    writer.write(self._aead.decrypt(nonce, sealed, _aad(sha256, last)))
                    if last:
                        break
                    sealed, counter = following, counter + 1
        except (InvalidTag, OSError):
            log.warning("cache_entry_dropped", sha256=sha256, reason="failed authentication")
            return self._drop(entry, out)
        if writer.digest.sha256 != sha256:
            log.warning("cache_entry_dropped", sha256=sha256, reason="sha256 mismatch")
            return self._drop(entry, out)
        return True

    @staticmethod
    def _drop(entry: Path, out: BinaryIO) -> bool:
        entry.unlink(missing_ok=True)
        out.seek(0)
        out.truncate()
        return False


class MemoryCache(ReferenceCache):
    """References held in memory, least recently used dropped beyond `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        remove_stale_directories()
        super().__init__(
            Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=temp_root()))
        )
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        atexit.register(self.close)

    def store(self, sha256: str, source: Path) -> None:
        if source.stat().st_size > self.max_bytes:
            return
        data = source.read_bytes()
        with self._lock:
            self._entries[sha256] = data
            self._entries.move_to_end(sha256)
            while sum(len(v) for v in self._entries.values()) > self.max_bytes:
                self._entries.popitem(last=False)

    def _restore(self, sha256: str, out: BinaryIO) -> bool:
        with self._lock:
            data = self._entries.get(sha256)
            if data is None:
                return False
            self._entries.move_to_end(sha256)
        if hashlib.sha256(data).hexdigest() != sha256:
            log.warning("cache_entry_dropped", sha256=sha256, reason="sha256 mismatch")
            with self._lock:
                self._entries.pop(sha256, None)
            return False
        out.write(data)
        return True


def remove_stale_directories() -> None:
    """Remove cache directories of this user's processes that no longer exist (a SIGKILL
    skips the removal at exit); the directory name carries the owner's PID."""
    for directory in temp_root().glob(f"{_DIR_PREFIX}*-*"):
        pid_text = directory.name[len(_DIR_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            if directory.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except OSError:
            continue


def _aad(sha256: str, last: bool) -> bytes:
    return sha256.encode("ascii") + (b"\x01" if last else b"\x00")


def open_cache(backend: str, memory_bytes: int, encryption_key: str | None) -> ReferenceCache:
    """The cache the settings ask for."""
    if backend == "memory":
        return MemoryCache(memory_bytes)
    return FileCache(parse_key(encryption_key) if encryption_key else None)

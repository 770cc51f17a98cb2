"""The reference cache, addressed by the reference's SHA-256.

Owns: keeping fetched references for later use: across processes in a persistent 0700
directory under an LRU byte bound (the default; plaintext, or encrypted with the user's
DG_CACHE_ENCRYPTION_KEY), or for one process only (encrypted with a random key in a 0700
directory removed at exit, or in memory under an LRU byte bound); re-verifying every entry by
SHA-256 before each use, dropping corrupt, stale or tampered entries, and each process's
scratch directory. Must not talk to S3: callers pass a `fetch` function that writes the
reference's bytes.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import hashlib
import os
import shutil
import stat
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from deltaglider.config import Settings, cache_directory, cache_key_file
from deltaglider.errors import CacheError, ReferenceMismatch
from deltaglider.files import CHUNK_SIZE, HashingWriter, Sink, digest_file, temp_root
from deltaglider.log import get_logger

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = get_logger(__name__)

Fetch = Callable[[Sink], None]

_MAGIC = b"DGC1"
_DIR_PREFIX = "deltaglider-cache-"
_TAG = 16


def _base64(text: str) -> bytes:
    try:
        padded = text.strip() + "=" * (-len(text.strip()) % 4)
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise CacheError("DG_CACHE_ENCRYPTION_KEY is not valid base64") from None


def parse_key(text: str) -> bytes:
    """DG_CACHE_ENCRYPTION_KEY: 32 bytes, base64 (URL-safe or standard; a Fernet key works,
    and so does deltaglider 6.x's documented recipe, the base64 of a Fernet key)."""
    key = _base64(text)
    if len(key) == 44:  # base64 of a Fernet key (44 characters): decode once more
        with contextlib.suppress(CacheError, UnicodeError):
            key = _base64(key.decode("ascii"))
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
    def reference(
        self, sha256: str, fetch: Fetch, label: str, *, fresh: bool = False
    ) -> Iterator[Path]:
        """A plaintext copy of the reference with this SHA-256, fetched only when no intact
        cached copy exists (always with `fresh`: what the bucket holds is what is checked).
        Raises ReferenceMismatch naming `label` when fetched bytes do not match `sha256`."""
        path = None if fresh else self._lease(sha256)
        try:
            if path is None:
                path = self._new_lease()
                with path.open("wb") as out:
                    writer = HashingWriter(out)
                    fetch(writer)
                if writer.digest.sha256 != sha256:
                    raise ReferenceMismatch(
                        f"reference {label} has SHA-256 {writer.digest.sha256[:12]}…, but its "
                        f"deltas were made against {sha256[:12]}… (replaced or corrupted)"
                    )
                self.keep(sha256, path)
            yield path
        finally:
            if path is not None:
                path.unlink(missing_ok=True)

    def _new_lease(self) -> Path:
        """A new empty file that only this call uses (removed when the block ends)."""
        fd, name = tempfile.mkstemp(prefix="ref.", dir=self._scratch)
        os.close(fd)
        return Path(name)

    def _lease(self, sha256: str) -> Path | None:
        """A new file holding the cached bytes, checked against `sha256`; None when there is
        no intact entry (a bad one is dropped)."""
        path = self._new_lease()
        try:
            with path.open("r+b") as out:
                if self._restore(sha256, out):
                    return path
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        path.unlink(missing_ok=True)
        return None

    def work_directory(self) -> tempfile.TemporaryDirectory[str]:
        """A private temporary directory inside this process's scratch directory, so whatever
        a killed process leaves behind is removed with it by the next process."""
        return tempfile.TemporaryDirectory(prefix="work-", dir=self._scratch)

    def store(self, sha256: str, source: Path) -> None:
        """Keep a verified local copy of a reference (e.g. one this process just uploaded)."""
        raise NotImplementedError

    def keep(self, sha256: str, source: Path) -> None:
        """`store`, where a failure (a full cache disk, a read-only folder) is a warning
        naming the path, never a failed transfer: the cache is only a speed-up."""
        try:
            self.store(sha256, source)
        except OSError as error:
            log.warning(
                "cache_write_failed",
                path=str(error.filename or source),
                error=error.strerror or str(error),
            )

    def _restore(self, sha256: str, out: BinaryIO) -> bool:
        """Write the cached bytes to `out` if present and intact; drop a bad entry."""
        raise NotImplementedError

    def clear(self) -> int:
        """Drop every cached reference (copies in use stay until their block ends); how many
        were dropped."""
        raise NotImplementedError

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


def _scratch_directory() -> Path:
    """This process's private scratch directory (0700, named with its PID so that the next
    process removes it if this one is killed)."""
    remove_stale_directories()
    root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=temp_root()))
    root.chmod(0o700)
    return root


class Sealer:
    """AES-256-GCM in 1 MiB segments: a random 8-byte nonce prefix per file, a segment counter
    in each nonce, and the SHA-256 plus a last-segment flag as associated data, so truncation,
    reordering and substitution are all detected."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead: AESGCM = AESGCM(key)

    @staticmethod
    def random_key() -> bytes:
        return os.urandom(32)

    def seal(self, sha256: str, source: Path, out: BinaryIO) -> None:
        prefix = os.urandom(8)
        with source.open("rb") as src:
            out.write(_MAGIC + prefix)
            chunk = src.read(CHUNK_SIZE)
            counter = 0
            while True:
                following = src.read(CHUNK_SIZE) if chunk else b""
                last = not following
                nonce = prefix + struct.pack(">I", counter)
                out.write(self._aead.encrypt(nonce, chunk, _aad(sha256, last)))
                if last:
                    break
                chunk, counter = following, counter + 1

    def unseal(self, sha256: str, entry: Path, out: BinaryIO) -> bool:
        """Decrypt `entry` into `out`; False (with `out` emptied) when it fails its
        authentication or its SHA-256."""
        from cryptography.exceptions import InvalidTag

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
            return _emptied(out)
        if writer.digest.sha256 != sha256:
            log.warning("cache_entry_dropped", sha256=sha256, reason="sha256 mismatch")
            return _emptied(out)
        return True


def _emptied(out: BinaryIO) -> bool:
    out.seek(0)
    out.truncate()
    return False


class FileCache(ReferenceCache):
    """One process's cache: encrypted, authenticated files (`Sealer`, a random key unless one
    is given) in its private 0700 scratch directory, removed at exit."""

    def __init__(self, key: bytes | None = None) -> None:
        root = _scratch_directory()
        super().__init__(root)
        self.directory = root
        self._sealer = Sealer(key if key is not None else Sealer.random_key())
        atexit.register(self.close)

    def entry_path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.enc"

    def store(self, sha256: str, source: Path) -> None:
        fd, name = tempfile.mkstemp(prefix="entry.", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                self._sealer.seal(sha256, source, out)
            Path(name).replace(self.entry_path(sha256))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _restore(self, sha256: str, out: BinaryIO) -> bool:
        entry = self.entry_path(sha256)
        if not entry.exists():
            return False
        if self._sealer.unseal(sha256, entry, out):
            return True
        entry.unlink(missing_ok=True)
        return False

    def clear(self) -> int:
        return _remove_entries(self.directory.glob("*.enc"))


class PersistentCache(ReferenceCache):
    """References kept between processes (successive commands of a CI job reuse them).

    Layout of `directory` (0700, refused when another user owns it): `refs/<sha256>` (or
    `refs/<sha256>.enc`, sealed with the user's key, when one is given), `tmp/` for entries
    being written (a rename makes each one appear whole), `leases/<pid>-…` for the copies in
    use. An entry is hard-linked to a lease and the lease hashed before every use, so a stale,
    corrupt or tampered entry is dropped and fetched again, and an eviction by another process
    never pulls bytes from under a running encode. Entries are touched on use and the least
    recently used removed beyond `max_bytes`."""

    def __init__(self, directory: Path, max_bytes: int, key: bytes | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._sealer = Sealer(key) if key is not None else None
        for folder in (directory, directory / "refs", directory / "tmp", directory / "leases"):
            _private_directory(folder)
        _remove_dead_leases(directory / "leases")
        super().__init__(_scratch_directory())
        atexit.register(self.close)

    def entry_path(self, sha256: str) -> Path:
        suffix = ".enc" if self._sealer is not None else ""
        return self.directory / "refs" / f"{sha256}{suffix}"

    def _new_lease(self) -> Path:
        if self._sealer is not None:  # decrypted bytes only ever in this process's scratch
            return super()._new_lease()
        fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", dir=self.directory / "leases")
        os.close(fd)
        return Path(name)

    def _lease(self, sha256: str) -> Path | None:
        entry = self.entry_path(sha256)
        if self._sealer is not None:
            return super()._lease(sha256)
        lease = self.directory / "leases" / f"{os.getpid()}-{os.urandom(8).hex()}"
        try:
            os.link(entry, lease)
        except FileNotFoundError:
            return None
        except OSError:  # no hard links on this filesystem: a copy is as good
            try:
                shutil.copyfile(entry, lease)
            except FileNotFoundError:
                lease.unlink(missing_ok=True)
                return None
        if digest_file(lease).sha256 != sha256:
            log.warning("cache_entry_dropped", sha256=sha256, reason="sha256 mismatch")
            lease.unlink(missing_ok=True)
            entry.unlink(missing_ok=True)
            return None
        _touch(entry)
        return lease

    def _restore(self, sha256: str, out: BinaryIO) -> bool:
        assert self._sealer is not None  # plaintext entries are leased, never copied out
        entry = self.entry_path(sha256)
        if not entry.exists():
            return False
        if self._sealer.unseal(sha256, entry, out):
            _touch(entry)
            return True
        entry.unlink(missing_ok=True)
        return False

    def store(self, sha256: str, source: Path) -> None:
        if source.stat().st_size > self.max_bytes:
            return
        written = self.directory / "tmp" / f"{os.getpid()}-{os.urandom(8).hex()}"
        try:
            if self._sealer is not None:
                with written.open("xb") as out:
                    self._sealer.seal(sha256, source, out)
            elif source.parent == self.directory / "leases":
                os.link(source, written)  # our own fetched copy: no second copy
            else:  # a user's file is copied, never linked: its inode stays theirs alone
                shutil.copyfile(source, written)
            written.chmod(0o600)
            written.replace(self.entry_path(sha256))
        except BaseException:
            written.unlink(missing_ok=True)
            raise
        self._evict()

    def clear(self) -> int:
        return _remove_entries((self.directory / "refs").iterdir())

    def _evict(self) -> None:
        """Remove the least recently used entries until the rest fit in `max_bytes`."""
        entries = []
        for entry in (self.directory / "refs").iterdir():
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat()
                entries.append((info.st_mtime_ns, info.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            entry.unlink(missing_ok=True)
            total -= size
            log.debug("cache_entry_evicted", entry=entry.name)


def _remove_entries(entries: Iterator[Path]) -> int:
    removed = 0
    for entry in list(entries):
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            removed += 1
    return removed


def _touch(entry: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(entry)


def _private_directory(folder: Path) -> None:
    """Create `folder` 0700, or take an existing one that is ours and private. Refused: a
    symlink (another user could point it anywhere), another user's folder, and one others may
    write to that already holds something (an empty one is made private)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        raise CacheError(f"cache directory {folder}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise CacheError(f"cache directory {folder} is a symlink or not a directory")
    if info.st_uid != os.getuid():
        raise CacheError(
            f"cache directory {folder} belongs to another user; set DG_CACHE_DIR to one of yours"
        )
    if stat.S_IMODE(info.st_mode) & 0o022 and any(folder.iterdir()):
        raise CacheError(
            f"cache directory {folder} is writable by others and not empty; remove it or set "
            "DG_CACHE_DIR to a private one"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        folder.chmod(0o700)


def _remove_dead_leases(leases: Path) -> None:
    """Leases of processes that no longer exist (a SIGKILL skips the removal)."""
    for lease in leases.iterdir():
        pid_text = lease.name.split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            lease.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class MemoryCache(ReferenceCache):
    """References held in memory, least recently used dropped beyond `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(_scratch_directory())
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

    def clear(self) -> int:
        with self._lock:
            removed = len(self._entries)
            self._entries.clear()
        return removed

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


def open_cache(settings: Settings) -> ReferenceCache:
    """The cache the settings ask for (README "Reference cache"). The persistent cache is
    always encrypted: with DG_CACHE_ENCRYPTION_KEY, else with the user's own key
    (`user_key`), so no reference lies in plaintext at rest."""
    key = parse_key(settings.cache_encryption_key) if settings.cache_encryption_key else None
    if settings.cache_backend == "memory":
        return MemoryCache(settings.cache_memory_bytes)
    if settings.cache_backend == "filesystem":
        return FileCache(key)
    try:
        sealed_with = key or user_key(cache_key_file())
        return PersistentCache(cache_directory(settings), settings.cache_size_bytes, sealed_with)
    except CacheError as error:  # a cache is a speed-up: never a reason to fail a transfer
        log.warning("persistent_cache_unavailable", reason=str(error), using="filesystem")
        return FileCache(key)


def user_key(path: Path) -> bytes:
    """This user's key for the persistent cache, made on first use: 32 random bytes in a
    0600 file of theirs (CacheError for one that is another user's or readable by others)."""
    if not path.exists():
        _private_directory(path.parent)
        fd, name = tempfile.mkstemp(prefix=".key.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(base64.urlsafe_b64encode(Sealer.random_key()).decode() + "\n")
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(name, path)
        finally:
            Path(name).unlink()
    try:
        info = path.stat()
        text = path.read_text()
    except OSError as error:
        raise CacheError(f"cache key {path}: {error.strerror}") from None
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise CacheError(f"cache key {path} must be yours and private (chmod 600)")
    try:
        return parse_key(text)
    except CacheError as error:
        raise CacheError(f"cache key {path}: {error}") from None

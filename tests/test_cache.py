"""The reference cache: content-addressed, encrypted and authenticated at rest, self-healing."""

import base64
import os
import stat
from pathlib import Path

import pytest

from deltaglider.cache import FileCache, MemoryCache, PersistentCache, open_cache, parse_key
from deltaglider.config import Settings, cache_directory
from deltaglider.errors import CacheError, IntegrityError
from deltaglider.files import Sink, digest_file


def make_reference(tmp_path: Path, size: int) -> tuple[Path, str]:
    path = tmp_path / "ref.bin"
    path.write_bytes(os.urandom(size))
    return path, digest_file(path).sha256


class CountingFetch:
    def __init__(self, path: Path) -> None:
        self.path, self.calls = path, 0

    def __call__(self, out: Sink) -> None:
        self.calls += 1
        out.write(self.path.read_bytes())


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 3 * 1024 * 1024 + 17])
def test_file_cache_fetches_once_and_restores_exact_bytes(tmp_path: Path, size: int) -> None:
    ref, sha = make_reference(tmp_path, size)
    cache, fetch = FileCache(), CountingFetch(ref)
    for _ in range(3):
        with cache.reference(sha, fetch, "s3://b/reference.bin") as path:
            assert path.read_bytes() == ref.read_bytes()
    assert fetch.calls == 1
    cache.close()


def test_cache_directory_is_private_and_entries_are_not_plaintext(tmp_path: Path) -> None:
    ref, sha = make_reference(tmp_path, 4096)
    cache = FileCache()
    cache.store(sha, ref)
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert ref.read_bytes()[:64] not in cache.entry_path(sha).read_bytes()
    cache.close()
    assert not cache.directory.exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap-file"])
def test_tampered_entry_is_dropped_and_refetched(tmp_path: Path, damage: str) -> None:
    ref, sha = make_reference(tmp_path, 2 * 1024 * 1024 + 5)
    cache, fetch = FileCache(), CountingFetch(ref)
    cache.store(sha, ref)
    entry = cache.entry_path(sha)
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 1
    elif damage == "truncate":
        data = data[: 12 + 1024 * 1024 + 16]  # header + one whole segment
    else:
        other, other_sha = make_reference(tmp_path / "..", 100)
        cache.store(other_sha, other)
        data = bytearray(cache.entry_path(other_sha).read_bytes())
    entry.write_bytes(bytes(data))
    with cache.reference(sha, fetch, "s3://b/reference.bin") as path:
        assert digest_file(path).sha256 == sha
    assert fetch.calls == 1
    cache.close()


def test_fetched_bytes_that_do_not_match_are_refused(tmp_path: Path) -> None:
    ref, _ = make_reference(tmp_path, 100)
    cache = FileCache()
    with (
        pytest.raises(IntegrityError, match="replaced or corrupted"),
        cache.reference("0" * 64, CountingFetch(ref), "s3://b/reference.bin"),
    ):
        pass
    assert not list(cache.directory.iterdir())
    cache.close()


def test_memory_cache_is_lru_bounded(tmp_path: Path) -> None:
    cache = MemoryCache(max_bytes=250)
    refs = []
    for index in range(3):
        folder = tmp_path / str(index)
        folder.mkdir()
        refs.append(make_reference(folder, 100))
    fetches = [CountingFetch(path) for path, _ in refs]
    for (_, sha), fetch in zip(refs, fetches, strict=True):
        with cache.reference(sha, fetch, "r"):
            pass
    with cache.reference(refs[0][1], fetches[0], "r"):  # evicted by the third
        pass
    with cache.reference(refs[2][1], fetches[2], "r"):  # still held
        pass
    assert [f.calls for f in fetches] == [2, 1, 1]
    cache.close()


def test_encryption_key_from_environment() -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    assert len(parse_key(key)) == 32
    assert isinstance(
        open_cache(Settings(cache_backend="filesystem", cache_encryption_key=key)), FileCache
    )
    for garbage in ["not base64 !!", base64.b64encode(b"short").decode()]:
        with pytest.raises(CacheError, match="DG_CACHE_ENCRYPTION_KEY"):
            parse_key(garbage)


def test_directories_of_killed_processes_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILLed process cannot remove its cache directory at exit; the next one does."""
    import subprocess
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    finished = subprocess.Popen(["true"])
    finished.wait()  # its PID no longer runs
    stale = tmp_path / f"deltaglider-cache-{finished.pid}-abc"
    stale.mkdir()
    (stale / "entry.enc").write_bytes(b"x")
    running = tmp_path / "deltaglider-cache-1-def"  # PID 1 always runs
    running.mkdir()
    cache = FileCache()
    assert not stale.exists()
    assert running.exists()
    assert cache.directory.parent == tmp_path
    cache.close()


# ------------------------------------------------------------------ the persistent cache


def persistent(
    tmp_path: Path, max_bytes: int = 1 << 30, key: bytes | None = None
) -> PersistentCache:
    return PersistentCache(tmp_path / "cache", max_bytes, key)


@pytest.mark.parametrize("encrypted", [False, True])
def test_persistent_cache_serves_a_later_process_without_a_fetch(
    tmp_path: Path, encrypted: bool
) -> None:
    """A new PersistentCache on the same directory (as the next command of a CI job opens)
    restores the exact bytes without fetching; the directories are 0700."""
    key = os.urandom(32) if encrypted else None
    ref, sha = make_reference(tmp_path, 3 * 1024 * 1024 + 17)
    first, fetch = persistent(tmp_path, key=key), CountingFetch(ref)
    with first.reference(sha, fetch, "s3://b/r") as path:
        assert path.read_bytes() == ref.read_bytes()
    first.close()
    second = persistent(tmp_path, key=key)
    for _ in range(2):
        with second.reference(sha, fetch, "s3://b/r") as path:
            assert path.read_bytes() == ref.read_bytes()
    assert fetch.calls == 1
    for folder in ("", "refs", "tmp", "leases"):
        assert stat.S_IMODE((tmp_path / "cache" / folder).stat().st_mode) == 0o700
    entry = second.entry_path(sha)
    assert (ref.read_bytes()[:64] in entry.read_bytes()) is not encrypted
    second.close()
    assert not list((tmp_path / "cache" / "leases").iterdir())  # every lease returned


@pytest.mark.parametrize("damage", ["flip", "truncate", "other-file"])
@pytest.mark.parametrize("encrypted", [False, True])
def test_persistent_entry_that_changed_is_dropped_and_fetched_again(
    tmp_path: Path, damage: str, encrypted: bool
) -> None:
    ref, sha = make_reference(tmp_path, 2 * 1024 * 1024 + 5)
    cache, fetch = (
        persistent(tmp_path, key=os.urandom(32) if encrypted else None),
        CountingFetch(ref),
    )
    cache.store(sha, ref)
    entry = cache.entry_path(sha)
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 1
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(os.urandom(len(data)))
    entry.unlink()  # a new inode, as a writer replacing the file would
    entry.write_bytes(bytes(data))
    with cache.reference(sha, fetch, "s3://b/r") as path:
        assert path.read_bytes() == ref.read_bytes()
    assert fetch.calls == 1
    with cache.reference(sha, fetch, "s3://b/r") as path:  # the fetched bytes were kept
        assert path.read_bytes() == ref.read_bytes()
    assert fetch.calls == 1
    cache.close()


def test_persistent_cache_evicts_least_recently_used_beyond_its_bound(tmp_path: Path) -> None:
    cache = persistent(tmp_path, max_bytes=2500)
    refs = []
    for index in range(3):
        folder = tmp_path / f"r{index}"
        folder.mkdir()
        refs.append(make_reference(folder, 1000))
    now = 1_700_000_000
    for index, (ref, sha) in enumerate(refs[:2]):
        cache.store(sha, ref)
        os.utime(cache.entry_path(sha), (now + index, now + index))
    with cache.reference(refs[0][1], CountingFetch(refs[0][0]), "s3://b/r0"):
        pass  # used: now the most recent
    cache.store(refs[2][1], refs[2][0])  # 3000 bytes > 2500: the least recent one goes
    assert cache.entry_path(refs[0][1]).exists()
    assert not cache.entry_path(refs[1][1]).exists()
    assert cache.entry_path(refs[2][1]).exists()
    big, big_sha = make_reference(tmp_path, 3000)
    cache.store(big_sha, big)  # larger than the whole bound: not kept, nothing evicted for it
    assert not cache.entry_path(big_sha).exists()
    cache.close()


def test_an_entry_in_use_survives_eviction_by_another_process(tmp_path: Path) -> None:
    ref, sha = make_reference(tmp_path, 4096)
    user, evictor = persistent(tmp_path), persistent(tmp_path, max_bytes=1)
    user.store(sha, ref)
    with user.reference(sha, CountingFetch(ref), "s3://b/r") as path:
        evictor._evict()  # another process's bound removes the entry
        assert not user.entry_path(sha).exists()
        assert path.read_bytes() == ref.read_bytes()  # the lease still holds the bytes
    user.close()
    evictor.close()


def test_concurrent_processes_fill_one_cache_with_whole_entries(tmp_path: Path) -> None:
    """Several processes fetch the same and different references into one cache at once:
    every use gets exact bytes and every entry left is whole."""
    import subprocess
    import sys

    refs = []
    for index in range(3):
        folder = tmp_path / f"r{index}"
        folder.mkdir()
        refs.append(make_reference(folder, 1024 * 1024 + index))
    script = """
import sys
from pathlib import Path
from deltaglider.cache import PersistentCache
cache = PersistentCache(Path(sys.argv[1]), 1 << 30)
for round in range(5):
    for ref, sha in zip(sys.argv[2::2], sys.argv[3::2]):
        with cache.reference(sha, lambda out, ref=ref: out.write(Path(ref).read_bytes()), ref) as p:
            assert p.read_bytes() == Path(ref).read_bytes()
cache.close()
"""
    args = [str(tmp_path / "cache")] + [str(x) for ref, sha in refs for x in (ref, sha)]
    workers = [subprocess.Popen([sys.executable, "-c", script, *args]) for _ in range(4)]
    assert [w.wait() for w in workers] == [0, 0, 0, 0]
    cache = persistent(tmp_path)
    for _, sha in refs:
        assert digest_file(cache.entry_path(sha)).sha256 == sha
    assert not list((tmp_path / "cache" / "tmp").iterdir())
    cache.close()


def test_cache_directory_from_settings_and_environment(tmp_path: Path) -> None:
    assert cache_directory(Settings(cache_dir="/x/y"), {}) == Path("/x/y")
    assert cache_directory(Settings(), {"XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/deltaglider")
    home = {"HOME": "/home/u", "XDG_CACHE_HOME": "relative"}  # XDG says: ignore a relative one
    assert cache_directory(Settings(), home) == Path("/home/u/.cache/deltaglider")
    assert (
        Settings.from_env({"DG_CACHE_DIR": "/c", "DG_CACHE_SIZE_MB": "3"}).cache_size_bytes
        == 3 << 20
    )


def test_unusable_cache_directory_falls_back_to_the_process_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    cache = open_cache(Settings(cache_dir=str(blocker / "cache")))  # under a file: cannot exist
    assert isinstance(cache, FileCache)
    cache.close()
    os.chmod(tmp_path, 0o755)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    cache = open_cache(Settings(cache_dir=str(shared)))
    assert isinstance(cache, PersistentCache)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700  # ours: made private
    cache.close()


def test_a_remembered_user_file_is_copied_never_linked_or_touched(tmp_path: Path) -> None:
    """The file a reference was made from is the user's: the cache keeps its own copy, so
    using the entry never changes the file's times (sync compares them) or shares its inode."""
    ref, sha = make_reference(tmp_path, 50_000)
    os.utime(ref, (1_600_000_000, 1_600_000_000))
    cache = persistent(tmp_path)
    cache.store(sha, ref)
    with cache.reference(sha, CountingFetch(ref), "s3://b/r") as path:
        assert path.read_bytes() == ref.read_bytes()
    assert ref.stat().st_nlink == 1
    assert ref.stat().st_mtime == 1_600_000_000
    cache.close()


def test_the_persistent_cache_is_encrypted_at_rest_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DG_CACHE_ENCRYPTION_KEY: entries are sealed with the user's own key, kept 0600
    outside the cache directory, so a shared or backed-up cache volume reveals nothing."""
    key_file = tmp_path / "config" / "cache.key"
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(key_file))
    cache = open_cache(Settings(cache_dir=str(tmp_path / "cache")))
    assert isinstance(cache, PersistentCache)
    ref = tmp_path / "ref"
    ref.write_bytes(b"reference bytes " * 512)
    sha = digest_file(ref).sha256
    cache.store(sha, ref)
    entries = list((tmp_path / "cache" / "refs").iterdir())
    assert [e.name for e in entries] == [f"{sha}.enc"]
    assert b"reference bytes" not in entries[0].read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not key_file.is_relative_to(tmp_path / "cache")
    again = open_cache(Settings(cache_dir=str(tmp_path / "cache")))  # the same key next time
    with again.reference(sha, lambda out: pytest.fail("fetched"), "ref") as path:
        assert path.read_bytes() == ref.read_bytes()


def test_a_key_file_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "cache.key"
    key_file.write_text(parse_key_text())
    key_file.chmod(0o644)
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(key_file))
    assert isinstance(open_cache(Settings(cache_dir=str(tmp_path / "cache"))), FileCache)


def parse_key_text() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_a_symlink_inside_the_cache_is_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user who can plant `refs/` as a symlink must not redirect where references
    are written: the cache is refused, the per-process one used instead."""
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(tmp_path / "key" / "cache.key"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "refs").symlink_to(elsewhere)
    assert isinstance(open_cache(Settings(cache_dir=str(cache_dir))), FileCache)
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755  # not touched


def test_a_cache_directory_others_can_write_is_fixed_when_empty_refused_when_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(tmp_path / "key" / "cache.key"))
    empty = tmp_path / "empty"
    empty.mkdir()
    empty.chmod(0o777)
    assert isinstance(open_cache(Settings(cache_dir=str(empty))), PersistentCache)
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "refs").mkdir()
    planted.chmod(0o777)
    assert isinstance(open_cache(Settings(cache_dir=str(planted))), FileCache)


def test_entries_are_0600_and_a_failed_cache_write_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(tmp_path / "key" / "cache.key"))
    cache = open_cache(Settings(cache_dir=str(tmp_path / "cache")))
    ref = tmp_path / "ref"
    ref.write_bytes(b"reference " * 100)
    sha = digest_file(ref).sha256
    cache.keep(sha, ref)
    (entry,) = (tmp_path / "cache" / "refs").iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600

    def disk_full(sha256: str, source: Path) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "cache" / "tmp" / "x"))

    monkeypatch.setattr(cache, "store", disk_full)
    other = tmp_path / "other"
    other.write_bytes(b"another reference")
    with cache.reference(
        digest_file(other).sha256, lambda out: out.write(other.read_bytes()), "r"
    ) as path:
        assert path.read_bytes() == other.read_bytes()  # the transfer goes on

"""The reference cache: content-addressed, encrypted and authenticated at rest, self-healing."""

import base64
import os
import stat
from pathlib import Path

import pytest

from deltaglider.cache import FileCache, MemoryCache, open_cache, parse_key
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
    assert isinstance(open_cache("filesystem", 0, key), FileCache)
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

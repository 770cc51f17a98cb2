"""The engine's logic on an in-memory store with the real codec: the upload decision table,
estimate taking upload's own path without writing, reads choosing between a key's two forms,
and references going only when no delta needs them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from deltaglider.config import Settings
from deltaglider.engine import (
    Artifact,
    DeltaTrial,
    Engine,
    Located,
    decide_upload,
)
from deltaglider.errors import NotFoundError, UsageError
from deltaglider.files import Digest
from deltaglider.metadata import ObjectKind
from deltaglider.models import DeltaPolicy, StoredAs, UploadOptions
from deltaglider.s3 import ObjectHead

AUTO, NEVER, ALWAYS = DeltaPolicy.AUTO, DeltaPolicy.NEVER, DeltaPolicy.ALWAYS
SHA_A, SHA_B = "a" * 64, "b" * 64


def artifact(
    key: str = "r/app.zip",
    size: int = 1000,
    sha: str = SHA_A,
    policy: DeltaPolicy = AUTO,
    metadata: dict[str, str] | None = None,
    content_type: str | None = None,
) -> Artifact:
    options = UploadOptions(policy, None, metadata, content_type)
    return Artifact(Path("unused"), Digest(sha, size), "b", key, options, dict(metadata or {}))


def stored(
    sha: str, metadata: dict[str, str] | None = None, content_type: str | None = None
) -> Located:
    meta = {"dg-file-sha256": sha, "dg-compression": "none", **(metadata or {})}
    head = ObjectHead("r/app.zip", 1000, "e", datetime.now(UTC), meta, content_type)
    return Located("r/app.zip", head, ObjectKind.DIRECT)


# (artifact, what is stored now, delta trial) -> (stored as, note); None: encode a delta first
DECISIONS = [
    (artifact(), stored(SHA_A), None, StoredAs.UNCHANGED, "identical file already stored"),
    (artifact(metadata={"k": "v"}), stored(SHA_A, {"k": "v"}), None, StoredAs.UNCHANGED, ""),
    (artifact(metadata={"k": "v2"}), stored(SHA_A, {"k": "v"}), None, None, ""),
    (artifact(metadata={}), stored(SHA_A, {"k": "v"}), None, None, ""),
    (artifact(content_type="a/b"), stored(SHA_A, content_type="a/b"), None, StoredAs.UNCHANGED, ""),
    (artifact(content_type="a/c"), stored(SHA_A, content_type="a/b"), None, None, ""),
    (artifact(), stored(SHA_B), None, None, ""),
    (artifact(), None, None, None, ""),
    (artifact(key="r/notes.txt"), None, None, StoredAs.DIRECT, ""),
    (artifact(key="r/notes.txt", policy=ALWAYS), None, None, None, ""),
    (artifact(policy=NEVER), None, None, StoredAs.DIRECT, ""),
    (artifact(key="r/APP.JAR"), None, None, None, ""),
    (artifact(size=0), None, None, StoredAs.DIRECT, "empty file"),
    (artifact(), None, DeltaTrial(5, True), StoredAs.REFERENCE, "new reference for its folder"),
    (artifact(), None, DeltaTrial(500), StoredAs.DELTA, ""),
    (artifact(), None, DeltaTrial(501), StoredAs.DIRECT, "delta over max ratio 0.5"),
    (artifact(), stored(SHA_B), DeltaTrial(10), StoredAs.DELTA, ""),
]


@pytest.mark.parametrize(("item", "existing", "trial", "stored_as", "note"), DECISIONS)
def test_upload_decision_table(
    item: Artifact,
    existing: Located | None,
    trial: DeltaTrial | None,
    stored_as: StoredAs | None,
    note: str,
) -> None:
    decision = decide_upload(item, existing, 0.5, trial)
    assert decision.stored_as is stored_as
    if note:
        assert decision.note == note


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore(page_size=2)


@pytest.fixture
def engine(memory: MemoryStore) -> Engine:
    built = Engine(Settings(cache_backend="memory"), store=memory.as_store())
    yield built  # type: ignore[misc]
    built.close()


def versions(tmp_path: Path, count: int, seed: int = 1) -> list[Path]:
    """A series of 64 KiB 'builds', each a small edit of the one before."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(64 * 1024))
    paths = []
    for number in range(count):
        data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"v{number}" / f"app-{number}.zip"
        path.parent.mkdir()
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


def snapshot(memory: MemoryStore) -> dict[str, bytes]:
    return {key: obj.body for key, obj in memory.buckets["b"].items()}


def test_estimate_takes_the_upload_path_and_writes_nothing(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    noise = tmp_path / "noise.zip"
    noise.write_bytes(random.Random(9).randbytes(64 * 1024))
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello")
    for path, key in [
        *[(p, f"r/{p.name}") for p in versions(tmp_path, 3)],
        (noise, "r/noise.zip"),
        (text, "r/notes.txt"),
        (noise, "r/noise.zip"),
    ]:
        before = snapshot(memory)
        guess = engine.estimate(path, "b", key)
        assert snapshot(memory) == before
        done = engine.upload(path, "b", key)
        assert (guess.stored_as, guess.stored_size, guess.note) == (
            done.stored_as,
            done.stored_size,
            done.note,
        )
    assert [engine.estimate(noise, "b", "r/noise.zip").stored_as] == [StoredAs.UNCHANGED]


def test_estimate_and_upload_fail_alike_on_bad_input(engine: Engine, tmp_path: Path) -> None:
    for call in (engine.upload, engine.estimate):
        with pytest.raises(NotFoundError):
            call(tmp_path / "missing.zip", "b", "r/missing.zip")
        with pytest.raises(UsageError):
            call(tmp_path, "b", "r/dir.zip")
        with pytest.raises(UsageError):
            call(tmp_path, "b", "r/reference.bin")


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_uploads_read_back_exactly_whatever_the_order(
    tmp_path_factory: pytest.TempPathFactory, order: list[int]
) -> None:
    tmp_path = tmp_path_factory.mktemp("order")
    memory = MemoryStore(page_size=1)
    engine = Engine(Settings(cache_backend="memory"), store=memory.as_store())
    series = versions(tmp_path, 4, seed=len(order))
    for index in order:
        engine.upload(series[index], "b", f"r/{series[index].name}")
    for index in set(order):
        out = tmp_path / f"out-{series[index].name}"
        engine.download("b", f"r/{series[index].name}", out)
        assert out.read_bytes() == series[index].read_bytes()
    engine.close()


def test_reference_goes_with_the_last_delta_of_its_space(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    first, second = versions(tmp_path, 2)
    assert engine.upload(first, "b", "r/a.zip").stored_as is StoredAs.REFERENCE
    assert engine.upload(second, "b", "r/b.zip").stored_as is StoredAs.DELTA
    engine.delete("b", "r/a.zip")
    assert "r/reference.bin" in memory.buckets["b"]
    assert engine.delete("b", "r/b.zip").removed == ("r/b.zip.delta", "r/reference.bin")
    assert memory.buckets["b"] == {}


def test_a_read_takes_the_newer_of_two_forms(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    first, second = versions(tmp_path, 2)
    engine.upload(first, "b", "r/app.zip")
    memory.put("b", "r/app.zip", second.read_bytes())  # another tool wrote the plain form
    memory.buckets["b"]["r/app.zip"].last_modified = datetime.now(UTC) + timedelta(days=1)
    out = tmp_path / "out.zip"
    engine.download("b", "r/app.zip", out)
    assert out.read_bytes() == second.read_bytes()


def test_locate_names_what_is_missing(engine: Engine) -> None:
    assert engine.find("b", "r/none.zip") is None
    with pytest.raises(NotFoundError, match="no such object"):
        engine.locate("b", "r/none.zip")
    with pytest.raises(NotFoundError, match="bucket does not exist") as missing:
        engine.locate("nobucket", "r/none.zip")
    assert missing.value.code == "NoSuchBucket"
    with pytest.raises(UsageError, match="names a folder"):
        engine.locate("b", "r/")

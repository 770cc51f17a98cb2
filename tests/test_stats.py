"""Stats logic on the in-memory store: grades, the quick estimate, the cache's validity rule,
and that cache trouble never fails the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memory_store import MemoryStore

from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.models import UploadOptions
from deltaglider.stats import Grade, Mode, grade_of


@pytest.mark.parametrize(
    ("ratio", "grade"),
    [
        (None, Grade.NONE),
        (0.0, Grade.EXCELLENT),
        (0.05, Grade.EXCELLENT),
        (0.0501, Grade.GOOD),
        (0.1999, Grade.GOOD),
        (0.2, Grade.FAIR),
        (0.4999, Grade.FAIR),
        (0.5, Grade.POOR),
        (3.0, Grade.POOR),
    ],
)
def test_grades_follow_the_rust_proxy_thresholds(ratio: float | None, grade: Grade) -> None:
    assert grade_of(ratio) is grade


def builds(folder: Path, count: int) -> list[Path]:
    base = bytes(range(256)) * 400
    paths = []
    for number in range(count):
        path = folder / f"app-1.{number}.zip"
        path.write_bytes(base[: 50_000 + number * 7] + bytes([number]) * 300 + base[50_000:])
        paths.append(path)
    return paths


@pytest.fixture
def engine() -> Engine:
    memory = MemoryStore(page_size=3)
    memory.buckets["b"] = {}
    return Engine(Settings(cache_backend="memory"), store=memory.as_store())


def test_stats_of_a_series_exact_estimated_and_cached(engine: Engine, tmp_path: Path) -> None:
    files = builds(tmp_path, 5)
    for number, path in enumerate(files):
        engine.upload(path, "b", f"v{number}/{path.name}", UploadOptions())
    truth = sum(path.stat().st_size for path in files)

    detailed = engine.stats("b", mode=Mode.DETAILED)
    assert (detailed.logical_bytes, detailed.logical_estimated, detailed.from_cache) == (
        truth,
        False,
        False,
    )
    assert (
        detailed.heads == detailed.deltas == 5
    )  # the first is a delta against its shared reference
    cached = engine.stats("b", mode=Mode.DETAILED)
    assert (cached.from_cache, cached.heads, cached.logical_bytes) == (True, 0, truth)
    assert engine.stats("b", mode=Mode.DETAILED, refresh=True).from_cache is False

    quick = engine.stats("b")
    assert quick.logical_estimated and quick.heads == 0
    assert abs(quick.logical_bytes - truth) < 0.01 * truth
    assert quick.stored_bytes == detailed.stored_bytes
    [group] = quick.groups
    assert group.name == "#/app-#.zip" and group.grade is Grade.EXCELLENT


def test_a_corrupt_or_foreign_cache_document_is_ignored(engine: Engine, tmp_path: Path) -> None:
    for number, path in enumerate(builds(tmp_path, 3)):
        engine.upload(path, "b", f"v{number}/{path.name}", UploadOptions())
    first = engine.stats("b", mode=Mode.SAMPLED)
    store = engine._parts.store
    listed = [o for page in store.iter_listing("b", "") for o in page]
    [cache_key] = [o.key for o in listed if o.key.startswith(".deltaglider/stats/")]
    fingerprint = {
        "objects": len(listed) - 1,
        "bytes": sum(o.size for o in listed if o.key != cache_key),
    }
    for body in (
        b"{not json",
        json.dumps({"version": 1, "fingerprint": fingerprint, "pairs": 7}).encode(),
        json.dumps({"version": 1, "fingerprint": fingerprint, "pairs": {"x": "y"}}).encode(),
        json.dumps({"version": 1, "fingerprint": fingerprint}).encode(),
    ):
        store.put_bytes("b", cache_key, body, {})
        again = engine.stats("b", mode=Mode.SAMPLED)
        assert again.from_cache is False and again.logical_bytes == first.logical_bytes
    assert engine.stats("b", mode=Mode.SAMPLED).from_cache is True  # rewritten by the last run


def test_after_the_first_versions_go_every_kept_delta_is_graded(
    engine: Engine, tmp_path: Path
) -> None:
    """prune (or rm) of a series' first versions deletes the reference's self-delta while the
    reference stays for the rest: with every delta HEADed, no real delta is taken for it."""
    files = builds(tmp_path, 5)
    for number, path in enumerate(files):
        engine.upload(path, "b", f"v{number}/{path.name}", UploadOptions())
    for number in range(3):
        engine.delete("b", f"v{number}/{files[number].name}")
    detailed = engine.stats("b", mode=Mode.DETAILED, by="folder")
    assert [g.name for g in detailed.groups] == ["v3", "v4"]
    assert all(g.median_delta_ratio is not None for g in detailed.groups), detailed.groups
    cached = engine.stats("b", mode=Mode.DETAILED, by="folder")  # the cache keeps the finding
    assert cached.from_cache and cached.groups == detailed.groups

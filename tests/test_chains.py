"""Delta chains (`references=chain`, FORMAT "Delta chains") on the in-memory store: the
skip-delta numbering and its read bound, every version reading back whatever was deleted,
removals freeing exactly what no kept version needs, and prune's plan matching its run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from deltaglider import chains
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.metadata import LinkMeta
from deltaglider.models import StoredAs, UploadOptions
from deltaglider.retention import execute_prune, plan_prune

BASE = bytes(range(256)) * 300


def version(folder: Path, number: int) -> Path:
    """Version `number` of one app: each version edits a little more of the last one."""
    data = bytearray(BASE)
    for edit in range(number + 1):
        data[(997 * edit) % len(data)] ^= 0xA5
    path = folder / f"app-1.{number}.zip"
    path.write_bytes(bytes(data) + bytes([number % 256]) * (200 + number))
    return path


def chain_engine(memory: MemoryStore) -> Engine:
    return Engine(Settings(cache_backend="memory", references="chain"), store=memory.as_store())


def uploaded(
    folder: Path, count: int, prefix: str = "", page_size: int = 3
) -> tuple[MemoryStore, Engine, dict[str, Path]]:
    """A chain bucket `b` holding versions 0..count-1 under `<prefix><n>/`, with its engine."""
    memory = MemoryStore(page_size=page_size)
    memory.buckets["b"] = {}
    engine = chain_engine(memory)
    files = {}
    for number in range(count):
        path = version(folder, number)
        engine.upload(path, "b", f"{prefix}{number}/{path.name}", UploadOptions())
        files[f"{prefix}{number}/{path.name}"] = path
    return memory, engine, files


def links(memory: MemoryStore) -> dict[int, LinkMeta]:
    found = {}
    for key, stored in memory.buckets["b"].items():
        link = LinkMeta.from_dict(stored.metadata, key) if key.endswith("reference.bin") else None
        if link is not None:
            found[link.seq] = link
    return found


def reads_back(memory: MemoryStore, files: dict[str, Path], scratch: Path) -> None:
    fresh = chain_engine(memory)  # a cold cache: every chain is walked from the bucket
    for key, path in files.items():
        fresh.download("b", key, scratch / "out")
        assert (scratch / "out").read_bytes() == path.read_bytes(), key


@pytest.mark.parametrize(
    ("seq", "base", "reads"), [(1, 0, 1), (6, 4, 2), (7, 6, 3), (8, 0, 1), (255, 254, 8)]
)
def test_skip_delta_numbering(seq: int, base: int, reads: int) -> None:
    assert chains.base_seq(seq) == base and chains.links_to_read(seq) == reads


def test_each_version_links_to_its_skip_base_and_reads_back(tmp_path: Path) -> None:
    memory = MemoryStore(page_size=3)
    memory.buckets["b"] = {}
    engine = chain_engine(memory)
    files = {}
    for number in range(12):
        path = version(tmp_path, number)
        result = engine.upload(path, "b", f"{number}/{path.name}", UploadOptions())
        expected = StoredAs.REFERENCE if number == 0 else StoredAs.DELTA
        assert result.stored_as is expected, result
        assert result.stored_size < (path.stat().st_size if number else 10**9) // 50 or not number
        files[f"{number}/{path.name}"] = path
    found = links(memory)
    assert sorted(found) == list(range(12))
    for seq, link in found.items():
        if seq:
            base = memory.buckets["b"][link.base_key or ""]
            assert base.metadata["dg-chain-seq"] == str(chains.base_seq(seq))
    reads_back(memory, files, tmp_path)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=2, max_value=9),
    doomed=st.lists(st.integers(min_value=0, max_value=8), unique=True),
)
def test_deleting_any_versions_leaves_the_rest_readable_and_frees_the_unneeded(
    count: int, doomed: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        memory, engine, files = uploaded(folder, count, page_size=2)
        for number in (n for n in doomed if n < count):
            engine.delete("b", f"{number}/app-1.{number}.zip")
            files.pop(f"{number}/app-1.{number}.zip")
        reads_back(memory, files, folder)
        kept = {int(key.split("/", 1)[0]) for key in files}
        needed = set()
        for number in kept:  # each kept version needs its chain down to the start
            seq = number
            needed.add(seq)
            while seq:
                seq = chains.base_seq(seq)
                needed.add(seq)
        assert set(links(memory)) == (needed if kept else set())


def test_prune_plan_frees_exactly_what_the_run_frees(tmp_path: Path) -> None:
    memory, engine, files = uploaded(tmp_path, 11, "rel/")
    before = sum(len(o.body) for o in memory.buckets["b"].values())
    plan = plan_prune(engine, "b", "rel/", keep_last=3)
    result = execute_prune(engine, plan)
    after = sum(len(o.body) for o in memory.buckets["b"].values())
    assert plan.freed_bytes == result.freed_bytes == before - after
    assert sorted(links(memory)) == [0, 8, 9, 10]  # 10 -> 8 -> 0, 9 -> 8
    reads_back(memory, {k: v for k, v in files.items() if int(k.split("/")[1]) >= 8}, tmp_path)


def test_stats_of_a_chain_bucket_grade_its_links_and_bound_its_reads(tmp_path: Path) -> None:
    _, engine, files = uploaded(tmp_path, 9)
    sizes = sum(path.stat().st_size for path in files.values())
    from deltaglider.stats import Grade, Mode

    for mode in (Mode.QUICK, Mode.DETAILED):
        result = engine.stats("b", mode=mode)
        assert abs(result.logical_bytes - sizes) < 0.02 * sizes, mode  # the start's size
        [group] = result.groups
        assert group.grade is Grade.EXCELLENT and group.chain_links == 3  # 7 = 0b111

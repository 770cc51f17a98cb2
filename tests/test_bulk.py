"""Bulk work on the in-memory store with the real codec: retention's plan and its execution,
cleanup's repairs, migration's plan (checks, shards, the group-first order) and its run, and
analyze's scratch bucket. The e2e suite runs the same on real servers; these run in seconds."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from memory_store import MemoryStore

from deltaglider import analysis, migration, retention
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.errors import NotFoundError, UsageError
from deltaglider.events import Subscriber
from deltaglider.metadata import trash_folder, trash_meta, user_marker_key
from deltaglider.models import GroupBy, ListEntry, Shard, StoredAs

VERSIONS = ("1.0", "1.2", "1.9", "1.10", "1.11")  # natural order: 1.9 before 1.10


def builds(tmp_path: Path, name: str = "app", count: int = len(VERSIONS)) -> list[Path]:
    """One file per version, each a few bytes away from the one before."""
    rng = random.Random(name)
    data = bytearray(rng.randbytes(40 * 1024))
    paths = []
    for version in VERSIONS[:count]:
        data[rng.randrange(len(data))] ^= 0x5A
        path = tmp_path / version / f"{name}-{version}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore(page_size=3, buckets=("b", "dst"))


@pytest.fixture
def engine(memory: MemoryStore) -> Engine:
    built = Engine(Settings(cache_backend="memory"), store=memory.as_store())
    yield built  # type: ignore[misc]
    built.close()


def stored_bytes(memory: MemoryStore, bucket: str = "b") -> int:
    return sum(len(obj.body) for obj in memory.buckets[bucket].values())


def upload_all(engine: Engine, paths: list[Path], root: Path, bucket: str = "b") -> None:
    for path in paths:
        engine.upload(path, bucket, f"rel/{path.relative_to(root).as_posix()}")


class Told(Subscriber):
    def __init__(self) -> None:
        self.done: list[dict[str, object]] = []

    def on_done(self, **kwargs: object) -> None:
        self.done.append(kwargs)


# ------------------------------------------------------------------------------ retention


def entry(key: str, age_days: int = 0) -> ListEntry:
    moment = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(days=age_days)
    return ListEntry(key, 10, moment, stored_size=10, stored_key=key)


@given(
    versions=st.lists(st.integers(0, 30), min_size=1, max_size=12, unique=True),
    keep=st.integers(1, 6),
)
def test_choose_keeps_the_newest_n_of_each_series_in_natural_order(
    versions: list[int], keep: int
) -> None:
    entries = [entry(f"r/1.{v}/app-1.{v}.zip") for v in versions]
    entries += [entry(f"r/1.{v}/lib-1.{v}.zip") for v in versions]
    doomed = retention.choose(entries, GroupBy.SERIES, keep, None, datetime.now(UTC))
    newest = sorted(versions)[-keep:]
    for series in ("app", "lib"):
        gone = {e.key for e in doomed if f"/{series}-" in e.key}
        assert gone == {f"r/1.{v}/{series}-1.{v}.zip" for v in versions if v not in newest}


def test_choose_with_both_options_deletes_only_what_is_old_and_not_newest() -> None:
    entries = [entry("r/1.1/a-1.1.zip", 90), entry("r/1.2/a-1.2.zip", 5), entry("r/1.3/a-1.3.zip")]
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    doomed = retention.choose(entries, GroupBy.SERIES, 1, timedelta(days=30), moment)
    assert [e.key for e in doomed] == ["r/1.1/a-1.1.zip"]


def test_plan_prune_predicts_exactly_what_execute_frees(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    paths = builds(tmp_path / "app") + builds(tmp_path / "lib", "lib")
    upload_all(engine, paths[:5], tmp_path / "app")
    upload_all(engine, paths[5:], tmp_path / "lib")
    plan = retention.plan_prune(engine, "b", "rel/", keep_last=2)
    assert [k.rsplit("/", 1)[1] for k in plan.deleted] == [
        f"{name}-{v}.zip" for name in ("app", "lib") for v in VERSIONS[:3]
    ]
    predicted = retention.PruneResult.predicted(plan)
    before = stored_bytes(memory)
    told = Told()
    result = retention.execute_prune(engine, plan, told)
    assert before - stored_bytes(memory) >= result.freed_bytes == predicted.freed_bytes
    assert [d["result"].key for d in told.done] == list(plan.deleted)  # type: ignore[union-attr]
    for path in [*paths[3:5], *paths[8:]]:  # what stays restores byte for byte
        key = f"rel/{path.parent.name}/{path.name}"
        assert (
            engine.verify("b", key).actual_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        )


def test_a_version_deleted_by_someone_else_meanwhile_does_not_stop_prune(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    """Between the plan and its execution another `rm` took one doomed version: prune goes
    on with the rest (as `rm` of a missing key, it is done), and what stays restores."""
    paths = builds(tmp_path)
    upload_all(engine, paths, tmp_path)
    plan = retention.plan_prune(engine, "b", "rel/", keep_last=2)
    engine.delete("b", plan.deleted[0])
    result = retention.execute_prune(engine, plan)
    assert result.deleted == plan.deleted
    assert [e.key for e in engine.listing("b", "rel/", recursive=True)] == [
        f"rel/{v}/app-{v}.zip" for v in VERSIONS[3:]
    ]
    for path in paths[3:]:
        engine.verify("b", f"rel/{path.parent.name}/{path.name}")


def test_a_rerun_of_a_killed_prune_releases_what_it_left(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    """A prune killed between deleting a delta and releasing its marker leaves a stale
    marker (and a shared reference only it kept): the same prune run again finishes the job,
    and its dry run says so, bytes included."""
    first, second = builds(tmp_path / "a", "app", 1)[0], builds(tmp_path / "b", "app", 5)[4]
    engine.upload(first, "b", "rel/1.0/app-1.0.zip")
    renewed = Settings(cache_backend="memory", renew_ratio=0.0001)  # its own new reference
    other = Engine(renewed, store=memory.as_store())
    other.upload(second, "b", "rel/1.11/app-1.11.zip")
    other.close()
    objects = memory.buckets["b"]
    refs = sorted(k for k in objects if k.endswith("reference.bin"))
    assert len(refs) == 2
    del objects["rel/1.0/app-1.0.zip.delta"]  # the kill: delta gone, its marker and reference left
    plan = retention.plan_prune(engine, "b", "rel/", keep_last=1)
    assert plan.deleted == () and [o[1] for o in plan.orphans] == ["rel/1.0/app-1.0.zip.delta"]
    predicted = retention.PruneResult.predicted(plan)
    result = retention.execute_prune(engine, plan)
    assert result.references == predicted.references and len(result.references) == 1
    assert result.freed_bytes == predicted.freed_bytes > 0
    assert [k for k in objects if k.endswith("reference.bin")] == [
        r for r in refs if r not in result.references
    ]
    assert not any("/users/" in k and k.startswith(result.references[0][:-13]) for k in objects)
    engine.verify("b", "rel/1.11/app-1.11.zip")
    again = retention.plan_prune(engine, "b", "rel/", keep_last=1)
    assert again.orphans == () and again.freed_references == {}


def test_a_rerun_of_a_prune_killed_inside_a_reference_removal_empties_its_trash(
    memory: MemoryStore, tmp_path: Path
) -> None:
    """Folder references: a prune killed after trashing one folder's reference (copy made,
    reference deleted) and another killed after its delta went (reference left, no delta):
    the re-run removes the lone reference and the trash copy, and frees what its dry run says."""
    engine = Engine(Settings(cache_backend="memory", references="folder"), store=memory.as_store())
    paths = builds(tmp_path, "app", 4)
    for number, path in enumerate(paths):
        engine.upload(path, "b", f"rel/1.{number}/{path.name}")
    objects = memory.buckets["b"]
    lone, trashed = "rel/1.0/reference.bin", "rel/1.1/reference.bin"
    assert lone in objects and trashed in objects
    for key in [k for k in objects if k.startswith(("rel/1.0/", "rel/1.1/"))]:
        if key.endswith(".delta"):
            del objects[key]  # the first kill: the delta went, its reference stayed
    store = memory.as_store()
    copy = f"{trash_folder(trashed)}{'0' * 32}"
    store.copy_within("b", trashed, copy, trash_meta(store.head("b", trashed).metadata, trashed))
    del objects[trashed]  # the second kill: inside the removal, before the copy went
    plan = retention.plan_prune(engine, "b", "rel/", keep_last=2)
    assert plan.deleted == () and sorted(plan.orphans) == [(lone, None), (trashed, None)]
    predicted = retention.PruneResult.predicted(plan)
    result = retention.execute_prune(engine, plan)
    assert sorted(result.references) == sorted(predicted.references) == sorted([lone, copy])
    assert result.freed_bytes == predicted.freed_bytes == plan.freed_bytes > 0
    assert not any(k.startswith((".deltaglider/trash/", "rel/1.0/", "rel/1.1/")) for k in objects)
    for number, path in list(enumerate(paths))[2:]:
        engine.verify("b", f"rel/1.{number}/{path.name}")
    again = retention.plan_prune(engine, "b", "rel/", keep_last=2)
    assert again.orphans == () and again.freed_references == {}


def test_plan_prune_refuses_what_it_cannot_do(engine: Engine) -> None:
    with pytest.raises(UsageError, match="--keep-last"):
        retention.plan_prune(engine, "b", "")
    with pytest.raises(UsageError, match="--by"):
        retention.plan_prune(engine, "b", "", by="day", keep_last=1)


# -------------------------------------------------------------------------------- cleanup


def test_cleanup_puts_back_a_trashed_reference_and_a_lost_marker(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    paths = builds(tmp_path)
    upload_all(engine, paths[:3], tmp_path)
    objects = memory.buckets["b"]
    reference = next(k for k in objects if k.endswith("reference.bin"))
    delta = "rel/1.2/app-1.2.zip.delta"
    trashed = f"{trash_folder(reference)}killed-remover"
    objects[trashed] = objects.pop(reference)  # a removal killed after its move to the trash
    del objects[user_marker_key(reference, delta)]
    memory.put("b", "lonely/reference.bin", b"r", **{"dg-file-sha256": "0" * 64})
    dry = engine.cleanup("b", "", older_than=0, dryrun=True)
    assert dry.unreadable == [] and any(a.startswith("restore:") for a in dry.actions)
    assert reference not in objects
    told = Told()
    report = engine.cleanup("b", "", older_than=0, subscriber=told)
    assert report.unreadable == [] and report.checked == 3
    assert [d["line"] for d in told.done] == report.actions
    assert dry.actions == report.actions  # the dry run lists exactly what the run does
    assert "delete: s3://b/lonely/reference.bin (no delta needs it)" in report.actions
    assert sum(a.startswith(f"restore: s3://b/{reference}") for a in report.actions) == 1
    assert reference in objects and user_marker_key(reference, delta) in objects
    assert trashed not in objects
    for path in paths[:3]:
        engine.verify("b", f"rel/{path.parent.name}/{path.name}")


def test_cleanup_names_a_delta_whose_reference_is_gone(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    upload_all(engine, builds(tmp_path)[:2], tmp_path)
    objects = memory.buckets["b"]
    del objects[next(k for k in objects if k.endswith("reference.bin"))]
    report = engine.cleanup("b", "", older_than=0)
    assert len(report.unreadable) == 2 and all("missing" in line for line in report.unreadable)


def test_cleanup_aborts_only_old_unfinished_uploads(engine: Engine, memory: MemoryStore) -> None:
    now = datetime.now(UTC)
    memory.uploads = [("a.zip", "old", now - timedelta(hours=2)), ("b.zip", "new", now)]
    report = engine.cleanup("b", "")
    assert report.actions == ["abort_multipart_upload: s3://b/a.zip (old)"]
    assert [u[1] for u in memory.uploads] == ["new"]


# ------------------------------------------------------------------------------ migration


@given(count=st.integers(1, 7), keys=st.lists(st.text(min_size=1, max_size=20), max_size=40))
def test_shards_are_disjoint_and_together_complete(count: int, keys: list[str]) -> None:
    shards = [Shard(index, count) for index in range(1, count + 1)]
    for key in keys:
        assert sum(shard.holds(key) for shard in shards) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"source": "s3://b/x/", "destination": None}, "SOURCE and DESTINATION"),
        ({"source": "s3://b/x/", "destination": "s3://dst/", "in_place": True}, "SOURCE and"),
        (
            {"source": "s3://b/", "destination": None, "in_place": True, "dryrun": True},
            "one bucket",
        ),
        ({"source": "s3://b/", "destination": "s3://dst/", "shard": "5/4"}, "--shard"),
        ({"source": "s3://b/", "destination": "s3://dst/", "shard": "1-4"}, "--shard"),
        ({"source": "s3://b/", "destination": "s3://dst/", "source_endpoint_url": "x:9"}, "http"),
    ],
)
def test_plan_migration_refuses_bad_arguments(
    engine: Engine, args: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        migration.plan_migration(engine, **args)  # type: ignore[arg-type]


def test_plan_migration_names_a_missing_bucket(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="s3://nope"):
        migration.plan_migration(engine, "s3://b/", "s3://nope/")


def test_group_first_puts_each_groups_first_file_in_the_first_wave() -> None:
    keys = ["r/1.10/a.zip", "r/1.9/a.zip", "r/1.9/b.zip", "r/1.9/notes.txt"]

    def group(key: str) -> object:
        return None if key.endswith(".txt") else key.rsplit("/", 1)[1]

    waves = list(migration._group_first(iter(keys), group))
    assert waves == [["r/1.9/a.zip", "r/1.9/b.zip"], ["r/1.9/notes.txt", "r/1.10/a.zip"]]


def test_migrate_then_rerun_skips_what_is_already_there(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    paths = builds(tmp_path)
    for path in paths:  # another tool's plain objects
        memory.put("b", f"old/{path.parent.name}/{path.name}", path.read_bytes())
    plan = migration.plan_migration(
        engine, "s3://b/old/", "s3://dst/new/", jobs=3, preserve_prefix=False
    )
    told = Told()
    first = migration.execute(plan, told)
    assert (first.planned, first.migrated, first.failed) == (5, 5, 0)
    assert first.stored_bytes < first.file_bytes
    assert sorted(d["outcome"].target for d in told.done) == sorted(  # type: ignore[union-attr]
        f"s3://dst/new/{p.parent.name}/{p.name}" for p in paths
    )
    again = migration.execute(plan)
    assert (again.migrated, again.skipped) == (0, 5)
    for path in paths:
        got = engine.verify("dst", f"new/{path.parent.name}/{path.name}")
        assert got.actual_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("source", "destination", "lands_in"),
    [  # deltaglider 6.x's rule: the source prefix's last folder is kept
        ("s3://b/old/", "s3://dst/", "old/"),
        ("s3://b/old", "s3://dst/new", "new/old/"),  # folders, with or without the `/`
        ("s3://b/a/old/", "s3://dst/new", "new/old/"),
        ("s3://b/", "s3://dst/new/", "new/"),
    ],
)
def test_migrate_keeps_the_source_folder_as_6x_did(
    engine: Engine, memory: MemoryStore, source: str, destination: str, lands_in: str
) -> None:
    memory.put("b", "old/1.0/app.zip", b"x" * 100)
    memory.put("b", "a/old/1.0/app.zip", b"x" * 100)
    plan = migration.plan_migration(engine, source, destination)
    assert plan.dst.key == lands_in


def test_migrate_without_a_trailing_slash_takes_the_folder_not_a_name_prefix(
    engine: Engine, memory: MemoryStore
) -> None:
    """`migrate s3://b/app s3://dst/` takes app/ (as `cp -r`), never app-1.x/ beside it, and
    no key comes out cut in the middle of a name."""
    memory.put("b", "app/1.35.0/notes.txt", b"one")
    memory.put("b", "app-1.x/other.txt", b"two")
    summary = migration.execute(migration.plan_migration(engine, "s3://b/app", "s3://dst/"))
    assert (summary.migrated, summary.failed) == (1, 0)
    assert [k for k in memory.buckets["dst"] if not k.startswith(".")] == ["app/1.35.0/notes.txt"]


def test_migrate_dryrun_writes_nothing_and_predicts_the_run(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    paths = builds(tmp_path)
    for path in paths:
        memory.put("b", f"old/{path.parent.name}/{path.name}", path.read_bytes())
    predicted = migration.execute(
        migration.plan_migration(engine, "s3://b/old/", "s3://dst/", dryrun=True)
    )
    assert memory.buckets["dst"] == {}
    done = migration.execute(migration.plan_migration(engine, "s3://b/old/", "s3://dst/"))
    assert {k.split("/")[0] for k in memory.buckets["dst"]} == {"old", ".deltaglider"}
    assert (predicted.planned, predicted.file_bytes) == (done.planned, done.file_bytes)
    assert abs(predicted.stored_bytes - done.stored_bytes) <= 0.02 * done.stored_bytes


def test_migrate_in_place_compacts_whole_objects(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    paths = builds(tmp_path)
    for path in paths:
        memory.put("b", f"r/{path.name}", path.read_bytes())
    summary = migration.execute(migration.plan_migration(engine, "s3://b/r/", None, in_place=True))
    assert (summary.migrated, summary.failed) == (5, 0)
    assert all(key.endswith(".delta") for key in memory.buckets["b"] if key.startswith("r/"))
    for path in paths:
        engine.verify("b", f"r/{path.name}")


# ------------------------------------------------------------------------------- analysis


def test_analyze_stores_versions_in_natural_order_into_a_scratch_bucket(tmp_path: Path) -> None:
    builds(tmp_path / "releases")
    told = Told()
    found = analysis.analyze(
        tmp_path / "releases", Settings(cache_backend="memory"), subscriber=told
    )
    keys = [u.key for u in found.uploads]
    assert keys == [f"{v}/app-{v}.zip" for v in VERSIONS]
    assert [d["result"] for d in told.done] == list(found.uploads)
    assert found.uploads[0].stored_as is StoredAs.REFERENCE
    assert {u.stored_as for u in found.uploads[1:]} == {StoredAs.DELTA}
    assert found.stats.files == 5 and found.stats.stored_bytes < found.stats.logical_bytes


def test_analyze_refuses_what_is_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        analysis.analyze(tmp_path / "missing", Settings(cache_backend="memory"))

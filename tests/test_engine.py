"""The engine's logic on an in-memory store with the real codec: the upload decision table,
estimate taking upload's own path without writing, reads choosing between a key's two forms,
and references going only when no delta needs them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from deltaglider.config import Settings
from deltaglider.decision import Artifact, DeltaTrial, decide_upload
from deltaglider.engine import Engine
from deltaglider.errors import NotFoundError, StorageError, UsageError
from deltaglider.files import Digest
from deltaglider.metadata import ObjectKind
from deltaglider.models import DeltaPolicy, ObjectHead, ReferenceMode, StoredAs, UploadOptions
from deltaglider.reading import Located

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
    decision = decide_upload(item, existing, 0.5, trial, mode=ReferenceMode.FOLDER)
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
        path.parent.mkdir(parents=True, exist_ok=True)
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
    memory: MemoryStore, tmp_path: Path
) -> None:
    engine = Engine(Settings(cache_backend="memory", references="folder"), store=memory.as_store())
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


# ------------------------------------------------------------------ shared references


def shared_engine(memory: MemoryStore, **settings: object) -> Engine:
    return Engine(Settings(cache_backend="memory", **settings), store=memory.as_store())  # type: ignore[arg-type]


def keys_of(memory: MemoryStore) -> list[str]:
    return sorted(memory.buckets["b"])


def per_version(tmp_path: Path, count: int, name: str = "app-linux") -> list[tuple[Path, str]]:
    """Builds laid out one folder per version: `rel/1.0.N/<name>-1.0.N.zip`."""
    return [
        (path, f"rel/1.0.{n}/{name}-1.0.{n}.zip")
        for n, path in enumerate(versions(tmp_path / name, count, seed=len(name)))
    ]


def test_one_folder_per_version_shares_one_reference(memory: MemoryStore, tmp_path: Path) -> None:
    engine = shared_engine(memory)
    results = [engine.upload(path, "b", key) for path, key in per_version(tmp_path, 5)]
    assert [r.stored_as for r in results] == [StoredAs.REFERENCE] + [StoredAs.DELTA] * 4
    assert results[0].note == "new reference for its series"
    references = [k for k in keys_of(memory) if k.endswith("reference.bin")]
    assert len(references) == 1 and references[0].startswith(".deltaglider/refs/")
    markers = [k for k in keys_of(memory) if "/users/" in k]
    assert len(markers) == 5  # one per delta that needs it
    for n, (path, key) in enumerate(per_version(tmp_path, 5)):
        out = tmp_path / f"out{n}"
        engine.download("b", key, out)
        assert out.read_bytes() == path.read_bytes()


def test_two_series_in_the_same_folders_get_their_own_references(
    memory: MemoryStore, tmp_path: Path
) -> None:
    engine = shared_engine(memory)
    linux, win = per_version(tmp_path, 3, "app-linux"), per_version(tmp_path, 3, "app-win")
    for (lpath, lkey), (wpath, wkey) in zip(linux, win, strict=True):
        engine.upload(lpath, "b", lkey)
        assert engine.upload(wpath, "b", wkey).stored_as is not StoredAs.DIRECT
    references = [k for k in keys_of(memory) if k.endswith("reference.bin")]
    assert len(references) == 2
    assert len({k.split("/")[2] for k in references}) == 2  # two series ids


def test_deleting_a_version_folder_keeps_references_others_use(
    memory: MemoryStore, tmp_path: Path
) -> None:
    engine = shared_engine(memory)
    builds = per_version(tmp_path, 3)
    for path, key in builds:
        engine.upload(path, "b", key)
    reference = next(k for k in keys_of(memory) if k.endswith("reference.bin"))
    assert engine.delete("b", builds[0][1]).removed == (builds[0][1] + ".delta",)
    assert reference in keys_of(memory)
    engine.delete("b", builds[1][1])
    out = tmp_path / "last"
    engine.download("b", builds[2][1], out)
    assert out.read_bytes() == builds[2][0].read_bytes()
    assert engine.delete("b", builds[2][1]).removed == (builds[2][1] + ".delta", reference)
    assert keys_of(memory) == []  # markers went with their deltas


def test_renewal_starts_a_new_reference_when_deltas_grow(
    memory: MemoryStore, tmp_path: Path
) -> None:
    engine = shared_engine(memory, renew_ratio=0.000001)
    results = [engine.upload(path, "b", key) for path, key in per_version(tmp_path, 3)]
    assert [r.stored_as for r in results] == [StoredAs.REFERENCE] * 3
    assert "best delta" in results[1].note
    assert len([k for k in keys_of(memory) if k.endswith("reference.bin")]) == 3


def test_by_default_a_series_renews_only_where_the_file_would_otherwise_go_direct(
    memory: MemoryStore, tmp_path: Path
) -> None:
    """Versions that each differ by a third (compiled wheels) stay deltas against the first
    reference; a rewrite (delta over the max ratio) becomes the series' next reference rather
    than a direct object: the same bytes, and the versions after it delta against it."""
    engine = shared_engine(memory)
    rng = random.Random(7)
    first = bytearray(rng.randbytes(96 * 1024))
    third_changed = bytearray(first)
    for start in range(0, len(third_changed), 3 * 4096):  # a third of the 4 KiB blocks
        third_changed[start : start + 4096] = rng.randbytes(4096)
    rewrite = rng.randbytes(96 * 1024)
    after = bytearray(rewrite)
    after[:100] = rng.randbytes(100)
    stored = []
    for n, body in enumerate([first, third_changed, rewrite, after]):
        path = tmp_path / f"app-1.0.{n}.zip"
        path.write_bytes(bytes(body))
        stored.append(engine.upload(path, "b", f"rel/1.0.{n}/{path.name}"))
    assert [r.stored_as for r in stored] == [
        StoredAs.REFERENCE,
        StoredAs.DELTA,
        StoredAs.REFERENCE,
        StoredAs.DELTA,
    ], [r.note for r in stored]
    assert 0.25 < stored[1].stored_size / len(first) < 0.5
    assert stored[3].stored_size < 4096  # against the rewrite, not the first reference


def test_replacing_a_key_releases_the_reference_it_used(
    memory: MemoryStore, tmp_path: Path
) -> None:
    engine = shared_engine(memory)
    (old, _), _ = per_version(tmp_path, 2)
    engine.upload(old, "b", "latest/app-linux.zip")
    unrelated = tmp_path / "other.zip"
    unrelated.write_bytes(random.Random(4).randbytes(64 * 1024))
    engine.upload(unrelated, "b", "latest/app-linux.zip")  # renews: a new reference
    references = [k for k in keys_of(memory) if k.endswith("reference.bin")]
    assert len(references) == 1  # the first one lost its only user and went
    out = tmp_path / "out"
    engine.download("b", "latest/app-linux.zip", out)
    assert out.read_bytes() == unrelated.read_bytes()


def test_bucket_setting_and_override_choose_folder_references(
    memory: MemoryStore, tmp_path: Path
) -> None:

    engine = shared_engine(memory)
    assert engine.reference_mode("b") == "shared"
    engine.change_bucket_settings("b", ["references=folder"])
    fresh = shared_engine(memory)
    assert fresh.reference_mode("b") == "folder"
    (path, key), *_ = per_version(tmp_path, 1)
    fresh.upload(path, "b", key)
    assert "rel/1.0.0/reference.bin" in keys_of(memory)
    assert shared_engine(memory, references="shared").reference_mode("b") == "shared"


def test_concurrent_first_uploads_of_a_series_all_read_back(
    memory: MemoryStore, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    builds = per_version(tmp_path, 8)
    engines = [shared_engine(memory) for _ in builds]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda e, b: e.upload(b[0], "b", b[1]), engines, builds))
    reader = shared_engine(memory)
    for n, (path, key) in enumerate(builds):
        out = tmp_path / f"r{n}"
        reader.download("b", key, out)
        assert out.read_bytes() == path.read_bytes()


def test_cleanup_repairs_markers_and_drops_unused_shared_references(
    memory: MemoryStore, tmp_path: Path
) -> None:
    engine = shared_engine(memory)
    builds = per_version(tmp_path, 2)
    for path, key in builds:
        engine.upload(path, "b", key)
    markers = sorted(k for k in keys_of(memory) if "/users/" in k)
    # a crash left a delta without its marker, and a marker without its delta
    del memory.buckets["b"][markers[0]]
    first_delta = builds[0][1] + ".delta"
    second_delta = builds[1][1] + ".delta"
    report = engine.cleanup("b", "", older_than=0)
    assert any(line.startswith("restore: ") and "/users/" in line for line in report.actions)
    assert sorted(k for k in keys_of(memory) if "/users/" in k) == markers
    del memory.buckets["b"][first_delta]
    del memory.buckets["b"][second_delta]
    report = engine.cleanup("b", "", older_than=0)
    assert sum("its delta is gone" in line for line in report.actions) == 2
    assert any("(no delta needs it)" in line for line in report.actions)
    assert keys_of(memory) == []


def test_a_plain_form_written_in_the_same_second_wins_the_read(
    engine: Engine, memory: MemoryStore, tmp_path: Path
) -> None:
    """Another tool's object has only S3's one-second LastModified: compared at that
    resolution, a tie goes to the key itself, so a plain upload right after ours is read."""
    first, second = versions(tmp_path, 2)
    engine.upload(first, "b", "r/app.zip")
    created = memory.buckets["b"]["r/app.zip.delta"].metadata["dg-created-at"]
    memory.put("b", "r/app.zip", second.read_bytes())
    from deltaglider.metadata import parse_time

    memory.buckets["b"]["r/app.zip"].last_modified = parse_time(created).replace(microsecond=0)
    located = engine.locate("b", "r/app.zip")
    assert located.stored_key == "r/app.zip"
    engine.delete("b", "r/app.zip")
    assert engine.find("b", "r/app.zip") is None


def test_sdk_callbacks_get_bytes_as_they_go(memory: MemoryStore, tmp_path: Path) -> None:
    """As s3transfer's: several calls during one file, summing to its size, both ways."""
    from deltaglider.client import DeltagliderClient

    client = DeltagliderClient(shared_engine(memory))
    data = random.Random(2).randbytes(3 * 1024 * 1024 + 5)
    for name in ("build.zip", "notes.txt"):  # read for a delta, sent for a direct object
        path = tmp_path / name
        path.write_bytes(data)
        told: list[int] = []
        client.upload_file(str(path), "b", f"cb/{name}", Callback=told.append)
        assert sum(told) == len(data) and (len(told) > 1 or name == "notes.txt"), told
        got: list[int] = []
        client.download_file("b", f"cb/{name}", str(tmp_path / f"back-{name}"), Callback=got.append)
        assert sum(got) == len(data) and len(got) > 1
    client.close()


def test_progress_line_counts_bytes_during_a_file_and_exactly_at_its_end() -> None:
    from deltaglider.cli import TransferProgress
    from deltaglider.cli.output import StatusLine
    from deltaglider.transfer import Action, Outcome, Task

    task = Task(Action.UPLOAD, Path("big.zip"), None, 1000)
    line = TransferProgress(1, 1000, StatusLine(False))
    line.on_queued(task=task, size=1000)
    line.on_progress(task=task, bytes_transferred=300)
    line.on_progress(task=task, bytes_transferred=300)
    assert line.bytes == 600
    line.on_done(outcome=Outcome(task))
    assert (line.bytes, line.files) == (1000, 1)


def test_a_new_folder_reference_is_the_one_being_removed(
    memory: MemoryStore, tmp_path: Path
) -> None:
    """While `rm` moves a folder's reference to the trash, a delta may be written against it;
    a writer that finds no reference then puts the trashed one back instead of making its own
    (which the late delta could not decode against)."""
    from deltaglider.metadata import trash_folder

    engine = shared_engine(memory, references="folder")
    first, second = versions(tmp_path, 2)
    engine.upload(first, "b", "f/a.zip")
    objects = memory.buckets["b"]
    objects[trash_folder("f/reference.bin") + "x"] = objects.pop("f/reference.bin")
    objects.pop("f/a.zip.delta")  # the removal took the last delta it saw
    assert engine.upload(second, "b", "f/b.zip").stored_as is StoredAs.DELTA
    assert objects["f/reference.bin"].body == first.read_bytes()


def test_releasing_keeps_a_marker_another_writer_needs(memory: MemoryStore, tmp_path: Path) -> None:
    """Two writers of one key: the one that finishes last must not take away the marker of a
    delta stored against the same reference."""
    engine = shared_engine(memory)
    builds = per_version(tmp_path, 2)
    for path, key in builds:
        engine.upload(path, "b", key)
    reference = next(k for k in keys_of(memory) if k.endswith("reference.bin"))
    delta = builds[1][1] + ".delta"
    assert engine._parts.references.release("b", reference, delta) == []
    assert len([k for k in keys_of(memory) if "/users/" in k]) == 2


def test_a_listed_form_is_read_without_heads_and_a_stale_one_falls_back(
    memory: MemoryStore, engine: Engine, tmp_path: Path
) -> None:
    """sync's downloads name the stored form their listing showed: one GET, no HEAD. A form
    gone since the listing (here: rewritten as the other form) is read by the rule instead."""
    first, second = versions(tmp_path, 2)
    engine.upload(first, "b", "s/app.zip")
    engine.upload(second, "b", "s/app-2.zip")
    listed = {e.key: e for e in engine.listing("b", "s/", recursive=True)}
    assert listed["s/app-2.zip"].stored_key == "s/app-2.zip.delta"
    assert not listed["s/app-2.zip"].both_forms
    memory.requests.clear()
    engine.download("b", "s/app-2.zip", tmp_path / "out", stored_key="s/app-2.zip.delta")
    assert (tmp_path / "out").read_bytes() == second.read_bytes()
    assert "HeadObject" not in memory.requests
    stale = engine.download("b", "s/app.zip", tmp_path / "stale", stored_key="s/app.zip")
    assert stale.stored_as == "delta"  # the listing guessed wrong: found by the rule
    assert (tmp_path / "stale").read_bytes() == first.read_bytes()


def test_both_forms_listed_are_marked_so_a_read_decides(
    memory: MemoryStore, engine: Engine, tmp_path: Path
) -> None:
    (first,) = versions(tmp_path, 1)
    engine.upload(first, "b", "s/app.zip")
    memory.put("b", "s/app.zip", first.read_bytes())  # another tool wrote the plain form
    (entry,) = engine.listing("b", "s/", recursive=True)
    assert entry.both_forms and entry.stored_key == "s/app.zip"


def test_a_first_upload_that_fails_takes_back_the_reference_it_created(
    memory: MemoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delta's PUT fails after the new shared reference was written: the upload fails
    and the bucket holds nothing of it (no orphan reference for `cleanup` to find)."""
    engine = shared_engine(memory)
    (path, key), *_ = per_version(tmp_path, 1)
    real_put = memory.put_file

    def failing_put(bucket: str, stored: str, *args: Any, **kwargs: Any) -> None:
        if stored.endswith(".delta"):
            raise StorageError(f"s3://{bucket}/{stored}: the delta could not be stored")
        real_put(bucket, stored, *args, **kwargs)

    monkeypatch.setattr(memory, "put_file", failing_put)
    with pytest.raises(StorageError):
        engine.upload(path, "b", key)
    assert [k for k in keys_of(memory) if not k.startswith(".deltaglider/trash/")] == []
    engine.close()


def test_a_listed_reference_removed_before_its_delta_is_written_is_put_back(
    memory: MemoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second upload of the series lists the shared reference and encodes against it; the
    reference is removed (a failed first upload taking it back, an `rm`) just before this
    upload records its marker. The upload puts the same bytes back, with the metadata its
    slot names, and its delta reads back."""
    engine = shared_engine(memory)
    (first, first_key), (second, second_key) = per_version(tmp_path, 2)
    engine.upload(first, "b", first_key)
    (ref_key,) = [k for k in keys_of(memory) if k.endswith("/reference.bin")]
    created = memory.head("b", ref_key)
    assert created is not None
    real_put_bytes = memory.put_bytes

    def removed_first(bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
        if "/users/" in key and memory.head(bucket, ref_key) is not None:
            memory.delete(bucket, ref_key)
        real_put_bytes(bucket, key, data, metadata)

    monkeypatch.setattr(memory, "put_bytes", removed_first)
    assert engine.upload(second, "b", second_key).stored_as is StoredAs.DELTA
    restored = memory.head("b", ref_key)
    assert restored is not None
    for name in ("dg-file-sha256", "dg-series", "dg-created-at"):
        assert restored.metadata[name] == created.metadata[name]
    assert engine.verify("b", second_key).valid
    engine.close()

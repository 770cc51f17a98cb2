"""`deltaglider prune`: old versions go per series (or folder), the newest N restore exactly,
references go only when no remaining delta needs them, and --dryrun predicts the bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from helpers import assert_bucket_consistent, sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine

WRITES = ("PUT", "POST", "DELETE")


def stored_total(raw: Any, bucket: str) -> int:
    return sum(
        v for k, v in stored_keys(raw, bucket).items() if not k.startswith(".deltaglider/stats/")
    )


def test_keep_last_three_per_series(
    cli: Any, raw: Any, bucket: str, engine: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    versions = wheel_series[:6]
    for number, wheel in enumerate(versions):
        assert (
            cli(
                "cp", "--references", "shared", str(wheel), f"s3://{bucket}/app/{number}/"
            ).exit_code
            == 0
        )
        assert (
            cli(
                "cp", "--references", "folder", str(wheel), f"s3://{bucket}/legacy/{number}/"
            ).exit_code
            == 0
        )
    before = stored_keys(raw, bucket)

    dry = cli("prune", f"s3://{bucket}/", "--keep-last", "3", "--dryrun")
    assert dry.exit_code == 0, dry.output
    assert stored_keys(raw, bucket) == before
    assert dry.stdout.count("(dryrun) delete: ") == 6 + 3  # 6 versions, 3 folder references
    predicted = dry.stdout.strip().splitlines()[-1]

    done = cli("prune", f"s3://{bucket}/", "--keep-last", "3")
    assert done.exit_code == 0, done.output
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("prune: 6 versions deleted, 6 kept, 3 references removed; ")
    assert predicted == summary.replace("deleted", "would be deleted").replace(
        "removed;", "would be removed;"
    ).replace("freed", "would be freed")
    from deltaglider.cli import human_size

    freed = sum(before.values()) - stored_total(raw, bucket)
    assert summary.endswith(f"; {human_size(freed)} freed")

    for number, wheel in enumerate(versions):
        for space in ("app", "legacy"):
            url = f"s3://{bucket}/{space}/{number}/{wheel.name}"
            got = cli("cp", url, str(tmp_path / f"{space}-{number}.whl"))
            if number < 3:
                assert got.exit_code == 1  # pruned
            else:
                assert got.exit_code == 0, got.output
                assert sha256(tmp_path / f"{space}-{number}.whl") == sha256(wheel)
    assert not any(k.startswith(f"legacy/{n}/") for k in stored_keys(raw, bucket) for n in range(3))
    assert assert_bucket_consistent(engine, raw, bucket) == 6


def test_freed_bytes_are_exact_and_age_guards_fresh_versions(
    cli: Any, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    for number, wheel in enumerate(wheel_series[:5]):
        assert (
            cli("cp", "--references", "folder", str(wheel), f"s3://{bucket}/v/{number}/").exit_code
            == 0
        )
    fresh = cli("prune", f"s3://{bucket}/v/", "--keep-last", "1", "--older-than", "1d")
    assert fresh.exit_code == 0
    assert (
        fresh.stdout.strip()
        == "prune: 0 versions deleted, 5 kept, 0 references removed; 0 Bytes freed"
    )

    before = stored_total(raw, bucket)
    result = cli("prune", f"s3://{bucket}/v/", "--keep-last", "2", "--by", "folder")
    assert result.exit_code == 0, result.output
    # --by folder: every version folder is its own group of one, so nothing goes.
    assert result.stdout.strip().endswith("0 Bytes freed") and stored_total(raw, bucket) == before

    result = cli("prune", f"s3://{bucket}/v/", "--keep-last", "2")
    freed_line = result.stdout.strip().splitlines()[-1]
    after = stored_total(raw, bucket)
    from deltaglider.cli import human_size

    assert freed_line.endswith(f"{human_size(before - after)} freed")

    assert cli("prune", f"s3://{bucket}/v/").exit_code == 2
    bad_age = cli("prune", f"s3://{bucket}/v/", "--older-than", "soon")
    assert bad_age.exit_code == 2 and "is not an age" in bad_age.stderr


@pytest.mark.slow
@pytest.mark.parametrize("references", ["shared", "folder"], indirect=True)
@pytest.mark.servers("seaweedfs")  # the steps are the client's requests, the same on moto
def test_a_prune_killed_after_any_of_its_writes_is_finished_by_running_it_again(
    s3_server: LocalS3, engine: Engine, raw: Any, wheel_series: list[Path], references: str
) -> None:
    """`prune --keep-last 2` over six versions is SIGKILLed right after its N-th write
    (PUT, POST or DELETE) reached the server, for every N its uninterrupted run makes (the
    proxy kills it before passing the response on, so the moment is a step, not a time).
    After each kill every version left reads back; the same prune run again exits 0 and leaves
    exactly what an uninterrupted run leaves: the same versions, the same stored objects (no
    reference, marker or trash left behind) and nothing for `cleanup` to do."""
    prune = [sys.executable, "-m", "deltaglider", "prune", "--keep-last", "2"]

    def fresh_bucket() -> str:
        name = f"dg-{uuid.uuid4().hex[:12]}"
        raw.create_bucket(Bucket=name)
        for number, wheel in enumerate(wheel_series[:6]):
            engine.upload(wheel, name, f"rel/1.{number}/{wheel.name}")
        return name

    def left(bucket: str) -> tuple[list[str], list[int], list[str]]:
        """The versions, the stored objects' sizes, and what cleanup would repair."""
        versions = [e.key for e in engine.listing(bucket, "", recursive=True)]
        sizes = sorted(
            size for key, size in stored_keys(raw, bucket).items() if "/stats/" not in key
        )
        repairs = engine.cleanup(bucket, "", older_than=0, dryrun=True).actions
        return versions, sizes, repairs

    whole = fresh_bucket()
    with FaultProxy(s3_server.endpoint, rate=0.0) as proxy:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint}
        subprocess.run([*prune, f"s3://{whole}/rel/"], env=env, check=True, capture_output=True)
        writes = sum(proxy.operations[operation] for operation in WRITES)
    expected = left(whole)
    assert len(expected[0]) == 2 and expected[2] == [], expected
    assert writes >= 4  # four deltas go, at the least

    for step in range(1, writes):  # the kill after the last write is an uninterrupted run
        bucket = fresh_bucket()
        killed = run_killed_after_write([*prune, f"s3://{bucket}/rel/"], s3_server, step)
        assert killed == -signal.SIGKILL, step
        assert_bucket_consistent(engine, raw, bucket)
        again = subprocess.run(
            [*prune, f"s3://{bucket}/rel/"],
            env={**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint},
            capture_output=True,
            text=True,
        )
        assert again.returncode == 0, (step, again.stderr)
        assert left(bucket) == expected, step
        assert assert_bucket_consistent(engine, raw, bucket) == 2


def run_killed_after_write(command: list[str], s3_server: LocalS3, step: int) -> int:
    """Run `command` against `s3_server` through a fault proxy that SIGKILLs it right after
    its `step`-th write reached the server (before the response reaches it); its exit status."""
    writes = iter(range(1, 1_000_000))
    lock = threading.Lock()
    started = threading.Event()
    running: list[subprocess.Popen[bytes]] = []

    def kill_after_the_step(operation: str) -> None:
        if operation not in WRITES:
            return
        with lock:
            if next(writes) != step:
                return
        started.wait()
        os.kill(running[0].pid, signal.SIGKILL)

    with FaultProxy(s3_server.endpoint, rate=0.0) as proxy:
        proxy.after_each(kill_after_the_step)
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint}
        running.append(
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        started.set()
        return running[0].wait(timeout=300)

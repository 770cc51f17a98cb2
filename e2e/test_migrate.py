"""`deltaglider migrate`: plain and 6.2.0-written sources brought in and restoring exactly,
re-runs that do no work for what is already there and redo what changed, shards run at once
that are disjoint and complete, and runs killed (SIGKILL) part-way finished by running again."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import artifacts
import local_s3
from helpers import stored_keys
from test_old_tool import old_deltaglider, run_old  # noqa: F401 (a fixture)

DG = str(Path(sys.executable).parent / "deltaglider")


def fill_plain(
    raw: Any, bucket: str, wheels: list[Path], sdists: list[Path], small: int = 200
) -> dict[str, str]:
    """A plain bucket as another tool leaves it; returns {key: sha256}."""
    objects: dict[str, bytes] = {}
    for wheel in wheels:
        objects[f"wheels/{wheel.name.split('-')[1]}/{wheel.name}"] = wheel.read_bytes()
    for sdist in sdists:
        objects[f"sdists/{sdist.name}"] = sdist.read_bytes()
    rng = random.Random(5)
    for number in range(small):
        objects[f"small/{number:03d}.json"] = json.dumps(
            {"n": number, "pad": "x" * rng.randint(0, 500)}
        ).encode()
    objects["empty.bin"] = b""
    objects["café/ünïcode-1.0.txt"] = "grüße\n".encode()
    for key, body in objects.items():
        raw.put_object(Bucket=bucket, Key=key, Body=body)
    return {key: hashlib.sha256(body).hexdigest() for key, body in objects.items()}


def migrate(server: local_s3.LocalS3, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint}
    return subprocess.run(
        [DG, "migrate", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def restored(engine: Any, bucket: str, expected: dict[str, str], tmp_path: Path) -> None:
    for key, digest in expected.items():
        target = tmp_path / "check"
        engine.download(bucket, key, target)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == digest, key


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(result.stdout.strip().splitlines()[-1])["summary"]


def test_a_plain_bucket_migrates_restores_and_resumes(
    raw: Any,
    s3_server: local_s3.LocalS3,
    engine: Any,
    wheel_series: list[Path],
    sdist_series: list[Path],
    tmp_path: Path,
) -> None:
    raw.create_bucket(Bucket="mig-plain-src")
    raw.create_bucket(Bucket="mig-plain-dst")
    botocore = artifacts.fetch("botocore", ("1.35.0", "1.35.1", "1.35.2"))
    expected = fill_plain(raw, "mig-plain-src", [*botocore, *wheel_series], sdist_series)

    plan = migrate(s3_server, "s3://mig-plain-src", "s3://mig-plain-dst", "--dryrun", "--json")
    assert plan.returncode == 0, plan.stderr
    assert stored_keys(raw, "mig-plain-dst") == {}
    predicted = summary_of(plan)["stored_bytes"]

    first = migrate(s3_server, "s3://mig-plain-src", "s3://mig-plain-dst", "--json", "--jobs", "4")
    assert first.returncode == 0, first.stderr
    done = summary_of(first)
    assert done["migrated"] == len(expected) and done["failed"] == 0
    stored = sum(stored_keys(raw, "mig-plain-dst").values())
    assert done["stored_bytes"] <= stored and stored < done["file_bytes"]
    assert abs(predicted - done["stored_bytes"]) <= 0.02 * done["stored_bytes"]
    restored(engine, "mig-plain-dst", expected, tmp_path)

    again = migrate(s3_server, "s3://mig-plain-src", "s3://mig-plain-dst", "--json")
    assert summary_of(again)["migrated"] == 0 and summary_of(again)["skipped"] == len(expected)

    # Same key, other bytes (and the same size): redone, not skipped because the key exists.
    raw.put_object(
        Bucket="mig-plain-src",
        Key="small/007.json",
        Body=b"Z"
        * len(raw.get_object(Bucket="mig-plain-src", Key="small/007.json")["Body"].read()),
    )
    changed = migrate(s3_server, "s3://mig-plain-src", "s3://mig-plain-dst", "--json")
    records = [json.loads(line) for line in changed.stdout.splitlines()[:-1]]
    assert [r["source"] for r in records if r["status"] == "migrated"] == [
        "s3://mig-plain-src/small/007.json"
    ]


def test_a_bucket_written_by_deltaglider_6_2_0_migrates(
    raw: Any,
    s3_server: local_s3.LocalS3,
    engine: Any,
    wheel_series: list[Path],
    old_deltaglider: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    raw.create_bucket(Bucket="mig-old-src")
    raw.create_bucket(Bucket="mig-old-dst")
    expected = {}
    # 6.2.0 makes deltas of .zip names (a .whl it stores whole), always in the root space.
    for wheel in wheel_series[:4]:
        as_zip = tmp_path / f"{wheel.stem}.zip"
        as_zip.write_bytes(wheel.read_bytes())
        written = run_old(old_deltaglider, s3_server, "cp", str(as_zip), "s3://mig-old-src/")
        assert written.returncode == 0, written.stderr
        expected[f"imported/{as_zip.name}"] = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert any(key.endswith(".zip.delta") for key in stored_keys(raw, "mig-old-src"))
    result = migrate(s3_server, "s3://mig-old-src", "s3://mig-old-dst/imported/", "--json")
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["migrated"] == 4, result.stdout
    restored(engine, "mig-old-dst", expected, tmp_path)
    again = migrate(s3_server, "s3://mig-old-src", "s3://mig-old-dst/imported/", "--json")
    assert summary_of(again)["skipped"] == 4  # 6.2.0 records the SHA-256 it is compared by


def test_shards_run_at_once_are_disjoint_and_complete(
    raw: Any, s3_server: local_s3.LocalS3, wheel_series: list[Path], sdist_series: list[Path]
) -> None:
    raw.create_bucket(Bucket="mig-shard-src")
    raw.create_bucket(Bucket="mig-shard-dst")
    expected = fill_plain(raw, "mig-shard-src", wheel_series, sdist_series, small=40)
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    runners = [
        subprocess.Popen(
            [
                DG,
                "migrate",
                "s3://mig-shard-src",
                "s3://mig-shard-dst",
                "--shard",
                f"{i}/2",
                "--json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    done = []
    for runner in runners:
        out, err = runner.communicate(timeout=600)
        assert runner.returncode == 0, err
        done.append(
            {
                json.loads(line)["source"]
                for line in out.splitlines()[:-1]
                if json.loads(line)["status"] == "migrated"
            }
        )
    assert not done[0] & done[1]
    assert done[0] | done[1] == {f"s3://mig-shard-src/{key}" for key in expected}
    assert done[0] and done[1]


def test_runs_killed_part_way_are_finished_by_running_again(
    raw: Any,
    s3_server: local_s3.LocalS3,
    engine: Any,
    wheel_series: list[Path],
    sdist_series: list[Path],
    tmp_path: Path,
) -> None:
    raw.create_bucket(Bucket="mig-kill-src")
    raw.create_bucket(Bucket="mig-kill-dst")
    expected = fill_plain(raw, "mig-kill-src", wheel_series, sdist_series[:1], small=40)
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    migrated_lines = 0
    rng = random.Random(11)
    for trial in range(4):
        runner = subprocess.Popen(
            [DG, "migrate", "s3://mig-kill-src", "s3://mig-kill-dst", "--jobs", "3", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert runner.stdout is not None
        wanted = rng.randint(1, 25)
        # Killed after a chosen number of finished files, not after a time.
        for seen, line in enumerate(runner.stdout, start=1):
            if json.loads(line).get("status") == "migrated":
                migrated_lines += 1
            if seen == wanted:
                runner.send_signal(signal.SIGKILL)
                break
        runner.wait()
        migrated_lines += sum(1 for line in runner.stdout if '"status": "migrated"' in line)
        assert runner.returncode == -signal.SIGKILL, f"trial {trial}: the run ended before the kill"
    final = migrate(s3_server, "s3://mig-kill-src", "s3://mig-kill-dst", "--json")
    assert final.returncode == 0, final.stderr
    summary = summary_of(final)
    assert summary["failed"] == 0 and summary["migrated"] + summary["skipped"] == len(expected)
    # Every file was written once, except those in flight when a run was killed (at most 3 each).
    assert migrated_lines + summary["migrated"] <= len(expected) + 4 * 3
    restored(engine, "mig-kill-dst", expected, tmp_path)


def test_in_place_compaction_under_readers_and_a_kill(
    raw: Any, s3_server: local_s3.LocalS3, engine: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    import threading

    import deltaglider

    raw.create_bucket(Bucket="mig-inplace")
    expected = {}
    for wheel in wheel_series:
        key = f"rel/{wheel.name.split('-')[1]}/{wheel.name}"
        raw.put_object(Bucket="mig-inplace", Key=key, Body=wheel.read_bytes())
        expected[key] = hashlib.sha256(wheel.read_bytes()).hexdigest()
    raw.put_object(Bucket="mig-inplace", Key="rel/NOTES.txt", Body=b"not delta-eligible")
    before = sum(stored_keys(raw, "mig-inplace").values())

    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        client = deltaglider.create_client(endpoint_url=s3_server.endpoint)
        while not stop.is_set():
            for key, digest in expected.items():
                try:
                    body = client.get_object(Bucket="mig-inplace", Key=key)["Body"].read()
                except Exception as error:
                    problems.append(f"{key}: {error}")
                    continue
                if hashlib.sha256(body).hexdigest() != digest:
                    problems.append(f"{key}: other bytes")
                reads[0] += 1
        client.close()

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
        runner = subprocess.Popen(
            [DG, "migrate", "s3://mig-inplace/rel/", "--in-place", "--json", "--jobs", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert runner.stdout is not None
        for seen, _line in enumerate(runner.stdout, start=1):
            if seen == 3:  # killed after its third file, mid-run
                runner.send_signal(signal.SIGKILL)
                break
        runner.wait()
        assert runner.returncode == -signal.SIGKILL
        final = migrate(s3_server, "s3://mig-inplace/rel/", "--in-place", "--json")
        assert final.returncode == 0, final.stderr
        assert summary_of(final)["failed"] == 0
        again = migrate(s3_server, "s3://mig-inplace/rel/", "--in-place", "--json")
        assert summary_of(again)["planned"] == 0  # nothing whole is left to compact
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert not problems, problems[:5]
    assert reads[0] >= len(expected)
    keys = stored_keys(raw, "mig-inplace", "rel/")
    assert set(keys) == {f"{key}.delta" for key in expected} | {"rel/NOTES.txt"}
    assert sum(stored_keys(raw, "mig-inplace").values()) < before / 3
    restored(engine, "mig-inplace", expected, tmp_path)


def test_a_cross_region_migration_is_warned_about(raw: Any, s3_server: local_s3.LocalS3) -> None:
    raw.create_bucket(Bucket="mig-region-src")
    raw.put_object(Bucket="mig-region-src", Key="a.txt", Body=b"x")
    if s3_server.kind != "moto":
        same = migrate(s3_server, "s3://mig-region-src", "s3://mig-region-src/copy/")
        assert same.returncode == 0 and "warning" not in same.stderr  # one region: nothing to say
        return
    raw.create_bucket(
        Bucket="mig-region-dst", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    result = migrate(s3_server, "s3://mig-region-src", "s3://mig-region-dst")
    assert result.returncode == 0, result.stderr
    assert (
        "deltaglider: warning: s3://mig-region-src is in us-east-1 and s3://mig-region-dst in "
        "eu-west-1: every byte crosses regions (inter-region transfer is billed per GB)"
    ) in result.stderr


def test_from_another_endpoint_our_own_objects_with_filters(
    cli: Any,
    s3_server: local_s3.LocalS3,
    raw: Any,
    engine: Any,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    """A source on another server (moto here, whatever the destination), written by this tool
    (deltas and references), part of it filtered out."""
    raw.create_bucket(Bucket="mig-far-dst")
    with local_s3.running("moto") as far:
        env = {**os.environ, "AWS_ENDPOINT_URL": far.endpoint}
        subprocess.run([DG, "mb", "s3://mig-far-src"], env=env, check=True, capture_output=True)
        expected = {}
        for wheel in wheel_series[:4]:
            key = f"rel/{wheel.name.split('-')[1]}/{wheel.name}"
            subprocess.run(
                [DG, "cp", str(wheel), f"s3://mig-far-src/{key}"],
                env=env,
                check=True,
                capture_output=True,
            )
            expected[key] = hashlib.sha256(wheel.read_bytes()).hexdigest()
        subprocess.run(
            [DG, "cp", str(wheel_series[4]), "s3://mig-far-src/skip/me.whl"],
            env=env,
            check=True,
            capture_output=True,
        )
        args = [
            "s3://mig-far-src",
            "s3://mig-far-dst",
            "--source-endpoint-url",
            far.endpoint,
            "--exclude",
            "skip/*",
            "--json",
        ]
        result = migrate(s3_server, *args)
        assert result.returncode == 0, result.stderr
        assert summary_of(result)["migrated"] == 4
        assert not any(k.startswith("skip/") for k in stored_keys(raw, "mig-far-dst"))
        restored(engine, "mig-far-dst", expected, tmp_path)
        again = migrate(s3_server, *args)
        assert summary_of(again)["skipped"] == 4  # our recorded SHA-256 on both sides
    bad = migrate(
        s3_server, "s3://mig-far-src", "s3://mig-far-dst", "--source-endpoint-url", "nohost:1"
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_undecodable_old_deltas_are_named_and_the_rest_migrates(
    raw: Any, s3_server: local_s3.LocalS3, sdist_series: list[Path], tmp_path: Path
) -> None:
    from test_core import _old_encode, put_old_delta

    raw.create_bucket(Bucket="mig-gz-src")
    raw.create_bucket(Bucket="mig-gz-dst")
    first, second = sdist_series[0], sdist_series[1]
    old = tmp_path / "old.delta"
    _old_encode(first, second, old)  # what 6.2.0 stored for a .tar.gz: not decodable
    raw.put_object(
        Bucket="mig-gz-src",
        Key="old/reference.bin",
        Body=first.read_bytes(),
        Metadata={
            "dg-file-sha256": hashlib.sha256(first.read_bytes()).hexdigest(),
            "dg-note": "reference",
        },
    )
    put_old_delta(raw, "mig-gz-src", "old/", second, old, first)
    raw.put_object(Bucket="mig-gz-src", Key="old/README.txt", Body=b"fine")
    result = migrate(s3_server, "s3://mig-gz-src", "s3://mig-gz-dst", "--json")
    assert result.returncode == 1
    summary = summary_of(result)
    assert summary["migrated"] == 1 and summary["failed"] == 1
    [failure] = summary["failures"]
    assert failure.startswith(f"s3://mig-gz-src/old/{second.name}: ")
    assert "undecodable by an older deltaglider" in failure
    text = migrate(s3_server, "s3://mig-gz-src", "s3://mig-gz-dst")
    assert f"migrate failed: s3://mig-gz-src/old/{second.name}: " in text.stderr


def test_a_progress_line_on_a_terminal(raw: Any, s3_server: local_s3.LocalS3) -> None:
    import pty

    raw.create_bucket(Bucket="mig-tty-src")
    raw.create_bucket(Bucket="mig-tty-dst")
    for number in range(3):
        raw.put_object(Bucket="mig-tty-src", Key=f"f{number}.txt", Body=b"x" * number)
    main, secondary = pty.openpty()
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    process = subprocess.run(
        [DG, "migrate", "s3://mig-tty-src", "s3://mig-tty-dst"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
        timeout=300,
        check=False,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert process.returncode == 0
    assert b"\rmigrate: 3 done, 0 already there, 0 failed" in seen.replace(b"\x1b[K", b"")
    assert process.stdout.strip().splitlines()[-1].startswith("migrate: 3 files, 3 migrated")

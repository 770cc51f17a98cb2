"""Delta chains (`references=chain`, FORMAT "Delta chains") end to end, with the CLI on real
servers: every version restores byte-identical, deleting the versions others are chained to
leaves those readable and prune frees exactly what it said, eight writers of one series at
once all read back, a SIGKILL after any write of an upload or a delete leaves every other
version readable and the command run again finishes, and deltaglider 6.2.0 refuses a chained
version instead of returning wrong bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from helpers import assert_bucket_consistent, sha256, stored_keys
from local_s3 import LocalS3
from test_from_6x import old_deltaglider, theirs  # noqa: F401 - the 6.2.0 fixture

from deltaglider.engine import Engine
from deltaglider.retention import execute_prune, plan_prune

DG = [sys.executable, "-m", "deltaglider"]
REFERENCES = "chain"  # conftest: DG_REFERENCES for every command, the engine fixture too


def environment(endpoint: str) -> dict[str, str]:
    """The CLI's environment: DG_REFERENCES=chain (REFERENCES), as the bucket's setting says."""
    return {**os.environ, "AWS_ENDPOINT_URL": endpoint}


def cli(s3_server: LocalS3, *args: str) -> subprocess.CompletedProcess[str]:
    env = environment(s3_server.endpoint)
    return subprocess.run([*DG, *args], env=env, capture_output=True, text=True, timeout=600)


def ok(s3_server: LocalS3, *args: str) -> str:
    done = cli(s3_server, *args)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def chain_bucket(
    s3_server: LocalS3, raw: Any, wheels: list[Path], engine: Engine | None = None
) -> str:
    """A bucket set to references=chain holding `wheels`, one folder per version, stored
    with the CLI (or in-process through `engine`, where only what follows is under test)."""
    name = f"dg-{uuid.uuid4().hex[:12]}"
    raw.create_bucket(Bucket=name)
    assert "cannot read them" in ok(
        s3_server, "config", f"s3://{name}", "--set", "references=chain"
    )
    for number, wheel in enumerate(wheels):
        if engine is not None:
            engine.upload(wheel, name, f"rel/1.{number}/{wheel.name}")
        else:
            ok(s3_server, "cp", str(wheel), f"s3://{name}/rel/1.{number}/")
    return name


def restores(
    s3_server: LocalS3,
    bucket: str,
    wheels: dict[int, Path],
    tmp_path: Path,
    engine: Engine | None = None,
) -> None:
    """Every version in `wheels` downloads byte-identical with a cold reference cache (the
    CLI), or verifies through `engine` (its cache bypassed: what is stored is checked)."""
    for number, wheel in wheels.items():
        key = f"rel/1.{number}/{wheel.name}"
        if engine is not None:
            assert engine.verify(bucket, key).actual_sha256 == sha256(wheel), number
            continue
        target = tmp_path / f"back-{number}-{uuid.uuid4().hex[:6]}"
        ok(s3_server, "cp", f"s3://{bucket}/{key}", str(target))
        assert sha256(target) == sha256(wheel), number


def test_a_chain_bucket_restores_every_version_and_stores_less(
    s3_server: LocalS3, engine: Engine, raw: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    bucket = chain_bucket(s3_server, raw, wheel_series)
    lines = [
        json.loads(line)
        for line in ok(s3_server, "ls", "-r", f"s3://{bucket}/", "--json").splitlines()
    ]
    assert len(lines) == len(wheel_series)
    restores(s3_server, bucket, dict(enumerate(wheel_series)), tmp_path)
    assert "8 files checked, 0 failed" in ok(s3_server, "verify", "--recursive", f"s3://{bucket}/")
    shared = f"dg-{uuid.uuid4().hex[:12]}"
    raw.create_bucket(Bucket=shared)
    for number, wheel in enumerate(wheel_series):
        ok(s3_server, "cp", str(wheel), f"s3://{shared}/rel/1.{number}/", "--references", "shared")
    assert sum(stored_keys(raw, bucket).values()) < sum(stored_keys(raw, shared).values())
    stats = json.loads(ok(s3_server, "stats", f"s3://{bucket}", "--by", "series", "--json"))
    [group] = stats["groups"]
    assert group["chain_links"] == 3 and group["grade"] in ("excellent", "good")
    assert_bucket_consistent(engine, raw, bucket)


def test_deleting_the_versions_others_are_chained_to_keeps_them_and_prune_frees_what_it_says(
    s3_server: LocalS3, engine: Engine, raw: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    bucket = chain_bucket(s3_server, raw, wheel_series)
    for number in (0, 2, 4):  # the starts and bases of the others' chains
        ok(s3_server, "rm", f"s3://{bucket}/rel/1.{number}/{wheel_series[number].name}")
    kept = {n: w for n, w in enumerate(wheel_series) if n not in (0, 2, 4)}
    restores(s3_server, bucket, kept, tmp_path)
    assert_bucket_consistent(engine, raw, bucket)
    before = sum(stored_keys(raw, bucket).values())
    plan = plan_prune(engine, bucket, "rel/", keep_last=2)  # what --dryrun prints
    result = execute_prune(engine, plan)
    freed = before - sum(stored_keys(raw, bucket).values())
    assert plan.freed_bytes == result.freed_bytes == freed > 0
    restores(s3_server, bucket, {6: wheel_series[6], 7: wheel_series[7]}, tmp_path)
    assert assert_bucket_consistent(engine, raw, bucket) == 2


def test_eight_writers_of_one_series_at_once_all_read_back(
    s3_server: LocalS3, engine: Engine, raw: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    bucket = chain_bucket(s3_server, raw, wheel_series[:1])
    env = environment(s3_server.endpoint)
    writers = [
        subprocess.Popen(
            [*DG, "cp", str(wheel), f"s3://{bucket}/rel/1.{number}/"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number, wheel in enumerate(wheel_series[1:], start=1)
    ]
    for writer in writers:
        assert writer.wait(timeout=600) == 0, writer.stderr.read() if writer.stderr else ""
    restores(s3_server, bucket, dict(enumerate(wheel_series)), tmp_path)
    assert assert_bucket_consistent(engine, raw, bucket) == len(wheel_series)


def test_deltaglider_6_refuses_a_chained_version_rather_than_returning_bytes(
    s3_server: LocalS3,
    raw: Any,
    wheel_series: list[Path],
    tmp_path: Path,
    old_deltaglider: Path,  # noqa: F811 - the fixture imported above
) -> None:
    bucket = chain_bucket(s3_server, raw, wheel_series[:4])
    for number in (1, 3):
        target = tmp_path / f"old-{number}.whl"
        done = theirs(
            old_deltaglider,
            s3_server,
            tmp_path,
            "cp",
            f"s3://{bucket}/rel/1.{number}/{wheel_series[number].name}",
            str(target),
        )
        assert done.returncode != 0, done.stdout
        assert not target.exists() or sha256(target) != sha256(wheel_series[number])
        assert not target.exists(), "6.2.0 left wrong bytes behind"


def test_migrate_into_a_chain_bucket_and_out_of_one(
    s3_server: LocalS3, engine: Engine, raw: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    plain, chained, shared = (f"dg-{uuid.uuid4().hex[:12]}" for _ in range(3))
    for name in (plain, chained, shared):
        raw.create_bucket(Bucket=name)
    for number, wheel in enumerate(wheel_series):
        raw.upload_file(str(wheel), plain, f"rel/1.{number}/{wheel.name}")

    def links(bucket: str) -> int:
        keys = [k for k in stored_keys(raw, bucket) if k.endswith("/reference.bin")]
        return sum("dg-ref-key" in raw.head_object(Bucket=bucket, Key=k)["Metadata"] for k in keys)

    ok(s3_server, "migrate", f"s3://{plain}/rel/", f"s3://{chained}/")
    assert links(chained) == len(wheel_series) - 1
    restores(s3_server, chained, dict(enumerate(wheel_series)), tmp_path)
    out = subprocess.run(
        [*DG, "migrate", f"s3://{chained}/rel/", f"s3://{shared}/"],
        env={**environment(s3_server.endpoint), "DG_REFERENCES": "shared"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert links(shared) == 0 and any(k.endswith(".delta") for k in stored_keys(raw, shared))
    restores(s3_server, shared, dict(enumerate(wheel_series)), tmp_path)
    assert assert_bucket_consistent(engine, raw, shared) == len(wheel_series)

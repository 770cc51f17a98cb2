"""Races between processes: uploads against a `rm --recursive` of the same folder, and two
writers of one key. The end state is always one of the writes, complete and verifiable, and
never a delta without its reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from helpers import assert_bucket_consistent, sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine

pytestmark = pytest.mark.slow


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deltaglider", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("references", ["shared", "folder"], indirect=True)
def test_uploads_racing_a_recursive_delete_never_orphan_a_delta(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    references: str,
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    for round_ in range(3):
        prefix = f"race-{round_}/"
        engine.upload(wheel_series[0], bucket, f"{prefix}{wheel_series[0].name}")
        uploads = [start(env, "cp", str(w), f"s3://{bucket}/{prefix}") for w in wheel_series[1:]]
        remover = start(env, "rm", "--recursive", f"s3://{bucket}/{prefix}")
        outputs = [process.communicate(timeout=300) for process in [*uploads, remover]]
        # every upload that reported success either survived intact or was deleted whole
        assert_bucket_consistent(engine, raw, bucket, prefix)
        keys = stored_keys(raw, bucket, prefix)
        for process, wheel, output in zip(uploads, wheel_series[1:], outputs, strict=False):
            assert process.returncode == 0, output
            if f"{prefix}{wheel.name}.delta" in keys or f"{prefix}{wheel.name}" in keys:
                assert engine.verify(bucket, f"{prefix}{wheel.name}").actual_sha256 == sha256(wheel)


def test_two_writers_of_one_key_leave_one_complete_write(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    engine.upload(wheel_series[0], bucket, "w/base.whl")
    unrelated = tmp_path / "unrelated.whl"
    unrelated.write_bytes(os.urandom(140_000))  # will be stored direct: the other form
    for round_ in range(4):
        contenders = [wheel_series[1 + round_], unrelated]
        writers = [start(env, "cp", str(path), f"s3://{bucket}/w/app.whl") for path in contenders]
        for writer in writers:
            writer.communicate(timeout=300)
            assert writer.returncode == 0
        result = engine.verify(bucket, "w/app.whl")
        assert result.actual_sha256 in {sha256(p) for p in contenders}
        listed = [e.key for e in engine.listing(bucket, "w/", recursive=True)]
        assert listed == ["w/app.whl", "w/base.whl"]
        assert_bucket_consistent(engine, raw, bucket, "w/")
    # once the race is over, deleting the key removes it for good (no older form resurfaces)
    engine.upload(wheel_series[2], bucket, "w/app.whl")
    engine.delete(bucket, "w/app.whl")
    assert [e.key for e in engine.listing(bucket, "w/", recursive=True)] == ["w/base.whl"]


@pytest.mark.parametrize("command", ["rm", "prune"])
@pytest.mark.parametrize("references", ["shared", "folder"], indirect=True)
def test_a_key_deleted_by_someone_else_after_the_listing_does_not_stop_the_run(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    command: str,
    references: str,
) -> None:
    """Between `rm --recursive`'s (or `prune`'s) listing and its deletes, another user deletes
    one of the listed versions (the proxy does it as soon as the listing came back): the run
    prints `delete:` for it too, goes on with the rest and exits 0, and what is left is
    consistent (no reference without a delta, no delta without a reference)."""
    for number, wheel in enumerate(wheel_series[:5]):
        engine.upload(wheel, bucket, f"rel/1.{number}/{wheel.name}")
    doomed = f"rel/1.1/{wheel_series[1].name}"
    with FaultProxy(s3_server.endpoint, rate=0.0) as proxy:
        deleted: list[object] = []
        proxy.once_after("LIST", lambda: deleted.append(engine.delete(bucket, doomed)))
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint}
        args = ["rm", "--recursive"] if command == "rm" else ["prune", "--keep-last", "2"]
        process = start(env, *args, f"s3://{bucket}/rel/")
        stdout, stderr = process.communicate(timeout=300)
    assert deleted and process.returncode == 0, stderr
    assert "error" not in stderr and "Traceback" not in stderr, stderr
    assert f"delete: s3://{bucket}/{doomed}" in stdout, stdout
    kept = [e.key for e in engine.listing(bucket, "rel/", recursive=True)]
    assert kept == (
        [] if command == "rm" else [f"rel/1.{n}/{wheel_series[n].name}" for n in (3, 4)]
    )
    assert assert_bucket_consistent(engine, raw, bucket) == len(kept)
    if command == "rm":  # nothing of the series is left, references and markers included
        assert [k for k in stored_keys(raw, bucket) if "/stats/" not in k] == []

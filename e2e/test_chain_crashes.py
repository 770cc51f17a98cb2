"""SIGKILL after each write of a chain upload and of a chain rm (FORMAT "Delta chains"): every
other version stays readable, the command run again finishes, and `cleanup` leaves what an
uninterrupted run leaves. SeaweedFS only: the steps are the client's requests, the same on
both servers, and moto adds minutes to CI for no other code path."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from helpers import assert_bucket_consistent, stored_keys
from local_s3 import LocalS3
from test_chain_buckets import DG, chain_bucket, cli, environment, restores
from test_prune import WRITES, run_killed_after_write

from deltaglider.engine import Engine

SERVERS = ["seaweedfs"]
REFERENCES = "chain"


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["upload", "delete"])
def test_a_chain_write_killed_after_any_of_its_writes_leaves_the_rest_readable(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    wheel_series: list[Path],
    tmp_path: Path,
    operation: str,
) -> None:
    """Upload of version 4 (a link against version 0, and its marker, self-delta and marker),
    or rm of version 3 once version 2 is gone (its link goes, then the link it was made
    against, each through the trash), SIGKILLed right after its N-th write reached the
    server, for every N: every other version reads back, and the command run again exits 0
    and leaves every version it should readable, with nothing for `cleanup` to repair; after
    a killed rm, `cleanup` leaves exactly what an uninterrupted rm leaves (it can leave only
    what no file needs). A killed upload may leave a link no version uses yet; the re-run
    finds it the series' newest member and chains to it (the same file: a few bytes)."""
    wheels = wheel_series[:5] if operation == "upload" else wheel_series[:4]
    target = 4 if operation == "upload" else 3
    if operation == "upload":
        command = [*DG, "cp", str(wheels[4]), "s3://{bucket}/rel/1.4/"]
    else:
        command = [*DG, "rm", f"s3://{{bucket}}/rel/1.3/{wheels[3].name}"]

    def prepared() -> str:
        bucket = chain_bucket(s3_server, raw, wheels[:4], engine)
        if operation == "delete":
            engine.delete(bucket, f"rel/1.2/{wheels[2].name}")
        return bucket

    def left(bucket: str) -> list[Any]:
        return engine.cleanup(bucket, "", older_than=0, dryrun=True).actions

    first = prepared()
    with FaultProxy(s3_server.endpoint, rate=0.0) as proxy:
        env = environment(proxy.endpoint)
        subprocess.run(
            [part.format(bucket=first) for part in command],
            env=env,
            check=True,
            capture_output=True,
        )
        writes = sum(proxy.operations[name] for name in WRITES)
    assert writes >= 4, writes
    gone = {2} if operation == "delete" else set()
    others = {n: w for n, w in enumerate(wheels) if n != target and n not in gone}
    expected = {**others, **({4: wheels[4]} if operation == "upload" else {})}
    for step in range(1, writes):
        bucket = prepared()
        command_here = [part.format(bucket=bucket) for part in command]
        killed = run_killed_after_write(command_here, s3_server, step)
        assert killed == -signal.SIGKILL, step
        restores(s3_server, bucket, others, tmp_path, engine)
        again = cli(s3_server, *command_here[3:])
        assert again.returncode == 0, (step, again.stderr)
        restores(s3_server, bucket, expected, tmp_path, engine)
        assert assert_bucket_consistent(engine, raw, bucket) == len(expected), step
        engine.cleanup(bucket, "", older_than=0)  # what a killed rm left no file needs
        assert left(bucket) == [], step
        if operation == "delete":  # an upload's re-run may chain to the link its kill left
            shapes = sorted(_shape(k) for k in stored_keys(raw, bucket))
            assert shapes == sorted(_shape(k) for k in stored_keys(raw, first)), (step, shapes)


def _shape(key: str) -> str:
    """A stored key without what differs between buckets (slot names, marker hashes)."""
    parts = key.split("/")
    if key.startswith(".deltaglider/refs/"):
        return "/".join(["refs", "slot", *parts[4:-1], "*" if parts[-2] == "users" else parts[-1]])
    return key

"""SIGKILL the CLI at random moments of reference creation, delta upload, multipart upload,
recursive delete, deleting the version folder that made a shared reference while others use it,
and sync (12 trials per server; each at a random moment). After every kill: each object in the bucket
reads back and verifies, `deltaglider cleanup` aborts the unfinished multipart upload, and the
interrupted command, run again, succeeds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_bucket_consistent, sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine

pytestmark = pytest.mark.slow
TRIALS_PER_OPERATION = 2
KILL_ATTEMPTS = 4
MIB = 1024 * 1024


def test_sigkill_at_random_moments_never_leaves_anything_unreadable(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    rng = random.Random(2026)
    base = rng.randbytes(12 * MIB)
    v1, v2 = tmp_path / "image-1.tar", tmp_path / "image-2.tar"
    v1.write_bytes(base)
    v2.write_bytes(base[: 7 * MIB] + rng.randbytes(4096) + base[7 * MIB + 4096 :])
    dist = tmp_path / "dist"
    dist.mkdir()
    for wheel in wheel_series:
        (dist / wheel.name).write_bytes(wheel.read_bytes())
    (dist / v1.name).write_bytes(v1.read_bytes())
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "DG_MULTIPART_THRESHOLD_MB": "5",
        "DG_MULTIPART_CHUNKSIZE_MB": "5",
    }

    def cli(*args: str) -> list[str]:
        return [sys.executable, "-m", "deltaglider", *args]

    def upload_wheels(prefix: str) -> None:
        for wheel in wheel_series:
            engine.upload(wheel, bucket, f"{prefix}{wheel.name}")

    def version_folders(prefix: str) -> dict[str, Path]:
        """One folder per version; the first made the series' shared reference."""
        return {f"{prefix}{w.name.split('-')[1]}/{w.name}": w for w in wheel_series[:4]}

    def upload_versions(prefix: str) -> None:
        for key, wheel in version_folders(prefix).items():
            engine.upload(wheel, bucket, key)

    operations: dict[
        str, tuple[Callable[[str], None], Callable[[str], list[str]], Callable[[str], None]]
    ] = {
        "reference creation": (
            lambda p: None,
            lambda p: cli("cp", str(v1), f"s3://{bucket}/{p}"),
            lambda p: expect(engine, bucket, {f"{p}{v1.name}": v1}),
        ),
        "delta upload": (
            lambda p: engine.upload(v1, bucket, f"{p}{v1.name}") and None,
            lambda p: cli("cp", str(v2), f"s3://{bucket}/{p}"),
            lambda p: expect(engine, bucket, {f"{p}{v1.name}": v1, f"{p}{v2.name}": v2}),
        ),
        "multipart upload": (
            lambda p: None,
            lambda p: cli("cp", "--no-delta", str(v2), f"s3://{bucket}/{p}"),
            lambda p: expect(engine, bucket, {f"{p}{v2.name}": v2}),
        ),
        "recursive delete": (
            upload_wheels,
            lambda p: cli("rm", "--recursive", f"s3://{bucket}/{p}"),
            lambda p: expect(engine, bucket, {}, prefix=p, raw=raw),
        ),
        "retention delete": (
            upload_versions,
            lambda p: cli(
                "rm", "--recursive", f"s3://{bucket}/{p}{wheel_series[0].name.split('-')[1]}/"
            ),
            lambda p: expect(engine, bucket, dict(list(version_folders(p).items())[1:])),
        ),
        "sync": (
            lambda p: None,
            lambda p: cli("sync", str(dist), f"s3://{bucket}/{p}"),
            lambda p: expect(engine, bucket, {f"{p}{f.name}": f for f in dist.iterdir()}),
        ),
    }
    killed = 0
    for name, (setup, command, check) in operations.items():
        probe = f"probe-{name.replace(' ', '-')}/"
        setup(probe)
        started = time.monotonic()
        subprocess.run(command(probe), env=env, check=True, capture_output=True, timeout=300)
        duration = time.monotonic() - started
        for trial in range(TRIALS_PER_OPERATION):
            # letters, not digits: each trial is its own series, so it really creates references
            prefix = f"{name.replace(' ', '-')}-{'abcdefgh'[trial]}/"
            setup(prefix)
            # A run can finish sooner than the probe did (a warm machine); then the same trial
            # is run again on a fresh prefix with the kill moved earlier, so every trial ends
            # in a real SIGKILL.
            moment = rng.uniform(0.15, 0.9)
            for attempt in range(KILL_ATTEMPTS):
                if attempt:
                    prefix = f"{name.replace(' ', '-')}-{'abcdefgh'[trial]}{'pqrs'[attempt]}/"
                    setup(prefix)
                    moment /= 2
                process = subprocess.Popen(
                    command(prefix), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                time.sleep(moment * duration)
                cut_short = process.poll() is None
                if cut_short:
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
                if cut_short:
                    killed += 1
                    break
                assert_bucket_consistent(engine, raw, bucket, prefix)

            assert_bucket_consistent(engine, raw, bucket, prefix)
            repaired = subprocess.run(
                cli("cleanup", "--older-than", "0", f"s3://{bucket}"),
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert repaired.returncode == 0, (name, trial, repaired.stdout, repaired.stderr)
            assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
            again = subprocess.run(
                command(prefix), env=env, capture_output=True, text=True, timeout=300
            )
            assert again.returncode == 0, (name, trial, again.stderr)
            check(prefix)
            assert_bucket_consistent(engine, raw, bucket, prefix)
    assert killed == TRIALS_PER_OPERATION * len(operations)  # every trial really was cut short
    # what killed processes left in their temp directory went with the next process
    assert list(scratch.iterdir()) == []


def expect(
    engine: Engine, bucket: str, files: dict[str, Path], *, prefix: str = "", raw: Any = None
) -> None:
    """The logical objects named exist and are byte-identical to the files given."""
    for key, source in files.items():
        result = engine.verify(bucket, key)
        assert result.actual_sha256 == sha256(source), key
    if raw is not None and not files:
        assert stored_keys(raw, bucket, prefix) == {}

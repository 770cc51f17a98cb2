"""examples/release.mk run by make, as a project's Makefile would include it, against a real
server: two versions uploaded, one downloaded byte-identical, both verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import local_s3
from conftest import ROOT
from helpers import sha256, stored_keys

from deltaglider.engine import Engine


def make(
    target: str, workdir: Path, server: local_s3.LocalS3, **variables: str
) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", "-f", str(ROOT / "examples" / "release.mk"), target]
    command += [f"{name}={value}" for name, value in variables.items()]
    env = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint}
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def test_release_targets_upload_download_and_verify(
    tmp_path: Path, s3_server: local_s3.LocalS3, bucket: str, raw: object, wheel_series: list[Path]
) -> None:
    deltaglider = str(Path(sys.executable).parent / "deltaglider")
    common = {"DELTAGLIDER": deltaglider, "RELEASE_BUCKET": f"s3://{bucket}/app"}
    for version, wheel in (("1.0.0", wheel_series[0]), ("1.1.0", wheel_series[1])):
        dist = tmp_path / "dist"
        dist.mkdir(exist_ok=True)
        for old in dist.iterdir():
            old.unlink()
        (dist / wheel.name).write_bytes(wheel.read_bytes())
        uploaded = make("release-upload", tmp_path, s3_server, RELEASE_VERSION=version, **common)
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        assert (
            f"upload: dist/{wheel.name} to s3://{bucket}/app/{version}/{wheel.name}"
            in uploaded.stdout
        )

    stored = stored_keys(raw, bucket, "app/1.1.0/")
    assert sum(stored.values()) < wheel_series[1].stat().st_size // 5  # a delta, not a copy

    downloaded = make("release-download", tmp_path, s3_server, RELEASE_VERSION="1.1.0", **common)
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
    restored = tmp_path / "downloads" / "1.1.0" / wheel_series[1].name
    assert sha256(restored) == sha256(wheel_series[1])

    for version in ("1.0.0", "1.1.0"):
        verified = make("release-verify", tmp_path, s3_server, RELEASE_VERSION=version, **common)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_release_targets_refuse_missing_inputs(
    tmp_path: Path, s3_server: local_s3.LocalS3, bucket: str
) -> None:
    common = {
        "DELTAGLIDER": str(Path(sys.executable).parent / "deltaglider"),
        "RELEASE_BUCKET": f"s3://{bucket}/app",
    }
    no_dist = make("release-upload", tmp_path, s3_server, RELEASE_VERSION="2.0.0", **common)
    assert no_dist.returncode == 2
    assert "error: dist/ does not exist; build first" in no_dist.stdout
    missing = make("release-verify", tmp_path, s3_server, RELEASE_VERSION="9.9.9", **common)
    assert missing.returncode != 0


def test_the_indexed_job_example_checks_every_file_once(
    tmp_path: Path,
    s3_server: local_s3.LocalS3,
    engine: Engine,
    bucket: str,
    wheel_series: list[Path],
) -> None:
    """examples/verify-job.yaml's command, run as its 8 pods would (JOB_COMPLETION_INDEX 0..7)
    against a bucket of 10 files: every file is checked by exactly one pod."""
    from ruamel.yaml import YAML

    job = YAML(typ="safe").load((ROOT / "examples" / "verify-job.yaml").read_text())
    pods = job["spec"]["completions"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    line = container["args"][0].replace("s3://releases/", f"s3://{bucket}/")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, **s3_server.env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for number in range(10):  # stored in-process: the pods' commands are what is checked
        wheel = wheel_series[number % 2]
        engine.upload(wheel, bucket, f"{number}/{wheel.name}")
    checked: list[str] = []
    for index in range(pods):
        done = subprocess.run(
            [*container["command"], line],
            env={**env, "JOB_COMPLETION_INDEX": str(index)},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        records = [json.loads(record) for record in done.stdout.splitlines()]
        checked += [r["source"] for r in records if "source" in r]
    assert sorted(checked) == sorted(
        f"s3://{bucket}/{n}/{wheel_series[n % 2].name}" for n in range(10)
    )

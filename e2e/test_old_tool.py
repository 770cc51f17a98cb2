"""Both directions against the real deltaglider 6.2.0 (installed from PyPI into its own
virtualenv under .cache/): it reads what we write, we read what it writes (FORMAT preamble)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from artifacts import venv_tool
from helpers import sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine
from deltaglider.models import StoredAs

CONTAINERS = True  # also against the testcontainers servers (conftest)

OLD_VERSION = "6.2.0"


@pytest.fixture(scope="session")
def old_deltaglider() -> Path:
    """The 6.2.0 console script in its own virtualenv."""
    return venv_tool(f"deltaglider-{OLD_VERSION}", f"deltaglider=={OLD_VERSION}", "deltaglider")


def run_old(binary: Path, server: LocalS3, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint, "DG_SUPPRESS_DEPRECATION": "1"}
    env.pop("PYTHONPATH", None)  # the old tool runs from its own virtualenv, nothing of ours
    return subprocess.run(
        [str(binary), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_old_tool_reads_what_we_write(
    old_deltaglider: Path,
    s3_server: LocalS3,
    engine: Engine,
    bucket: str,
    raw: Any,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    """Both layouts: one folder for the series, and one folder per version, where every delta
    is made against a shared reference under `.deltaglider/refs/` (6.2.0 finds it by
    `dg-ref-key`)."""
    series = wheel_series[:4]
    keys = [f"ours/{wheel.name}" for wheel in series]
    keys += [f"per-version/{wheel.name.split('-')[1]}/{wheel.name}" for wheel in series]
    results = [
        engine.upload(wheel, bucket, key) for wheel, key in zip(series * 2, keys, strict=True)
    ]
    assert [r.stored_as for r in results[4:]] == [StoredAs.REFERENCE] + [StoredAs.DELTA] * 3
    assert any(k.startswith(".deltaglider/refs/") for k in stored_keys(raw, bucket))
    for wheel, key in zip(series * 2, keys, strict=True):
        out = tmp_path / key
        result = run_old(old_deltaglider, s3_server, "cp", f"s3://{bucket}/{key}", str(out))
        assert result.returncode == 0, result.stderr[-2000:]
        assert sha256(out) == sha256(wheel)


def test_old_tool_cannot_read_zstd_deltas_as_documented(
    old_deltaglider: Path,
    s3_server: LocalS3,
    engine: Engine,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    """`--codec zstd` objects need this deltaglider: 6.2.0 fails on them (and writes no file
    claiming to be the artifact), as README and `--help` say."""
    zstd_engine = Engine(replace(engine.settings, codec="zstd"))
    for wheel in wheel_series[:2]:
        zstd_engine.upload(wheel, bucket, f"z/{wheel.name}")
    out = tmp_path / wheel_series[1].name
    result = run_old(
        old_deltaglider, s3_server, "cp", f"s3://{bucket}/z/{wheel_series[1].name}", str(out)
    )
    assert result.returncode != 0
    assert not out.exists() or sha256(out) != sha256(wheel_series[1])
    assert engine.verify(bucket, f"z/{wheel_series[1].name}").actual_sha256 == sha256(
        wheel_series[1]
    )


def test_we_read_and_extend_what_old_tool_writes(
    old_deltaglider: Path,
    s3_server: LocalS3,
    engine: Engine,
    bucket: str,
    raw: Any,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    old, new = wheel_series[:3], wheel_series[3]
    # 6.2.0 stores .whl direct; as .zip (same bytes) it makes its reference and deltas.
    # (It puts them in the root space whatever the destination prefix: one more old bug.)
    for wheel in old:
        as_zip = tmp_path / f"{wheel.stem}.zip"
        as_zip.write_bytes(wheel.read_bytes())
        result = run_old(old_deltaglider, s3_server, "cp", str(as_zip), f"s3://{bucket}/")
        assert result.returncode == 0, result.stderr[-2000:]
    keys = stored_keys(raw, bucket)
    assert "reference.bin" in keys
    assert f"{old[1].stem}.zip.delta" in keys
    for wheel in old:
        out = tmp_path / wheel.name
        engine.download(bucket, f"{wheel.stem}.zip", out)
        assert sha256(out) == sha256(wheel)
    # a new release into the old tool's space is a delta against its reference ...
    assert engine.upload(new, bucket, f"{new.stem}.zip").stored_as is StoredAs.DELTA
    # ... which the old tool reads back
    out = tmp_path / "back" / new.name
    out.parent.mkdir()
    result = run_old(old_deltaglider, s3_server, "cp", f"s3://{bucket}/{new.stem}.zip", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sha256(out) == sha256(new)

"""Shared references on real servers (the default): one folder per version saves like one
folder, a second series in the same folders gets its own reference, deleting version folders
never breaks the others, sync/copy/cleanup know shared references, and the bucket's setting
chooses folder references."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun
from helpers import assert_bucket_consistent, sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine


def version_of(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def upload_per_version(cli: CliRun, bucket: str, wheels: list[Path]) -> list[str]:
    """`deltaglider cp WHEEL s3://bucket/releases/<version>/`, as a release job does."""
    lines = []
    for wheel in wheels:
        result = cli("cp", str(wheel), f"s3://{bucket}/releases/{version_of(wheel)}/")
        assert result.exit_code == 0, result.output
        lines.append(result.stdout)
    return lines


def shared_references(raw: Any, bucket: str) -> list[str]:
    return sorted(
        k for k in stored_keys(raw, bucket, ".deltaglider/refs/") if k.endswith("/reference.bin")
    )


def test_one_folder_per_version_stores_deltas(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    lines = upload_per_version(cli, bucket, wheel_series)
    assert "(reference: " in lines[0] and "new reference for its series" in lines[0]
    assert all("(delta: " in line for line in lines[1:]), lines
    keys = stored_keys(raw, bucket)
    assert not any(k.endswith("/reference.bin") and k.startswith("releases/") for k in keys)
    assert len(shared_references(raw, bucket)) == 1
    logical = sum(w.stat().st_size for w in wheel_series)
    assert sum(keys.values()) < 0.25 * logical
    listed = cli("ls", f"s3://{bucket}/", "--recursive").stdout.split()
    assert [name for name in listed if "/" in name] == [
        f"releases/{version_of(w)}/{w.name}" for w in wheel_series
    ]
    assert cli("ls", f"s3://{bucket}/").stdout.split() == ["PRE", "releases/"]
    assert assert_bucket_consistent(engine, raw, bucket) == len(wheel_series)


def test_a_second_series_in_the_same_folders_gets_its_own_reference(
    cli: CliRun,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    """Two artifacts per version folder (a wheel and the same release renamed as another
    package's zip): each series encodes against its own reference."""
    for wheel in wheel_series[:4]:
        other = tmp_path / f"tool-{version_of(wheel)}.zip"
        other.write_bytes(wheel.read_bytes()[::-1])  # same size, unrelated to the wheel
        for path in (wheel, other):
            cli("cp", str(path), f"s3://{bucket}/releases/{version_of(wheel)}/")
    assert len(shared_references(raw, bucket)) == 2
    assert assert_bucket_consistent(engine, raw, bucket) == 8


def test_deleting_version_folders_never_breaks_the_others(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    upload_per_version(cli, bucket, wheel_series)
    reference = shared_references(raw, bucket)
    for wheel in wheel_series[:-1]:  # retention: drop old versions, first one included
        result = cli("rm", "--recursive", f"s3://{bucket}/releases/{version_of(wheel)}/")
        assert result.exit_code == 0, result.output
        assert shared_references(raw, bucket) == reference
        assert_bucket_consistent(engine, raw, bucket)
    last = wheel_series[-1]
    key = f"releases/{version_of(last)}/{last.name}"
    assert engine.verify(bucket, key).actual_sha256 == sha256(last)
    assert cli("rm", f"s3://{bucket}/{key}").exit_code == 0
    assert stored_keys(raw, bucket) == {}  # the reference and its markers went last


def test_sync_delete_and_copies_keep_what_deltas_need(
    cli: CliRun,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    for wheel in wheel_series[:4]:
        folder = dist / version_of(wheel)
        folder.mkdir(parents=True)
        (folder / wheel.name).write_bytes(wheel.read_bytes())
    assert cli("sync", str(dist), f"s3://{bucket}/releases/").exit_code == 0
    for wheel in wheel_series[:2]:
        for path in (dist / version_of(wheel)).iterdir():
            path.unlink()
    result = cli("sync", str(dist), f"s3://{bucket}/releases/", "--delete")
    assert result.exit_code == 0, result.output
    assert assert_bucket_consistent(engine, raw, bucket) == 2
    other = f"{bucket}-copy"
    raw.create_bucket(Bucket=other)
    result = cli("cp", "--recursive", f"s3://{bucket}/releases/", f"s3://{other}/mirror/")
    assert result.exit_code == 0, result.output
    assert len(shared_references(raw, other)) == 1
    assert assert_bucket_consistent(engine, raw, other) == 2


def test_bucket_setting_chooses_folder_references(
    cli: CliRun,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DG_REFERENCES")  # the bucket decides
    assert "references = shared" in cli("config", f"s3://{bucket}").stdout.splitlines()
    result = cli("config", f"s3://{bucket}", "--set", "references=folder")
    assert "references = folder" in result.stdout.splitlines()
    assert "config.json" in str(stored_keys(raw, bucket, ".deltaglider/"))
    upload_per_version(cli, bucket, wheel_series[:2])
    keys = stored_keys(raw, bucket)
    assert {f"releases/{version_of(w)}/reference.bin" for w in wheel_series[:2]} <= set(keys)
    assert shared_references(raw, bucket) == []
    bad = cli("config", f"s3://{bucket}", "--set", "references=elsewhere")
    assert bad.exit_code == 2 and "references must be one of" in bad.stderr
    override = cli("cp", str(wheel_series[2]), f"s3://{bucket}/x/", "--references", "shared")
    assert "new reference for its series" in override.stdout


def test_cleanup_repairs_shared_reference_leftovers(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    upload_per_version(cli, bucket, wheel_series[:3])
    markers = sorted(k for k in stored_keys(raw, bucket) if "/users/" in k)
    raw.delete_object(Bucket=bucket, Key=markers[0])  # killed between marker and delta writes
    for wheel in wheel_series[:3]:  # killed after deleting deltas, before their markers
        raw.delete_object(Bucket=bucket, Key=f"releases/{version_of(wheel)}/{wheel.name}.delta")
    result = cli("cleanup", f"s3://{bucket}", "--older-than", "0")
    assert result.exit_code == 0, result.output
    assert stored_keys(raw, bucket) == {}


@pytest.mark.slow
def test_new_versions_racing_retention_of_old_ones(
    s3_server: LocalS3, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    """New version folders are uploaded while `rm --recursive` removes the old ones, which made
    the series' reference: every upload that reported success reads back."""
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    old, new = wheel_series[:3], wheel_series[3:]
    for wheel in old:
        engine.upload(wheel, bucket, f"releases/{version_of(wheel)}/{wheel.name}")

    def start(*args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "deltaglider", *args]
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    uploads = [start("cp", str(w), f"s3://{bucket}/releases/{version_of(w)}/") for w in new]
    removals = [start("rm", "--recursive", f"s3://{bucket}/releases/{version_of(w)}/") for w in old]
    for process in [*uploads, *removals]:
        output = process.communicate(timeout=300)
        assert process.returncode == 0, output
    assert assert_bucket_consistent(engine, raw, bucket) == len(new)
    for wheel in new:
        key = f"releases/{version_of(wheel)}/{wheel.name}"
        assert engine.verify(bucket, key).actual_sha256 == sha256(wheel)

"""What one file costs in requests (issue: per-file speed), counted by a proxy in front of the
real server: a delta upload and download, a second process reusing the persistent reference
cache, many small files synced up and down, the bucket's codec setting and the remembered
conditional-write probe. Counts, never timings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from faultproxy import FaultProxy
from helpers import metadata, sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.cli import main
from deltaglider.codec import XDELTA3, ZSTD


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint, rate=0.0) as counting:
        yield counting


def run(proxy: FaultProxy, *args: str) -> Result:
    """One `deltaglider` command through the counting proxy, its counts started afresh."""
    proxy.reset_counts()
    result = CliRunner().invoke(main, ["--endpoint-url", proxy.endpoint, *args])
    assert result.exit_code == 0, result.output
    return result


def per_version(proxy: FaultProxy, bucket: str, wheels: list[Path]) -> None:
    for wheel in wheels:
        run(proxy, "cp", str(wheel), f"s3://{bucket}/releases/{wheel.name.split('-')[1]}/")


def test_a_delta_upload_and_download_cost_a_handful_of_requests(
    proxy: FaultProxy,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Third wheel of a series, one folder per version: the HEADs of both forms, the
    settings, one listing page of the series, the user marker, one listing page of the
    reference's slot (no removal under way), the delta, the marker's HEAD and the other
    form's HEAD; the reference bytes come from the persistent cache the earlier
    commands filled. Its download: two HEADs and the delta's GET (one more GET with a cold
    cache)."""
    per_version(proxy, bucket, wheel_series[:2])
    third = wheel_series[2]
    run(proxy, "cp", str(third), f"s3://{bucket}/releases/3/")
    upload = dict(proxy.operations)
    assert upload == {"GET": 1, "HEAD": 4, "LIST": 2, "PUT": 2}, upload
    assert not any("/refs/" in path and op == "GET" for op, path in proxy.paths)

    target = tmp_path / "warm" / third.name
    run(proxy, "cp", f"s3://{bucket}/releases/3/{third.name}", str(target))
    assert dict(proxy.operations) == {"HEAD": 2, "GET": 1}, proxy.operations
    assert sha256(target) == sha256(third)

    monkeypatch.setenv("DG_CACHE_DIR", str(tmp_path / "empty-cache"))  # the next job's first step
    cold = tmp_path / "cold" / third.name
    run(proxy, "cp", f"s3://{bucket}/releases/3/{third.name}", str(cold))
    assert dict(proxy.operations) == {"HEAD": 2, "GET": 2}, proxy.operations
    assert sha256(cold) == sha256(third)


def small_tree(root: Path, count: int) -> Path:
    for index in range(count):
        folder = root / f"part{index % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        if index % 3 == 0:
            (folder / f"config-{index}.json").write_text(json.dumps({"index": index}))
        elif index % 3 == 1:
            (folder / f"notes-{index}.txt").write_text(f"line {index}\n" * (index % 40 + 1))
        else:
            (folder / f"blob-{index}.bin").write_bytes(os.urandom(index * 7 % 3000 + 1))
    return root


def test_sync_of_small_files_costs_one_request_per_file_each_way(
    proxy: FaultProxy, bucket: str, tmp_path: Path
) -> None:
    """Files that are not delta-eligible, into an empty prefix and back into an empty folder:
    the listings say what exists, so each file is one PUT up and one GET down."""
    tree = small_tree(tmp_path / "site", 60)
    run(proxy, "sync", str(tree), f"s3://{bucket}/site/")
    up = dict(proxy.operations)
    assert up.get("PUT") == 60 and up.get("HEAD", 0) == 0, up
    assert sum(up.values()) <= 60 + 3, up  # + the listing and the bucket's settings
    back = tmp_path / "back"
    run(proxy, "sync", f"s3://{bucket}/site/", str(back))
    down = dict(proxy.operations)
    assert down.get("GET") == 60 and down.get("HEAD", 0) == 0, down
    for path in tree.rglob("*"):
        if path.is_file():
            assert (back / path.relative_to(tree)).read_bytes() == path.read_bytes()
    run(proxy, "sync", str(tree), f"s3://{bucket}/site/")  # unchanged: nothing sent
    assert proxy.operations.get("PUT", 0) == 0


def test_the_bucket_codec_setting_is_used_by_every_writer_unless_told_otherwise(
    proxy: FaultProxy, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    shown = run(proxy, "config", f"s3://{bucket}", "--set", "codec=zstd").stdout
    assert "codec = zstd" in shown.splitlines()
    per_version(proxy, bucket, wheel_series[:2])
    second = f"releases/{wheel_series[1].name.split('-')[1]}/{wheel_series[1].name}"
    assert metadata(raw, bucket, f"{second}.delta")["dg-codec"] == ZSTD.tag
    run(proxy, "cp", str(wheel_series[2]), f"s3://{bucket}/x/", "--codec", "xdelta3")
    assert metadata(raw, bucket, f"x/{wheel_series[2].name}.delta")["dg-codec"] == (XDELTA3.tag)
    for key, wheel in ((second, wheel_series[1]), (f"x/{wheel_series[2].name}", wheel_series[2])):
        target = tmp_path / key
        run(proxy, "cp", f"s3://{bucket}/{key}", str(target))
        assert sha256(target) == sha256(wheel)
    run(proxy, "config", f"s3://{bucket}", "--set", "codec=default")
    run(proxy, "cp", str(wheel_series[3]), f"s3://{bucket}/y/")
    assert metadata(raw, bucket, f"y/{wheel_series[3].name}.delta")["dg-codec"] == (XDELTA3.tag)
    bad = CliRunner().invoke(
        main, ["--endpoint-url", proxy.endpoint, "config", f"s3://{bucket}", "--set", "codec=lzma"]
    )
    assert bad.exit_code == 2 and "codec must be one of" in bad.output


def test_the_conditional_write_probe_runs_once_per_bucket_not_per_process(
    proxy: FaultProxy,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Folder references: the first upload that creates one probes If-None-Match and records
    the answer in the bucket's settings; later processes read it there."""
    monkeypatch.delenv("DG_REFERENCES")
    run(proxy, "config", f"s3://{bucket}", "--set", "references=folder")
    probes = []
    for index, wheel in enumerate(wheel_series[:3]):
        run(proxy, "cp", str(wheel), f"s3://{bucket}/v{index}/")
        probes.append(sum("/.deltaglider/probe/" in path for _, path in proxy.paths))
    assert probes[0] >= 1 and probes[1:] == [0, 0], probes
    settings = json.loads(
        raw.get_object(Bucket=bucket, Key=".deltaglider/config.json")["Body"].read()
    )
    assert isinstance(settings["conditional_writes"], bool)
    assert not stored_keys(raw, bucket, ".deltaglider/probe/")
    shown = run(proxy, "config", f"s3://{bucket}", "--set", "conditional_writes=probe").stdout
    assert "conditional_writes = not probed yet" in shown.splitlines()


def test_a_large_server_side_copy_goes_through_the_transfer_manager(
    settings: Any, raw: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects over 4 GiB are copied as multipart by s3transfer on the plain botocore client
    (shown here with the limit lowered, and a part size that forces several parts)."""
    from deltaglider import s3

    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", 1024)
    store = s3.Store(s3.make_client(settings.with_overrides(max_attempts=2)), settings)
    store.multipart_chunksize = 5 * 1024 * 1024
    body = os.urandom(12 * 1024 * 1024)
    raw.put_object(Bucket=bucket, Key="big/src", Body=body, Metadata={"dg-note": "kept"})
    store.copy_within(bucket, "big/src", "big/dst")
    copied = raw.get_object(Bucket=bucket, Key="big/dst")
    assert copied["Body"].read() == body
    assert copied["Metadata"] == {"dg-note": "kept"}

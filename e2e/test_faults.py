"""Recursive transfers through a proxy that breaks 20% of requests (500, 503, connection
resets mid-body, truncated bodies, latency): they finish or name exactly what failed, leave
nothing unreadable, and a re-run finishes the job."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from faultproxy import FaultProxy
from helpers import assert_bucket_consistent, cpu_stress, stored_keys, tree_digest
from local_s3 import LocalS3

import deltaglider
from deltaglider.engine import Engine

pytestmark = pytest.mark.slow


def release_tree(root: Path, wheels: list[Path]) -> Path:
    root.mkdir(parents=True)
    for wheel in wheels:
        (root / wheel.name).write_bytes(wheel.read_bytes())
    base = random.Random(3).randbytes(12 * 1024 * 1024)  # multipart-sized archives
    (root / "image-1.tar").write_bytes(base)
    (root / "image-2.tar").write_bytes(base[:5_000_000] + b"v2" + base[5_000_002:])
    return root


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deltaglider", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def failed_files(stderr: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^\w+ failed: (\S+) to ", stderr, re.MULTILINE)}


def test_recursive_upload_and_download_survive_twenty_percent_faults(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    src = release_tree(tmp_path / "dist", wheel_series)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with FaultProxy(s3_server.endpoint, rate=0.2) as proxy:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "TMPDIR": str(scratch),
            "DG_MULTIPART_THRESHOLD_MB": "5",
            "DG_MULTIPART_CHUNKSIZE_MB": "5",
            "DG_MAX_ATTEMPTS": "6",
        }
        first = run(env, "cp", "--recursive", str(src), f"s3://{bucket}/rel/")
        assert first.returncode in (0, 1), first.stderr
        if first.returncode == 1:  # exactly the files that failed are named
            named = failed_files(first.stderr)
            assert named and named <= {str(p) for p in src.iterdir()}, first.stderr
            uploaded = {line.split()[1] for line in first.stdout.splitlines()}
            assert named.isdisjoint(uploaded)
        assert_bucket_consistent(engine, raw, bucket)
        for _ in range(4):
            again = run(env, "sync", str(src), f"s3://{bucket}/rel/")
            assert_bucket_consistent(engine, raw, bucket)
            if again.returncode == 0:
                break
        assert again.returncode == 0, again.stderr

        dest = tmp_path / "restored"
        down = run(env, "cp", "--recursive", f"s3://{bucket}/rel/", str(dest))
        assert down.returncode in (0, 1), down.stderr
        for _ in range(4):
            again = run(env, "sync", f"s3://{bucket}/rel/", str(dest))
            if again.returncode == 0:
                break
        assert again.returncode == 0, again.stderr
        assert proxy.requests > 100
        assert all(proxy.injected[kind] > 0 for kind in ("500", "503", "reset", "truncate"))

    assert tree_digest(dest) == tree_digest(src)
    assert_bucket_consistent(engine, raw, bucket)
    leftovers = [p for p in dest.rglob("*") if p.name.endswith(".dgtmp")]
    leftovers += list(scratch.iterdir())
    assert leftovers == []


@pytest.mark.parametrize("references", ["shared", "folder"])
def test_first_uploads_race_safely_without_conditional_writes(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    references: str,
) -> None:
    """Eight concurrent first uploads into one folder on a server that ignores If-None-Match
    (played by the proxy dropping the header), under CPU stress: every one reads back, whatever
    the timing,
    because each new reference gets a key no other writer uses. In folder mode the server is
    detected (probe) and new references are shared ones rather than a `reference.bin` that a
    racing writer could replace."""
    if s3_server.kind != "moto":
        pytest.skip("dropping a signed header is only possible where signatures are not checked")
    with (
        cpu_stress(4),
        FaultProxy(s3_server.endpoint, rate=0.0, strip_conditional=True) as proxy,
    ):
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "DG_REFERENCES": references}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "deltaglider", "cp", str(w), f"s3://{bucket}/race/"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in wheel_series
        ]
        outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, outputs
    probed = any("conditional_writes_unsupported" in err for _, err in outputs)
    assert probed == (references == "folder")
    found = [k for k in stored_keys(raw, bucket) if k.endswith("reference.bin")]
    assert found and all(k.startswith(".deltaglider/refs/") for k in found), found
    assert assert_bucket_consistent(engine, raw, bucket) == 8


def test_a_parallel_sync_of_a_new_series_without_conditional_writes_makes_one_reference(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    """Folder mode on a server that ignores If-None-Match: new references are shared ones,
    so the many-file runner must put each series' first upload first (the engine's one group
    rule), not each folder's. One folder per version, eight files at a time: one reference
    for the whole series, every file a delta against it."""
    if s3_server.kind != "moto":
        pytest.skip("dropping a signed header is only possible where signatures are not checked")
    src = tmp_path / "dist"
    for number, wheel in enumerate(wheel_series):
        (src / f"1.{number}").mkdir(parents=True)
        (src / f"1.{number}" / wheel.name).write_bytes(wheel.read_bytes())
    with FaultProxy(s3_server.endpoint, rate=0.0, strip_conditional=True) as proxy:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "DG_REFERENCES": "folder"}
        synced = run(env, "sync", "--jobs", "8", str(src), f"s3://{bucket}/rel/")
    assert synced.returncode == 0, synced.stderr
    references = [k for k in stored_keys(raw, bucket) if k.endswith("reference.bin")]
    assert len(references) == 1 and references[0].startswith(".deltaglider/refs/"), references
    stored = [line.split("(")[1].split(":")[0] for line in synced.stdout.splitlines()]
    assert sorted(stored) == ["delta"] * 7 + ["reference"], synced.stdout
    assert assert_bucket_consistent(engine, raw, bucket) == 8


def test_without_retries_failures_are_named_and_a_rerun_finishes(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    """With retries off and 30% of requests refused (500/503 before they reach the server),
    some files fail: exactly those are named, exit status 1, the rest is readable; the same
    command against a healthy endpoint then finishes the job."""
    src = release_tree(tmp_path / "dist", wheel_series)
    settings = {"DG_MULTIPART_THRESHOLD_MB": "5", "DG_MULTIPART_CHUNKSIZE_MB": "5"}
    with FaultProxy(s3_server.endpoint, rate=0.3, seed=11, faults=("500", "503")) as proxy:
        env = {**os.environ, **settings, "AWS_ENDPOINT_URL": proxy.endpoint, "DG_MAX_ATTEMPTS": "1"}
        first = run(env, "cp", "--recursive", str(src), f"s3://{bucket}/rel/")
    assert first.returncode == 1, first.stderr
    named = failed_files(first.stderr)
    uploaded = {line.split()[1] for line in first.stdout.splitlines()}
    assert named and named | uploaded == {str(p) for p in src.iterdir()}
    assert named.isdisjoint(uploaded)
    assert_bucket_consistent(engine, raw, bucket)

    healthy = {**os.environ, **settings, "AWS_ENDPOINT_URL": s3_server.endpoint}
    again = run(healthy, "cp", "--recursive", str(src), f"s3://{bucket}/rel/")
    assert again.returncode == 0, again.stderr
    assert_bucket_consistent(engine, raw, bucket)
    restored = tmp_path / "restored"
    restored.mkdir()
    for entry in engine.listing(bucket, "rel/", recursive=True):
        engine.download(bucket, entry.key, restored / entry.key[len("rel/") :])
    assert tree_digest(restored) == tree_digest(src)


def test_a_bucket_that_refuses_unencrypted_writes_works_with_sse(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    references: str,
) -> None:
    """A bucket policy denying PUTs without `x-amz-server-side-encryption` (played by the
    proxy refusing them): without --sse the upload fails and nothing is left behind; with it
    every object a write creates — reference, delta, marker, direct — carries the header, so
    uploads, copies, downloads, rm and prune all work, and HEAD shows the encryption where the
    server records it. The SDK does the same through create_client(server_side_encryption=)."""
    src = tmp_path / "dist"
    src.mkdir()
    for wheel in wheel_series[:3]:
        (src / wheel.name).write_bytes(wheel.read_bytes())
    (src / "notes.txt").write_text("notes\n")
    with FaultProxy(s3_server.endpoint, rate=0.0, require_sse=True) as proxy:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint}
        refused = run(env, "cp", str(src / wheel_series[0].name), f"s3://{bucket}/rel/")
        assert refused.returncode == 1 and "AccessDenied" in refused.stderr, refused.stderr
        assert stored_keys(raw, bucket) == {}
        synced = run(env, "sync", str(src), f"s3://{bucket}/rel/", "--sse")
        assert synced.returncode == 0, synced.stderr
        copied = run(env, "cp", f"s3://{bucket}/rel/{wheel_series[1].name}", f"s3://{bucket}/c/")
        assert copied.returncode == 1  # a copy without --sse is refused too
        copied = run(
            env, "cp", f"s3://{bucket}/rel/{wheel_series[1].name}", f"s3://{bucket}/c/", "--sse"
        )
        assert copied.returncode == 0, copied.stderr
        down = run(env, "cp", "--recursive", f"s3://{bucket}/rel/", str(tmp_path / "back"))
        assert down.returncode == 0, down.stderr
        sdk = deltaglider.create_client(
            endpoint_url=proxy.endpoint, server_side_encryption="AES256"
        )
        sdk.upload_file(str(wheel_series[2]), bucket, "sdk/app.whl", ExtraArgs={"Metadata": {}})
        with pytest.raises(ParamValidationError, match="create_client"):
            sdk.put_object(Bucket=bucket, Key="x.whl", Body=b"x", ServerSideEncryption="aws:kms")
        sdk.close()
        pruned = run(
            {**env, "DG_SSE": "AES256"}, "prune", f"s3://{bucket}/rel/", "--keep-last", "1"
        )
        assert pruned.returncode == 0, pruned.stderr
        assert proxy.refused_unencrypted >= 2
    assert tree_digest(tmp_path / "back") == tree_digest(src)
    for key in stored_keys(raw, bucket):
        if s3_server.kind == "moto":  # moto records the encryption it was asked for
            assert (
                raw.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption") == "AES256"
            ), key
    assert_bucket_consistent(engine, raw, bucket)

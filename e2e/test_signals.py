"""SIGTERM (what CI runners send on cancel) and SIGINT in the middle of real work: the codec
child is killed, a multipart upload is aborted, a partial download and every temp file are
removed, nothing half-made is stored, and the exit status is 143 / 130.

Each case waits for a sign that the work is under way (the codec child exists, a multipart
upload is open, the partial download file exists) before it signals; if the command finished
first, the case is run again on a file twice the size."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine
from deltaglider.models import DeltaPolicy, UploadOptions

pytestmark = pytest.mark.slow
MIB = 1024 * 1024
SIZES = (128 * MIB, 256 * MIB, 512 * MIB)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def interrupt_when(
    command: list[str], env: dict[str, str], started: Callable[[int], bool], signum: int
) -> subprocess.CompletedProcess[str] | None:
    """Run `command`, send `signum` once `started(pid)` says the work is under way; None when
    the command finished before that (the caller retries on more data)."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while process.poll() is None and not started(process.pid):
        pass
    if process.poll() is not None:
        process.communicate()
        return None
    os.kill(process.pid, signum)
    out, err = process.communicate(timeout=120)
    if process.returncode == 0:
        return None  # it exited between our check and the signal: nothing was interrupted
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def attempt_dir(root: Path, attempt: int) -> Path:
    folder = root / f"attempt-{attempt}"
    folder.mkdir(exist_ok=True)
    return folder


def random_file(path: Path, size: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("wb") as out:
        for _ in range(size // (16 * MIB)):
            out.write(rng.randbytes(16 * MIB))
    return path


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_delta_upload_kills_the_codec_and_stores_nothing(
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    tmp_path: Path,
    signum: int,
    status: int,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint, "TMPDIR": str(scratch)}
    codec_children: list[int] = []

    def encoding(pid: int) -> bool:
        codec_children[:] = [
            c
            for c in children_of(pid)
            if "xdelta3" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")
        ]
        return bool(codec_children)

    for attempt, size in enumerate(SIZES):
        base = random_file(tmp_path / f"base-{attempt}.bin", size, attempt)
        new = tmp_path / attempt_dir(tmp_path, attempt) / "image-1.tar"
        data = bytearray(base.read_bytes())
        data[size // 2 : size // 2 + 4096] = random.Random(9).randbytes(4096)
        new.write_bytes(bytes(data))
        del data
        engine.upload(base, bucket, f"s{attempt}/image-0.tar", UploadOptions(DeltaPolicy.ALWAYS))
        before = stored_keys(raw, bucket)
        command = [
            sys.executable,
            "-m",
            "deltaglider",
            "cp",
            str(new),
            f"s3://{bucket}/s{attempt}/",
        ]
        result = interrupt_when(command, env, encoding, signum)
        if result is None:
            continue
        assert result.returncode == status, result.stderr
        assert "interrupted" in result.stderr
        assert codec_children and not any(alive(c) for c in codec_children)
        assert list(scratch.iterdir()) == []  # cache directory and codec scratch files gone
        key = f"s{attempt}/image-1.tar"
        if result.stdout.startswith("upload: "):  # the signal came after the last write
            assert (
                engine.verify(bucket, key).actual_sha256
                == engine.verify(bucket, key).expected_sha256
            )
            assert "1 of 1 done" in result.stderr
        else:  # it stopped the work: nothing of the new file was stored, and it says so
            assert f"upload failed: {new} to s3://{bucket}/{key}: interrupted" in result.stderr
            assert stored_keys(raw, bucket) == before
        return
    pytest.fail("every upload finished before its codec child was seen")


def test_interrupted_multipart_upload_is_aborted(
    s3_server: LocalS3, raw: Any, bucket: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "DG_MULTIPART_THRESHOLD_MB": "5",
        "DG_MULTIPART_CHUNKSIZE_MB": "5",
    }

    def uploading(_: int) -> bool:
        return bool(raw.list_multipart_uploads(Bucket=bucket).get("Uploads"))

    for attempt, size in enumerate(SIZES):
        big = random_file(tmp_path / f"big-{attempt}.bin", size, attempt)
        command = [
            sys.executable,
            "-m",
            "deltaglider",
            "cp",
            "--no-delta",
            str(big),
            f"s3://{bucket}/m/",
        ]
        result = interrupt_when(command, env, uploading, signal.SIGTERM)
        if result is None:
            raw.delete_object(Bucket=bucket, Key=f"m/{big.name}")
            continue
        assert result.returncode == 143, result.stderr
        assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        if result.stdout.startswith("upload: "):  # the signal came after the last write
            assert stored_keys(raw, bucket) == {f"m/{big.name}": size}
        else:
            assert "upload failed" in result.stderr and "interrupted" in result.stderr
            assert stored_keys(raw, bucket) == {}
        return
    pytest.fail("every upload finished before its multipart upload was seen")


def test_interrupted_download_leaves_no_partial_file(
    s3_server: LocalS3, engine: Engine, bucket: str, tmp_path: Path
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    destination = tmp_path / "dest"
    destination.mkdir()

    def downloading(_: int) -> bool:
        return any(p.name.endswith(".dgtmp") for p in destination.iterdir())

    for attempt, size in enumerate(SIZES):
        big = random_file(tmp_path / f"big-{attempt}.bin", size, attempt)
        engine.upload(big, bucket, f"d/{big.name}", UploadOptions(DeltaPolicy.NEVER))
        command = [
            sys.executable,
            "-m",
            "deltaglider",
            "cp",
            f"s3://{bucket}/d/{big.name}",
            f"{destination}/",
        ]
        result = interrupt_when(command, env, downloading, signal.SIGTERM)
        if result is None:
            (destination / big.name).unlink()
            continue
        assert result.returncode == 143, result.stderr
        left = list(destination.iterdir())
        if result.stdout.startswith("download: "):  # the signal came after the rename
            assert left == [destination / big.name]
            assert (destination / big.name).read_bytes() == big.read_bytes()
        else:
            assert left == []  # no partial file, no file
        return
    pytest.fail("every download finished before its partial file was seen")

"""Secrets never reach output or logs (even with --debug), and presigned-URL signatures are
never logged."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from local_s3 import REGION, SECRET_KEY, LocalS3

import deltaglider


def test_credentials_and_cache_key_never_printed_even_with_debug(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    cache_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    session_token = "SESSIONTOKEN" + os.urandom(8).hex()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "DG_CACHE_ENCRYPTION_KEY": cache_key,
    }
    if s3_server.kind == "moto":  # SeaweedFS would reject an unknown session token
        env["AWS_SESSION_TOKEN"] = session_token
    commands = [
        ("cp", str(wheel_series[0]), f"s3://{bucket}/s/"),
        ("cp", str(wheel_series[1]), f"s3://{bucket}/s/"),
        ("cp", f"s3://{bucket}/s/{wheel_series[1].name}", str(tmp_path) + "/"),
        ("ls", "--recursive", "--logical-sizes", f"s3://{bucket}/"),
        ("verify", f"s3://{bucket}/s/{wheel_series[1].name}"),
        ("cp", f"s3://{bucket}/s/absent.whl", str(tmp_path) + "/"),
        ("sync", str(tmp_path), f"s3://{bucket}/mirror/"),
    ]
    seen = ""
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "deltaglider", "--debug", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        seen += done.stdout + done.stderr
    assert "uploaded" in seen  # --debug did log
    for secret in (SECRET_KEY, cache_key, session_token):
        assert secret not in seen
    wrong = {**env, "AWS_SECRET_ACCESS_KEY": "WRONGSECRET" + os.urandom(4).hex()}
    done = subprocess.run(
        [sys.executable, "-m", "deltaglider", "--debug", "ls", f"s3://{bucket}/"],
        env=wrong,
        capture_output=True,
        text=True,
    )
    assert wrong["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr


def test_presigned_signatures_are_never_logged(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    client: Any = deltaglider.create_client(endpoint_url=s3_server.endpoint, region_name=REGION)
    client.upload(wheel_series[0], f"s3://{bucket}/p/")
    client.upload(wheel_series[1], f"s3://{bucket}/p/")
    with caplog.at_level(logging.DEBUG, logger="deltaglider"):
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": f"p/{wheel_series[1].name}"}
        )
        client.get_object(Bucket=bucket, Key=f"p/{wheel_series[1].name}")["Body"].read()
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    assert len(signature) > 20
    assert signature not in caplog.text
    assert SECRET_KEY not in caplog.text


def test_a_small_delta_that_decodes_to_a_gigabyte_cannot_fill_the_disk(
    s3_server: LocalS3, engine: Any, raw: Any, bucket: str, tmp_path: Path
) -> None:
    """A hostile delta (a real xdelta3 delta of 64 MiB of zeros against a tiny reference,
    2 KB stored) whose metadata claims 1,000 bytes and a wrong SHA-256: `cp` to a file, to
    stdout and `verify` each stop the decoder at the recorded size. Run under a 1 MiB file-size
    limit, so writing past it would fail with EFBIG instead of this test's one-line error."""
    import resource
    import signal

    from deltaglider.xdelta import binary

    reference = tmp_path / "app-1.zip"
    reference.write_bytes(os.urandom(4096))
    engine.upload(reference, bucket, "bomb/app-1.zip")
    real = raw.head_object(Bucket=bucket, Key="bomb/app-1.zip.delta")["Metadata"]
    huge, bomb = tmp_path / "huge", tmp_path / "bomb.delta"
    with huge.open("wb") as out:
        out.truncate(64 * 1024 * 1024)
    subprocess.run(
        [binary(), "-e", "-9", "-A", "-f", "-s", str(reference), str(huge), str(bomb)], check=True
    )
    huge.unlink()
    assert bomb.stat().st_size < 64 * 1024
    lies = {"dg-file-size": "1000", "dg-file-sha256": "0" * 64, "dg-original-name": "app-2.zip"}
    claims = {**{k: v for k, v in real.items() if k != "dg-note"}, **lies}
    raw.put_object(
        Bucket=bucket, Key="bomb/app-2.zip.delta", Body=bomb.read_bytes(), Metadata=claims
    )

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint, "TMPDIR": str(tmp_path)}
    url = f"s3://{bucket}/bomb/app-2.zip"
    for args in (("cp", url, str(tmp_path / "out.zip")), ("cp", url, "-"), ("verify", url)):
        done = subprocess.run(
            [sys.executable, "-m", "deltaglider", *args],
            env=env,
            capture_output=True,
            timeout=300,
            preexec_fn=limited,
        )
        stderr = done.stderr.decode()
        assert done.returncode == 1, (args, stderr)
        assert "the recorded 1000 bytes" in stderr and stderr.count("\n") == 1, (args, stderr)
        assert len(done.stdout) <= 1000
    assert not (tmp_path / "out.zip").exists()


@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_a_failing_stdout_is_one_line_and_a_nonzero_exit(
    s3_server: LocalS3, engine: Any, bucket: str, wheel_series: list[Path], stdout: str
) -> None:
    """`cp s3://… - > /dev/full` (ENOSPC) and `cp s3://… - >&-` (no stdout at all)."""
    engine.upload(wheel_series[0], bucket, "out/app.whl")
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    command = [sys.executable, "-m", "deltaglider", "cp", f"s3://{bucket}/out/app.whl", "-"]
    if stdout == "full":
        with open("/dev/full", "wb") as full:
            done = subprocess.run(command, env=env, stdout=full, stderr=subprocess.PIPE)
    else:
        done = subprocess.run(
            ["sh", "-c", '"$@" >&-', "sh", *command], env=env, stderr=subprocess.PIPE
        )
    stderr = done.stderr.decode()
    assert done.returncode != 0 and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and stderr.startswith("deltaglider: error:"), stderr

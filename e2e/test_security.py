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

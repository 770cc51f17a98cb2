"""SSE-C (customer-provided keys) end to end: every object a write creates (references,
deltas, markers, direct objects; single PUTs, multipart parts and server-side copies) is
encrypted with the customer's key, every read sends it, and the key never reaches output.

SeaweedFS only: it enforces SSE-C (an object written with a key cannot be read without it),
which is what shows that each object really carries the key. moto stores such objects
unencrypted and serves them to anyone, so it cannot show it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from botocore.exceptions import ParamValidationError
from helpers import assert_bucket_consistent, stored_keys, tree_digest
from local_s3 import LocalS3
from test_faults import run

import deltaglider
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.metadata import PROBE_PREFIX, SETTINGS_KEY, STATS_PREFIX

SERVERS = ["seaweedfs"]


def readable_without_key(raw: Any, bucket: str, key: str) -> bool:
    try:
        raw.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError:
        return False
    return True


def test_every_object_a_write_creates_needs_the_customer_key(
    s3_server: LocalS3,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    references: str,
) -> None:
    key = os.urandom(32)
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(key)
    with_key = ["--sse-c", "--sse-c-key", f"fileb://{key_file}"]
    src = tmp_path / "dist"
    src.mkdir()
    for wheel in wheel_series[:3]:
        (src / wheel.name).write_bytes(wheel.read_bytes())
    (src / "notes.txt").write_text("notes\n")
    # 5 MiB parts: the 12.5 MB references go up in multipart uploads, each part keyed
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint, "DG_MULTIPART_THRESHOLD_MB": "5"}
    outputs: list[str] = []

    def ok(*args: str, environment: dict[str, str] = env) -> None:
        done = run(environment, "--debug", *args)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stderr

    ok("sync", str(src), f"s3://{bucket}/rel/", *with_key)
    ok("cp", f"s3://{bucket}/rel/{wheel_series[1].name}", f"s3://{bucket}/copy/", *with_key)
    ok("mv", f"s3://{bucket}/copy/{wheel_series[1].name}", f"s3://{bucket}/moved/", *with_key)
    ok("cp", "--recursive", f"s3://{bucket}/", str(tmp_path / "back"), *with_key)
    assert tree_digest(tmp_path / "back" / "rel") == tree_digest(src)
    assert (tmp_path / "back" / "moved" / wheel_series[1].name).read_bytes() == (
        wheel_series[1].read_bytes()
    )

    stored = stored_keys(raw, bucket)
    bucket_wide = [
        k for k in stored if k == SETTINGS_KEY or k.startswith((PROBE_PREFIX, STATS_PREFIX))
    ]
    assert len(stored) > 6, stored  # references, deltas, markers, a direct file
    for name in stored:
        if name in bucket_wide:  # readable by every user of the bucket: no file's bytes
            assert readable_without_key(raw, bucket, name), name
            continue
        assert not readable_without_key(raw, bucket, name), name
        head = raw.head_object(
            Bucket=bucket, Key=name, SSECustomerAlgorithm="AES256", SSECustomerKey=key
        )
        assert head["SSECustomerAlgorithm"] == "AES256", name

    without = run(env, "cp", f"s3://{bucket}/rel/{wheel_series[2].name}", str(tmp_path / "x"))
    assert without.returncode == 1 and without.stderr.count("\n") == 1, without.stderr
    assert "--sse-c-key or DG_SSE_C_KEY" in without.stderr
    assert not (tmp_path / "x").exists()

    keyed_env = {**env, "DG_SSE_C_KEY": f"fileb://{key_file}"}
    ok("ls", "--recursive", f"s3://{bucket}/", environment=keyed_env)
    ok("verify", "--recursive", f"s3://{bucket}/", environment=keyed_env)
    ok("prune", f"s3://{bucket}/rel/", "--keep-last", "1", environment=keyed_env)
    ok("rm", f"s3://{bucket}/moved/{wheel_series[1].name}", environment=keyed_env)
    engine = Engine(Settings(endpoint_url=s3_server.endpoint, sse_customer_key=key))
    try:
        head_args = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
        assert assert_bucket_consistent(engine, raw, bucket, **head_args) >= 2
    finally:
        engine.close()

    shown = "".join(outputs)
    for form in (key.hex(), base64.b64encode(key).decode(), key.decode("latin-1")):
        assert form not in shown


def test_the_sdk_sends_its_customer_key_and_refuses_another(
    s3_server: LocalS3, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    key = os.urandom(32)
    client = deltaglider.create_client(endpoint_url=s3_server.endpoint, sse_customer_key=key)
    try:
        for number, wheel in enumerate(wheel_series[:2]):
            client.upload_file(str(wheel), bucket, f"sdk/{number}/{wheel.name}")
        client.put_object(
            Bucket=bucket,
            Key="sdk/notes.txt",
            Body=b"notes",
            SSECustomerAlgorithm="AES256",
            SSECustomerKey=key,
        )
        name = f"sdk/1/{wheel_series[1].name}"
        got = client.get_object(
            Bucket=bucket, Key=name, SSECustomerAlgorithm="AES256", SSECustomerKey=key
        )
        assert got["Body"].read() == wheel_series[1].read_bytes()
        client.download_file(bucket, name, str(tmp_path / "back.whl"))
        assert (tmp_path / "back.whl").read_bytes() == wheel_series[1].read_bytes()
        other = os.urandom(32)
        with pytest.raises(ParamValidationError, match="create_client"):
            client.get_object(
                Bucket=bucket, Key=name, SSECustomerAlgorithm="AES256", SSECustomerKey=other
            )
        with pytest.raises(ParamValidationError, match="create_client"):
            client.put_object(Bucket=bucket, Key="x.txt", Body=b"x", SSECustomerKey=other)
    finally:
        client.close()
    for name in stored_keys(raw, bucket):
        if not name.startswith(".deltaglider/probe"):
            assert not readable_without_key(raw, bucket, name) or name == SETTINGS_KEY, name
    plain = deltaglider.create_client(endpoint_url=s3_server.endpoint)
    try:
        with pytest.raises(botocore.exceptions.ClientError):
            plain.get_object(Bucket=bucket, Key="sdk/notes.txt")
    finally:
        plain.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sse-c"], "--sse-c needs the key"),
        (["--sse-c-key", "short"], "must be a 32-byte AES-256 key, not 5 bytes"),
        (["--sse-c-key", "fileb:///nonexistent/key.bin"], "cannot read /nonexistent/key.bin"),
        (["--sse", "--sse-c-key", "k" * 32], "cannot be combined"),
    ],
)
def test_a_bad_customer_key_is_one_line_and_stores_nothing(
    s3_server: LocalS3, raw: Any, bucket: str, tmp_path: Path, flags: list[str], message: str
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    done = run(env, "cp", str(tmp_path / "a.txt"), f"s3://{bucket}/", *flags)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and "k" * 32 not in done.stderr
    assert stored_keys(raw, bucket) == {}

"""The same command list through `aws s3` (awscli from PyPI, in its own virtualenv) and through
`deltaglider`, against the same server: logical bucket contents, local trees and exit codes
must agree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from artifacts import venv_tool
from helpers import sha256, sha256_bytes
from local_s3 import LocalS3

from deltaglider.engine import Engine

COMMANDS = [
    ["cp", "{L}/dist/{w0}", "s3://{B}/one/"],
    ["cp", "--recursive", "{L}/dist", "s3://{B}/tree/", "--exclude", "*.log"],
    ["sync", "{L}/dist", "s3://{B}/sync/"],
    ["sync", "{L}/dist", "s3://{B}/sync/"],
    ["cp", "s3://{B}/one/{w0}", "{L}/down/"],
    ["sync", "s3://{B}/tree/", "{L}/mirror"],
    ["sync", "s3://{B}/tree/", "{L}/mirror"],
    ["rm", "s3://{B}/tree/sub/{w3}"],
    ["mv", "s3://{B}/one/{w0}", "s3://{B}/moved/{w0}"],
    ["ls", "s3://{B}/nothing/"],
    ["cp", "s3://{B}/missing.zip", "{L}/down/"],
    ["cp", "{L}/nope.zip", "s3://{B}/"],
    ["rm", "--recursive", "s3://{B}/sync/", "--exclude", "*.whl"],
    ["sync", "--delete", "{L}/dist2", "s3://{B}/tree/"],
    [
        "cp",
        "--recursive",
        "s3://{B}/tree/",
        "{L}/tree-copy",
        "--exclude",
        "*",
        "--include",
        "*.whl",
    ],
    ["ls", "s3://no-such-bucket-{B}/"],
    ["mv", "{L}/dist/README.txt", "s3://{B}/moved/"],
    ["cp", "--recursive", "s3://{B}/", "{L}/everything"],
    # scripts' edge cases: a listing of folders only, global options after the command, a
    # path without s3://, removing a key that is not there, a folder without --recursive
    ["ls", "s3://{B}/"],
    ["ls", "s3://{B}/tree/", "--region", "us-east-1"],
    ["ls", "{B}/tree/"],
    ["rm", "s3://{B}/never-there.zip"],
    ["cp", "{L}/dist", "s3://{B}/dir/"],
]


@pytest.fixture(scope="session")
def aws() -> Path:
    return venv_tool("awscli", "awscli", "aws")


def workspace(root: Path, wheels: list[Path]) -> Path:
    dist = root / "dist"
    (dist / "sub").mkdir(parents=True)
    for wheel in wheels[:3]:
        shutil.copy2(wheel, dist / wheel.name)
    shutil.copy2(wheels[3], dist / "sub" / wheels[3].name)
    (dist / "build.log").write_text("log\n")
    (dist / "README.txt").write_text("readme\n")
    dist2 = root / "dist2"
    dist2.mkdir()
    shutil.copy2(wheels[1], dist2 / wheels[1].name)
    return root


def local_tree(root: Path) -> dict[str, tuple[str, int]]:
    """Relative path -> (SHA-256, permission bits) of every file: downloads get the mode the
    umask gives, as aws's do."""
    return {
        p.relative_to(root).as_posix(): (sha256(p), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_commands_same_results_as_aws_s3(
    aws: Path,
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    wheel_series: list[Path],
    tmp_path: Path,
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint, "AWS_PAGER": ""}
    tools = {
        "aws": [str(aws), "--endpoint-url", s3_server.endpoint, "s3"],
        "deltaglider": [sys.executable, "-m", "deltaglider", "--endpoint-url", s3_server.endpoint],
    }
    names = {f"w{i}": w.name for i, w in enumerate(wheel_series)}
    codes: dict[str, list[int]] = {}
    buckets: dict[str, str] = {}
    roots: dict[str, Path] = {}
    for tool, prefix in tools.items():
        bucket = f"cmp-{tool[:3]}-{uuid.uuid4().hex[:8]}"
        raw.create_bucket(Bucket=bucket)
        root = workspace(tmp_path / tool, wheel_series)
        buckets[tool], roots[tool] = bucket, root
        codes[tool] = []
        for command in COMMANDS:
            args = [a.format(L=root, B=bucket, **names) for a in command]
            done = subprocess.run(
                [*prefix, *args], env=env, capture_output=True, text=True, timeout=300
            )
            codes[tool].append(done.returncode)

    table = list(zip(COMMANDS, codes["aws"], codes["deltaglider"], strict=True))
    assert codes["aws"] == codes["deltaglider"], table

    # the logical bucket contents: what a download of each key returns
    plain = {
        o["Key"]: o
        for page in raw.get_paginator("list_objects_v2").paginate(Bucket=buckets["aws"])
        for o in page.get("Contents", [])
    }
    theirs = {
        key: sha256_bytes(raw.get_object(Bucket=buckets["aws"], Key=key)["Body"].read())
        for key in plain
    }
    ours = {}
    scratch = tmp_path / "scratch"
    for entry in engine.listing(buckets["deltaglider"], "", recursive=True):
        engine.download(buckets["deltaglider"], entry.key, scratch)
        ours[entry.key] = sha256(scratch)
    assert ours == theirs

    assert local_tree(roots["deltaglider"]) == local_tree(roots["aws"])

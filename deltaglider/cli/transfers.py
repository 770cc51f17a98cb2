"""The `aws s3` transfer commands: cp, mv, sync, rm and ls.

Each command turns its flags into a plan from `transfer` (or one library call), runs it
through `transfer.run` with the output module's subscribers, and exits with `aws s3`'s
status. Must not decide how anything is stored or which files a command touches.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deltaglider import transfer
from deltaglider.cli.app import AppContext, main, reports_errors
from deltaglider.cli.options import (
    FilteredCommand,
    OutputFlags,
    TransferFlags,
    filters,
    transfer_options,
)
from deltaglider.cli.output import (
    EXIT_FAILED,
    TransferProgress,
    TransferReport,
    echo,
    exit_after_transfers,
    human_size,
    printer,
    time_str,
)
from deltaglider.errors import DeltagliderError, FatalError, UsageError
from deltaglider.events import Subscriber
from deltaglider.metadata import DELTA_SUFFIX
from deltaglider.models import ListEntry, UploadOptions
from deltaglider.transfer import Action, Options, Task
from deltaglider.urls import S3Url, base_name, is_s3_url

if TYPE_CHECKING:
    from deltaglider.engine import Engine

PROGRESS_SINGLE_FILE = 8 * 1024 * 1024  # a single file this large gets the progress line


def run_plan(
    engine: Engine,
    plan: transfer.Plan,
    output: OutputFlags,
    upload: UploadOptions | None = None,
    *,
    move: bool = False,
    summary: Callable[[TransferReport], str] | None = None,
) -> None:
    """Run a plan and exit with `aws s3`'s status; `summary` makes a last line on stdout."""
    options = Options(upload or UploadOptions(), move=move, dryrun=output.dryrun)
    total = sum(task.size for task in plan.tasks)
    show_progress = (
        sys.stderr.isatty()
        and not (output.no_progress or output.quiet or output.only_show_errors or output.as_json)
        and (len(plan.tasks) > 1 or total >= PROGRESS_SINGLE_FILE)
    )
    progress = TransferProgress(len(plan.tasks), total) if show_progress else None
    out = printer(output.as_json, quiet=output.quiet, only_errors=output.only_show_errors)
    out.status = progress.line if progress else None
    report = TransferReport(out, output.dryrun, move, progress)
    transfer.run(engine, plan, options, output.jobs or engine.settings.transfer_jobs, report)
    if progress:
        progress.line.clear()
    if summary is not None:
        echo(summary(report))
    exit_after_transfers(report, len(plan.tasks))


def _copy_command(
    app: AppContext,
    source: str,
    destination: str,
    recursive: bool,
    flags: TransferFlags,
    move: bool,
) -> None:
    if not (is_s3_url(source) or is_s3_url(destination)):
        raise UsageError("one of SOURCE and DESTINATION must be an s3:// URL")
    engine = flags.engine(app)
    if source == "-":
        _upload_stdin(engine, S3Url.parse(destination), flags)
        return
    if destination == "-":
        _download_stdout(engine, S3Url.parse(source))
        return
    if recursive:
        src, dst = transfer.location(source), transfer.location(destination)
        plan = transfer.plan_copy(
            engine, src, dst, filters(), follow_symlinks=flags.follow_symlinks
        )
    else:
        plan = transfer.plan_single(engine, source, destination)
    run_plan(engine, plan, flags.output, flags.upload, move=move)


def _upload_stdin(engine: Engine, dst: S3Url, flags: TransferFlags) -> None:
    if dst.is_prefix:
        raise UsageError("uploading from stdin (-) needs a full destination key, not a folder")
    with engine.work_directory() as scratch:
        local = Path(scratch) / "stdin"  # never named after the key: names have length limits
        with local.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1024 * 1024)
        task = Task(Action.UPLOAD, local, dst, local.stat().st_size, label="-")
        run_plan(engine, transfer.Plan([task]), flags.output, flags.upload)


def _download_stdout(engine: Engine, src: S3Url) -> None:
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # started with stdout closed (`>&-`)
        raise UsageError("standard output is closed: nowhere to write the file")
    with engine.work_directory() as scratch:
        local = Path(scratch) / "object"
        engine.download(src.bucket, src.key, local)  # verified before a byte reaches stdout
        try:
            with local.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1024 * 1024)
            out.flush()
        except OSError as error:  # a full disk, a closed pipe: one line, not a traceback
            _silence_stdout()
            raise DeltagliderError(f"cannot write to standard output: {error.strerror}") from None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's last flush of what could not be written
    does not print a traceback after our one line."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@main.command(cls=FilteredCommand)
@click.argument("source")
@click.argument("destination")
@click.option("--recursive", "-r", is_flag=True, help="Copy a whole folder or prefix.")
@transfer_options
@click.pass_obj
@reports_errors
def cp(
    app: AppContext, /, source: str, destination: str, recursive: bool, flags: TransferFlags
) -> None:
    """Copy files to S3, from S3, or between S3 locations.

    \b
    Upload (a trailing / keeps the file's name):
      deltaglider cp dist/app-1.2.3.zip s3://releases/1.2.3/
      deltaglider cp dist/ s3://releases/1.2.3/ --recursive --exclude "*.log"
    Download (to a folder, a file, or - for stdout):
      deltaglider cp s3://releases/1.2.3/app-1.2.3.zip ./
    Copy between buckets (stored as a delta in the destination's own folder):
      deltaglider cp s3://releases/1.2.3/app.zip s3://archive/1.2.3/
    From stdin: tar c build | deltaglider cp - s3://backups/build.tar
    """
    _copy_command(app, source, destination, recursive, flags, move=False)


@main.command(cls=FilteredCommand)
@click.argument("source")
@click.argument("destination")
@click.option("--recursive", "-r", is_flag=True, help="Move a whole folder or prefix.")
@transfer_options
@click.pass_obj
@reports_errors
def mv(
    app: AppContext, /, source: str, destination: str, recursive: bool, flags: TransferFlags
) -> None:
    """Move files: copy, then delete each source once its copy succeeded.

    \b
      deltaglider mv build.zip s3://releases/1.2.3/
      deltaglider mv s3://staging/1.2.3/ s3://releases/1.2.3/ --recursive
    """
    if source == "-" or destination == "-":
        raise UsageError("mv cannot use - (stdin/stdout)")
    _copy_command(app, source, destination, recursive, flags, move=True)


@main.command(cls=FilteredCommand)
@click.argument("source")
@click.argument("destination")
@click.option(
    "--delete",
    is_flag=True,
    help="Delete destination files the source does not have (references are "
    "removed only when no delta needs them).",
)
@click.option("--size-only", is_flag=True, help="Compare by size alone.")
@click.option(
    "--exact-timestamps",
    is_flag=True,
    help="Downloads: also copy same-size files whose times differ.",
)
@transfer_options
@click.pass_obj
@reports_errors
def sync(
    app: AppContext,
    /,
    source: str,
    destination: str,
    delete: bool,
    size_only: bool,
    exact_timestamps: bool,
    flags: TransferFlags,
) -> None:
    """Make DESTINATION hold what SOURCE holds, transferring only what differs.

    Files are compared by logical (original) size and modification time, so a second run
    with nothing changed transfers nothing, in every direction.

    \b
      deltaglider sync dist/ s3://releases/1.2.3/ --exclude "*.log"
      deltaglider sync s3://releases/1.2.3/ ./mirror/ --delete
      deltaglider sync s3://releases/ s3://backup-releases/
    """
    if not (is_s3_url(source) or is_s3_url(destination)):
        raise UsageError("one of SOURCE and DESTINATION must be an s3:// URL")
    engine = flags.engine(app)
    plan = transfer.plan_sync(
        engine,
        transfer.location(source),
        transfer.location(destination),
        filters(),
        size_only=size_only,
        exact_timestamps=exact_timestamps,
        delete=delete,
        follow_symlinks=flags.follow_symlinks,
    )
    run_plan(engine, plan, flags.output, flags.upload)


@dataclass
class _ListingLines(Subscriber):
    """`ls` lines (or `--json` records), one per listed entry."""

    recursive: bool
    fmt: Callable[[int], str]
    stored_sizes: bool
    as_json: bool
    shown: int = 0

    def on_done(self, **kwargs: Any) -> None:
        entry: ListEntry = kwargs["entry"]
        self.shown += 1
        if self.as_json:
            echo(json.dumps(_ls_record(entry)))
        elif entry.is_prefix:
            echo(f"{'PRE':>30} {entry.key.rstrip('/').rpartition('/')[2]}/")
        else:
            name = entry.key if self.recursive else base_name(entry.key)
            size = entry.stored_size if self.stored_sizes else entry.size
            echo(f"{time_str(entry.last_modified)} {self.fmt(size):>10} {name}")


def _ls_record(entry: ListEntry) -> dict[str, Any]:
    """`ls --json`: the file's size and what it takes in the bucket, and how it is stored."""
    if entry.is_prefix:
        return {"key": entry.key, "kind": "folder"}
    return {
        "key": entry.key,
        "kind": "delta" if entry.stored_key.endswith(DELTA_SUFFIX) else "file",
        "size": entry.size,
        "stored_size": entry.stored_size,
        "last_modified": entry.last_modified.isoformat() if entry.last_modified else None,
    }


@main.command(context_settings={"help_option_names": ["--help"]})  # -h: human-readable, as 6.x
@click.argument("path", required=False)
@click.option("--recursive", "-r", is_flag=True, help="List every object under the prefix.")
@click.option("--human-readable", "-h", is_flag=True, help="Sizes in KiB/MiB/GiB.")
@click.option(
    "--summarize",
    is_flag=True,
    help="Print the object count, their total size and what they take in the bucket "
    "(references included).",
)
@click.option(
    "--stored-sizes",
    is_flag=True,
    help="Show the bytes each file takes in the bucket (a delta's, not its file's) and make "
    "no request per delta.",
)
@click.option("--logical-sizes", is_flag=True, hidden=True)  # the default since 7.0; accepted
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry, for machines.")
@click.pass_obj
@reports_errors
def ls(
    app: AppContext,
    path: str | None,
    recursive: bool,
    human_readable: bool,
    summarize: bool,
    stored_sizes: bool,
    logical_sizes: bool,
    as_json: bool,
) -> None:
    """List buckets, or the files under a prefix (`.delta` stripped, references hidden),
    with each file's own size as `aws s3 ls` prints it (deltas are HEADed, concurrently). As
    with `aws s3 ls`, the `s3://` may be left out (`deltaglider ls releases/1.2.3/`).

    \b
      deltaglider ls
      deltaglider ls s3://releases/1.2.3/ --human-readable
      deltaglider ls s3://releases/ --recursive --summarize
      deltaglider ls s3://releases/ --recursive --stored-sizes
    """
    url = None if path is None else S3Url.parse_loose(path)
    engine = app.engine()
    fmt: Callable[[int], str] = human_size if human_readable else str
    lines = _ListingLines(recursive, fmt, stored_sizes, as_json)
    try:
        if url is None:
            for bucket in engine.list_buckets():
                echo(f"{time_str(bucket.created)} {bucket.name}")
            return
        if summarize:
            totals = engine.summarize(url.bucket, url.key, recursive=recursive, subscriber=lines)
        else:
            for entry in engine.listing(
                url.bucket, url.key, recursive=recursive, logical_sizes=not stored_sizes
            ):
                lines.on_done(entry=entry)
    except UsageError:
        raise
    except DeltagliderError as error:
        raise FatalError(str(error)) from None
    if summarize and as_json:
        record = {"objects": totals.objects, "size": totals.size, "stored": totals.stored}
        echo(json.dumps(record))
    elif summarize:
        echo(
            f"\n{'Total Objects: ':>15}{totals.objects}\n{'Total Size: ':>15}{fmt(totals.size)}"
            f"\n{'Total Stored: ':>15}{fmt(totals.stored)} (references included)"
        )
    if lines.shown == 0 and url.key and not summarize:
        sys.exit(EXIT_FAILED)  # as aws: only a listing that shows nothing at all


@main.command(cls=FilteredCommand)
@click.argument("path")
@click.option("--recursive", "-r", is_flag=True, help="Delete every object under the prefix.")
@click.option("--dryrun", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.option("--only-show-errors", is_flag=True, help="Print errors only.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Keep files matching PATTERN.")
@click.option(
    "--include",
    multiple=True,
    metavar="PATTERN",
    help="Delete files matching PATTERN again; the last matching filter wins.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per deletion.")
@click.option("--jobs", type=click.IntRange(min=1), help="Concurrent deletions.")
@click.pass_obj
@reports_errors
def rm(
    app: AppContext,
    path: str,
    recursive: bool,
    dryrun: bool,
    quiet: bool,
    only_show_errors: bool,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    as_json: bool,
    jobs: int | None,
) -> None:
    """Delete files (delta or direct); a reference goes when its last delta does.

    \b
      deltaglider rm s3://releases/1.2.3/app.zip
      deltaglider rm s3://releases/1.2.3/ --recursive --exclude "*.zip"
    """
    url = S3Url.parse(path)
    engine = app.engine()
    output = OutputFlags(dryrun, quiet, only_show_errors, as_json=as_json, jobs=jobs)
    if recursive:
        run_plan(engine, transfer.plan_delete(engine, url, filters()), output)
        return
    target = transfer.stored_delta_as_logical(engine, url)  # 6.x and aws rm take `k.delta`
    run_plan(engine, transfer.Plan([Task(Action.DELETE, target)]), output)

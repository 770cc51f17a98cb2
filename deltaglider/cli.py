"""The `deltaglider` command: parses arguments, calls the engine, prints `aws s3`-shaped lines.

Owns: options, output formatting and exit codes. Must not decide how anything is stored: every
command is a thin call into `engine.Engine`, and every library error becomes one line on stderr.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from deltaglider import __version__
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.errors import DeltagliderError, UsageError
from deltaglider.log import configure_cli_logging
from deltaglider.models import DeltaPolicy, ListEntry, StoredAs, UploadResult
from deltaglider.urls import S3Url, base_name, destination_key, is_s3_url

F = TypeVar("F", bound=Callable[..., Any])

_SIZE_SUFFIXES = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(value: int) -> str:
    """Sizes as `aws s3 ls --human-readable` prints them."""
    if value == 1:
        return "1 Byte"
    if value < 1024:
        return f"{value} Bytes"
    for power, suffix in enumerate(_SIZE_SUFFIXES, start=2):
        unit = 1024**power
        if round(value / unit * 1024) < 1024:
            return f"{1024 * value / unit:.1f} {suffix}"
    return f"{value} Bytes"


class AppContext:
    """Settings from the environment and global flags; the engine is built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None

    def engine(self, **overrides: object) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.settings.with_overrides(**overrides))
        return self._engine


def reports_errors(command: F) -> F:
    """Turn library errors into one line on stderr and the error's exit status."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DeltagliderError as error:
            click.echo(f"deltaglider: error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]


def parse_url(text: str) -> S3Url:
    return S3Url.parse(text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="deltaglider")
@click.option(
    "--endpoint-url", help="S3 endpoint, e.g. http://127.0.0.1:9000 (or AWS_ENDPOINT_URL)."
)
@click.option("--region", help="AWS region (or AWS_REGION).")
@click.option("--profile", help="Named profile from the AWS config files (or AWS_PROFILE).")
@click.option("--debug", is_flag=True, help="Log every step (key=value lines on stderr).")
@click.pass_context
@reports_errors
def main(
    ctx: click.Context,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    debug: bool,
) -> None:
    """Store versioned artifacts on S3 as binary deltas; get back byte-identical files.

    \b
    deltaglider cp build.zip s3://releases/1.2.3/
    deltaglider ls s3://releases/1.2.3/
    deltaglider cp s3://releases/1.2.3/build.zip ./
    """
    configure_cli_logging(debug)
    settings = Settings.from_env().with_overrides(
        endpoint_url=endpoint_url, region=region, profile=profile
    )
    ctx.obj = AppContext(settings)


def upload_line(source: str, result: UploadResult, verb: str = "upload") -> str:
    """`upload: SRC to s3://…` as aws prints it, with how it was stored in parentheses."""
    target = f"s3://{result.bucket}/{result.key}"
    if result.stored_as is StoredAs.UNCHANGED:
        detail = "unchanged: identical file already stored"
    else:
        detail = (
            f"{result.stored_as.value}: {human_size(result.stored_size)} stored for "
            f"{human_size(result.file_size)}"
        )
        if result.note:
            detail += f", {result.note}"
    return f"{verb}: {source} to {target} ({detail})"


def local_destination(target: str, key: str) -> Path:
    """Where a download of `key` to `target` lands, as `aws s3 cp` decides it."""
    path = Path(target)
    if path.is_dir() or target.endswith(("/", "\\")):
        path.mkdir(parents=True, exist_ok=True)
        return path / base_name(key)
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"{path.parent} exists and is not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@main.command()
@click.argument("source")
@click.argument("destination")
@click.option("--no-delta", is_flag=True, help="Store the file whole, never as a delta.")
@click.option(
    "--force-delta",
    is_flag=True,
    help="Try a delta whatever the file name (default: archive formats only).",
)
@click.option(
    "--max-ratio",
    type=float,
    help="Store direct when delta/file size exceeds this (0-1, default 0.5, DG_MAX_RATIO).",
)
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.pass_obj
@reports_errors
def cp(
    app: AppContext,
    source: str,
    destination: str,
    no_delta: bool,
    force_delta: bool,
    max_ratio: float | None,
    quiet: bool,
) -> None:
    """Copy a file to S3, from S3, or between S3 locations.

    \b
    Upload (a trailing / keeps the file's name):
      deltaglider cp dist/app-1.2.3.zip s3://releases/1.2.3/
    Download (to a folder, a file, or - for stdout):
      deltaglider cp s3://releases/1.2.3/app-1.2.3.zip ./
    Copy between buckets (stored as a delta in the destination's own folder):
      deltaglider cp s3://releases/1.2.3/app.zip s3://archive/1.2.3/
    """
    if no_delta and force_delta:
        raise UsageError("--no-delta and --force-delta cannot be combined")
    policy = (
        DeltaPolicy.NEVER if no_delta else DeltaPolicy.ALWAYS if force_delta else DeltaPolicy.AUTO
    )
    engine = app.engine(max_ratio=max_ratio)
    say = (lambda line: None) if quiet else click.echo

    if is_s3_url(source) and is_s3_url(destination):
        src, dst = parse_url(source), parse_url(destination)
        key = destination_key(dst, base_name(src.key))
        result = engine.copy(src.bucket, src.key, dst.bucket, key, policy=policy)
        say(upload_line(str(src), result, "copy"))
    elif is_s3_url(destination):
        dst = parse_url(destination)
        path = Path(source)
        key = destination_key(dst, path.name)
        say(upload_line(source, engine.upload(path, dst.bucket, key, policy=policy)))
    elif is_s3_url(source):
        src = parse_url(source)
        if destination == "-":
            with tempfile.TemporaryDirectory(prefix="deltaglider-") as scratch:
                local = Path(scratch) / "object"
                engine.download(src.bucket, src.key, local)
                with local.open("rb") as handle:
                    shutil.copyfileobj(handle, sys.stdout.buffer, 1024 * 1024)
                sys.stdout.buffer.flush()
            return
        target = local_destination(destination, src.key)
        engine.download(src.bucket, src.key, target)
        say(f"download: {src} to {destination if not Path(destination).is_dir() else target}")
    else:
        raise UsageError("one of SOURCE and DESTINATION must be an s3:// URL")


def _time_str(moment: datetime | None) -> str:
    if moment is None:
        return " " * 19
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@main.command()
@click.argument("path", required=False)
@click.option("--recursive", is_flag=True, help="List every object under the prefix.")
@click.option("--human-readable", is_flag=True, help="Sizes in KiB/MiB/GiB.")
@click.option("--summarize", is_flag=True, help="Print the object count and total size.")
@click.pass_obj
@reports_errors
def ls(
    app: AppContext, path: str | None, recursive: bool, human_readable: bool, summarize: bool
) -> None:
    """List buckets, or the files under a prefix with their logical (original) sizes.

    \b
      deltaglider ls
      deltaglider ls s3://releases/1.2.3/ --human-readable
      deltaglider ls s3://releases/ --recursive --summarize
    """
    engine = app.engine()
    if path is None:
        for bucket in engine.store.list_buckets():
            click.echo(f"{_time_str(bucket.created)} {bucket.name}")
        return
    url = parse_url(path)
    fmt = human_size if human_readable else str
    count = total = 0
    shown = False
    for entry in engine.logical_listing(url.bucket, url.key, recursive=recursive):
        shown = True
        click.echo(_ls_line(entry, url.key, recursive, fmt))
        if not entry.is_prefix:
            count += 1
            total += entry.size
    if summarize:
        click.echo(f"\n{'Total Objects: ':>15}{count}\n{'Total Size: ':>15}{fmt(total)}")
    if not shown and url.key:
        sys.exit(1)


def _ls_line(entry: ListEntry, prefix: str, recursive: bool, fmt: Callable[[int], str]) -> str:
    if entry.is_prefix:
        return f"{'PRE':>30} {entry.key.rstrip('/').rpartition('/')[2]}/"
    name = entry.key if recursive else base_name(entry.key)
    return f"{_time_str(entry.last_modified)} {fmt(entry.size):>10} {name}"


@main.command()
@click.argument("path")
@click.option("--recursive", is_flag=True, help="Delete every object under the prefix.")
@click.option("--dryrun", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.pass_obj
@reports_errors
def rm(app: AppContext, path: str, recursive: bool, dryrun: bool, quiet: bool) -> None:
    """Delete a file (delta or direct); a folder's reference goes when its last delta does.

    \b
      deltaglider rm s3://releases/1.2.3/app.zip
      deltaglider rm s3://releases/1.2.3/ --recursive
    """
    url = parse_url(path)
    engine = app.engine()
    prefix = "(dryrun) " if dryrun else ""
    if recursive:

        def report(result: Any) -> None:
            if not quiet:
                click.echo(f"{prefix}delete: s3://{result.bucket}/{result.key}")

        engine.delete_recursive(url.bucket, url.key, dryrun=dryrun, on_delete=report)
        return
    if dryrun:
        engine.locate(url.bucket, url.key)
    else:
        engine.delete(url.bucket, url.key)
    if not quiet:
        click.echo(f"{prefix}delete: {url}")


@main.command()
@click.argument("path")
@click.pass_obj
@reports_errors
def verify(app: AppContext, path: str) -> None:
    """Reconstruct a stored file and check its SHA-256 without writing it anywhere.

    \b
      deltaglider verify s3://releases/1.2.3/app.zip
    """
    url = parse_url(path)
    result = app.engine().verify(url.bucket, url.key)
    click.echo(
        f"OK: {url} ({result.stored_as}, {result.size} bytes, sha256 {result.actual_sha256})"
    )

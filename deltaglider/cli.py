"""The `deltaglider` command: parses arguments, calls the engine, prints `aws s3`-shaped lines.

Owns: options, output (text, `--json`, the TTY progress line) and exit statuses as `aws s3`
documents them. Must not decide how anything is stored: each command is a thin call into
`engine.Engine` or `transfer`, and every library error becomes one line on stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from deltaglider import __version__, interrupt, transfer
from deltaglider.config import CODECS, REFERENCE_MODES, Settings, check_endpoint
from deltaglider.errors import DeltagliderError, FatalError, NotFoundError, UsageError
from deltaglider.metadata import (
    DELTA_SUFFIX,
    BucketSettings,
    check_user_key,
    check_user_metadata,
    is_internal_key,
)
from deltaglider.models import (
    DeleteResult,
    DeltaPolicy,
    DownloadResult,
    ListEntry,
    StoredAs,
    UploadOptions,
    UploadResult,
    VerifyResult,
)
from deltaglider.transfer import Action, Filters, Location, Options, Outcome, Task
from deltaglider.urls import S3Url, base_name, destination_key, is_s3_url

if TYPE_CHECKING:  # imported where used: --version and --help start without boto3
    from deltaglider import stats
    from deltaglider.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1  # one or more transfers failed (the rest still ran)
EXIT_SKIPPED = 2  # files skipped, or arguments unparsable
PROGRESS_SINGLE_FILE = 8 * 1024 * 1024  # a single file this large gets the progress line
_SIZE_SUFFIXES = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(value: float) -> str:
    """Sizes as `aws s3 ls --human-readable` prints them."""
    if value == 1:
        return "1 Byte"
    if value < 1024:
        return f"{int(value)} Bytes"
    for power, suffix in enumerate(_SIZE_SUFFIXES, start=2):
        unit = 1024**power
        if round(value / unit * 1024) < 1024:
            return f"{1024 * value / unit:.1f} {suffix}"
    return f"{int(value)} Bytes"


_collector = {"paused": False}


def new_engine(settings: Settings) -> Engine:
    """An engine on botocore (imported here, by the first command that needs one). The
    console entry pauses the garbage collector for start-up; the first engine resumes it, with
    what start-up loaded frozen out of later collections."""
    from deltaglider.engine import Engine

    engine = Engine(settings)
    if _collector["paused"]:
        _collector["paused"] = False
        gc.freeze()
        gc.enable()
    return engine


class AppContext:
    """Settings from the environment and global flags; an engine per set of settings, built
    on first use (`make_engine` is `new_engine` except in tests that bring their own store),
    with logging set up then: `--help` and usage errors never import the engine."""

    def __init__(
        self,
        settings: Settings,
        make_engine: Callable[[Settings], Engine],
        *,
        debug: bool = False,
    ) -> None:
        self.settings = settings
        self.make_engine = make_engine
        self.debug = debug
        self._engines: dict[Settings, Engine] = {}

    def engine(
        self,
        *,
        max_ratio: float | None = None,
        codec: str | None = None,
        references: str | None = None,
    ) -> Engine:
        """The engine for the global settings with a command's own `--max-ratio`, `--codec`
        and `--references`."""
        settings = self.settings.with_overrides(
            max_ratio=max_ratio, codec=codec, references=references
        )
        if settings not in self._engines:
            if not self._engines:
                from deltaglider.log import configure_cli_logging

                configure_cli_logging(self.debug)
            self._engines[settings] = self.make_engine(settings)
        return self._engines[settings]


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


def ordered_filters(args: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`--exclude`/`--include` in the order given (click would group them by option)."""
    rules: list[tuple[str, str]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            break
        for kind in ("exclude", "include"):
            if arg == f"--{kind}" and index + 1 < len(args):
                rules.append((kind, args[index + 1]))
                index += 1
            elif arg.startswith(f"--{kind}="):
                rules.append((kind, arg.split("=", 1)[1]))
        index += 1
    return tuple(rules)


class FilteredCommand(click.Command):
    """A command that records the interleaved order of its --exclude/--include options."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["filters"] = Filters(ordered_filters(args))
        return super().parse_args(ctx, args)


def parse_metadata(text: str | None) -> dict[str, str] | None:
    """`--metadata k=v,k2=v2` (or a JSON object, as awscli also accepts)."""
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            raise UsageError(f"--metadata is not valid JSON: {text!r}") from None
        return {str(k): str(v) for k, v in loaded.items()}
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata expects key=value[,key=value…], not {text!r}")
        pairs[key.strip()] = value
    return pairs


@dataclass(frozen=True)
class OutputFlags:
    """How a many-file command reports: `aws s3`'s output options, `--json` and `--jobs`."""

    dryrun: bool = False
    quiet: bool = False
    only_show_errors: bool = False
    no_progress: bool = False
    as_json: bool = False
    jobs: int | None = None


@dataclass(frozen=True)
class TransferFlags:
    """The options `transfer_options` adds to cp, mv and sync, parsed once."""

    output: OutputFlags
    follow_symlinks: bool
    upload: UploadOptions  # max_ratio stays None: the engine's settings carry it
    max_ratio: float | None
    codec: str | None
    references: str | None

    @classmethod
    def take(cls, options: dict[str, Any]) -> TransferFlags:
        """Remove this group's options from click's keyword arguments and parse them."""
        output = OutputFlags(
            options.pop("dryrun"),
            options.pop("quiet"),
            options.pop("only_show_errors"),
            options.pop("no_progress"),
            options.pop("as_json"),
            options.pop("jobs"),
        )
        metadata = parse_metadata(options.pop("metadata_text"))
        upload = UploadOptions(
            policy=_policy(options.pop("no_delta"), options.pop("force_delta")),
            metadata=None if metadata is None else check_user_metadata(metadata),
            content_type=options.pop("content_type"),
        )
        options.pop("exclude")
        options.pop("include")  # read in command-line order by FilteredCommand
        return cls(
            output,
            options.pop("follow_symlinks"),
            upload,
            options.pop("max_ratio"),
            options.pop("codec"),
            options.pop("references"),
        )

    def engine(self, app: AppContext) -> Engine:
        return app.engine(max_ratio=self.max_ratio, codec=self.codec, references=self.references)


def transfer_options(command: F) -> F:
    """Options shared by cp, mv and sync (as `aws s3` spells them), plus deltaglider's own;
    the command receives them as one `flags: TransferFlags`."""

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> Any:
        try:
            flags = TransferFlags.take(kwargs)
        except DeltagliderError as error:
            click.echo(f"deltaglider: error: {error}", err=True)
            sys.exit(error.exit_code)
        return command(*args, flags=flags, **kwargs)

    decorators = [
        click.option("--dryrun", is_flag=True, help="Show what would be done; do nothing."),
        click.option("--quiet", is_flag=True, help="Print nothing but errors' exit status."),
        click.option("--only-show-errors", is_flag=True, help="Print errors only."),
        click.option("--no-progress", is_flag=True, help="No progress line on a terminal."),
        click.option(
            "--follow-symlinks/--no-follow-symlinks",
            default=True,
            help="Follow symlinks when reading local folders (default: follow).",
        ),
        click.option(
            "--exclude",
            multiple=True,
            metavar="PATTERN",
            help="Leave out files matching PATTERN (relative to the source).",
        ),
        click.option(
            "--include",
            multiple=True,
            metavar="PATTERN",
            help="Bring back files matching PATTERN; the last matching filter wins.",
        ),
        click.option("--content-type", help="Content-Type stored with uploaded files."),
        click.option(
            "--metadata",
            "metadata_text",
            metavar="K=V,…",
            help="User metadata stored with uploaded files (k=v,k2=v2).",
        ),
        click.option("--no-delta", is_flag=True, help="Store files whole, never as deltas."),
        click.option(
            "--force-delta",
            is_flag=True,
            help="Try a delta whatever the file name (default: archive formats).",
        ),
        click.option(
            "--max-ratio",
            type=float,
            help="Over this delta/file ratio the file is stored whole: direct, or with shared "
            "references as its series' next reference (0-1; DG_MAX_RATIO; 0.5).",
        ),
        click.option(
            "--codec",
            type=click.Choice(CODECS),
            help=(
                "Delta codec (DG_CODEC; default xdelta3). zstd encodes several times faster for "
                "slightly larger deltas, but deltaglider 6.x and older cannot read its deltas."
            ),
        ),
        click.option(
            "--references",
            type=click.Choice(REFERENCE_MODES),
            help=(
                "Where new references go (DG_REFERENCES; default: the bucket's setting, else "
                "shared). shared: one per file series under .deltaglider/refs/, used across "
                "folders; folder: each folder's own reference.bin, as deltaglider 6.x and the "
                "Rust proxy expect."
            ),
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="One JSON object per transfer on stdout, for machines.",
        ),
        click.option(
            "--jobs",
            type=click.IntRange(min=1),
            help="Concurrent transfers (DG_MAX_CONCURRENCY; default: cores).",
        ),
    ]
    wrapped: Any = with_flags
    for decorator in reversed(decorators):
        wrapped = decorator(wrapped)
    return cast(F, wrapped)


@dataclass
class Reporter:
    """Prints one line per outcome in `aws s3`'s shapes and keeps the exit status."""

    quiet: bool = False
    only_errors: bool = False
    as_json: bool = False
    dryrun: bool = False
    move: bool = False
    progress: Progress | None = None
    failed: int = 0
    skipped: int = 0

    def __call__(self, outcome: Outcome) -> None:
        if self.progress:
            self.progress.done(outcome)
        if outcome.skipped:
            self.skipped += 1
        elif outcome.error:
            self.failed += 1
        if self.as_json:
            self._echo(json.dumps(outcome_dict(outcome, self.dryrun)))
        elif outcome.skipped:
            self._echo(f"warning: {outcome.error}", err=True)
        elif outcome.error:
            reason = without_locations(outcome.error, outcome.task.source, outcome.task.destination)
            self._echo(f"{self._describe(outcome.task, failed=True)} {reason}", err=True)
        elif not (self.quiet or self.only_errors):
            self._echo(self._describe(outcome.task) + _detail(outcome.result))

    def _describe(self, task: Task, *, failed: bool = False) -> str:
        verb = "move" if self.move and task.action is not Action.DELETE else task.action.value
        line = f"{'(dryrun) ' if self.dryrun else ''}{verb}{' failed' if failed else ''}: "
        line += task.label or show(task.source)
        if task.destination is not None:
            line += f" to {show(task.destination)}"
        return line + (":" if failed else "")

    def _echo(self, line: str, *, err: bool = False) -> None:
        if self.as_json and err:
            return
        if self.quiet and not err:
            return
        if self.progress:
            self.progress.clear()
        click.echo(line, err=err)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_SKIPPED if self.skipped else 0


def show(location: Location) -> str:
    return str(location)


def without_locations(reason: str, *locations: Location | None) -> str:
    """An error's reason without a leading URL or path the line already names (each once)."""
    for location in locations:
        if location is not None:
            shown = show(location)
            prefixes = [f"{shown}: ", f"{shown.rstrip('/')}: "]
            if isinstance(location, S3Url):
                prefixes.append(f"s3://{location.bucket}: ")  # the line names the bucket too
            for prefix in prefixes:
                reason = reason.removeprefix(prefix)
    return reason


def _detail(result: object) -> str:
    if isinstance(result, VerifyResult):
        return f" ({result.stored_as}, {result.size} bytes, sha256 {result.actual_sha256})"
    if not isinstance(result, UploadResult):
        return ""
    if result.stored_as is StoredAs.UNCHANGED:
        return " (unchanged: identical file already stored)"
    detail = (
        f" ({result.stored_as.value}: {human_size(result.stored_size)} stored for "
        f"{human_size(result.file_size)}"
    )
    return detail + (f", {result.note})" if result.note else ")")


def outcome_dict(outcome: Outcome, dryrun: bool) -> dict[str, Any]:
    task, result = outcome.task, outcome.result
    record: dict[str, Any] = {
        "action": task.action.value,
        "source": task.label or show(task.source),
        "destination": show(task.destination) if task.destination is not None else None,
        "ok": outcome.ok,
        "error": outcome.error,
        "skipped": outcome.skipped,
        "dryrun": dryrun,
    }
    if isinstance(result, UploadResult):
        record.update(
            stored_as=result.stored_as.value,
            file_size=result.file_size,
            stored_size=result.stored_size,
            sha256=result.sha256,
            note=result.note or None,
            seconds=round(result.elapsed, 3),
        )
    elif isinstance(result, DownloadResult):
        record.update(
            stored_as=result.stored_as,
            file_size=result.size,
            sha256=result.sha256,
            verified=result.verified,
            seconds=round(result.elapsed, 3),
        )
    elif isinstance(result, DeleteResult):
        record.update(removed=list(result.removed))
    elif isinstance(result, VerifyResult):
        record.update(
            stored_as=result.stored_as, file_size=result.size, sha256=result.actual_sha256
        )
    return record


@dataclass
class Progress:
    """One self-rewriting line on a terminal's stderr: files, bytes (moving during each file,
    not only at its end), rate, current file. Redrawn at most every 0.1 s."""

    total_files: int
    total_bytes: int
    files: int = 0
    bytes: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counted: dict[int, int] = field(default_factory=dict)  # bytes told so far, per task
    drawn: float = 0.0

    def start(self, task: Task) -> Callable[[int], None]:
        """Show `task` as current; returns what its transfer tells its bytes to."""
        with self.lock:
            self.current = task.label or base_name(str(task.source))
            self._draw()

        def advance(count: int) -> None:
            with self.lock:
                self.counted[id(task)] = self.counted.get(id(task), 0) + count
                self.bytes += count
                if time.monotonic() - self.drawn >= 0.1:
                    self._draw()

        return advance

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            self.files += 1
            self.bytes += outcome.task.size - self.counted.pop(id(outcome.task), 0)
            self._draw()

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")

    def _draw(self) -> None:
        self.drawn = time.monotonic()
        rate = self.bytes / max(self.drawn - self.started, 1e-6)
        sys.stderr.write(
            f"\r\033[KCompleted {self.files} of {self.total_files} file(s), "
            f"{human_size(self.bytes)}/{human_size(self.total_bytes)} "
            f"({human_size(rate)}/s) {self.current}"[:200]
        )
        sys.stderr.flush()


# ---------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="deltaglider")
@click.option("--endpoint-url", help="S3 endpoint, e.g. http://127.0.0.1:9000 (AWS_ENDPOINT_URL).")
@click.option("--region", help="AWS region (or AWS_REGION).")
@click.option("--profile", help="Named profile from the AWS config files (or AWS_PROFILE).")
@click.option("--debug", is_flag=True, help="Log every step (key=value lines on stderr).")
@click.option("--no-verify-ssl", is_flag=True, help="Do not verify the endpoint's TLS certificate.")
@click.option(
    "--output",
    type=click.Choice(["json", "text", "table", "yaml", "yaml-stream"]),
    help="Accepted for `aws` compatibility; `aws s3` output does not change with it (use --json).",
)
@click.pass_context
@reports_errors
def main(
    ctx: click.Context,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    debug: bool,
    no_verify_ssl: bool,
    output: str | None,
) -> None:
    """Store versioned artifacts on S3 as binary deltas; get back byte-identical files.

    Commands and options follow `aws s3`; swap `aws s3` for `deltaglider` in a script. The
    global options (--endpoint-url, --region, --profile, --debug, --no-verify-ssl, --output)
    may also follow the command, as with aws.

    \b
    deltaglider cp build.zip s3://releases/1.2.3/
    deltaglider sync dist/ s3://releases/1.2.3/ --exclude "*.log"
    deltaglider ls s3://releases/1.2.3/
    deltaglider cp s3://releases/1.2.3/build.zip ./
    """
    settings = Settings.from_env().with_overrides(
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
        verify_ssl=False if no_verify_ssl else None,
    )
    make_engine = ctx.obj.make_engine if isinstance(ctx.obj, AppContext) else new_engine
    ctx.obj = AppContext(settings, make_engine, debug=debug)


def _policy(no_delta: bool, force_delta: bool) -> DeltaPolicy:
    if no_delta and force_delta:
        raise UsageError("--no-delta and --force-delta cannot be combined")
    if no_delta:
        return DeltaPolicy.NEVER
    return DeltaPolicy.ALWAYS if force_delta else DeltaPolicy.AUTO


def _location(text: str) -> Location:
    return S3Url.parse(text) if is_s3_url(text) else Path(text)


def _jobs(jobs: int | None, settings: Settings) -> int:
    if jobs is not None:
        return jobs
    if os.environ.get("DG_MAX_CONCURRENCY"):
        return settings.max_concurrency
    return max(2, os.cpu_count() or 2)


def _run_transfers(
    engine: Engine,
    plan: transfer.Plan,
    output: OutputFlags,
    upload: UploadOptions | None = None,
    *,
    move: bool = False,
    summary: Callable[[Reporter], str] | None = None,
) -> None:
    """Run a plan and exit with `aws s3`'s status; `summary` makes a last line on stdout."""
    options = Options(upload or UploadOptions(), move=move, dryrun=output.dryrun)
    show_progress = (
        sys.stderr.isatty()
        and not (output.no_progress or output.quiet or output.only_show_errors or output.as_json)
        and (len(plan.tasks) > 1 or sum(t.size for t in plan.tasks) >= PROGRESS_SINGLE_FILE)
    )
    progress = Progress(len(plan.tasks), sum(t.size for t in plan.tasks)) if show_progress else None
    reporter = Reporter(
        output.quiet, output.only_show_errors, output.as_json, output.dryrun, move, progress
    )
    for outcome in plan.skipped:
        reporter(outcome)
    if not output.dryrun:
        for folder in plan.folders:  # what S3 folder markers stand for, as aws creates them
            folder.mkdir(parents=True, exist_ok=True)
    transfer.run(
        engine,
        plan.tasks,
        options,
        _jobs(output.jobs, engine.settings),
        reporter,
        progress.start if progress else None,
    )
    if progress:
        progress.clear()
    if summary is not None:
        click.echo(summary(reporter))
    if interrupt.requested():
        done = len(plan.tasks) - reporter.failed
        click.echo(
            f"deltaglider: interrupted: {done} of {len(plan.tasks)} done; the rest not stored",
            err=True,
        )
        sys.exit(interrupt.exit_status())
    if reporter.exit_code:
        sys.exit(reporter.exit_code)


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
    src, dst = _location(source), _location(destination)
    filters: Filters = click.get_current_context().meta.get("filters", Filters())
    if recursive:
        if isinstance(src, Path) and not src.is_dir():
            raise FatalError(
                f"The user-provided path {source} does not exist or is not a directory."
            )
        plan = transfer.plan_copy(engine, src, dst, filters, follow_symlinks=flags.follow_symlinks)
    elif isinstance(src, Path) and src.is_dir():  # aws: "upload failed: … Is a directory", 1
        failed = Outcome(
            Task(Action.UPLOAD, src, dst, label=source),
            error=f"{source} is a directory (use --recursive to copy a folder)",
        )
        plan = transfer.Plan(skipped=[failed])
    else:
        plan = transfer.Plan([_single_task(src, dst, source, destination)])
    _run_transfers(engine, plan, flags.output, flags.upload, move=move)


def _single_task(src: Location, dst: Location, source: str, destination: str) -> Task:
    if isinstance(src, Path):
        if not src.exists():
            raise FatalError(f"The user-provided path {source} does not exist.")
        if src.is_dir():
            raise UsageError(f"{source} is a directory (use --recursive to copy a folder)")
        assert isinstance(dst, S3Url)
        target = dst.child(destination_key(dst, src.name))
        check_user_key(target.key)
        return Task(Action.UPLOAD, src, target, src.stat().st_size)
    if isinstance(dst, S3Url):
        target = dst.child(destination_key(dst, base_name(src.key)))
        check_user_key(target.key)
        return Task(Action.COPY, src, target)
    return Task(Action.DOWNLOAD, src, local_destination(destination, src.key))


def local_destination(target: str, key: str) -> Path:
    """Where a download of `key` to `target` lands, as `aws s3 cp` decides it."""
    path = Path(target)
    if target.endswith(("/", os.sep)) and path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a directory")
    if path.is_dir() or target.endswith(("/", os.sep)):
        return path / base_name(key)
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"{path.parent} exists and is not a directory")
    return path


def _upload_stdin(engine: Engine, dst: S3Url, flags: TransferFlags) -> None:
    if dst.is_prefix:
        raise UsageError("uploading from stdin (-) needs a full destination key, not a folder")
    with engine.work_directory() as scratch:
        local = Path(scratch) / "stdin"  # never named after the key: names have length limits
        with local.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1024 * 1024)
        task = Task(Action.UPLOAD, local, dst, local.stat().st_size, label="-")
        _run_transfers(engine, transfer.Plan([task]), flags.output, flags.upload)


def _download_stdout(engine: Engine, src: S3Url) -> None:
    with engine.work_directory() as scratch:
        local = Path(scratch) / "object"
        engine.download(src.bucket, src.key, local)  # verified before a byte reaches stdout
        with local.open("rb") as handle:
            shutil.copyfileobj(handle, sys.stdout.buffer, 1024 * 1024)
        sys.stdout.buffer.flush()


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
    src, dst = _location(source), _location(destination)
    if isinstance(src, Path) and not src.is_dir():
        raise FatalError(f"The user-provided path {source} does not exist or is not a directory.")
    filters: Filters = click.get_current_context().meta.get("filters", Filters())
    engine = flags.engine(app)
    plan = transfer.plan_sync(
        engine,
        src,
        dst,
        filters,
        size_only=size_only,
        exact_timestamps=exact_timestamps,
        delete=delete,
        follow_symlinks=flags.follow_symlinks,
    )
    _run_transfers(engine, plan, flags.output, flags.upload)


def _time_str(moment: datetime | None) -> str:
    if moment is None:
        return " " * 19
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@main.command()
@click.argument("path", required=False)
@click.option("--recursive", is_flag=True, help="List every object under the prefix.")
@click.option("--human-readable", is_flag=True, help="Sizes in KiB/MiB/GiB.")
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
    url = None if path is None else S3Url.parse(path if is_s3_url(path) else f"s3://{path}")
    engine = app.engine()
    fmt: Callable[[int], str] = human_size if human_readable else str
    count = total = stored = shown = 0
    references: set[str] = set()
    try:
        if url is None:
            for bucket in engine.list_buckets():
                click.echo(f"{_time_str(bucket.created)} {bucket.name}")
            return
        logical = summarize or not stored_sizes
        for entry in engine.listing(
            url.bucket, url.key, recursive=recursive, logical_sizes=logical
        ):
            if as_json:
                click.echo(json.dumps(_ls_record(entry)))
            else:
                click.echo(_ls_line(entry, recursive, fmt, stored_sizes))
            shown += 1
            if not entry.is_prefix:
                count += 1
                total += entry.size
                stored += entry.stored_size
                if entry.head is not None:
                    references.add(engine.reference_key_of(entry.head))
        if summarize:
            stored += engine.stored_sizes(url.bucket, sorted(references))
    except UsageError:
        raise
    except DeltagliderError as error:
        raise FatalError(str(error)) from None
    if summarize and as_json:
        click.echo(json.dumps({"objects": count, "size": total, "stored": stored}))
    elif summarize:
        click.echo(
            f"\n{'Total Objects: ':>15}{count}\n{'Total Size: ':>15}{fmt(total)}"
            f"\n{'Total Stored: ':>15}{fmt(stored)} (references included)"
        )
    if shown == 0 and url.key and not summarize:
        sys.exit(EXIT_FAILED)  # as aws: only a listing that shows nothing at all


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


def _ls_line(
    entry: ListEntry, recursive: bool, fmt: Callable[[int], str], stored_sizes: bool = False
) -> str:
    if entry.is_prefix:
        return f"{'PRE':>30} {entry.key.rstrip('/').rpartition('/')[2]}/"
    name = entry.key if recursive else base_name(entry.key)
    size = entry.stored_size if stored_sizes else entry.size
    return f"{_time_str(entry.last_modified)} {fmt(size):>10} {name}"


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
    """Delete files (delta or direct); a folder's reference goes when its last delta does.

    \b
      deltaglider rm s3://releases/1.2.3/app.zip
      deltaglider rm s3://releases/1.2.3/ --recursive --exclude "*.zip"
    """
    url = S3Url.parse(path)
    engine = app.engine()
    output = OutputFlags(dryrun, quiet, only_show_errors, as_json=as_json, jobs=jobs)
    if recursive:
        filters: Filters = click.get_current_context().meta.get("filters", Filters())
        _run_transfers(engine, transfer.plan_delete(engine, url, filters), output)
        return
    _run_transfers(engine, transfer.Plan([Task(Action.DELETE, url)]), output)


@main.command()
@click.argument("path")
@click.pass_obj
@reports_errors
def mb(app: AppContext, path: str) -> None:
    """Make a bucket.

    \b
      deltaglider mb s3://releases
    """
    url = S3Url.parse(path)
    try:
        app.engine().create_bucket(url.bucket)
    except DeltagliderError as error:
        reason = without_locations(str(error), S3Url(url.bucket))
        click.echo(f"make_bucket failed: s3://{url.bucket} {reason}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"make_bucket: {url.bucket}")


@main.command()
@click.argument("path")
@click.option("--force", is_flag=True, help="Delete every object first, then the bucket.")
@click.pass_obj
@reports_errors
def rb(app: AppContext, path: str, force: bool) -> None:
    """Remove a bucket (it must be empty unless --force).

    \b
      deltaglider rb s3://old-releases --force
    """
    url = S3Url.parse(path)
    engine = app.engine()
    try:
        if force:
            for result in engine.delete_recursive(url.bucket, ""):
                if not is_internal_key(result.key):  # references and .deltaglider/ go silently
                    click.echo(f"delete: s3://{url.bucket}/{result.key}")
        engine.delete_bucket(url.bucket)
    except DeltagliderError as error:
        reason = without_locations(str(error), S3Url(url.bucket))
        click.echo(f"remove_bucket failed: s3://{url.bucket} {reason}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"remove_bucket: {url.bucket}")


@main.command()
@click.argument("path")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Leave unfinished uploads and trash younger than this many seconds alone "
    "(they may belong to a command still running).",
)
@click.option("--dryrun", is_flag=True, help="Say what would be done; do nothing.")
@click.pass_obj
@reports_errors
def cleanup(app: AppContext, path: str, older_than: float, dryrun: bool) -> None:
    """Repair what killed or failed commands left behind in a bucket.

    Aborts unfinished multipart uploads, puts back a folder reference that a delta still
    needs from .deltaglider/trash/, empties the trash, deletes expired presigned-URL copies
    and references no delta needs, and names (exit 1) any delta that stays unreadable.

    \b
      deltaglider cleanup s3://releases
      deltaglider cleanup s3://releases/1.2.3/ --older-than 0 --dryrun
    """
    url = S3Url.parse(path)
    report = app.engine().cleanup(
        url.bucket, url.key, older_than=older_than, dryrun=dryrun, say=click.echo
    )
    for line in report.unreadable:
        click.echo(f"unreadable: {line}", err=True)
    done = "would be done" if dryrun else "done"
    click.echo(
        f"cleanup: {report.checked} deltas checked, {len(report.unreadable)} unreadable; "
        f"{len(report.actions)} repairs {done}"
    )
    if report.unreadable:
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("path")
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a setting: references=shared|folder, codec=xdelta3|zstd|default, "
    "conditional_writes=true|false|probe; may be repeated.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_obj
@reports_errors
def config(app: AppContext, path: str, changes: tuple[str, ...], as_json: bool) -> None:
    """Show or change the bucket's deltaglider settings (.deltaglider/config.json).

    references: where new references go. shared (the default) keeps one reference per file
    series under .deltaglider/refs/ and encodes across folders, so one folder per version
    saves as much as one folder for all; folder keeps each folder's own reference.bin, which
    deltaglider 6.x and the Rust proxy also read.

    codec: what every writer of the bucket encodes new deltas with, unless its --codec or
    DG_CODEC says otherwise. zstd encodes several times faster; deltaglider 6.x cannot read
    it. default (the same as unset) is xdelta3.

    conditional_writes: whether the server honours If-None-Match (folder references only);
    the first folder-mode upload probes it and records the answer; probe forgets it.

    Existing objects are never rewritten.

    \b
      deltaglider config s3://releases
      deltaglider config s3://releases --set references=folder
      deltaglider config s3://releases --set codec=zstd
    """
    url = S3Url.parse(path)
    for change in changes:  # every change checked before the bucket is asked
        changed_setting(BucketSettings(), change)
    engine = app.engine()
    current = engine.bucket_settings(url.bucket)
    if changes:
        for change in changes:
            current = changed_setting(current, change)
        engine.set_bucket_settings(url.bucket, current)
    shown = {
        "references": current.references,
        "codec": current.codec or "xdelta3 (default)",
        "conditional_writes": (
            "not probed yet"
            if current.conditional_writes is None
            else str(current.conditional_writes).lower()
        ),
    }
    if as_json:
        document: dict[str, object] = {
            "bucket": url.bucket,
            "references": current.references,
            "codec": current.codec,
            "conditional_writes": current.conditional_writes,
        }
        click.echo(json.dumps(document))
    else:
        for name, value in shown.items():
            click.echo(f"{name} = {value}")


def changed_setting(current: BucketSettings, change: str) -> BucketSettings:
    """One `--set KEY=VALUE` applied to the bucket settings (UsageError for anything else)."""
    key, sep, value = change.partition("=")
    choices = {
        "references": REFERENCE_MODES,
        "codec": (*CODECS, "default"),
        "conditional_writes": ("true", "false", "probe"),
    }
    if not sep or key not in choices:
        raise UsageError(f"--set expects one of {', '.join(choices)} as KEY=VALUE, not {change!r}")
    if value not in choices[key]:
        raise UsageError(f"{key} must be one of {', '.join(choices[key])}, not {value!r}")
    if key == "references":
        return dataclasses.replace(current, references=value)
    if key == "codec":
        return dataclasses.replace(current, codec=None if value == "default" else value)
    known = None if value == "probe" else value == "true"
    return dataclasses.replace(current, conditional_writes=known)


@main.command(cls=FilteredCommand)
@click.argument("path")
@click.option("--recursive", "-r", is_flag=True, help="Verify every file under the prefix.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Skip files matching PATTERN.")
@click.option("--include", multiple=True, metavar="PATTERN", help="Check them again; last wins.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option("--jobs", type=click.IntRange(min=1), help="Files checked concurrently.")
@click.option("--quiet", is_flag=True, help="Print only failures and the summary.")
@click.pass_obj
@reports_errors
def verify(
    app: AppContext,
    path: str,
    recursive: bool,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    as_json: bool,
    jobs: int | None,
    quiet: bool,
) -> None:
    """Reconstruct stored files and check their SHA-256 without writing them anywhere: the
    "is my bucket intact?" command. Exit 1 if any file fails, or if there is nothing to check.

    \b
      deltaglider verify s3://releases/1.2.3/app.zip
      deltaglider verify --recursive s3://releases/
    """
    url = S3Url.parse(path)
    engine = app.engine()
    if not recursive:
        result = engine.verify(url.bucket, url.key)
        click.echo(
            f"OK: {url} ({result.stored_as}, {result.size} bytes, sha256 {result.actual_sha256})"
        )
        return
    filters: Filters = click.get_current_context().meta.get("filters", Filters())
    plan = transfer.plan_verify(engine, url, filters)
    if not plan.tasks:
        # A release check of a version never uploaded (or filtered away) must not pass.
        raise NotFoundError(f"no stored files to verify under {url}", code="NoSuchKey")
    output = OutputFlags(quiet=quiet, as_json=as_json, jobs=jobs)

    def checked(reporter: Reporter) -> str:
        if as_json:
            return json.dumps({"checked": len(plan.tasks), "failed": reporter.failed})
        return f"verify: {len(plan.tasks)} files checked, {reporter.failed} failed"

    _run_transfers(engine, plan, output, summary=checked)


@main.command(cls=FilteredCommand)
@click.argument("source")
@click.argument("destination", required=False)
@click.option(
    "--in-place",
    is_flag=True,
    help="Compact SOURCE's whole objects where they are (no DESTINATION).",
)
@click.option("--source-endpoint-url", help="The source's endpoint, when it differs.")
@click.option("--source-profile", help="The source's AWS profile, when it differs.")
@click.option("--shard", help="Only this share of the keys: I/N (1 <= I <= N), for N runners.")
@click.option("--jobs", type=click.IntRange(min=1), help="Files at a time (default: cores).")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out matching files.")
@click.option("--include", multiple=True, metavar="PATTERN", help="Bring them back; last wins.")
@click.option("--dryrun", is_flag=True, help="The plan and the bytes it would store; no writes.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, then a summary.")
@click.option("--quiet", is_flag=True, help="Only failures and the summary.")
@click.pass_obj
@reports_errors
def migrate(
    app: AppContext,
    source: str,
    destination: str | None,
    in_place: bool,
    source_endpoint_url: str | None,
    source_profile: str | None,
    shard: str | None,
    jobs: int | None,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    dryrun: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Bring a bucket in: every file under SOURCE (plain objects, deltaglider 5.x/6.x, ours)
    rebuilt, verified and stored as deltaglider stores it under DESTINATION, then read back
    and checked. A re-run skips what is already there with the same bytes (SHA-256 and size,
    not key presence) and redoes anything else, so a killed run is finished by running it
    again. --shard I/N splits the keys so N runners (a CI matrix) share the work.

    \b
      deltaglider migrate s3://old-releases s3://releases
      deltaglider migrate s3://legacy/app/ s3://releases/app/ --source-endpoint-url https://minio.internal:9000
      deltaglider migrate s3://big s3://releases --shard 3/10 --jobs 8 --json
      deltaglider migrate s3://releases/app/ --in-place
    """
    if in_place == (destination is not None):
        raise UsageError("migrate takes SOURCE and DESTINATION, or SOURCE with --in-place")
    if in_place and (source_endpoint_url or source_profile or dryrun):
        raise UsageError("--in-place works on one bucket: no --source-*, no --dryrun")
    from deltaglider import migration
    from deltaglider.s3 import ec2_region

    src = S3Url.parse(source)
    dst = S3Url.parse(destination) if destination is not None else src
    try:
        chosen = migration.Shard.parse(shard) if shard else None
    except ValueError as error:
        raise UsageError(str(error)) from None
    if source_endpoint_url is not None:
        check_endpoint(source_endpoint_url, "--source-endpoint-url")
    src_settings = app.settings.with_overrides(
        endpoint_url=source_endpoint_url, profile=source_profile
    )
    target = app.engine()
    origin = target if src_settings == target.settings else app.make_engine(src_settings)
    if not origin.bucket_exists(src.bucket):
        raise NotFoundError(f"s3://{src.bucket}: no such bucket", code="NoSuchBucket")
    if not target.bucket_exists(dst.bucket):
        raise NotFoundError(f"s3://{dst.bucket}: no such bucket", code="NoSuchBucket")
    filters: Filters = click.get_current_context().meta.get("filters", Filters())
    for warning in migration.cost_warnings(
        f"s3://{src.bucket}",
        origin.bucket_region(src.bucket),
        f"s3://{dst.bucket}",
        target.bucket_region(dst.bucket),
        ec2_region(),
    ):
        click.echo(f"deltaglider: warning: {warning}", err=True)

    progress_line = sys.stderr.isatty() and not as_json
    tally = {"migrated": 0, "skipped": 0, "failed": 0, "planned": 0}

    def say(outcome: migration.Outcome) -> None:
        tally[outcome.status] += 1
        if progress_line:  # cleared before each line, redrawn after
            click.echo("\r\033[K", nl=False, err=True)
        _say_migrated(outcome)
        if progress_line:
            click.echo(
                f"migrate: {tally['migrated'] + tally['planned']} done, {tally['skipped']} "
                f"already there, {tally['failed']} failed",
                nl=False,
                err=True,
            )

    def _say_migrated(outcome: migration.Outcome) -> None:
        if as_json:
            click.echo(json.dumps(outcome.__dict__))
        elif outcome.status == "failed":
            click.echo(f"migrate failed: {outcome.source}: {outcome.error}", err=True)
        elif quiet:
            return
        elif outcome.status == "skipped":
            click.echo(f"skip: {outcome.source} (already at {outcome.target})")
        elif in_place:
            sizes = f"{human_size(outcome.stored_size)} stored for {human_size(outcome.file_size)}"
            click.echo(f"compact: {outcome.source} ({outcome.stored_as}: {sizes})")
        else:
            mark = "(dryrun) " if dryrun else ""
            sizes = f"{human_size(outcome.stored_size)} stored for {human_size(outcome.file_size)}"
            click.echo(
                f"{mark}migrate: {outcome.source} to {outcome.target} "
                f"({outcome.stored_as}: {sizes})"
            )

    if in_place:
        summary = migration.run_in_place(
            target,
            src.bucket,
            src.key,
            included=filters.included,
            shard=chosen,
            jobs=jobs or target.settings.max_concurrency,
            say=say,
        )
    else:
        summary = migration.run(
            origin,
            target,
            src.bucket,
            src.key,
            dst.bucket,
            dst.key,
            included=filters.included,
            shard=chosen,
            jobs=jobs or target.settings.max_concurrency,
            dryrun=dryrun,
            say=say,
        )
    if progress_line:
        click.echo("\r\033[K", nl=False, err=True)
    if as_json:
        click.echo(json.dumps({"summary": summary.__dict__}))
    else:
        would = "would store" if dryrun else "stored"
        click.echo(
            f"migrate: {summary.planned} files, {summary.migrated} migrated, "
            f"{summary.skipped} already there, {summary.failed} failed; "
            f"{human_size(summary.file_bytes)} {would} as {human_size(summary.stored_bytes)}"
        )
    if summary.failed:
        sys.exit(EXIT_FAILED)


AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`, `45s` or plain seconds."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in AGE_UNITS else (text, "s")
    if not number.isdigit():
        raise UsageError(f"--older-than: {text!r} is not an age such as 90d, 12h or 30m")
    return timedelta(seconds=int(number) * AGE_UNITS[unit])


@main.command()
@click.argument("path")
@click.option("--keep-last", type=click.IntRange(min=1), help="Keep the newest N of each group.")
@click.option("--older-than", "older_than", help="Delete only versions older than this (90d, 12h).")
@click.option(
    "--by",
    type=click.Choice(["series", "folder"]),
    default="series",
    show_default=True,
    help="What a group of versions is.",
)
@click.option("--dryrun", is_flag=True, help="Show what would go and the bytes freed; do nothing.")
@click.pass_obj
@reports_errors
def prune(
    app: AppContext,
    path: str,
    keep_last: int | None,
    older_than: str | None,
    by: str,
    dryrun: bool,
) -> None:
    """Delete old versions per series (or folder) without breaking the ones that stay:
    a reference goes only when no remaining delta needs it, and nothing is re-encoded.
    Newest means last in the natural order of the keys (1.9 before 1.10). With both options a
    version goes when it is not among the newest N and older than AGE.

    \b
      deltaglider prune s3://releases/app/ --keep-last 3 --dryrun
      deltaglider prune s3://releases/ --older-than 90d --keep-last 10
    """
    url = S3Url.parse(path)
    age = parse_age(older_than) if older_than is not None else None
    result = app.engine().prune(
        url.bucket,
        url.key,
        by=by,
        keep_last=keep_last,
        older_than=age,
        dryrun=dryrun,
        say=click.echo,
    )
    would = "would be " if dryrun else ""
    click.echo(
        f"prune: {len(result.deleted)} versions {would}deleted, {result.kept} kept, "
        f"{len(result.references)} references {would}removed; "
        f"{human_size(result.freed_bytes)} {would}freed"
    )


@main.command("stats")
@click.argument("path")
@click.option("--sampled", is_flag=True, help="HEAD a sample of deltas for their file sizes.")
@click.option("--detailed", is_flag=True, help="HEAD every delta: exact logical bytes.")
@click.option("--by", type=click.Choice(["series", "folder"]), help="A breakdown with grades.")
@click.option("--refresh", is_flag=True, help="Recompute even when the cached result is valid.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cached result.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "prometheus"]),
    default="text",
    help="text (default), json, or prometheus (for node_exporter's textfile collector).",
)
@click.pass_obj
@reports_errors
def stats_command(
    app: AppContext,
    path: str,
    sampled: bool,
    detailed: bool,
    by: str | None,
    refresh: bool,
    no_cache: bool,
    as_json: bool,
    output_format: str,
) -> None:
    """What a bucket or prefix stores, what its files would take stored whole, and how well
    each series or folder deltas (grades: excellent <= 5%, good < 20%, fair < 50%, poor).

    Stored bytes count every object kept (references and internal objects included). Logical
    bytes of deltas are estimated by default (from their references' sizes), from a sample
    with --sampled, and exact with --detailed (one HEAD per delta; cached in the bucket while
    the listing is unchanged).

    \b
      deltaglider stats s3://releases
      deltaglider stats s3://releases/app/ --detailed --by series
      deltaglider stats s3://releases --format prometheus > /var/lib/node_exporter/dg.prom
    """
    if sampled and detailed:
        raise UsageError("--sampled and --detailed cannot be combined")
    if no_cache and refresh:
        raise UsageError("--refresh and --no-cache cannot be combined")
    from deltaglider import stats

    url = S3Url.parse(path)
    mode = stats.Mode.DETAILED if detailed else stats.Mode.SAMPLED if sampled else stats.Mode.QUICK
    show_progress = sys.stderr.isatty()

    def progress(listed: int, headed: int) -> None:
        if show_progress:
            click.echo(
                f"\rstats: {listed} objects listed, {headed} deltas HEADed", nl=False, err=True
            )

    result = app.engine().stats(
        url.bucket,
        url.key,
        mode=mode,
        by=by or "series",
        use_cache=not no_cache,
        refresh=refresh,
        progress=progress,
    )
    if show_progress:
        click.echo("\r\033[K", nl=False, err=True)
    if as_json or output_format == "json":
        click.echo(json.dumps(result.to_dict()))
    elif output_format == "prometheus":
        click.echo(stats.prometheus_text(result), nl=False)
    else:
        click.echo(stats_text(result, show_groups=by is not None), nl=False)


def stats_text(result: stats.BucketStats, *, show_groups: bool) -> str:
    mark = "*" if result.logical_estimated else ""
    where = f"s3://{result.bucket}/{result.prefix}"
    lines = [f"{where} ({result.mode.value}{', cached' if result.from_cache else ''})", ""]
    lines.append(f"{'':<18}{'objects':>9}{'logical':>14}{'stored':>14}")
    rows = [
        (
            "deltas",
            result.deltas,
            f"{human_size(result.logical_bytes - result.direct_bytes)}{mark}",
            result.delta_bytes,
        ),
        ("direct files", result.direct, human_size(result.direct_bytes), result.direct_bytes),
        ("references", result.references, "-", result.reference_bytes),
        ("shared references", result.shared_references, "-", result.shared_reference_bytes),
        ("internal", result.internal_objects, "-", result.internal_bytes),
    ]
    for name, count, logical, stored in rows:
        lines.append(f"{name:<18}{count:>9}{logical:>14}{human_size(stored):>14}")
    total = f"{human_size(result.logical_bytes)}{mark}"
    lines.append(
        f"{'total':<18}{result.objects:>9}{total:>14}{human_size(result.stored_bytes):>14}"
    )
    lines.append("")
    lines.append(
        f"{result.files} files: stored {result.stored_ratio:.1%} of their size, "
        f"saved {human_size(max(result.saved_bytes, 0))}"
    )
    if result.logical_estimated:
        lines.append(f"* estimated: {result.estimate_basis} (--detailed for exact)")
    if show_groups:
        lines += ["", *groups_lines(result)]
    return "\n".join(lines) + "\n"


def groups_lines(result: stats.BucketStats) -> list[str]:
    """The per-series (or per-folder) table with grades, and advice for poor ones."""
    lines = [
        f"{'by ' + result.by:<44}{'files':>7}{'logical':>12}{'stored':>12}{'median Δ':>10}  grade"
    ]
    for group in result.groups:
        ratio = f"{group.median_delta_ratio:.1%}" if group.median_delta_ratio is not None else "-"
        lines.append(
            f"{group.name[:44]:<44}{group.files:>7}{human_size(group.logical_bytes):>12}"
            f"{human_size(group.stored_bytes):>12}{ratio:>10}  {group.grade.value}"
        )
    lines += [
        f"{group.grade.value}: {group.name}: {group.advice}"
        for group in result.groups
        if group.advice
    ]
    return lines


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--max-ratio", type=click.FloatRange(0, 1), help="As for cp (DG_MAX_RATIO; 0.5).")
@click.option("--no-delta", is_flag=True, help="As for cp: estimate the file stored whole.")
@click.option("--force-delta", is_flag=True, help="As for cp: try a delta whatever the name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.pass_obj
@reports_errors
def estimate(
    app: AppContext,
    paths: tuple[str, ...],
    max_ratio: float | None,
    no_delta: bool,
    force_delta: bool,
    as_json: bool,
) -> None:
    """What each FILE would be stored as, and its size, if copied to the S3 destination (the
    last argument) now: the same decision and encoding as `cp`, nothing written. Each file is
    estimated against what the bucket holds today (see `analyze` for a folder of versions).

    \b
      deltaglider estimate dist/app-1.2.4.zip s3://releases/1.2.4/
      deltaglider estimate dist/*.whl s3://releases/1.2.4/ --json
    """
    if len(paths) < 2 or not is_s3_url(paths[-1]):
        raise UsageError("estimate needs FILE… and an s3:// destination as the last argument")
    url = S3Url.parse(paths[-1])
    options = UploadOptions(_policy(no_delta, force_delta), max_ratio)
    engine = app.engine()
    for name in paths[:-1]:
        local = Path(name)
        if not local.is_file():
            raise UsageError(f"{name}: not a file")
        result = engine.estimate(local, url.bucket, destination_key(url, local.name), options)
        target = f"s3://{url.bucket}/{result.key}"
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "source": name,
                        "destination": target,
                        "stored_as": result.stored_as.value,
                        "file_size": result.file_size,
                        "stored_size": result.stored_size,
                        "note": result.note or None,
                    }
                )
            )
        else:
            click.echo(f"estimate: {name} to {target}{_detail(result)}")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--max-ratio", type=click.FloatRange(0, 1), help="As for cp (DG_MAX_RATIO; 0.5).")
@click.option(
    "--references",
    type=click.Choice(REFERENCE_MODES),
    help="Layout to predict (default DG_REFERENCES, else shared).",
)
@click.option("--json", "as_json", is_flag=True, help="Each file, then the totals, as JSON.")
@click.pass_obj
@reports_errors
def analyze(
    app: AppContext, folder: Path, max_ratio: float | None, references: str | None, as_json: bool
) -> None:
    """What a local folder of artifacts would store under deltaglider, with no bucket: each
    series' versions (in natural order of their paths) go through the same upload path as
    `cp` into a scratch bucket on local disk, then that bucket's exact stats are printed.

    \b
      deltaglider analyze releases/          # e.g. one folder per version
      deltaglider analyze dist/ --json
    """
    settings = app.settings.with_overrides(max_ratio=max_ratio, references=references)
    options = UploadOptions()

    def say(result: UploadResult) -> None:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "file": result.key,
                        "stored_as": result.stored_as.value,
                        "file_size": result.file_size,
                        "stored_size": result.stored_size,
                    }
                )
            )
        else:
            click.echo(f"analyze: {result.key}{_detail(result)}")

    from deltaglider import analysis

    found = analysis.analyze(folder, settings, options, say)
    result = found.stats
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo("")
    click.echo(
        f"{folder}: {result.files} files in {len(result.groups)} series, "
        f"{human_size(result.logical_bytes)}; deltaglider would store "
        f"{human_size(result.stored_bytes)} ({result.stored_ratio:.1%}), "
        f"saving {human_size(max(result.saved_bytes, 0))}"
    )
    click.echo("\n".join(["", *groups_lines(result)]))


@main.command()
@click.argument("path")
@click.option(
    "--expires-in",
    type=click.IntRange(1, 604800),
    default=3600,
    show_default=True,
    help="Seconds the URL stays valid (at most 7 days).",
)
@click.pass_obj
@reports_errors
def presign(app: AppContext, path: str, expires_in: int) -> None:
    """A presigned GET URL for a file, as `aws s3 presign`; for a delta, the URL serves the
    whole file (rebuilt once into .deltaglider/tmp/, removed by `purge` after it expires).

    \b
      deltaglider presign s3://releases/1.2.3/app.zip --expires-in 600
    """
    url = S3Url.parse(path)
    if not url.key or url.key.endswith("/"):
        raise UsageError(f"{path}: presign needs a file, not a bucket or folder")
    click.echo(
        app.engine().presigned_url("get_object", {"Bucket": url.bucket, "Key": url.key}, expires_in)
    )


@main.command()
@click.argument("path")
@click.pass_obj
@reports_errors
def purge(app: AppContext, path: str) -> None:
    """Delete the whole copies that presigned URLs of deltas served, once those URLs have
    expired (`cleanup` does this too).

    \b
      deltaglider purge s3://releases
    """
    url = S3Url.parse(path)
    deleted, kept = app.engine().purge_rehydrations(url.bucket)
    for key in deleted:
        click.echo(f"delete: s3://{url.bucket}/{key}")
    click.echo(f"purge: {len(deleted)} expired copies deleted, {kept} kept")


ACL_GRANTS = ("full-control", "read", "read-acp", "write", "write-acp")


@main.command("put-bucket-acl")
@click.option("--bucket", required=True, help="The bucket.")
@click.option(
    "--acl",
    type=click.Choice(["private", "public-read", "public-read-write", "authenticated-read"]),
    help="A canned ACL.",
)
@click.option("--access-control-policy", help="The policy as JSON, or file://PATH to read it from.")
@click.option("--grant-full-control", help="Grantees, as aws s3api takes them (id=…,uri=…).")
@click.option("--grant-read", help="Grantees allowed to list the bucket.")
@click.option("--grant-read-acp", help="Grantees allowed to read the ACL.")
@click.option("--grant-write", help="Grantees allowed to write objects.")
@click.option("--grant-write-acp", help="Grantees allowed to change the ACL.")
@click.option("--expected-bucket-owner", help="Fail unless this account owns the bucket.")
@click.pass_obj
@reports_errors
def put_bucket_acl(
    app: AppContext,
    /,
    bucket: str,
    acl: str | None,
    access_control_policy: str | None,
    expected_bucket_owner: str | None,
    **grants: str | None,
) -> None:
    """Set a bucket's ACL, with `aws s3api put-bucket-acl`'s options (passed through).

    \b
      deltaglider put-bucket-acl --bucket releases --acl private
    """
    request: dict[str, Any] = {}
    if acl:
        request["ACL"] = acl
    if access_control_policy:
        request["AccessControlPolicy"] = _json_argument(
            "--access-control-policy", access_control_policy
        )
    for name, value in grants.items():
        if value:
            request["".join(part.capitalize() for part in name.split("_"))] = value
    if expected_bucket_owner:
        request["ExpectedBucketOwner"] = expected_bucket_owner
    if not request.keys() - {"ExpectedBucketOwner"}:
        raise UsageError(
            "put-bucket-acl needs --acl, --access-control-policy or a --grant-* option"
        )
    app.engine().put_bucket_acl(bucket, request)


@main.command("get-bucket-acl")
@click.option("--bucket", required=True, help="The bucket.")
@click.pass_obj
@reports_errors
def get_bucket_acl(app: AppContext, bucket: str) -> None:
    """Print a bucket's ACL (Owner and Grants) as JSON, as `aws s3api get-bucket-acl`.

    \b
      deltaglider get-bucket-acl --bucket releases
    """
    click.echo(json.dumps(app.engine().bucket_acl(bucket), indent=4))


def _json_argument(option: str, value: str) -> Any:
    text = value
    if value.startswith("file://"):
        try:
            text = Path(value.removeprefix("file://")).read_text()
        except OSError as error:
            raise UsageError(f"{option}: cannot read {value}: {error.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{option} is not valid JSON: {error.msg}") from None


GLOBAL_OPTIONS_WITH_VALUE = ("--endpoint-url", "--region", "--profile", "--output")
GLOBAL_FLAGS = ("--debug", "--no-verify-ssl")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options that follow the command in front of it (`deltaglider ls URL
    --endpoint-url E` = `deltaglider --endpoint-url E ls URL`), as aws accepts them anywhere."""
    command = 0
    while command < len(args) and args[command].startswith("-"):
        takes_value = args[command] in GLOBAL_OPTIONS_WITH_VALUE
        command += 2 if takes_value else 1
    hoisted: list[str] = []
    rest: list[str] = []
    index = command + 1
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg in GLOBAL_FLAGS or (
            "=" in arg and arg.split("=", 1)[0] in GLOBAL_OPTIONS_WITH_VALUE
        ):
            hoisted.append(arg)
        elif arg in GLOBAL_OPTIONS_WITH_VALUE and index + 1 < len(args):
            hoisted += args[index : index + 2]
            index += 1
        else:
            rest.append(arg)
        index += 1
    return args[:command] + hoisted + args[command : command + 1] + rest


def run(*, collector_paused: bool = False) -> None:
    """Console entry point: `main` with click's usage errors as one line and exit status 2;
    SIGINT and SIGTERM stop codec children, abort multipart uploads, remove temp files and
    exit 130 / 143. `collector_paused`: the caller disabled the garbage collector for
    start-up (`__main__`); the first engine turns it back on."""
    _collector["paused"] = collector_paused
    interrupt.install_handlers()
    args = sys.argv[1:]
    if not args:  # bare `deltaglider`: the help, not an error
        click.echo(main.get_help(click.Context(main, info_name="deltaglider")))
        return
    try:
        main.main(args=hoist_global_options(args), standalone_mode=False)
    except click.exceptions.UsageError as error:
        click.echo(f"deltaglider: error: {error.format_message()}", err=True)
        sys.exit(EXIT_SKIPPED)
    except click.exceptions.Abort:
        click.echo("deltaglider: interrupted; nothing more was stored", err=True)
        sys.exit(interrupt.exit_status())
    except click.exceptions.ClickException as error:
        click.echo(f"deltaglider: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)

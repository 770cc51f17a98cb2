"""Option groups shared by several commands, parsed once into typed values: `--exclude` and
`--include` in command-line order, `--metadata`, the delta policy flags, and the transfer
options of cp, mv and sync (as `aws s3` spells them, plus deltaglider's own).

Owns: turning flags into library arguments. Must not call the library.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from deltaglider import codec
from deltaglider.cli.app import AppContext
from deltaglider.cli.output import echo
from deltaglider.config import CANNED_ACLS, SSE_MODES, STORAGE_CLASSES
from deltaglider.errors import DeltagliderError, UsageError
from deltaglider.metadata import check_user_metadata
from deltaglider.models import REFERENCE_MODES, DeltaPolicy, UploadOptions
from deltaglider.transfer import Filters

if TYPE_CHECKING:
    from deltaglider.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])


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


def filters() -> Filters:
    """The running command's --exclude/--include rules (FilteredCommand)."""
    found: Filters = click.get_current_context().meta.get("filters", Filters())
    return found


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


def policy(no_delta: bool, force_delta: bool) -> DeltaPolicy:
    """`--no-delta` / `--force-delta` as the delta policy."""
    if no_delta and force_delta:
        raise UsageError("--no-delta and --force-delta cannot be combined")
    if no_delta:
        return DeltaPolicy.NEVER
    return DeltaPolicy.ALWAYS if force_delta else DeltaPolicy.AUTO


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
    writes: dict[str, str | None]  # --sse, --sse-kms-key-id, --storage-class, --acl, --sse-c-key
    sse_c: bool  # --sse-c: SSE-C asked for (its key comes from --sse-c-key or DG_SSE_C_KEY)

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
            policy=policy(options.pop("no_delta"), options.pop("force_delta")),
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
            {name: options.pop(name) for name in WRITE_OPTIONS},
            bool(options.pop("sse_c")),
        )

    def engine(self, app: AppContext) -> Engine:
        engine = app.engine(
            max_ratio=self.max_ratio, codec=self.codec, references=self.references, **self.writes
        )
        if self.sse_c and engine.settings.sse_customer_key is None:
            raise UsageError(
                "--sse-c needs the key: --sse-c-key KEY|fileb://PATH (or DG_SSE_C_KEY)"
            )
        return engine


CODEC_HELP = (
    "Delta codec (DG_CODEC; default xdelta3). zstd encodes several times faster for slightly "
    "larger deltas, but deltaglider 6.x and older cannot read its deltas."
)
REFERENCES_HELP = (
    "Where new references go (DG_REFERENCES; default: the bucket's setting, else shared). "
    "shared: one per file series under .deltaglider/refs/, used across folders; folder: each "
    "folder's own reference.bin, as deltaglider 6.x and the Rust proxy expect; chain: each "
    "version a delta of an earlier one (smallest on long series; 6.x cannot read it)."
)
WRITE_OPTIONS = (
    "server_side_encryption",
    "sse_kms_key_id",
    "storage_class",
    "acl",
    "sse_customer_key",
)
JOBS_HELP = "Files at a time (DG_MAX_CONCURRENCY; default: the cores, at least 2)."


TRANSFER_OPTIONS = [
    click.option("--dryrun", is_flag=True, help="Show what would be done; do nothing."),
    click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors' exit status."),
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
    click.option("--codec", type=click.Choice(codec.NAMES), help=CODEC_HELP),
    click.option("--references", type=click.Choice(REFERENCE_MODES), help=REFERENCES_HELP),
    click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="One JSON object per transfer on stdout, for machines.",
    ),
    click.option("--jobs", type=click.IntRange(min=1), help=JOBS_HELP),
    click.option(
        "--sse",
        "server_side_encryption",
        is_flag=False,
        flag_value="AES256",
        type=click.Choice(SSE_MODES),
        help="Server-side encryption of every object written (deltas, references, markers): "
        "AES256 (the default of a bare --sse) or aws:kms (DG_SSE).",
    ),
    click.option("--sse-kms-key-id", help="The KMS key for --sse aws:kms (DG_SSE_KMS_KEY_ID)."),
    click.option(
        "--sse-c",
        "sse_c",
        is_flag=False,
        flag_value="AES256",
        type=click.Choice(["AES256"]),
        help="SSE-C: encrypt every object written, and read them, with --sse-c-key.",
    ),
    click.option(
        "--sse-c-key",
        "sse_customer_key",
        metavar="KEY|fileb://PATH",
        help="The 32-byte SSE-C key, as aws s3 takes it (DG_SSE_C_KEY); sent with every "
        "request on an object's bytes, never printed.",
    ),
    click.option("--storage-class", type=click.Choice(STORAGE_CLASSES), help="As aws s3."),
    click.option("--acl", type=click.Choice(CANNED_ACLS), help="A canned ACL, as aws s3."),
]


def transfer_options(command: F) -> F:
    """Options shared by cp, mv and sync (as `aws s3` spells them), plus deltaglider's own;
    the command receives them as one `flags: TransferFlags`."""

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> Any:
        try:
            flags = TransferFlags.take(kwargs)
        except DeltagliderError as error:
            echo(f"deltaglider: error: {error}", err=True)
            sys.exit(error.exit_code)
        return command(*args, flags=flags, **kwargs)

    wrapped: Any = with_flags
    for decorator in reversed(TRANSFER_OPTIONS):
        wrapped = decorator(wrapped)
    return cast(F, wrapped)

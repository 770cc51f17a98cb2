"""The `deltaglider` group: global options, the settings and engines every command shares,
one-line errors, and the console entry point.

Owns: reading the environment and global flags into `Settings` once, building an engine on
first use (so `--help` and usage errors never import botocore), turning library errors into
one line on stderr with their exit status, and accepting global options after the command as
aws does. Must not hold any command's logic.
"""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from deltaglider import __version__, interrupt
from deltaglider.cli.output import EXIT_SKIPPED, echo
from deltaglider.config import Settings
from deltaglider.errors import DeltagliderError

if TYPE_CHECKING:  # imported where used: --version and --help start without boto3
    from deltaglider.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])

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
        **writes: str | None,
    ) -> Engine:
        """The engine for the global settings with a command's own `--max-ratio`, `--codec`,
        `--references` and what every write sends (`--sse`, `--storage-class`, `--acl`…)."""
        settings = self.settings.with_overrides(
            max_ratio=max_ratio, codec=codec, references=references, **writes
        )
        if settings not in self._engines:
            if not self._engines:
                from deltaglider.log import configure_cli_logging

                configure_cli_logging(self.debug, self.settings.log_level)
            self._engines[settings] = self.make_engine(settings)
        return self._engines[settings]


def reports_errors(command: F) -> F:
    """Turn library errors into one line on stderr and the error's exit status."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DeltagliderError as error:
            echo(f"deltaglider: error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]


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
        echo(main.get_help(click.Context(main, info_name="deltaglider")))
        return
    try:
        main.main(args=hoist_global_options(args), standalone_mode=False)
    except click.exceptions.UsageError as error:
        echo(f"deltaglider: error: {error.format_message()}", err=True)
        sys.exit(EXIT_SKIPPED)
    except click.exceptions.Abort:
        echo("deltaglider: interrupted; nothing more was stored", err=True)
        sys.exit(interrupt.exit_status())
    except click.exceptions.ClickException as error:
        echo(f"deltaglider: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)

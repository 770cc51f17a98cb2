"""Bulk work over a bucket: verify, cleanup, prune and migrate.

Each command is flags → a plan from the library → its execution → print through the output
module. Must not decide which objects bulk work touches or what it counts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from deltaglider import transfer
from deltaglider.cli.app import AppContext, main, reports_errors
from deltaglider.cli.options import JOBS_HELP, FilteredCommand, OutputFlags, filters, policy
from deltaglider.cli.output import (
    EXIT_FAILED,
    Printer,
    StatusLine,
    TransferReport,
    detail,
    echo,
    human_size,
    printer,
    result_record,
    stored_for,
)
from deltaglider.cli.transfers import run_plan
from deltaglider.errors import UsageError
from deltaglider.events import Subscriber
from deltaglider.metadata import TRASH_PREFIX
from deltaglider.models import GROUPINGS, DeleteResult, Shard, UploadOptions
from deltaglider.urls import S3Url

if TYPE_CHECKING:
    from deltaglider import migration


@main.command(cls=FilteredCommand)
@click.argument("path")
@click.option("--recursive", "-r", is_flag=True, help="Verify every file under the prefix.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Skip files matching PATTERN.")
@click.option("--include", multiple=True, metavar="PATTERN", help="Check them again; last wins.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option("--jobs", type=click.IntRange(min=1), help="Files checked concurrently.")
@click.option("--quiet", is_flag=True, help="Print only failures and the summary.")
@click.option("--shard", help="With --recursive, only this share of the files: I/N, for N runners.")
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
    shard: str | None,
) -> None:
    """Reconstruct stored files and check their SHA-256 without writing them anywhere: the
    "is my bucket intact?" command. Exit 1 if any file fails, or if there is nothing to check.
    --shard I/N splits the files (by key hash: disjoint, complete) so N runners check a large
    bucket at once.

    \b
      deltaglider verify s3://releases/1.2.3/app.zip
      deltaglider verify --recursive s3://releases/
      deltaglider verify --recursive s3://releases/ --shard 2/8 --json
    """
    url = S3Url.parse(path)
    chosen = Shard.parse(shard) if shard else None
    if chosen is not None and not recursive:
        raise UsageError("--shard needs --recursive: one file is not split")
    engine = app.engine()
    if not recursive:
        key = transfer.stored_delta_as_logical(engine, url).key  # 6.x took the stored key
        result = engine.verify(url.bucket, key)
        record = {"valid": result.valid, "message": result.message, **result_record(result)}
        record.update(expected_sha256=result.expected_sha256, actual_sha256=result.actual_sha256)
        printer(as_json).show(record, f"OK: {S3Url(url.bucket, key)}{detail(result)}")
        return
    plan = transfer.plan_verify(engine, url, filters(), chosen)

    def checked(report: TransferReport) -> str:
        if as_json:
            return json.dumps({"checked": len(plan.tasks), "failed": report.failed})
        return f"verify: {len(plan.tasks)} files checked, {report.failed} failed"

    run_plan(engine, plan, OutputFlags(quiet=quiet, as_json=as_json, jobs=jobs), summary=checked)


class _Lines(Subscriber):
    """Prints each `on_done(line=)` the library tells."""

    def on_done(self, **kwargs: Any) -> None:
        echo(kwargs["line"])


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
        url.bucket, url.key, older_than=older_than, dryrun=dryrun, subscriber=_Lines()
    )
    for line in report.unreadable:
        echo(f"unreadable: {line}", err=True)
    done = "would be done" if dryrun else "done"
    echo(
        f"cleanup: {report.checked} deltas checked, {len(report.unreadable)} unreadable; "
        f"{len(report.actions)} repairs {done}"
    )
    if report.unreadable:
        sys.exit(EXIT_FAILED)


@dataclass
class _MigrateLines(Subscriber):
    """One line per migrated file, and on a terminal a tally line under them."""

    out: Printer
    in_place: bool
    dryrun: bool
    status: StatusLine = field(default_factory=StatusLine)
    tally: dict[str, int] = field(
        default_factory=lambda: {"migrated": 0, "skipped": 0, "failed": 0, "planned": 0}
    )

    def on_done(self, **kwargs: Any) -> None:
        outcome: migration.Outcome = kwargs["outcome"]
        self.tally[outcome.status] += 1
        record = dict(outcome.__dict__)
        if outcome.status == "failed":
            self.out.error(record, f"migrate failed: {outcome.source}: {outcome.error}")
        elif outcome.status == "skipped":
            self.out.show(record, f"skip: {outcome.source} (already at {outcome.target})")
        else:
            sizes = f"{outcome.stored_as}: {stored_for(outcome.stored_size, outcome.file_size)}"
            if self.in_place:
                self.out.show(record, f"compact: {outcome.source} ({sizes})")
            else:
                mark = "(dryrun) " if self.dryrun else ""
                line = f"{mark}migrate: {outcome.source} to {outcome.target} ({sizes})"
                self.out.show(record, line)
        tally = self.tally
        self.status.draw(
            f"migrate: {tally['migrated'] + tally['planned']} done, {tally['skipped']} "
            f"already there, {tally['failed']} failed"
        )


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
@click.option("--jobs", type=click.IntRange(min=1), help=JOBS_HELP)
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out matching files.")
@click.option("--include", multiple=True, metavar="PATTERN", help="Bring them back; last wins.")
@click.option(
    "--dryrun", "--dry-run", is_flag=True, help="The plan and the bytes it would store; no writes."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, then a summary.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the summary.")
@click.option(
    "--no-preserve-prefix",
    is_flag=True,
    help="Files go straight under DESTINATION (default, as 6.x: SOURCE's last folder is kept: "
    "s3://src/app/ to s3://dst/ writes dst/app/...).",
)
@click.option("--no-delta", is_flag=True, help="Store every file whole.")
@click.option("--max-ratio", type=click.FloatRange(0, 1), help="As for cp (DG_MAX_RATIO; 0.5).")
@click.option("--yes", "-y", is_flag=True, help="Accepted for deltaglider 6.x: migrate never asks.")
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
    no_preserve_prefix: bool,
    no_delta: bool,
    max_ratio: float | None,
    yes: bool,
) -> None:
    """Bring a bucket in: every file under SOURCE (plain objects, deltaglider 5.x/6.x, ours)
    rebuilt, verified and stored as deltaglider stores it under DESTINATION, then read back
    and checked. A re-run skips what is already there with the same bytes (SHA-256 and size,
    not key presence) and redoes anything else, so a killed run is finished by running it
    again. --shard I/N splits the keys so N runners (a CI matrix) share the work. As with
    deltaglider 6.x, SOURCE's last folder is kept under DESTINATION unless
    --no-preserve-prefix.

    \b
      deltaglider migrate s3://old-releases s3://releases
      deltaglider migrate s3://legacy/app/ s3://releases/ --source-endpoint-url https://minio.internal:9000
      deltaglider migrate s3://big s3://releases --shard 3/10 --jobs 8 --json
      deltaglider migrate s3://releases/app/ --in-place
    """
    from deltaglider import migration

    plan = migration.plan_migration(
        app.engine(),
        source,
        destination,
        in_place=in_place,
        source_endpoint_url=source_endpoint_url,
        source_profile=source_profile,
        shard=shard,
        jobs=jobs,
        included=filters().included,
        dryrun=dryrun,
        preserve_prefix=not no_preserve_prefix,
        options=UploadOptions(policy(no_delta, False), max_ratio),
        make_engine=app.make_engine,
    )
    for warning in plan.warnings:
        echo(f"deltaglider: warning: {warning}", err=True)
    _run_migration(plan, as_json, quiet)


def _run_migration(plan: migration.MigrationPlan, as_json: bool, quiet: bool) -> None:
    """A planned migration run with its lines, the summary, and exit 1 if a file failed."""
    from deltaglider import migration

    out = printer(as_json, quiet=quiet and not as_json)  # --json lists every file
    status = StatusLine(sys.stderr.isatty() and not as_json)
    lines = _MigrateLines(out, plan.in_place, plan.dryrun, status)
    out.status = lines.status
    summary = migration.execute(plan, lines)
    lines.status.clear()
    would = "would store" if plan.dryrun else "stored"
    printer(as_json).show(
        {"summary": summary.__dict__},
        f"migrate: {summary.planned} files, {summary.migrated} migrated, "
        f"{summary.skipped} already there, {summary.failed} failed; "
        f"{human_size(summary.file_bytes)} {would} as {human_size(summary.stored_bytes)}",
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


class _PrunedLines(Subscriber):
    def on_done(self, **kwargs: Any) -> None:
        result: DeleteResult = kwargs["result"]
        echo(f"delete: s3://{result.bucket}/{result.key}")


@main.command()
@click.argument("path")
@click.option("--keep-last", type=click.IntRange(min=1), help="Keep the newest N of each group.")
@click.option("--older-than", "older_than", help="Delete only versions older than this (90d, 12h).")
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
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
    from deltaglider import retention

    url = S3Url.parse(path)
    age = parse_age(older_than) if older_than is not None else None
    engine = app.engine()
    plan = retention.plan_prune(
        engine, url.bucket, url.key, by=by, keep_last=keep_last, older_than=age
    )
    if dryrun:
        for key in plan.deleted:
            echo(f"(dryrun) delete: s3://{url.bucket}/{key}")
        result = retention.PruneResult.predicted(plan)
    else:
        result = retention.execute_prune(engine, plan, _PrunedLines())
    mark = "(dryrun) " if dryrun else ""
    for key in result.references:
        what = "a trash copy of a reference" if key.startswith(TRASH_PREFIX) else "a reference"
        echo(f"{mark}delete: s3://{url.bucket}/{key} ({what} no remaining delta needs)")
    would = "would be " if dryrun else ""
    echo(
        f"prune: {len(result.deleted)} versions {would}deleted, {result.kept} kept, "
        f"{len(result.references)} references {would}removed; "
        f"{human_size(result.freed_bytes)} {would}freed"
    )

"""Reports: stats (what a bucket stores), estimate (what a file would store) and analyze
(what a local folder of versions would store).

Each command is flags → one library call → print through the output module. Must not
decide what a report counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deltaglider.cli.app import AppContext, main, reports_errors
from deltaglider.cli.options import policy
from deltaglider.cli.output import (
    Printer,
    StatusLine,
    detail,
    echo,
    human_size,
    printer,
)
from deltaglider.errors import UsageError
from deltaglider.events import Subscriber
from deltaglider.models import GROUPINGS, REFERENCE_MODES, UploadOptions, UploadResult
from deltaglider.urls import S3Url, destination_key, is_s3_url

if TYPE_CHECKING:
    from deltaglider import stats


@dataclass
class _StatsProgress(Subscriber):
    status: StatusLine

    def on_progress(self, **kwargs: Any) -> None:
        self.status.draw(
            f"stats: {kwargs['listed']} objects listed, {kwargs['headed']} deltas HEADed"
        )


@main.command("stats")
@click.argument("path")
@click.option("--sampled", is_flag=True, help="HEAD a sample of deltas for their file sizes.")
@click.option("--detailed", is_flag=True, help="HEAD every delta: exact logical bytes.")
@click.option("--by", type=click.Choice(GROUPINGS), help="A breakdown with grades.")
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

    url = S3Url.parse_loose(path)
    mode = stats.Mode.DETAILED if detailed else stats.Mode.SAMPLED if sampled else stats.Mode.QUICK
    status = StatusLine()
    result = app.engine().stats(
        url.bucket,
        url.key,
        mode=mode,
        by=by or "series",
        use_cache=not no_cache,
        refresh=refresh,
        subscriber=_StatsProgress(status),
    )
    status.clear()
    if as_json or output_format == "json":  # ours, then deltaglider 6.x's keys
        echo(json.dumps({**result.to_dict(), **result.legacy_dict()}))
    elif output_format == "prometheus":
        from deltaglider import prometheus

        echo(prometheus.text(result), nl=False)
    else:
        echo(stats_text(result, show_groups=by is not None), nl=False)


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
        links = f"  (chain: at most {group.chain_links} links a read)" if group.chain_links else ""
        lines.append(
            f"{group.name[:44]:<44}{group.files:>7}{human_size(group.logical_bytes):>12}"
            f"{human_size(group.stored_bytes):>12}{ratio:>10}  {group.grade.value}{links}"
        )
    lines += [
        f"{group.grade.value}: {group.name}: {group.advice}"
        for group in result.groups
        if group.advice
    ]
    return lines


def _upload_record(result: UploadResult, **fields: Any) -> dict[str, Any]:
    return {
        **fields,
        "stored_as": result.stored_as.value,
        "file_size": result.file_size,
        "stored_size": result.stored_size,
    }


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
    options = UploadOptions(policy(no_delta, force_delta), max_ratio)
    engine = app.engine()
    out = printer(as_json)
    for name in paths[:-1]:
        local = Path(name)
        if not local.is_file():
            raise UsageError(f"{name}: not a file")
        result = engine.estimate(local, url.bucket, destination_key(url, local.name), options)
        target = f"s3://{url.bucket}/{result.key}"
        record = _upload_record(result, source=name, destination=target)
        out.show(
            {**record, "note": result.note or None}, f"estimate: {name} to {target}{detail(result)}"
        )


@dataclass
class _AnalyzedLines(Subscriber):
    out: Printer

    def on_done(self, **kwargs: Any) -> None:
        result: UploadResult = kwargs["result"]
        record = _upload_record(result, file=result.key)
        self.out.show(record, f"analyze: {result.key}{detail(result)}")


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
    from deltaglider import analysis

    settings = app.settings.with_overrides(max_ratio=max_ratio, references=references)
    out = printer(as_json)
    result = analysis.analyze(folder, settings, subscriber=_AnalyzedLines(out)).stats
    totals = (
        f"{folder}: {result.files} files in {len(result.groups)} series, "
        f"{human_size(result.logical_bytes)}; deltaglider would store "
        f"{human_size(result.stored_bytes)} ({result.stored_ratio:.1%}), "
        f"saving {human_size(max(result.saved_bytes, 0))}"
    )
    out.show(result.to_dict(), "\n".join(["", totals, "", *groups_lines(result)]))

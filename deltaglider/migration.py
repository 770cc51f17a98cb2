"""Bringing existing buckets in (`deltaglider migrate SRC DST`): every file under the source
prefix, whoever wrote it (another tool's plain objects, deltaglider 5.x/6.x, this tool), rebuilt
and verified by the source's engine, stored by the destination's engine at the same relative
key, then verified where it landed.

Owns: the plan (the source's logical listing, filters, the deterministic `--shard I/N` split:
a key belongs to shard `sha256(key) mod N`, so N runners with no coordinator are disjoint and
together complete); the order (each reference group's first file before its others, by the
engine's one rule, so parallel workers share one new reference); the "already migrated" test
(the destination holds the same logical file: the same size and the source's recorded
SHA-256, or for a plain source its MD5 ETag; with neither, the source is read and hashed;
never key presence alone); running items `jobs` at a time; and the summary. A killed run
leaves each object either not written or whole (single PUTs; references first), so a re-run
finishes it. Plans first (`plan_migration`: arguments, buckets, engines, cost warnings), runs
second (`execute`). Reads through one Engine and writes through another (different endpoints
or profiles allowed); never deletes anything but, in place, the whole object its checked
delta replaces. Must not print.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from deltaglider.analysis import BUCKET as SCRATCH_BUCKET
from deltaglider.analysis import scratch_engine
from deltaglider.config import Settings, check_endpoint
from deltaglider.decision import wants_delta
from deltaglider.engine import Engine
from deltaglider.errors import DeltagliderError, UsageError
from deltaglider.events import Subscriber
from deltaglider.files import temp_root
from deltaglider.metadata import DELTA_SUFFIX
from deltaglider.models import DeltaPolicy, ListEntry, Shard, UploadOptions
from deltaglider.reading import Located
from deltaglider.s3 import ec2_region
from deltaglider.series import natural_key
from deltaglider.urls import S3Url

BATCH = 256


@dataclass(frozen=True)
class Outcome:
    """One file: `migrated`, `skipped` (already there, same bytes) or `failed`."""

    source: str
    target: str
    status: str
    file_size: int = 0
    stored_size: int = 0
    stored_as: str = ""
    error: str = ""


@dataclass
class Summary:
    planned: int = 0
    migrated: int = 0
    skipped: int = 0
    failed: int = 0
    file_bytes: int = 0  # of the files migrated now
    stored_bytes: int = 0  # what they take at the destination
    failures: list[str] = field(
        default_factory=list
    )  # "s3://… : reason", undecodable 6.x deltas included

    def add(self, outcome: Outcome) -> None:
        self.planned += 1
        if outcome.status == "migrated":
            self.migrated += 1
            self.file_bytes += outcome.file_size
            self.stored_bytes += outcome.stored_size
        elif outcome.status == "skipped":
            self.skipped += 1
        elif outcome.status == "planned":
            self.file_bytes += outcome.file_size
            self.stored_bytes += outcome.stored_size
        else:
            self.failed += 1
            self.failures.append(f"{outcome.source}: {outcome.error}")


def cost_warnings(
    source: str,
    source_region: str | None,
    target: str,
    target_region: str | None,
    here: str | None,
) -> list[str]:
    """What a migration's traffic may cost beyond requests: between regions (billed per GB),
    and from a machine in another EC2 region than the buckets (`here`, from IMDS)."""
    warnings = []
    if source_region and target_region and source_region != target_region:
        warnings.append(
            f"{source} is in {source_region} and {target} in {target_region}: every byte "
            "crosses regions (inter-region transfer is billed per GB)"
        )
    for url, region in ((source, source_region), (target, target_region)):
        if here and region and region != here:
            warnings.append(
                f"this machine runs in {here} and {url} is in {region}: its bytes cross "
                "regions (billed per GB); run the migration in the buckets' region"
            )
    return warnings


def folder_url(url: S3Url) -> S3Url:
    """A migration's SOURCE and DESTINATION name folders: `s3://b/app` is `s3://b/app/`."""
    return S3Url(url.bucket, url.key if not url.key or url.key.endswith("/") else url.key + "/")


def preserved_prefix(source_prefix: str, target_prefix: str) -> str:
    """Where 6.x's prefix rule puts a migration: the source folder's name under the
    destination's (`a/b/c/` into `x/` is `x/c/`); a bucket's root adds nothing."""
    last = source_prefix.rstrip("/").rpartition("/")[2]
    if not last:
        return target_prefix
    folder = (
        target_prefix if not target_prefix or target_prefix.endswith("/") else target_prefix + "/"
    )
    return f"{folder}{last}/"


def target_key(source_key: str, source_prefix: str, target_prefix: str) -> str:
    return target_prefix + source_key[len(source_prefix) :]


def _listed(
    engine: Engine,
    bucket: str,
    prefix: str,
    included: Callable[[str], bool],
    shard: Shard | None,
) -> Iterator[ListEntry]:
    """The files under `prefix` that pass the filters and belong to the shard, streamed."""
    for entry in engine.listing(bucket, prefix, recursive=True):
        if included(entry.key[len(prefix) :]) and (shard is None or shard.holds(entry.key)):
            yield entry


def compactable(entries: Iterator[ListEntry]) -> Iterator[str]:
    """`--in-place`: the keys stored whole (plain or direct, or both forms left by a killed
    run) whose names take deltas."""
    for entry in entries:
        if not entry.stored_key.endswith(DELTA_SUFFIX) and wants_delta(entry.key, DeltaPolicy.AUTO):
            yield entry.key


def compact_one(engine: Engine, bucket: str, key: str) -> Outcome:
    url = f"s3://{bucket}/{key}"
    try:
        stored = engine.compact(bucket, key)
    except DeltagliderError as error:
        return Outcome(url, url, "failed", error=str(error))
    return Outcome(
        url, url, "migrated", stored.file_size, stored.stored_size, stored.stored_as.value
    )


def _run_waves(
    keys: Iterator[str],
    group: Callable[[str], object],
    work: Callable[[str], Outcome],
    jobs: int,
    told: Subscriber,
) -> Summary:
    """`work` on every key, `jobs` at a time, the first file of each reference group
    (`group(key)`, the engine's rule) before the others; each outcome told as it ends."""
    summary = Summary()
    lock = threading.Lock()

    def one(key: str) -> None:
        outcome = work(key)
        with lock:
            summary.add(outcome)
            told.on_done(outcome=outcome)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for wave in _group_first(keys, group):
            list(pool.map(one, wave))
    return summary


def _group_first(keys: Iterator[str], group: Callable[[str], object]) -> Iterator[list[str]]:
    """Batches of keys in natural order, each split in two waves: the first file of each
    reference group not met before, then the rest, so parallel workers share one new
    reference (keys of no group, None, are never first)."""
    started: set[object] = {None}
    while batch := sorted(islice(keys, BATCH), key=natural_key):
        first: list[str] = []
        rest: list[str] = []
        for key in batch:
            home = group(key)
            (rest if home in started else first).append(key)
            started.add(home)
        yield first
        yield rest


def already_there(source: Engine, bucket: str, located: Located, there: Located | None) -> bool:
    """Whether the destination already holds this file (see the module docstring)."""
    if there is None or there.logical_size != located.logical_size:
        return False
    if located.sha256 is not None:
        return there.sha256 == located.sha256
    if located.md5 is not None and there.md5 is not None:
        return there.md5 == located.md5
    if there.sha256 is None:
        return False
    digest = source.reconstruct(bucket, located, None)  # read and hashed, nothing written
    return digest.sha256 == there.sha256


def migrate_one(
    source: Engine,
    destination: Engine,
    target: Engine,
    src_bucket: str,
    src_key: str,
    dst_bucket: str,
    dst_key: str,
    scratch: Path,
    dryrun: bool,
    how: UploadOptions | None = None,
) -> Outcome:
    src_url, dst_url = f"s3://{src_bucket}/{src_key}", f"s3://{dst_bucket}/{dst_key}"
    try:
        located = source.locate(src_bucket, src_key)
        if already_there(source, src_bucket, located, destination.find(dst_bucket, dst_key)):
            return Outcome(src_url, dst_url, "skipped", located.logical_size)
        with tempfile.NamedTemporaryFile(dir=scratch, delete=False) as handle:
            local = Path(handle.name)
        try:
            downloaded = source.download(src_bucket, src_key, local)
            meta, content_type = downloaded.metadata, downloaded.content_type
            options = dataclasses.replace(
                how or UploadOptions(), metadata=meta, content_type=content_type
            )
            if dryrun:  # `target` is then an engine on a scratch bucket (analysis.ScratchStore)
                predicted = target.upload(local, SCRATCH_BUCKET, dst_key, options)
                return Outcome(
                    src_url,
                    dst_url,
                    "planned",
                    predicted.file_size,
                    predicted.stored_size,
                    predicted.stored_as.value,
                )
            stored = target.upload(local, dst_bucket, dst_key, options)
        finally:
            local.unlink(missing_ok=True)
        if stored.sha256 != downloaded.sha256:
            raise DeltagliderError(f"{src_url} changed while it was being migrated")
        check = target.verify(dst_bucket, dst_key)
        if check.actual_sha256 != downloaded.sha256:
            raise DeltagliderError(f"{dst_url} does not read back as the file migrated")
        return Outcome(
            src_url,
            dst_url,
            "migrated",
            stored.file_size,
            stored.stored_size,
            stored.stored_as.value,
        )
    except DeltagliderError as error:
        return Outcome(src_url, dst_url, "failed", error=str(error))


@dataclass(frozen=True)
class MigrationPlan:
    """One `migrate` run, checked before anything is read: which engines read and write,
    where, which keys (filters, shard), how many at a time, and what it may cost."""

    source: Engine  # reads SRC (another endpoint or profile allowed)
    target: Engine  # writes DST
    src: S3Url
    dst: S3Url
    in_place: bool
    dryrun: bool
    included: Callable[[str], bool]
    shard: Shard | None
    jobs: int
    warnings: tuple[str, ...]  # traffic across regions, billed per GB
    options: UploadOptions = field(default_factory=UploadOptions)  # policy and max ratio


def plan_migration(
    target: Engine,
    source: str,
    destination: str | None,
    *,
    in_place: bool = False,
    source_endpoint_url: str | None = None,
    source_profile: str | None = None,
    shard: str | None = None,
    jobs: int | None = None,
    included: Callable[[str], bool] = lambda relative: True,
    dryrun: bool = False,
    preserve_prefix: bool = True,
    options: UploadOptions | None = None,
    make_engine: Callable[[Settings], Engine] | None = None,
) -> MigrationPlan:
    """Check a migration's arguments and buckets (UsageError, NotFoundError) and plan it.
    `preserve_prefix` (deltaglider 6.x's rule, the default): the source prefix's last folder
    is kept under the destination (`s3://src/app/` to `s3://dst/` writes `dst/app/…`).
    `options`: how files are stored (`--no-delta`, `--max-ratio`).
    `target` writes the destination; a source on another endpoint or profile gets its own
    engine from `make_engine` (default: `Engine`)."""
    if in_place == (destination is not None):
        raise UsageError("migrate takes SOURCE and DESTINATION, or SOURCE with --in-place")
    if in_place and (source_endpoint_url or source_profile or dryrun):
        raise UsageError("--in-place works on one bucket: no --source-*, no --dryrun")
    src = folder_url(S3Url.parse(source))  # `s3://b/app` is the folder app/, as for cp -r
    dst = folder_url(S3Url.parse(destination)) if destination is not None else src
    if preserve_prefix and not in_place:
        dst = S3Url(dst.bucket, preserved_prefix(src.key, dst.key))
    chosen = Shard.parse(shard) if shard else None
    origin = _source_engine(target, source_endpoint_url, source_profile, make_engine)
    origin.require_bucket(src.bucket)
    target.require_bucket(dst.bucket)
    warnings = cost_warnings(
        f"s3://{src.bucket}",
        origin.bucket_region(src.bucket),
        f"s3://{dst.bucket}",
        target.bucket_region(dst.bucket),
        ec2_region(),
    )
    return MigrationPlan(
        origin,
        target,
        src,
        dst,
        in_place,
        dryrun,
        included,
        chosen,
        jobs or target.settings.transfer_jobs,
        tuple(warnings),
        options or UploadOptions(),
    )


def _source_engine(
    target: Engine,
    endpoint_url: str | None,
    profile: str | None,
    make_engine: Callable[[Settings], Engine] | None,
) -> Engine:
    """The engine that reads the source: `target` itself unless the source's endpoint or
    profile differs."""
    if endpoint_url is not None:
        check_endpoint(endpoint_url, "--source-endpoint-url")
    settings = target.settings.with_overrides(endpoint_url=endpoint_url, profile=profile)
    return target if settings == target.settings else (make_engine or Engine)(settings)


def execute(plan: MigrationPlan, subscriber: Subscriber | None = None) -> Summary:
    """Run a planned migration; `subscriber.on_done(outcome=)` is told each file."""
    told = subscriber or Subscriber()
    if plan.in_place:
        return _in_place(plan, told)
    return _across(plan, told)


def _in_place(plan: MigrationPlan, told: Subscriber) -> Summary:
    """Compact the whole objects under the prefix where they are (`migrate --in-place`)."""
    engine, bucket = plan.target, plan.src.bucket
    keys = compactable(_listed(engine, bucket, plan.src.key, plan.included, plan.shard))

    def group(key: str) -> object:
        return engine.reference_group(bucket, key)

    def one(key: str) -> Outcome:
        return compact_one(engine, bucket, key)

    return _run_waves(keys, group, one, plan.jobs, told)


def _across(plan: MigrationPlan, told: Subscriber) -> Summary:
    """Every file under SRC rebuilt, stored under DST and read back (or, with dryrun,
    stored into a scratch bucket on local disk to predict what it would take)."""
    src, dst = plan.src, plan.dst
    entries = _listed(plan.source, src.bucket, src.key, plan.included, plan.shard)
    keys = (entry.key for entry in entries)
    with (
        tempfile.TemporaryDirectory(prefix="deltaglider-migrate-", dir=temp_root()) as scratch,
        contextlib.ExitStack() as stack,
    ):
        writer, written = plan.target, dst.bucket
        if plan.dryrun:  # predictions come from the real engine writing into a scratch bucket
            folder = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="deltaglider-plan-", dir=temp_root())
            )
            writer, written = scratch_engine(plan.target.settings, Path(folder)), SCRATCH_BUCKET
            stack.callback(writer.close)

        def group(key: str) -> object:
            return writer.reference_group(written, target_key(key, src.key, dst.key))

        def one(key: str) -> Outcome:
            return migrate_one(
                plan.source,
                plan.target,
                writer,
                src.bucket,
                key,
                dst.bucket,
                target_key(key, src.key, dst.key),
                Path(scratch),
                plan.dryrun,
                plan.options,
            )

        return _run_waves(keys, group, one, 1 if plan.dryrun else plan.jobs, told)

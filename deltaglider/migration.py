"""Bringing existing buckets in (`deltaglider migrate SRC DST`): every file under the source
prefix, whoever wrote it (another tool's plain objects, deltaglider 5.x/6.x, this tool), rebuilt
and verified by the source's engine, stored by the destination's engine at the same relative
key, then verified where it landed.

Owns: the plan (the source's logical listing, filters, the deterministic `--shard I/N` split:
a key belongs to shard `sha256(key) mod N`, so N runners with no coordinator are disjoint and
together complete); the order (each series' first file before its others, so parallel workers
share one new reference); the "already migrated" test (the destination holds the same logical
file: the same size and the source's recorded SHA-256, or for a plain source its MD5 ETag;
with neither, the source is read and hashed; never key presence alone); running items `jobs`
at a time; and the summary. A killed run leaves each object either not written or whole
(single PUTs; references first), so a re-run finishes it. Reads through one Engine and writes
through another (different endpoints or profiles allowed); never deletes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from deltaglider.analysis import BUCKET as SCRATCH_BUCKET
from deltaglider.analysis import scratch_engine
from deltaglider.errors import DeltagliderError
from deltaglider.files import temp_root
from deltaglider.metadata import DELTA_SUFFIX
from deltaglider.models import DeltaPolicy, ListEntry, UploadOptions
from deltaglider.series import natural_key, series_of

if TYPE_CHECKING:
    from deltaglider.engine import Engine, Located

BATCH = 256


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as typed: --shard 1/4 … 4/4
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
            raise ValueError(f"--shard takes I/N with 1 <= I <= N, not {text!r}")
        return cls(int(index), int(count))

    def holds(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


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


def target_key(source_key: str, source_prefix: str, target_prefix: str) -> str:
    return target_prefix + source_key[len(source_prefix) :]


def plan(
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
    from deltaglider.engine import wants_delta

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


def run_in_place(
    engine: Engine,
    bucket: str,
    prefix: str,
    *,
    included: Callable[[str], bool] = lambda relative: True,
    shard: Shard | None = None,
    jobs: int = 4,
    say: Callable[[Outcome], None] = lambda outcome: None,
) -> Summary:
    """Compact the whole objects under `prefix` where they are (`migrate --in-place`)."""
    keys = compactable(plan(engine, bucket, prefix, included, shard))
    return _run_waves(keys, str, lambda key: compact_one(engine, bucket, key), jobs, say)


def _run_waves(
    keys: Iterator[str],
    series_key: Callable[[str], str],
    work: Callable[[str], Outcome],
    jobs: int,
    say: Callable[[Outcome], None],
) -> Summary:
    """`work` on every key, `jobs` at a time, a series' first file before its others
    (`_series_first`, by the series of `series_key(key)`); each outcome told as it ends."""
    summary = Summary()
    lock = threading.Lock()

    def one(key: str) -> None:
        outcome = work(key)
        with lock:
            summary.add(outcome)
            say(outcome)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for wave in _series_first(keys, series_key):
            list(pool.map(one, wave))
    return summary


def _series_first(keys: Iterator[str], target: Callable[[str], str]) -> Iterator[list[str]]:
    """Batches of keys in natural order, each split in two waves: the first file of each
    series not met before, then the rest, so parallel workers share one new reference."""
    started: set[str] = set()
    while batch := sorted(islice(keys, BATCH), key=natural_key):
        first: list[str] = []
        rest: list[str] = []
        for key in batch:
            series = series_of(target(key))
            (rest if series in started else first).append(key)
            started.add(series)
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
            options = UploadOptions(
                metadata=downloaded.metadata, content_type=downloaded.content_type
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


def run(
    source: Engine,
    target: Engine,
    src_bucket: str,
    src_prefix: str,
    dst_bucket: str,
    dst_prefix: str,
    *,
    included: Callable[[str], bool] = lambda relative: True,
    shard: Shard | None = None,
    jobs: int = 4,
    dryrun: bool = False,
    say: Callable[[Outcome], None] = lambda outcome: None,
) -> Summary:
    keys = (entry.key for entry in plan(source, src_bucket, src_prefix, included, shard))
    with (
        tempfile.TemporaryDirectory(prefix="deltaglider-migrate-", dir=temp_root()) as scratch,
        contextlib.ExitStack() as stack,
    ):
        writer = target
        if dryrun:  # predictions come from the real engine writing into a scratch bucket
            folder = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="deltaglider-plan-", dir=temp_root())
            )
            writer = scratch_engine(target.settings, Path(folder))
            stack.callback(writer.close)

        def one(key: str) -> Outcome:
            return migrate_one(
                source,
                target,
                writer,
                src_bucket,
                key,
                dst_bucket,
                target_key(key, src_prefix, dst_prefix),
                Path(scratch),
                dryrun,
            )

        return _run_waves(
            keys,
            lambda key: target_key(key, src_prefix, dst_prefix),
            one,
            1 if dryrun else jobs,
            say,
        )

"""Bucket statistics (`deltaglider stats`, `client.get_bucket_stats`): what a bucket or prefix
stores, what its files would take stored whole, and how well each series or folder deltas.

Owns: accounting for every stored object by kind (docs/FORMAT.md "Objects"; stored bytes count
all of them, references and internal objects included), the three modes — quick (the listing
only; a delta's file is estimated as the size of the reference its folder or series has),
sampled (HEADs the first deltas of each series and every 20th after, and scales),
detailed (HEADs every delta: exact) —, health grades, and the stats cache object
(`.deltaglider/stats/<id>.json`, FORMAT "Objects"), which keeps only what HEADs found and is
used while the listing's object count and bytes are unchanged. Memory grows with the number
of folder/series pairs, not with objects. Reaches storage only through the Store it is
handed; must not print (the CLI formats the result).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from io import BytesIO
from itertools import islice

from deltaglider.errors import DeltagliderError
from deltaglider.events import Subscriber
from deltaglider.listing import stored_objects
from deltaglider.log import get_logger
from deltaglider.metadata import (
    INTERNAL_PREFIX,
    REFS_PREFIX,
    STATS_PREFIX,
    KeyRole,
    format_time,
    is_shared_reference,
    logical_key_of,
    lookup,
    now,
    recorded_size,
    role_of,
)
from deltaglider.models import GROUPINGS, GroupBy
from deltaglider.s3 import ObjectStore
from deltaglider.series import series_id, series_of
from deltaglider.urls import parent_prefix

log = get_logger(__name__)

CACHE_VERSION = 2  # 2: each pair also lists its self-deltas' sizes
SAMPLE_FIRST = 3  # sampled mode HEADs the first deltas of each series…
SAMPLE_EVERY = 20  # …and every 20th after
RESERVOIR = 64  # delta sizes kept per folder/series pair for the median ratio
RECENT_DIRECT = 4096  # direct keys remembered to spot a `k.delta` shadowed by `k`
HEAD_BATCH = 256

Progress = Callable[[int, int], None]  # (objects listed, deltas HEADed), told by `compute`


class Mode(StrEnum):
    QUICK = "quick"
    SAMPLED = "sampled"
    DETAILED = "detailed"


class Grade(StrEnum):
    """The Rust proxy's grades of median(delta bytes / reference bytes)."""

    EXCELLENT = "excellent"  # <= 5%
    GOOD = "good"  # < 20%
    FAIR = "fair"  # 20-50%
    POOR = "poor"  # >= 50%
    NONE = "-"  # no deltas to grade


def grade_of(ratio: float | None) -> Grade:
    if ratio is None:
        return Grade.NONE
    if ratio <= 0.05:
        return Grade.EXCELLENT
    if ratio < 0.20:
        return Grade.GOOD
    if ratio < 0.50:
        return Grade.FAIR
    return Grade.POOR


ADVICE = {
    Grade.POOR: (
        "deltas are half their reference or more: these files change too much between versions "
        "(compressed, encrypted or signed content?). Upload the uncompressed build (.tar, not "
        ".tar.gz) if you can; otherwise store them whole with --no-delta and save the CPU."
    ),
    Grade.FAIR: (
        "deltas save less than usual: check that versions of one artifact share a series name."
    ),
}


@dataclass(frozen=True)
class GroupStats:
    """One series (`--by series`) or folder (`--by folder`)."""

    name: str
    files: int
    deltas: int
    direct: int
    logical_bytes: int
    stored_bytes: int  # its deltas and direct files (references are counted bucket-wide)
    median_delta_ratio: float | None  # median(delta bytes / its reference's bytes)
    grade: Grade
    advice: str
    chain_links: int | None = None  # references=chain: at most this many links per read


LEGACY_KEYS = (  # deltaglider 6.x's `stats --json`, in its order
    "bucket",
    "object_count",
    "total_size",
    "compressed_size",
    "space_saved",
    "average_compression_ratio",
    "delta_objects",
    "direct_objects",
)


@dataclass(frozen=True)
class BucketStats:
    """What `deltaglider stats` reports; bytes are exact unless `logical_estimated`."""

    bucket: str
    prefix: str
    mode: Mode
    by: str
    objects: int  # stored objects counted
    files: int  # logical files (deltas + direct)
    deltas: int
    direct: int
    references: int  # folder references (`reference.bin`)
    shared_references: int
    internal_objects: int  # everything else under .deltaglider/, and shadowed deltas
    logical_bytes: int
    stored_bytes: int
    delta_bytes: int
    direct_bytes: int
    reference_bytes: int
    shared_reference_bytes: int
    internal_bytes: int
    logical_estimated: bool
    estimate_basis: str
    heads: int  # HEAD requests this run made
    from_cache: bool
    groups: tuple[GroupStats, ...]
    generated_at: str

    @property
    def saved_bytes(self) -> int:
        return self.logical_bytes - self.stored_bytes

    # deltaglider 6.x's `BucketStats` names for the same facts
    @property
    def object_count(self) -> int:
        return self.files

    @property
    def total_size(self) -> int:
        return self.logical_bytes

    @property
    def compressed_size(self) -> int:
        return self.stored_bytes

    @property
    def space_saved(self) -> int:
        return max(self.saved_bytes, 0)

    @property
    def average_compression_ratio(self) -> float:
        """The fraction saved (6.x's meaning: 0.95 = 95% saved), 0 to 1."""
        return (
            min(max(self.space_saved / self.logical_bytes, 0.0), 1.0) if self.logical_bytes else 0.0
        )

    @property
    def delta_objects(self) -> int:
        return self.deltas

    @property
    def direct_objects(self) -> int:
        return self.direct

    @property
    def object_limit_reached(self) -> bool:
        return False  # every object is counted, however many

    def legacy_dict(self) -> dict[str, object]:
        """`stats --json`'s deltaglider 6.x keys."""
        return {name: getattr(self, name) for name in LEGACY_KEYS}

    @property
    def stored_ratio(self) -> float:
        return self.stored_bytes / self.logical_bytes if self.logical_bytes else 0.0

    def to_dict(self) -> dict[str, object]:
        record: dict[str, object] = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("groups", "mode")
        }
        record.update(
            mode=self.mode.value,
            saved_bytes=self.saved_bytes,
            stored_ratio=round(self.stored_ratio, 6),
            groups=[_group_record(group) for group in self.groups],
        )
        return record


def _group_record(group: GroupStats) -> dict[str, object]:
    """A group's JSON fields (`chain_links` only in chain buckets)."""
    record = {**group.__dict__, "grade": group.grade.value}
    if group.chain_links is None:
        del record["chain_links"]
    return record


@dataclass
class _Pair:
    """Deltas of one series in one folder: they share a reference (the folder's, else the
    series' newest shared one)."""

    folder: str
    series: str
    count: int = 0
    stored: int = 0
    sizes: list[int] = field(default_factory=list)  # up to RESERVOIR delta sizes
    headed: int = 0
    headed_logical: int = 0
    self_sizes: list[int] = field(default_factory=list)  # HEADed deltas of a file on itself


@dataclass
class _Group:
    files: int = 0
    deltas: int = 0
    direct: int = 0
    logical: int = 0
    stored: int = 0
    ratios: list[float] = field(default_factory=list)
    chain_links: int | None = None


@dataclass
class _Scan:
    objects: int = 0
    bytes: int = 0
    deltas: int = 0
    direct: int = 0
    direct_bytes: int = 0
    delta_bytes: int = 0
    references: int = 0
    reference_bytes: int = 0
    internal: int = 0
    internal_bytes: int = 0
    folder_refs: dict[str, int] = field(default_factory=dict)
    # series id -> sizes, newest first
    shared_refs: dict[str, list[int]] = field(default_factory=dict)
    pairs: dict[tuple[str, str], _Pair] = field(default_factory=dict)
    # (folder, series) -> [count, bytes]
    direct_groups: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    chained: bool = False  # references=chain: a series' references are its versions' links


def compute(
    store: ObjectStore,
    bucket: str,
    prefix: str,
    *,
    mode: Mode = Mode.QUICK,
    by: str = "series",
    use_cache: bool = True,
    refresh: bool = False,
    concurrency: int = 8,
    subscriber: Subscriber | None = None,
    chained: bool = False,
) -> BucketStats:
    """Statistics of `prefix` in `bucket` (see the module docstring); `subscriber` is told
    `on_progress(listed=, headed=)` as objects are listed and deltas HEADed; `chained`: the
    bucket stores delta chains (FORMAT "Delta chains")."""
    if by not in GROUPINGS:
        raise DeltagliderError(f"--by must be series or folder, not {by!r}")
    told = subscriber or Subscriber()

    def tick(listed: int, headed: int) -> None:
        told.on_progress(listed=listed, headed=headed)

    scan = _scan(store, bucket, prefix, tick)
    scan.chained = chained
    cache_key = f"{STATS_PREFIX}{_cache_id(prefix, mode)}.json"
    fingerprint = {"objects": scan.objects, "bytes": scan.bytes}
    heads = 0
    from_cache = False
    if mode is not Mode.QUICK:
        cached = _read_cache(store, bucket, cache_key) if use_cache and not refresh else None
        if cached is not None and cached.get("fingerprint") == fingerprint:
            from_cache = _apply_cache(cached, scan)
        if not from_cache:
            heads = _head_deltas(store, bucket, prefix, scan, mode, concurrency, tick)
            if use_cache:
                _write_cache(store, bucket, cache_key, fingerprint, scan)
    return _result(bucket, prefix, mode, by, scan, heads, from_cache)


def _scan(store: ObjectStore, bucket: str, prefix: str, tick: Progress) -> _Scan:
    scan = _Scan()
    recent: OrderedDict[str, None] = OrderedDict()
    series_seen: set[str] = set()
    for head in stored_objects(store, bucket, prefix):
        if head.key.startswith(STATS_PREFIX):
            continue  # our own cache: counted in no total, so writing it changes nothing
        scan.objects += 1
        scan.bytes += head.size
        if scan.objects % 1000 == 0:
            tick(scan.objects, 0)
        key = head.key
        role = role_of(key)
        if role is KeyRole.SHARED_REFERENCE:
            sid = key[len(REFS_PREFIX) :].split("/", 1)[0]
            scan.shared_refs.setdefault(sid, []).append(head.size)
        elif role is KeyRole.INTERNAL:
            scan.internal += 1
            scan.internal_bytes += head.size
        elif role is KeyRole.FOLDER_REFERENCE:
            scan.references += 1
            scan.reference_bytes += head.size
            scan.folder_refs[parent_prefix(key)] = head.size
        elif role is KeyRole.DELTA and logical_key_of(key) in recent:
            scan.internal += 1  # `k` and `k.delta` both stored: `k` is the file (FORMAT)
            scan.internal_bytes += head.size
        elif role is KeyRole.DELTA:
            logical = logical_key_of(key)
            series = series_of(logical)
            series_seen.add(series_id(series))
            pair = scan.pairs.setdefault(
                (parent_prefix(key), series), _Pair(parent_prefix(key), series)
            )
            pair.count += 1
            pair.stored += head.size
            if len(pair.sizes) < RESERVOIR:
                pair.sizes.append(head.size)
            scan.deltas += 1
            scan.delta_bytes += head.size
        else:
            recent[key] = None
            if len(recent) > RECENT_DIRECT:
                recent.popitem(last=False)
            counts = scan.direct_groups.setdefault((parent_prefix(key), series_of(key)), [0, 0])
            counts[0] += 1
            counts[1] += head.size
            scan.direct += 1
            scan.direct_bytes += head.size
    if prefix and not prefix.startswith(INTERNAL_PREFIX):
        # Shared references live outside any prefix: count those of the series seen here.
        for head in stored_objects(store, bucket, REFS_PREFIX):
            sid = head.key[len(REFS_PREFIX) :].split("/", 1)[0]
            if is_shared_reference(head.key) and sid in series_seen:
                scan.objects += 1
                scan.bytes += head.size
                scan.shared_refs.setdefault(sid, []).append(head.size)
    tick(scan.objects, 0)
    return scan


def _reference_size(scan: _Scan, pair: _Pair) -> int | None:
    if pair.folder in scan.folder_refs:
        return scan.folder_refs[pair.folder]
    sizes = scan.shared_refs.get(series_id(pair.series))
    if not sizes:
        return None
    return max(sizes) if scan.chained else sizes[0]  # slots sort newest first; a chain's start


def _head_deltas(
    store: ObjectStore,
    bucket: str,
    prefix: str,
    scan: _Scan,
    mode: Mode,
    concurrency: int,
    tick: Progress,
) -> int:
    """HEAD every delta (detailed) or a sample (sampled) for the file size it records."""
    seen: dict[str, int] = {}  # deltas met per series, for the sample
    shadow_check: OrderedDict[str, None] = OrderedDict()

    def wanted() -> Iterator[tuple[_Pair, str]]:
        for head in stored_objects(store, bucket, prefix):
            key = head.key
            role = role_of(key)
            if role not in (KeyRole.DELTA, KeyRole.FILE):
                continue
            if role is KeyRole.FILE:
                shadow_check[key] = None
                if len(shadow_check) > RECENT_DIRECT:
                    shadow_check.popitem(last=False)
                continue
            logical = logical_key_of(key)
            if logical in shadow_check:
                continue
            pair = scan.pairs.get((parent_prefix(key), series_of(logical)))
            if pair is None:
                continue  # written after the first listing
            index = seen.get(pair.series, 0)
            seen[pair.series] = index + 1
            if mode is Mode.DETAILED or index < SAMPLE_FIRST or index % SAMPLE_EVERY == 0:
                yield pair, key

    heads = 0
    work = wanted()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while batch := list(islice(work, HEAD_BATCH)):
            found = pool.map(lambda item: store.head(bucket, item[1]), batch)
            for (pair, _key), head in zip(batch, found, strict=True):
                heads += 1
                size = recorded_size(head.metadata) if head is not None else None
                if head is not None and size is not None:
                    pair.headed += 1
                    pair.headed_logical += size
                    if lookup(head.metadata, "file_sha256") == lookup(head.metadata, "ref_sha256"):
                        pair.self_sizes.append(head.size)  # a reference's own first file
            tick(scan.objects, heads)
    return heads


BASIS = {
    Mode.QUICK: "each delta's file taken as the size of its folder's or series' reference",
    Mode.SAMPLED: (
        f"file sizes HEADed for the first {SAMPLE_FIRST} deltas of each series and every "
        f"{SAMPLE_EVERY}th after, their mean taken for the rest"
    ),
    Mode.DETAILED: "every delta HEADed for the file size it records",
}


def _result(
    bucket: str, prefix: str, mode: Mode, by: str, scan: _Scan, heads: int, from_cache: bool
) -> BucketStats:
    groups, delta_logical, estimated = _grouped(scan, by)
    shared_count = sum(len(sizes) for sizes in scan.shared_refs.values())
    shared_bytes = sum(sum(sizes) for sizes in scan.shared_refs.values())
    stored = (
        scan.delta_bytes
        + scan.direct_bytes
        + scan.reference_bytes
        + shared_bytes
        + scan.internal_bytes
    )
    return BucketStats(
        bucket=bucket,
        prefix=prefix,
        mode=mode,
        by=by,
        objects=scan.objects,
        files=scan.deltas + scan.direct,
        deltas=scan.deltas,
        direct=scan.direct,
        references=scan.references,
        shared_references=shared_count,
        internal_objects=scan.internal,
        logical_bytes=scan.direct_bytes + delta_logical,
        stored_bytes=stored,
        delta_bytes=scan.delta_bytes,
        direct_bytes=scan.direct_bytes,
        reference_bytes=scan.reference_bytes,
        shared_reference_bytes=shared_bytes,
        internal_bytes=scan.internal_bytes,
        logical_estimated=estimated and scan.deltas > 0,
        estimate_basis=BASIS[mode] if scan.deltas else "no deltas: every size is exact",
        heads=heads,
        from_cache=from_cache,
        groups=_group_table(groups),
        generated_at=format_time(now()),
    )


def _grouped(scan: _Scan, by: str) -> tuple[dict[str, _Group], int, bool]:
    """Files, bytes and delta ratios per series (or folder); the deltas' logical bytes (the
    ones not HEADed estimated: the series' sampled mean, else the reference's size); and
    whether any was estimated."""
    groups: dict[str, _Group] = {}
    estimated = False
    for (folder, series), (count, size) in scan.direct_groups.items():
        group = groups.setdefault(folder if by == GroupBy.FOLDER else series, _Group())
        group.files += count
        group.direct += count
        group.logical += size
        group.stored += size
    delta_logical = 0
    sampled: dict[str, list[int]] = {}  # series -> [deltas HEADed, their file sizes summed]
    for pair in scan.pairs.values():
        totals = sampled.setdefault(pair.series, [0, 0])
        totals[0] += pair.headed
        totals[1] += pair.headed_logical
    for pair in scan.pairs.values():
        reference = _reference_size(scan, pair)
        headed, headed_logical = sampled[pair.series]
        if pair.headed == pair.count:
            logical = pair.headed_logical
        else:
            each = headed_logical / headed if headed else (reference or 0)
            logical = pair.headed_logical + round(each * (pair.count - pair.headed))
            estimated = True
        delta_logical += logical
        group = groups.setdefault(pair.folder if by == GroupBy.FOLDER else pair.series, _Group())
        group.files += pair.count
        group.deltas += pair.count
        group.logical += logical
        group.stored += pair.stored
    for series, ratios in (_chain_ratios if scan.chained else _series_ratios)(scan).items():
        for folder, value in ratios:
            groups[folder if by == GroupBy.FOLDER else series].ratios.append(value)
        if scan.chained and by != GroupBy.FOLDER:
            count = len(scan.shared_refs.get(series_id(series), []))
            groups[series].chain_links = max(bin(n).count("1") for n in range(max(count, 1)))
    return groups, delta_logical, estimated


def _group_table(groups: dict[str, _Group]) -> tuple[GroupStats, ...]:
    table = []
    for name in sorted(groups):
        group = groups[name]
        ratio = statistics.median(group.ratios) if group.ratios else None
        grade = grade_of(ratio)
        table.append(
            GroupStats(
                name=name,
                files=group.files,
                deltas=group.deltas,
                direct=group.direct,
                logical_bytes=group.logical,
                stored_bytes=group.stored,
                median_delta_ratio=round(ratio, 6) if ratio is not None else None,
                grade=grade,
                advice=ADVICE.get(grade, ""),
                chain_links=group.chain_links,
            )
        )
    return tuple(table)


def _apply_cache(cached: dict[str, object], scan: _Scan) -> bool:
    """Put a cached run's HEAD findings on this listing's pairs; False (and nothing changed)
    when the document is not what this version writes."""
    try:
        pairs = cached["pairs"]
        if not isinstance(pairs, dict):
            raise TypeError("pairs")
        found = {
            tuple(str(name).split("\n", 1)): (int(headed), int(logical), [int(s) for s in selfs])
            for name, (headed, logical, selfs) in pairs.items()
        }
    except (KeyError, TypeError, ValueError):
        log.warning("stats_cache_unreadable", error="unexpected document")
        return False
    for (folder, series), pair in scan.pairs.items():
        pair.headed, pair.headed_logical, pair.self_sizes = found.get((folder, series), (0, 0, []))
    return True


def _series_ratios(scan: _Scan) -> dict[str, list[tuple[str, float]]]:
    """Per series, (folder, delta bytes / reference bytes) for grading. Each reference made
    left a self-delta of a few bytes beside it (FORMAT "Objects"), which is not a version
    encoded against a reference and is left out: exactly, where every delta of the folder was
    HEADed (a self-delta records its reference's SHA-256 as its file's); elsewhere by taking
    the smallest deltas, one per reference not yet accounted for (prune may have deleted some).
    A series that needed a new shared reference again (renewal: its best delta was too large)
    counts each renewal as a ratio of 1."""
    found: dict[str, list[tuple[str, float]]] = {}
    by_series: dict[str, list[_Pair]] = {}
    for pair in scan.pairs.values():
        by_series.setdefault(pair.series, []).append(pair)
    for series, pairs in by_series.items():
        shared = len(scan.shared_refs.get(series_id(series), []))
        made = shared + sum(1 for pair in pairs if pair.folder in scan.folder_refs)
        known = [pair for pair in pairs if pair.count and pair.headed == pair.count]
        sized = sorted(
            (size, pair.folder, reference)
            for pair in pairs
            if (reference := _reference_size(scan, pair))
            for size in _versions(pair, exact=pair in known)
        )
        guessed = 0 if len(known) == len(pairs) else made - sum(len(p.self_sizes) for p in known)
        ratios = [
            (folder, size / reference) for size, folder, reference in sized[max(guessed, 0) :]
        ]
        ratios += [(pairs[0].folder, 1.0)] * max(shared - 1, 0)
        found[series] = ratios
    return found


def _chain_ratios(scan: _Scan) -> dict[str, list[tuple[str, float]]]:
    """Per series of a chain bucket, each link's bytes / its start's (the largest member),
    spread over the series' folders in order (a link's folder is not in the listing)."""
    found: dict[str, list[tuple[str, float]]] = {}
    folders: dict[str, list[str]] = {}
    for folder, series in sorted(scan.pairs):
        folders.setdefault(series, []).append(folder)
    for series, names in folders.items():
        sizes = sorted(scan.shared_refs.get(series_id(series), []))
        if sizes:
            links = sizes[:-1]
            found[series] = [(names[n % len(names)], s / sizes[-1]) for n, s in enumerate(links)]
    return found


def _versions(pair: _Pair, *, exact: bool) -> list[int]:
    """The pair's delta sizes, without its self-deltas when they are known exactly."""
    sizes = list(pair.sizes)
    for size in pair.self_sizes if exact else []:
        if size in sizes:
            sizes.remove(size)
    return sizes


def _cache_id(prefix: str, mode: Mode) -> str:
    return hashlib.sha256(f"{mode.value}\n{prefix}".encode()).hexdigest()[:24]


def _read_cache(store: ObjectStore, bucket: str, key: str) -> dict[str, object] | None:
    try:
        if store.head(bucket, key) is None:
            return None
        buffer = BytesIO()
        store.download(bucket, key, buffer)
        document = json.loads(buffer.getvalue())
    except (DeltagliderError, ValueError) as error:
        log.warning("stats_cache_unreadable", key=key, error=str(error))
        return None
    if not isinstance(document, dict) or document.get("version") != CACHE_VERSION:
        return None
    return document


def _write_cache(
    store: ObjectStore, bucket: str, key: str, fingerprint: dict[str, int], scan: _Scan
) -> None:
    document = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "pairs": {
            f"{pair.folder}\n{pair.series}": [pair.headed, pair.headed_logical, pair.self_sizes]
            for pair in scan.pairs.values()
        },
    }
    try:
        store.put_bytes(bucket, key, json.dumps(document).encode(), {})
    except DeltagliderError as error:
        log.warning("stats_cache_not_written", key=key, error=str(error))

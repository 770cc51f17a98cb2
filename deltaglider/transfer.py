"""Many-file operations as `aws s3` runs them: cp/mv --recursive, sync and rm --recursive.

Owns: walking a local tree or an S3 prefix, include/exclude filters (in order, last match wins),
the sync comparison, refusing keys that would land outside a download's destination, and
running transfers concurrently while each new space's reference is created exactly once (one
upload per space goes first). Every single transfer is an `Engine` call. Must not call boto3,
start subprocesses or print.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from deltaglider import interrupt
from deltaglider.errors import DeltagliderError, FatalError, NotFoundError, UsageError
from deltaglider.events import Subscriber
from deltaglider.files import Progress, is_partial_download
from deltaglider.metadata import (
    DELTA_SUFFIX,
    INTERNAL_PREFIX,
    ObjectKind,
    check_user_key,
    is_stats_cache,
    logical_key_of,
)
from deltaglider.models import (
    DeleteResult,
    DownloadResult,
    Shard,
    UploadOptions,
    UploadResult,
    VerifyResult,
)
from deltaglider.urls import S3Url, base_name, destination_key, is_s3_url

if TYPE_CHECKING:
    from deltaglider.engine import Engine
    from deltaglider.reading import Located


class Action(Enum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    COPY = "copy"
    DELETE = "delete"
    VERIFY = "verify"  # reconstruct and check, write nothing


Location = Path | S3Url


@dataclass(frozen=True)
class Task:
    """One transfer or deletion; `destination` is None for deletions."""

    action: Action
    source: Location
    destination: Location | None = None
    size: int = 0
    label: str = ""  # how the source is shown when not its path (`-` for stdin)
    stored_key: str = ""  # an S3 source's one stored form, as listed: read without HEADs
    destination_absent: bool = False  # the destination's listing showed nothing at the key


Result = UploadResult | DownloadResult | DeleteResult | VerifyResult | None


@dataclass(frozen=True)
class Outcome:
    task: Task
    result: Result = None
    error: str | None = None
    skipped: bool = False  # not attempted (unreadable source): `aws s3` exit status 2

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped


@dataclass(frozen=True)
class Options:
    """How each transfer is done."""

    upload: UploadOptions = field(default_factory=UploadOptions)  # uploads and S3 copies
    move: bool = False  # delete each source after its transfer succeeds (mv)
    dryrun: bool = False


@dataclass(frozen=True)
class Filters:
    """`--exclude` / `--include` rules in command-line order; the last match wins."""

    rules: tuple[tuple[str, str], ...] = ()

    def included(self, relative: str) -> bool:
        """aws's rule: every file, then each matching rule in order decides (the last
        wins). `--include` alone (no `--exclude`), a no-op in aws, means "only these", as
        deltaglider 6.x documented it."""
        keep = any(kind == "exclude" for kind, _ in self.rules) or not self.rules
        for kind, pattern in self.rules:
            if fnmatch.fnmatchcase(relative, pattern):
                keep = kind == "include"
        return keep


@dataclass(frozen=True)
class Entry:
    """A file on one side of a many-file operation, relative to that side's root."""

    relative: str
    location: Location
    size: int
    mtime: float
    skip: str = ""  # why it cannot be transferred (`aws s3`'s warning), or "" when it can
    folder_marker: bool = False  # a zero-byte `name/` object as S3 consoles make folders
    stored_key: str = ""  # S3: the one stored form the listing showed ("" if both or unknown)


NOT_READABLE = "File/Directory is not readable."
SPECIAL_FILE = "File is character special device, block special device, FIFO, or socket."


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)  # local folders S3 folder markers stand for


# ------------------------------------------------------------------ listing both sides


def folder_prefix(url: S3Url) -> str:
    """The key prefix a recursive operation on `url` covers (`a/b` means `a/b/`)."""
    return url.key if url.key == "" or url.key.endswith("/") else url.key + "/"


def local_entries(root: Path, *, follow_symlinks: bool) -> Iterator[Entry]:
    """Files under `root` (sorted), relative paths with `/`; unreadable ones and FIFOs,
    sockets and devices flagged to be skipped (never opened: a FIFO would block), and our own
    partial downloads (`.NAME.*.dgtmp`) left out."""
    for directory, folders, files in os.walk(root, followlinks=follow_symlinks):
        folders.sort()
        base = Path(directory)
        for name in sorted(files):
            path = base / name
            if (path.is_symlink() and not follow_symlinks) or is_partial_download(name):
                continue
            relative = path.relative_to(root).as_posix()
            try:
                info = path.stat()
            except OSError:
                yield Entry(relative, path, 0, 0.0, skip=NOT_READABLE)
                continue
            skip = "" if os.access(path, os.R_OK) else NOT_READABLE
            if not stat.S_ISREG(info.st_mode):
                skip = SPECIAL_FILE
            yield Entry(relative, path, info.st_size, info.st_mtime, skip=skip)


def s3_entries(engine: Engine, url: S3Url, *, logical_sizes: bool) -> Iterator[Entry]:
    prefix = folder_prefix(url)
    for item in engine.listing(url.bucket, prefix, recursive=True, logical_sizes=logical_sizes):
        if item.is_prefix:
            continue
        mtime = item.last_modified.timestamp() if item.last_modified else 0.0
        marker = item.key.endswith("/") and item.size == 0
        yield Entry(
            item.key[len(prefix) :],
            url.child(item.key),
            item.size,
            mtime,
            folder_marker=marker,
            stored_key="" if item.both_forms else item.stored_key,
        )


def entries(
    engine: Engine, root: Location, *, follow_symlinks: bool = True, logical_sizes: bool = False
) -> Iterator[Entry]:
    if isinstance(root, S3Url):
        return s3_entries(engine, root, logical_sizes=logical_sizes)
    return local_entries(root, follow_symlinks=follow_symlinks)


def safe_local_path(root: Path, relative: str) -> Path:
    """`root/relative`, refusing any key that would write outside `root`: `..`, absolute paths,
    backslashes, NUL, empty segments, or a symlink already in the destination pointing out."""
    parts = relative.split("/")
    if (
        not relative
        or "\x00" in relative
        or "\\" in relative
        or relative.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UsageError(f"refusing to download key {relative!r}: it would write outside {root}")
    target = root / relative
    real_root = root.resolve()
    if not target.parent.resolve().is_relative_to(real_root) or (
        target.is_symlink() and not target.resolve().is_relative_to(real_root)
    ):
        raise UsageError(
            f"refusing to download key {relative!r}: a symlink in {root} points outside it"
        )
    return target


def destination_for(root: Location, relative: str) -> Location:
    if isinstance(root, S3Url):
        return root.child(folder_prefix(root) + relative)
    return root / relative


def _transfer_action(source: Location, destination: Location) -> Action:
    if isinstance(source, S3Url):
        return Action.COPY if isinstance(destination, S3Url) else Action.DOWNLOAD
    return Action.UPLOAD


def _transfer_task(
    entry: Entry, destination_root: Location, *, absent: bool = False
) -> Task | Outcome:
    """The task copying `entry` under `destination_root`, or a failed/skipped outcome;
    `absent`: the destination's listing showed nothing there."""
    action = _transfer_action(entry.location, destination_root)
    if entry.skip:
        return Outcome(
            Task(action, entry.location),
            skipped=True,
            error=f"Skipping file {entry.location}. {entry.skip}",
        )
    try:
        if isinstance(destination_root, Path) and isinstance(entry.location, S3Url):
            target: Location = safe_local_path(destination_root, entry.relative)
        else:
            target = destination_for(destination_root, entry.relative)
    except UsageError as error:
        return Outcome(Task(action, entry.location), error=str(error))
    return Task(
        action,
        entry.location,
        target,
        entry.size,
        stored_key=entry.stored_key,
        destination_absent=absent and isinstance(target, S3Url),
    )


def plan_copy(
    engine: Engine,
    source: Location,
    destination: Location,
    filters: Filters,
    *,
    follow_symlinks: bool = True,
) -> Plan:
    """`cp/mv --recursive SOURCE DESTINATION`."""
    _require_folder(source)
    plan = Plan()
    for entry in entries(engine, source, follow_symlinks=follow_symlinks):
        if filters.included(entry.relative):
            _add_entry(plan, entry, destination)
    return plan


def _require_folder(source: Location) -> None:
    if isinstance(source, Path) and not source.is_dir():
        raise FatalError(f"The user-provided path {source} does not exist or is not a directory.")


def _add_entry(plan: Plan, entry: Entry, destination: Location, *, absent: bool = False) -> None:
    """The transfer of one entry; a folder marker becomes a local folder (as `aws s3` does)
    or nothing when copied to S3."""
    if entry.folder_marker:
        if isinstance(destination, Path) and entry.relative.strip("/"):
            try:
                plan.folders.append(safe_local_path(destination, entry.relative.rstrip("/")))
            except UsageError as error:
                plan.skipped.append(
                    Outcome(Task(Action.DOWNLOAD, entry.location), error=str(error))
                )
        return
    _add(plan, _transfer_task(entry, destination, absent=absent))


def _add(plan: Plan, item: Task | Outcome) -> None:
    if isinstance(item, Task):
        plan.tasks.append(item)
    else:
        plan.skipped.append(item)


def stored_delta_as_logical(engine: Engine, url: S3Url) -> S3Url:
    """A `.delta` key as 6.x's `verify` and `rm` (and `aws s3 rm`) took it, the stored form of
    a file: its logical key, unless another tool stored a plain object under that name."""
    if not url.key.endswith(DELTA_SUFFIX):
        return url
    found = engine.find(url.bucket, url.key)  # HEADs the key itself first: its stored form
    if found is None or (found.stored_key == url.key and found.kind is ObjectKind.DELTA):
        return S3Url(url.bucket, logical_key_of(url.key))
    return url


def location(text: str) -> Location:
    """A command-line argument as a place: an S3 URL or a local path."""
    return S3Url.parse(text) if is_s3_url(text) else Path(text)


def plan_single(engine: Engine, source: str, destination: str) -> Plan:
    """`cp/mv SOURCE DESTINATION` of one file, as `aws s3 cp` decides where it lands (a
    trailing `/` or an existing folder keeps the file's name); a local folder without
    `--recursive` is a failed outcome, as aws reports it. An S3 source is located first, so
    the task has its size (for the progress line) and its stored form (read without HEADs);
    when it cannot be, the task runs anyway and reports why as any failed transfer does."""
    src, dst = location(source), location(destination)
    if isinstance(src, Path):
        if src.is_dir():  # aws: "upload failed: … Is a directory", exit 1
            failed = Outcome(
                Task(Action.UPLOAD, src, dst, label=source),
                error=f"{source} is a directory (use --recursive to copy a folder)",
            )
            return Plan(skipped=[failed])
        if not src.exists():
            raise FatalError(f"The user-provided path {source} does not exist.")
        assert isinstance(dst, S3Url)
        target = dst.child(destination_key(dst, src.name))
        check_user_key(target.key)
        return Plan([Task(Action.UPLOAD, src, target, src.stat().st_size)])
    located = _located(engine, src)
    size = located.logical_size if located else 0
    if isinstance(dst, S3Url):
        target = dst.child(destination_key(dst, base_name(src.key)))
        check_user_key(target.key)
        return Plan([Task(Action.COPY, src, target, size)])
    target_path = local_destination(destination, src.key)
    stored_key = located.stored_key if located else ""
    return Plan([Task(Action.DOWNLOAD, src, target_path, size, stored_key=stored_key)])


def _located(engine: Engine, source: S3Url) -> Located | None:
    if not base_name(source.key):
        return None  # a folder: the transfer says so
    try:
        return engine.find(source.bucket, source.key)
    except DeltagliderError:
        return None


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


def plan_sync(
    engine: Engine,
    source: Location,
    destination: Location,
    filters: Filters,
    *,
    size_only: bool = False,
    exact_timestamps: bool = False,
    delete: bool = False,
    follow_symlinks: bool = True,
) -> Plan:
    """`sync`: transfer what is missing or differs (by logical size and modification time, as
    `aws s3 sync` compares them); with `delete`, remove what the source no longer has."""
    _require_folder(source)
    plan = Plan()
    theirs = {
        e.relative: e
        for e in entries(engine, destination, logical_sizes=True, follow_symlinks=follow_symlinks)
    }
    seen: set[str] = set()
    for entry in entries(engine, source, logical_sizes=True, follow_symlinks=follow_symlinks):
        seen.add(entry.relative)
        if not filters.included(entry.relative):
            continue
        other = theirs.get(entry.relative)
        action = _transfer_action(entry.location, destination)
        if other is None or _differs(entry, other, action, size_only, exact_timestamps):
            _add_entry(plan, entry, destination, absent=other is None)
    if delete:
        for relative, other in sorted(theirs.items()):
            if relative not in seen and filters.included(relative):
                plan.tasks.append(Task(Action.DELETE, other.location))
    return plan


def _differs(
    source: Entry, destination: Entry, action: Action, size_only: bool, exact_timestamps: bool
) -> bool:
    if source.size != destination.size:
        return True
    if size_only:
        return False
    if action is Action.DOWNLOAD:
        # aws s3 sync: a download is skipped unless the sizes differ, or with
        # --exact-timestamps the times differ at all
        return exact_timestamps and int(source.mtime) != int(destination.mtime)
    return int(source.mtime) > int(destination.mtime)


def plan_delete(engine: Engine, url: S3Url, filters: Filters) -> Plan:
    """`rm --recursive` with filters. Under `.deltaglider/` only the stats caches go (ours
    and 6.x's): the rest are references, markers and settings other files need, kept with a
    warning (`prune` and `cleanup` remove what no file needs)."""
    if not url.key.startswith(INTERNAL_PREFIX):
        return _plan_each(engine, url, filters, Action.DELETE, logical_sizes=False)
    plan, kept = Plan(), 0
    for head in engine.stored_objects(url.bucket, url.key):
        if is_stats_cache(head.key) and filters.included(head.key[len(url.key) :]):
            plan.tasks.append(Task(Action.DELETE, S3Url(url.bucket, head.key), size=head.size))
        else:
            kept += 1
    if kept:  # the logger only now: `--help` starts without structlog
        from deltaglider.log import get_logger

        get_logger(__name__).warning(
            "internal_objects_kept", prefix=str(url), kept=kept, removable="stats caches"
        )
    return plan


def plan_verify(engine: Engine, url: S3Url, filters: Filters, shard: Shard | None = None) -> Plan:
    """`verify --recursive`: every file under the prefix, sized for the progress line; with a
    shard, only its share (a prefix with no files at all is an error even so: NotFoundError).
    """
    plan = _plan_each(engine, url, filters, Action.VERIFY, logical_sizes=True)
    if not plan.tasks:  # a release check of a version never uploaded must not pass
        raise NotFoundError(f"no stored files to verify under {url}", code="NoSuchKey")
    if shard is not None:
        plan.tasks = [
            t for t in plan.tasks if isinstance(t.source, S3Url) and shard.holds(t.source.key)
        ]
    return plan


def _plan_each(
    engine: Engine, url: S3Url, filters: Filters, action: Action, *, logical_sizes: bool
) -> Plan:
    plan = Plan()
    for entry in s3_entries(engine, url, logical_sizes=logical_sizes):
        if filters.included(entry.relative) and not (
            entry.folder_marker and action is Action.VERIFY
        ):
            plan.tasks.append(Task(action, entry.location, size=entry.size))
    return plan


# ------------------------------------------------------------------------ execution


def execute(
    engine: Engine, task: Task, options: Options, progress: Progress | None = None
) -> Outcome:
    """Run one task; library errors become the outcome's one-line error. `progress` is told
    the task's file bytes as they are done."""
    if options.dryrun:
        return Outcome(task)
    try:
        return Outcome(task, _execute(engine, task, options, progress))
    except DeltagliderError as error:
        return Outcome(task, error=str(error))
    except OSError as error:
        return Outcome(task, error=f"{error.filename or task.source}: {error.strerror}")


def _execute(engine: Engine, task: Task, options: Options, progress: Progress | None) -> Result:
    source, destination = task.source, task.destination
    if task.action is Action.VERIFY:
        assert isinstance(source, S3Url)
        return engine.verify(source.bucket, source.key)
    if task.action is Action.DELETE:
        if isinstance(source, S3Url):
            try:
                return engine.delete(source.bucket, source.key)
            except NotFoundError as error:
                if error.code != "NoSuchKey":
                    raise
                return DeleteResult(source.bucket, source.key, ())  # as S3 and aws: done
        source.unlink()
        return None
    result: Result
    if isinstance(source, Path) and isinstance(destination, S3Url):
        result = engine.upload(
            source,
            destination.bucket,
            destination.key,
            options.upload,
            progress,
            absent=task.destination_absent,
        )
        if options.move:
            source.unlink()
        return result
    assert isinstance(source, S3Url)
    if isinstance(destination, S3Url):
        result = engine.copy(
            source.bucket, source.key, destination.bucket, destination.key, options.upload, progress
        )
    else:
        assert destination is not None
        destination.parent.mkdir(parents=True, exist_ok=True)
        result = engine.download(
            source.bucket, source.key, destination, progress, stored_key=task.stored_key
        )
        if result.last_modified is not None:  # as aws does, so a later sync sees no change
            stamp = result.last_modified.timestamp()
            os.utime(destination, (stamp, stamp))
    if options.move:
        engine.delete(source.bucket, source.key)
    return result


def run(
    engine: Engine,
    plan: Plan,
    options: Options,
    jobs: int,
    subscriber: Subscriber | None = None,
) -> list[Outcome]:
    """Run a plan on `jobs` threads: its skipped entries are told first, the local folders
    S3 folder markers stand for are made (not with dryrun), then every task runs.

    `subscriber` hears `on_queued(task=)` as each task starts, `on_progress(task=,
    bytes_transferred=)` as its bytes are done, and `on_done(outcome=)` for every outcome in
    task order. The first upload of each reference group (`Engine.reference_group`) runs
    before the others, so its new reference is created once and every other file of the
    group is encoded against it."""
    told = subscriber or Subscriber()
    for outcome in plan.skipped:
        told.on_done(outcome=outcome)
    if not options.dryrun:
        for folder in plan.folders:  # what S3 folder markers stand for, as aws creates them
            folder.mkdir(parents=True, exist_ok=True)
    tasks = plan.tasks

    def work(task: Task) -> Outcome:
        if interrupt.requested():
            return Outcome(task, error="interrupted; not started")
        told.on_queued(task=task, size=task.size)

        def advance(count: int) -> None:
            told.on_progress(task=task, bytes_transferred=count)

        return execute(engine, task, options, advance)

    firsts: dict[object, int] = {}
    for index, task in enumerate(tasks if len(tasks) > 1 else []):  # one task: nothing to order
        group = _reference_group(engine, task, options)
        if group is not None:
            firsts.setdefault(group, index)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures: dict[int, Future[Outcome]] = {
            index: pool.submit(work, tasks[index]) for index in sorted(firsts.values())
        }
        for first in list(futures.values()):
            _result_of(first)
        for index, task in enumerate(tasks):
            if index not in futures:
                futures[index] = pool.submit(work, task)
        for index in range(len(tasks)):
            outcome = _result_of(futures[index])
            outcomes.append(outcome)
            told.on_done(outcome=outcome)
    return outcomes


def _reference_group(engine: Engine, task: Task, options: Options) -> object:
    """The reference group a new reference made by this upload or copy would serve; None
    when it makes none."""
    destination = task.destination
    if task.action not in (Action.UPLOAD, Action.COPY) or not isinstance(destination, S3Url):
        return None
    return engine.reference_group(destination.bucket, destination.key, options.upload.policy)


def _result_of(future: Future[Outcome]) -> Outcome:
    """Wait for one transfer. An interrupt (the CLI's SIGINT/SIGTERM handler raises
    KeyboardInterrupt in this thread) does not stop the wait: the cancellation it requested
    makes every transfer end promptly, and each still gets its line."""
    while True:
        try:
            return future.result()
        except KeyboardInterrupt:
            if not interrupt.requested():
                raise

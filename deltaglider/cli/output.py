"""Everything the command prints, in one place: sizes and times as `aws s3` shows them, one
record per result (the `--json` shape), one text printer and one JSON printer chosen once per
command, one self-rewriting status line on a terminal, and the subscribers that turn what the
library tells (`events.Subscriber`) into lines.

Owns: output and exit statuses. Must not decide anything a library call could: commands hand
this module results, never raw flags.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click

from deltaglider import interrupt
from deltaglider.events import Subscriber
from deltaglider.models import (
    DeleteResult,
    DownloadResult,
    StoredAs,
    UploadResult,
    VerifyResult,
)
from deltaglider.transfer import Action, Location, Outcome, Task
from deltaglider.urls import S3Url, base_name

EXIT_FAILED = 1  # one or more transfers failed (the rest still ran)
EXIT_SKIPPED = 2  # files skipped, or arguments unparsable
_SIZE_SUFFIXES = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters (but line breaks) shown as escapes: a key holding
    ESC or CR cannot rewrite the terminal it is printed on."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Every line the CLI prints goes through here (the status line excepted)."""
    click.echo(printable(text), err=err, nl=nl)


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


def time_str(moment: datetime | None) -> str:
    """A listing's local time, as `aws s3 ls` prints it (blank when unknown)."""
    if moment is None:
        return " " * 19
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def stored_for(stored: int, size: int) -> str:
    """`X stored for Y`: what a file takes in the bucket against its own size."""
    return f"{human_size(stored)} stored for {human_size(size)}"


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


def detail(result: object) -> str:
    """What a text line says after a result's locations: how it was stored, in brackets."""
    if isinstance(result, VerifyResult):
        return f" ({result.stored_as}, {result.size} bytes, sha256 {result.actual_sha256})"
    if not isinstance(result, UploadResult):
        return ""
    if result.stored_as is StoredAs.UNCHANGED:
        return " (unchanged: identical file already stored)"
    sizes = f" ({result.stored_as.value}: {stored_for(result.stored_size, result.file_size)}"
    return sizes + (f", {result.note})" if result.note else ")")


def result_record(result: object) -> dict[str, Any]:
    """A library result as its `--json` fields."""
    if isinstance(result, UploadResult):
        return {
            "stored_as": result.stored_as.value,
            "file_size": result.file_size,
            "stored_size": result.stored_size,
            "sha256": result.sha256,
            "note": result.note or None,
            "seconds": round(result.elapsed, 3),
        }
    if isinstance(result, DownloadResult):
        return {
            "stored_as": result.stored_as,
            "file_size": result.size,
            "sha256": result.sha256,
            "verified": result.verified,
            "seconds": round(result.elapsed, 3),
        }
    if isinstance(result, DeleteResult):
        return {"removed": list(result.removed)}
    if isinstance(result, VerifyResult):
        return {
            "stored_as": result.stored_as,
            "file_size": result.size,
            "sha256": result.actual_sha256,
        }
    return {}


def outcome_record(outcome: Outcome, dryrun: bool) -> dict[str, Any]:
    """One transfer's `--json` line."""
    task = outcome.task
    return {
        "action": task.action.value,
        "source": task.label or show(task.source),
        "destination": show(task.destination) if task.destination is not None else None,
        "ok": outcome.ok,
        "error": outcome.error,
        "skipped": outcome.skipped,
        "dryrun": dryrun,
        **result_record(outcome.result),
    }


class Printer:
    """Prints a command's records: as text lines (this class) or as JSON (`JsonPrinter`),
    chosen once by `printer()`. Text: `quiet` prints no success lines, `only_errors` the
    same; errors go to stderr always."""

    def __init__(self, quiet: bool = False, only_errors: bool = False) -> None:
        self.quiet = quiet
        self.only_errors = only_errors
        self.status: StatusLine | None = None  # cleared before each line

    def show(self, record: dict[str, Any], text: str | None) -> None:
        """A success: `text` (None: nothing in text mode)."""
        if text is not None and not (self.quiet or self.only_errors):
            self._echo(text)

    def error(self, record: dict[str, Any], text: str) -> None:
        self._echo(text, err=True)

    def _echo(self, line: str, *, err: bool = False) -> None:
        if self.status is not None:
            self.status.clear()
        echo(line, err=err)


class JsonPrinter(Printer):
    """One JSON object per record on stdout, errors included; nothing with `quiet`."""

    def show(self, record: dict[str, Any], text: str | None) -> None:
        if not self.quiet:
            self._echo(json.dumps(record))

    def error(self, record: dict[str, Any], text: str) -> None:
        self.show(record, None)


def printer(as_json: bool, *, quiet: bool = False, only_errors: bool = False) -> Printer:
    return (JsonPrinter if as_json else Printer)(quiet, only_errors)


class StatusLine:
    """One self-rewriting line on a terminal's stderr (nothing elsewhere)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def draw(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{text}"[:200])
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@dataclass
class TransferProgress(Subscriber):
    """The transfer status line: files, bytes (moving during each file, not only at its end),
    rate, current file; redrawn at most every 0.1 s."""

    total_files: int
    total_bytes: int
    line: StatusLine = field(default_factory=lambda: StatusLine(True))
    files: int = 0
    bytes: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counted: dict[int, int] = field(default_factory=dict)  # bytes told so far, per task
    drawn: float = 0.0

    def on_queued(self, **kwargs: Any) -> None:
        task: Task = kwargs["task"]
        with self.lock:
            self.current = task.label or base_name(str(task.source))
            self._draw()

    def on_progress(self, **kwargs: Any) -> None:
        task: Task = kwargs["task"]
        count: int = kwargs["bytes_transferred"]
        with self.lock:
            self.counted[id(task)] = self.counted.get(id(task), 0) + count
            self.bytes += count
            if time.monotonic() - self.drawn >= 0.1:
                self._draw()

    def on_done(self, **kwargs: Any) -> None:
        outcome: Outcome = kwargs["outcome"]
        with self.lock:
            self.files += 1
            self.bytes += outcome.task.size - self.counted.pop(id(outcome.task), 0)
            self._draw()

    def _draw(self) -> None:
        self.drawn = time.monotonic()
        rate = self.bytes / max(self.drawn - self.started, 1e-6)
        self.line.draw(
            f"Completed {self.files} of {self.total_files} file(s), "
            f"{human_size(self.bytes)}/{human_size(self.total_bytes)} "
            f"({human_size(rate)}/s) {self.current}"
        )


@dataclass
class TransferReport(Subscriber):
    """One line per transfer outcome in `aws s3`'s shapes, and the exit status they add
    up to; the status line (if any) is told first and cleared before each line."""

    out: Printer
    dryrun: bool = False
    move: bool = False
    progress: TransferProgress | None = None
    failed: int = 0
    skipped: int = 0

    def on_queued(self, **kwargs: Any) -> None:
        if self.progress:
            self.progress.on_queued(**kwargs)

    def on_progress(self, **kwargs: Any) -> None:
        if self.progress:
            self.progress.on_progress(**kwargs)

    def on_done(self, **kwargs: Any) -> None:
        outcome: Outcome = kwargs["outcome"]
        if self.progress:
            self.progress.on_done(**kwargs)
        record = outcome_record(outcome, self.dryrun)
        task = outcome.task
        if outcome.skipped:
            self.skipped += 1
            self.out.error(record, f"warning: {outcome.error}")
        elif outcome.error:
            self.failed += 1
            reason = without_locations(outcome.error, task.source, task.destination)
            self.out.error(record, f"{self._describe(task, failed=True)} {reason}")
        else:
            self.out.show(record, self._describe(task) + detail(outcome.result))

    def _describe(self, task: Task, *, failed: bool = False) -> str:
        verb = "move" if self.move and task.action is not Action.DELETE else task.action.value
        line = f"{'(dryrun) ' if self.dryrun else ''}{verb}{' failed' if failed else ''}: "
        line += task.label or show(task.source)
        if task.destination is not None:
            line += f" to {show(task.destination)}"
        return line + (":" if failed else "")

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_SKIPPED if self.skipped else 0


def exit_after_transfers(report: TransferReport, planned: int) -> None:
    """Exit as `aws s3` does after a many-file command: interrupted (130/143), a transfer
    failed (1), files skipped (2), or return (0)."""
    if interrupt.requested():
        done = planned - report.failed
        echo(f"deltaglider: interrupted: {done} of {planned} done; the rest not stored", err=True)
        sys.exit(interrupt.exit_status())
    if report.exit_code:
        sys.exit(report.exit_code)

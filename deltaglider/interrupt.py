"""Stopping promptly: SIGINT and SIGTERM as one process-wide cancellation.

Owns: the cancellation flag that long loops check between steps (multipart parts, download
chunks, queued transfers), the callbacks that stop work at once when it is raised (xdelta
registers one that kills its codec children), the signal that caused it, and `Cancelled`.
The CLI installs `install_handlers()`; a library user's process is never touched. Must not
print, call boto3 or start processes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from deltaglider.errors import DeltagliderError

_requested = threading.Event()
_signal: list[int] = []
_callbacks: list[Callable[[], None]] = []


class Cancelled(DeltagliderError):
    """The command was interrupted; what was running stopped and stored nothing."""

    def __init__(self) -> None:
        super().__init__("interrupted; not stored")


def on_cancel(callback: Callable[[], None]) -> None:
    """Run `callback` (from the signal handler) when cancellation is requested."""
    _callbacks.append(callback)


def request(signum: int = signal.SIGINT) -> None:
    """Ask everything to stop: set the flag and run the callbacks."""
    if not _signal:
        _signal.append(signum)
    _requested.set()
    for callback in _callbacks:
        callback()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise Cancelled if cancellation was requested: call between steps of long work."""
    if _requested.is_set():
        raise Cancelled


def exit_status() -> int:
    """128 + the signal number, as shells report it: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + (_signal[0] if _signal else signal.SIGINT)


def install_handlers() -> None:
    """SIGINT and SIGTERM request cancellation, then interrupt the main thread's wait."""

    def handle(signum: int, frame: FrameType | None) -> None:
        request(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)

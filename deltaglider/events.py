"""The one way a long operation tells its caller what it does: a `Subscriber`, shaped like
s3transfer's (`on_queued`, `on_progress`, `on_done`), whose hooks take keyword arguments
and ignore the ones they do not know, so a new hook or argument never breaks a caller.

Owns: the subscriber type and the adapter that turns a byte count callback (boto3's
`Callback=`) into one. Must not print (the CLI's subscribers do) or import another
deltaglider module.

What each operation tells:
- transfers (`transfer.run`): `on_queued(task=, size=)`, `on_progress(task=,
  bytes_transferred=)`, `on_done(outcome=)` in task order;
- `migration`: `on_done(outcome=)` per file; `retention.execute_prune` and
  `deleting.delete_recursive`: `on_done(result=)` per deletion;
- `maintenance.cleanup`: `on_done(line=)` per repair; `stats`: `on_progress(listed=,
  headed=)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Subscriber:
    """Does nothing; subclass and override the hooks you need."""

    def on_queued(self, **kwargs: Any) -> None:
        """Work was planned (`size`: its bytes, when known)."""

    def on_progress(self, **kwargs: Any) -> None:
        """Work moved on (`bytes_transferred`: bytes since the last call)."""

    def on_done(self, **kwargs: Any) -> None:
        """A piece of work ended (its outcome or result)."""


class ByteCallback(Subscriber):
    """boto3's `Callback=`: a function told each number of bytes transferred."""

    def __init__(self, callback: Callable[[int], None]) -> None:
        self._callback = callback

    def on_progress(self, **kwargs: Any) -> None:
        count = kwargs.get("bytes_transferred")
        if isinstance(count, int):
            self._callback(count)

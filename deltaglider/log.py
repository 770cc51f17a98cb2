"""Structured logging: structlog key=value events delivered through the stdlib `logging` tree.

Owns: the one way modules get a logger, and how the CLI turns logging on. A library user gets
nothing printed unless their own logging configuration asks for `deltaglider` records; the CLI
sends them to stderr (never stdout, which carries user-facing output and `cp … -` data).
Must not log credentials: callers pass bucket, key and sizes, never clients or headers.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import structlog

_SECRET = re.compile(
    r"(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)=[^&\s]*"
    r"|(aws_secret_access_key|aws_session_token|secret|token|password)(['\"]?\s*[=:]\s*)\S+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Remove presigned-URL signatures and anything labelled as a secret or token."""
    return _SECRET.sub(
        lambda m: (m.group(1) or m.group(2)) + (m.group(3) or "=") + "REDACTED", text
    )


def _redact_event(_: object, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Last line of defence: no logged value carries a signature or a secret."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}


_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.stdlib.filter_by_level,
    _redact_event,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A key=value logger for module `name` (pass `__name__`)."""
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    return logger


def configure_cli_logging(debug: bool, level: str | None = None) -> None:
    """One event per line on stderr: deltaglider's events from `level` (DG_LOG_LEVEL; default
    WARNING), every one with --debug; the first says which deltaglider this is (at INFO).

    Other libraries (botocore, urllib3) stay at WARNING even with --debug: their debug output
    carries signed request headers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("deltaglider").setLevel("DEBUG" if debug else level or "WARNING")
    _announce()


def configure_library_logging(level: str) -> None:
    """The SDK's `create_client(log_level=…)`: deltaglider's own events from `level` on
    stderr (nothing else's), unless the application already gave them a handler."""
    logger = logging.getLogger("deltaglider")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    _announce()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record is emitted (a library's handler
    outlives the stream it was made with, e.g. under a test runner's capture)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _announce() -> None:
    from deltaglider import __version__

    get_logger("deltaglider").info("deltaglider", version=__version__)


@contextlib.contextmanager
def step(logger: Any, event: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log `event` at debug level when the block ends, with its duration in milliseconds and
    whatever the block adds to the yielded dict (`--debug` shows each step of a transfer)."""
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        yield extra
    finally:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        logger.debug(event, **fields, **extra, ms=elapsed)

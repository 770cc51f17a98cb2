"""Structured logging: structlog key=value events delivered through the stdlib `logging` tree.

Owns: the one way modules get a logger, and how the CLI turns logging on. A library user gets
nothing printed unless their own logging configuration asks for `deltaglider` records; the CLI
sends them to stderr (never stdout, which carries user-facing output and `cp … -` data).
Must not log credentials: callers pass bucket, key and sizes, never clients or headers.
"""

from __future__ import annotations

import logging
import sys

import structlog

_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.stdlib.filter_by_level,
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


def configure_cli_logging(debug: bool) -> None:
    """One event per line on stderr: deltaglider's warnings, or all its events with --debug.

    Other libraries (botocore, urllib3) stay at WARNING even with --debug: their debug output
    carries signed request headers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("deltaglider").setLevel(logging.DEBUG if debug else logging.WARNING)

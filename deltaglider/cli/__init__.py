"""The `deltaglider` command: `aws s3`'s commands and options over the deltaglider library.

A package by topic: `app` (the group, global options, errors, the console entry), `options`
(shared option groups), `output` (every line printed: records, text and JSON printers, the
status line), `transfers` (cp, mv, sync, rm, ls), `buckets` (mb, rb, config, presign,
purge, ACLs), `bulk` (verify, cleanup, prune, migrate) and `reports` (stats, estimate,
analyze). Each command is flags → one library call → print; what a command computes, the
SDK can compute too. Must not decide how anything is stored; click is imported here and
nowhere else.
"""

from deltaglider.cli import buckets, bulk, reports, transfers  # noqa: F401  (they register commands)
from deltaglider.cli.app import AppContext, hoist_global_options, main, new_engine, run
from deltaglider.cli.output import TransferProgress, human_size

__all__ = [
    "AppContext",
    "TransferProgress",
    "hoist_global_options",
    "human_size",
    "main",
    "new_engine",
    "run",
]

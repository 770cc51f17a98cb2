"""The CLI driven through click's CliRunner on a given store (an in-memory one in the unit
tests): what `test_cli.py` and `test_cli_golden.py` share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from click.testing import CliRunner, Result

from deltaglider.cli import AppContext, main
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.s3 import ObjectStore

Run = Callable[..., Result]


@contextlib.contextmanager
def cli_on(store: ObjectStore) -> Iterator[Run]:
    """`deltaglider ARGS…` through click's CliRunner, every engine on `store`; the engines
    are closed afterwards."""
    engines: list[Engine] = []

    def make_engine(settings: Settings) -> Engine:
        engines.append(Engine(settings, store=store))
        return engines[-1]

    def invoke(*args: str) -> Result:
        app = AppContext(Settings(cache_backend="memory"), make_engine)
        return CliRunner().invoke(main, list(args), obj=app, catch_exceptions=False)

    try:
        yield invoke
    finally:
        for engine in engines:
            engine.close()

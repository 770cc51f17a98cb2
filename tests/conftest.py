"""Fixtures every unit test gets, and the CLI driven on an in-memory store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from deltaglider.cli import AppContext, main
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.s3 import ObjectStore

Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def private_reference_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own persistent reference cache: nothing read from the user's ~/.cache,
    nothing carried from one test to the next."""
    folder = tmp_path_factory.mktemp("dg-cache")
    monkeypatch.setenv("DG_CACHE_DIR", str(folder / "deltaglider"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))


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

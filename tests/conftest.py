"""Fixtures every unit test gets."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_reference_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own persistent reference cache: nothing read from the user's ~/.cache,
    nothing carried from one test to the next."""
    folder = tmp_path_factory.mktemp("dg-cache")
    monkeypatch.setenv("DG_CACHE_DIR", str(folder / "deltaglider"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(folder / "config" / "cache.key"))

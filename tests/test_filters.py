"""`--exclude`/`--include` as aws applies them (in order, the last match wins), and
`--include` alone as deltaglider 6.x documented it ("only these"; a no-op in aws)."""

from __future__ import annotations

import pytest

from deltaglider.transfer import Filters

NAMES = ["app.zip", "build.log", "sub/app.whl", "sub/notes.log"]


@pytest.mark.parametrize(
    ("rules", "kept"),
    [
        ((), NAMES),
        ((("exclude", "*.log"),), ["app.zip", "sub/app.whl"]),
        ((("exclude", "*"), ("include", "*.log")), ["build.log", "sub/notes.log"]),
        ((("include", "*.log"), ("exclude", "sub/*")), ["app.zip", "build.log"]),
        ((("include", "*.zip"),), ["app.zip"]),  # 6.x: only these
        ((("include", "*.zip"), ("include", "*.whl")), ["app.zip", "sub/app.whl"]),
    ],
)
def test_filters(rules: tuple[tuple[str, str], ...], kept: list[str]) -> None:
    assert [name for name in NAMES if Filters(rules).included(name)] == kept

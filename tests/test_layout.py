"""The module boundaries the docstrings promise, read from the source: boto3 only in s3.py,
subprocesses only in xdelta.py, click only in cli.py, and the engine as the only door to the
store and the cache for the CLI, the SDK and the many-file runner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deltaglider"
MODULES = sorted(PACKAGE.glob("*.py"))


def imported(path: Path) -> set[str]:
    """Top-level package names and `deltaglider.x` modules a file imports (at runtime)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def uses(path: Path, package: str) -> bool:
    return any(name == package or name.startswith(f"{package}.") for name in imported(path))


@pytest.mark.parametrize(
    ("package", "owners"),
    [
        ("boto3", {"s3.py"}),
        ("botocore", {"s3.py", "client.py"}),  # the SDK raises botocore's ClientError
        ("subprocess", {"xdelta.py"}),
        ("click", {"cli.py"}),
        ("cryptography", {"cache.py"}),
    ],
)
def test_third_party_packages_stay_in_their_module(package: str, owners: set[str]) -> None:
    users = {path.name for path in MODULES if uses(path, package)}
    assert users <= owners, f"{package} imported by {sorted(users - owners)}"


@pytest.mark.parametrize("name", ["cli.py", "client.py", "transfer.py"])
def test_callers_reach_storage_only_through_the_engine(name: str) -> None:
    source = (PACKAGE / name).read_text()
    names = imported(PACKAGE / name)
    assert "deltaglider.s3.Store" not in names and "deltaglider.cache" not in names
    assert "deltaglider.references" not in names and "deltaglider.listing" not in names
    for reach in (".store.", "._store", ".cache.", "._cache", ".references."):
        assert reach not in source, f"{name} reaches through the engine with {reach!r}"


def test_internal_keys_and_metadata_names_live_in_metadata() -> None:
    """Every `.deltaglider/` key and `dg-` metadata name is spelled in metadata.py only."""
    for path in MODULES:
        if path.name == "metadata.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if any(c.isspace() for c in text):
                    continue  # prose (docstrings, messages), not a key or a name
                assert ".deltaglider/" not in text, f"{path.name} spells an internal key: {text!r}"
                assert not text.startswith(("dg-", "dg_")), (
                    f"{path.name} spells a metadata name: {text!r}"
                )

"""The series rule (docs/FORMAT.md "Series") on real artifact names as registries publish them:
consecutive versions share a series; different artifacts, platforms and packages do not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deltaglider.series import series_id, series_of

# Consecutive releases of one artifact, as published (PyPI wheels and sdists, npm tarballs,
# Maven jars) and as CI lays them out (version folders, nightly dates, build numbers, hashes).
SAME_SERIES = [
    ["botocore-1.35.0-py3-none-any.whl", "botocore-1.35.7-py3-none-any.whl"],
    ["boto3-1.35.0-py3-none-any.whl", "boto3-1.35.99-py3-none-any.whl"],
    ["six-1.15.0.tar.gz", "six-1.16.0.tar.gz", "six-1.17.0.tar.gz"],
    [
        "numpy-2.1.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ],
    ["Django-5.0.9-py3-none-any.whl", "Django-5.1rc1-py3-none-any.whl"],
    ["lodash-4.17.20.tgz", "lodash-4.17.21.tgz"],
    ["typescript-5.6.3.tgz", "typescript-5.7.0-beta.tgz", "typescript-5.7.0-dev.20241010.tgz"],
    ["commons-lang3-3.12.0.jar", "commons-lang3-3.14.0.jar"],
    ["guava-32.1.3-jre.jar", "guava-33.3.1-jre.jar"],
    ["app-1.4.0-SNAPSHOT.jar", "app-1.4.0.jar"],
    ["releases/1.2.4/app-linux-1.2.4.zip", "releases/1.2.5/app-linux-1.2.5.zip"],
    ["releases/v2.0.0/installer.iso", "releases/v2.0.1/installer.iso"],
    ["nightly/2026-11-22/app.zip", "nightly/2026-11-23/app.zip"],
    ["nightly/20261122T031500Z/app.zip", "nightly/20261123T031200Z/app.zip"],
    ["builds/1234/app.tar.gz", "builds/1240/app.tar.gz"],
    ["builds/main/3f9c2ab/app.zip", "builds/main/77e01d4/app.zip"],
    [
        "torch-2.4.0+cpu-cp311-cp311-linux_x86_64.whl",
        "torch-2.5.1+cpu-cp311-cp311-linux_x86_64.whl",
    ],
]

DIFFERENT_SERIES = [
    ("releases/1.2.5/app-linux-1.2.5.zip", "releases/1.2.5/app-win-1.2.5.zip"),
    ("botocore-1.35.0-py3-none-any.whl", "boto3-1.35.0-py3-none-any.whl"),
    ("six-1.16.0.tar.gz", "six-1.16.0-py2.py3-none-any.whl"),
    ("builds/main/1/app.zip", "builds/feature-x/1/app.zip"),
    ("commons-lang3-3.12.0.jar", "commons-text-1.12.0.jar"),
    ("guava-33.3.1-jre.jar", "guava-33.3.1-android.jar"),
    ("app-b.zip", "app-c.zip"),
]


@pytest.mark.parametrize("names", SAME_SERIES, ids=lambda names: names[0])
def test_versions_of_one_artifact_share_a_series(names: list[str]) -> None:
    assert len({series_of(name) for name in names}) == 1, [series_of(n) for n in names]


@pytest.mark.parametrize(("one", "other"), DIFFERENT_SERIES)
def test_different_artifacts_are_different_series(one: str, other: str) -> None:
    assert series_of(one) != series_of(other)


def test_series_names_read_as_the_key_with_versions_marked() -> None:
    assert series_of("releases/1.2.4/app-linux-1.2.4.zip") == "releases/#/app-linux-#.zip"
    assert series_of("botocore-1.35.0-py3-none-any.whl") == "botocore-#-py3-none-any.whl"
    assert series_of("nightly/2026-11-23/app.zip") == "nightly/#/app.zip"
    assert series_of("app.zip") == "app.zip"


@given(st.text(alphabet="ab.-_/019xz", max_size=40))
def test_series_is_stable_and_its_id_key_safe(key: str) -> None:
    assert series_of(series_of(key)) == series_of(key)
    ident = series_id(series_of(key))
    assert len(ident) == 24 and all(c in "0123456789abcdef" for c in ident)

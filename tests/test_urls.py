"""S3 URL parsing and formatting, and `aws s3 cp` destination semantics."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deltaglider.errors import UsageError
from deltaglider.urls import S3Url, destination_key, parent_prefix

buckets = st.from_regex(r"[a-z0-9][a-z0-9.-]{2,40}", fullmatch=True)
segments = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=20,
)
keys = st.lists(segments, max_size=5).map("/".join)


@given(bucket=buckets, key=keys, folder=st.booleans())
def test_parse_inverts_format(bucket: str, key: str, folder: bool) -> None:
    if folder and key:
        key += "/"
    url = S3Url(bucket, key)
    assert S3Url.parse(str(url)) == url


@pytest.mark.parametrize(
    "text",
    [
        "s3:/b",
        "s3://",
        "s3:///key",
        "s3://b//k",
        "http://b/k",
        "s3://my bucket/k",
        "s3://bucket/a\x00b",
        "s3://bucket/a\nb",
        "s3://bucket/" + "k" * 1025,
        "bucket/key",
        "",
    ],
)
def test_malformed_urls_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(UsageError):
        S3Url.parse(text)


@pytest.mark.parametrize(
    ("dest", "name", "key"),
    [
        ("s3://b/releases/1.2.3/", "app.zip", "releases/1.2.3/app.zip"),
        ("s3://b/releases/1.2.3/renamed.zip", "app.zip", "releases/1.2.3/renamed.zip"),
        ("s3://b", "app.zip", "app.zip"),
        ("s3://b/", "app.zip", "app.zip"),
        ("s3://b/x", "app.zip", "x"),
    ],
)
def test_destination_key_follows_aws_cp(dest: str, name: str, key: str) -> None:
    assert destination_key(S3Url.parse(dest), name) == key


def test_parent_prefix_is_the_delta_space() -> None:
    assert parent_prefix("releases/1.2.3/app.zip") == "releases/1.2.3"
    assert parent_prefix("app.zip") == ""


@pytest.mark.parametrize(
    "relative",
    ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a\x00b", "a//b", "./x", "a/./b", ""],
)
def test_download_paths_outside_the_destination_are_refused(tmp_path, relative: str) -> None:
    from deltaglider.transfer import safe_local_path

    with pytest.raises(UsageError, match="refusing"):
        safe_local_path(tmp_path, relative)


def test_symlink_in_destination_pointing_out_is_refused(tmp_path) -> None:
    from deltaglider.transfer import safe_local_path

    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "out").symlink_to(tmp_path)
    assert safe_local_path(tmp_path / "dest", "ok/file.txt") == tmp_path / "dest" / "ok/file.txt"
    with pytest.raises(UsageError, match="symlink"):
        safe_local_path(tmp_path / "dest", "out/evil.txt")

"""FORMAT "Metadata" and "Reading: accept every spelling", pinned."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deltaglider.errors import IntegrityError, UsageError
from deltaglider.metadata import (
    BucketSettings,
    DeltaMeta,
    DirectMeta,
    ObjectKind,
    ReferenceMeta,
    check_metadata,
    classify,
    decode_name,
    encode_name,
    lookup,
    parse_time,
    trash_meta,
    trashed_reference_key,
    untrashed_meta,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
names = st.text(min_size=1, max_size=120)
times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)
)
shas = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
sizes = st.integers(min_value=0, max_value=2**50)


@given(name=st.text(max_size=300))
def test_name_encoding_roundtrips_any_unicode_and_is_ascii(name: str) -> None:
    encoded = encode_name(name)
    assert encoded.isascii()
    assert decode_name(encoded) == name


@given(name=names, sha=shas, created=times, ref_key=st.text(min_size=1, max_size=300))
def test_a_trash_copy_names_its_reference_and_gives_back_its_metadata(
    name: str, sha: str, created: datetime, ref_key: str
) -> None:
    reference = ReferenceMeta(name, sha, created).to_dict()
    copy = trash_meta(reference, ref_key)
    assert untrashed_meta(copy) == reference
    assert trashed_reference_key(copy) in (ref_key, None)
    assert copy == check_metadata(copy, "trash")  # S3 takes it
    if len(encode_name(ref_key)) < 1000:
        assert trashed_reference_key(copy) == ref_key
    assert trashed_reference_key(reference) is None  # a copy an older run made


def test_ascii_names_are_written_unchanged() -> None:
    assert encode_name("app-1.2.3.zip") == "app-1.2.3.zip"


@given(
    name=names,
    sha=shas,
    size=sizes,
    created=times,
    ref_key=names,
    ref_sha=shas,
    delta_size=sizes,
    note=st.sampled_from([None, "zero-diff (reference identical)"]),
)
def test_delta_meta_roundtrips(
    name: str,
    sha: str,
    size: int,
    created: datetime,
    ref_key: str,
    ref_sha: str,
    delta_size: int,
    note: str | None,
) -> None:
    meta = DeltaMeta(
        name, sha, size, created, ref_key, ref_sha, delta_size, "xdelta3 -e", note, "xdelta3-D"
    )
    assert DeltaMeta.from_dict(meta.to_dict(), "x.delta") == meta


@given(name=names, sha=shas, size=sizes, created=times)
def test_direct_and_reference_meta_roundtrip(
    name: str, sha: str, size: int, created: datetime
) -> None:
    direct = DirectMeta(name, sha, size, created)
    assert DirectMeta.from_dict(direct.to_dict(), "k") == direct
    reference = ReferenceMeta(name, sha, created)
    assert ReferenceMeta.from_dict(reference.to_dict(), "reference.bin") == reference


def test_written_keys_are_exactly_formats() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ReferenceMeta("a.zip", SHA_A, created).to_dict() == {
        "dg-tool": "deltaglider/7.0.0",
        "dg-source-name": "a.zip",
        "dg-file-sha256": SHA_A,
        "dg-created-at": "2026-01-02T03:04:05Z",
        "dg-note": "reference",
    }
    assert set(
        DeltaMeta("a.zip", SHA_A, 5, created, "p/reference.bin", SHA_B, 3, "cmd").to_dict()
    ) == {
        "dg-tool",
        "dg-original-name",
        "dg-file-sha256",
        "dg-file-size",
        "dg-created-at",
        "dg-ref-key",
        "dg-ref-sha256",
        "dg-delta-size",
        "dg-delta-cmd",
    }
    assert DirectMeta("a.txt", SHA_A, 5, created).to_dict()["dg-compression"] == "none"


@pytest.mark.parametrize(
    "meta",
    [
        {"dg-file-sha256": SHA_A},  # 6.x
        {"dg_file_sha256": SHA_A},
        {"file_sha256": SHA_A},  # 5.x
        {"file-sha256": SHA_A},
        {"dg-file-sha256": "", "file_sha256": SHA_A},  # first non-empty wins
    ],
)
def test_every_spelling_is_read(meta: dict[str, str]) -> None:
    assert lookup(meta, "file_sha256") == SHA_A


def test_legacy_underscore_delta_and_rust_proxy_ref_path() -> None:
    legacy = {
        "original_name": "a.zip",
        "file_sha256": SHA_A,
        "file_size": "10",
        "created_at": "2024-05-01T10:00:00.123456",
        "ref_key": "r/reference.bin",
        "ref_sha256": SHA_B,
        "delta_size": "4",
        "delta_cmd": "xdelta3 -e -9",
    }
    meta = DeltaMeta.from_dict(legacy, "r/a.zip.delta")
    assert (meta.ref_key, meta.file_size, meta.codec) == ("r/reference.bin", 10, None)
    rust = {
        "dg-original-name": "a.zip",
        "dg-file-sha256": SHA_A,
        "dg-file-size": "10",
        "dg-ref-path": "reference.bin",
        "dg-ref-sha256": SHA_B,
        "dg-note": "delta",
        "dg-md5": "x",
        "user-owner": "ci",
    }
    assert DeltaMeta.from_dict(rust, "deep/space/a.zip.delta").ref_key == "deep/space/reference.bin"


def test_created_at_with_and_without_z() -> None:
    assert parse_time("2026-01-02T03:04:05Z") == parse_time("2026-01-02T03:04:05")
    assert parse_time("2026-01-02T05:04:05+02:00") == parse_time("2026-01-02T03:04:05")


@pytest.mark.parametrize(
    ("key", "meta", "kind"),
    [
        ("a.zip", {}, ObjectKind.PLAIN),
        ("a.zip", {"dg-file-sha256": SHA_A, "dg-compression": "none"}, ObjectKind.DIRECT),
        ("a.zip", {"file_sha256": SHA_A, "compression": "none"}, ObjectKind.DIRECT),
        ("a.zip.delta", {"dg-file-sha256": SHA_A}, ObjectKind.DELTA),
        (
            "p/reference.bin",
            {"dg-file-sha256": SHA_A, "dg-note": "reference"},
            ObjectKind.REFERENCE,
        ),
    ],
)
def test_classify_follows_format(key: str, meta: dict[str, str], kind: ObjectKind) -> None:
    assert classify(key, meta) is kind


def test_corrupt_metadata_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError, match="not a SHA-256"):
        DirectMeta.from_dict({"dg-file-sha256": "zz", "dg-file-size": "1"}, "k")
    with pytest.raises(IntegrityError, match="not a number"):
        DirectMeta.from_dict({"dg-file-sha256": SHA_A, "dg-file-size": "ten"}, "k")
    with pytest.raises(IntegrityError, match="names no reference"):
        DeltaMeta.from_dict(
            {"dg-file-sha256": SHA_A, "dg-file-size": "1", "dg-ref-sha256": SHA_B}, "k.delta"
        )


def test_metadata_limits() -> None:
    with pytest.raises(UsageError, match="2048"):
        check_metadata({"dg-x": "v" * 2100}, "k")
    with pytest.raises(UsageError, match="not ASCII"):
        check_metadata({"dg-x": "é"}, "k")
    long_name = "é" * 200 + ".zip"
    meta = DeltaMeta(
        long_name, SHA_A, 1, datetime.now(UTC), "r/reference.bin", SHA_B, 1, "c"
    ).to_dict()
    assert check_metadata(meta, "k") == meta


@given(
    references=st.sampled_from(["shared", "folder"]),
    codec=st.sampled_from([None, "xdelta3", "zstd"]),
    conditional=st.sampled_from([None, True, False]),
)
def test_bucket_settings_roundtrip_through_json(
    references: str, codec: str | None, conditional: bool | None
) -> None:
    settings = BucketSettings(references, codec=codec, conditional_writes=conditional)
    assert BucketSettings.from_json(settings.to_json(), "k") == settings


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b'{"codec": "lzma"}', "codec must be"),
        (b'{"conditional_writes": "yes"}', "conditional_writes must be"),
        (b'{"version": 2}', "newer than this deltaglider"),
        (b"[]", "not a JSON object"),
    ],
)
def test_bad_bucket_settings_are_refused_by_name(document: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        BucketSettings.from_json(document, "s3://b/.deltaglider/config.json")
    older = BucketSettings.from_json(b'{"version": 1, "references": "folder", "x": 1}', "k")
    assert older.codec is None and older.conditional_writes is None  # unknown keys ignored

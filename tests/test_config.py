"""Environment settings are validated with one clear message each."""

from pathlib import Path

import pytest

from deltaglider.config import MIB, Settings
from deltaglider.errors import UsageError


def test_defaults_and_overrides() -> None:
    settings = Settings.from_env({"DG_MAX_RATIO": "0.3", "DG_CODEC_MEMORY_MB": "256"})
    assert settings.max_ratio == 0.3
    assert settings.codec_memory_bytes == 256 * MIB
    assert settings.with_overrides(max_ratio=0.9, region=None).max_ratio == 0.9


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "nan", "-0.1"])
def test_max_ratio_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="DG_MAX_RATIO"):
        Settings.from_env({"DG_MAX_RATIO": value})


def test_max_ratio_zero_means_never_a_delta_as_6x_documents() -> None:
    assert Settings.from_env({"DG_MAX_RATIO": "0"}).max_ratio == 0.0
    assert Settings().with_overrides(max_ratio=0.0).max_ratio == 0.0


@pytest.mark.parametrize(("value", "level"), [("debug", "DEBUG"), ("INFO", "INFO"), ("", None)])
def test_log_level_is_read_in_any_case(value: str, level: str | None) -> None:
    assert Settings.from_env({"DG_LOG_LEVEL": value}).log_level == level


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(UsageError, match="DG_LOG_LEVEL"):
        Settings.from_env({"DG_LOG_LEVEL": "LOUD"})


def test_unknown_cache_backend_is_refused() -> None:
    with pytest.raises(UsageError, match="DG_CACHE_BACKEND"):
        Settings.from_env({"DG_CACHE_BACKEND": "redis"})


def test_renewal_follows_the_max_ratio_unless_set() -> None:
    assert Settings.from_env({}).renewal == 0.5
    assert Settings.from_env({"DG_MAX_RATIO": "0.8"}).renewal == 0.8
    assert Settings.from_env({"DG_MAX_RATIO": "0.8", "DG_RENEW_RATIO": "0.25"}).renewal == 0.25
    with pytest.raises(UsageError, match="DG_RENEW_RATIO"):
        Settings.from_env({"DG_RENEW_RATIO": "1.5"})


def test_a_customer_key_is_read_as_aws_s3_reads_it_and_never_shown(tmp_path: Path) -> None:
    key = bytes(range(32))
    (tmp_path / "key.bin").write_bytes(key)
    (tmp_path / "key.txt").write_text("k" * 32 + "\n")
    by_file = Settings.from_env({"DG_SSE_C_KEY": f"fileb://{tmp_path / 'key.bin'}"})
    assert by_file.customer_key_args == {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    assert Settings().with_overrides(sse_customer_key=f"file://{tmp_path / 'key.txt'}") == (
        Settings(sse_customer_key=b"k" * 32)
    )
    assert Settings().customer_key_args == {}
    secret = Settings(sse_customer_key=b"s" * 32, cache_encryption_key="c" * 44)
    assert "s" * 32 not in repr(secret) and "c" * 44 not in repr(secret)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("short", "32-byte AES-256 key, not 5 bytes"),
        (b"x" * 31, "not 31 bytes"),
        ("fileb:///nonexistent/k.bin", "cannot read /nonexistent/k.bin"),
    ],
)
def test_a_bad_customer_key_is_refused_without_showing_it(given: str | bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        Settings().with_overrides(sse_customer_key=given)
    assert "x" * 31 not in str(raised.value) and "short" not in str(raised.value)


def test_sse_and_a_customer_key_cannot_be_combined() -> None:
    with pytest.raises(UsageError, match="cannot be combined"):
        Settings(server_side_encryption="AES256").with_overrides(sse_customer_key=b"k" * 32)

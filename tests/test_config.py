"""Environment settings are validated with one clear message each."""

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

"""`deltaglider stats` and `client.get_bucket_stats` against ground truth: logical bytes from
the files uploaded, stored bytes from a raw listing, on a bucket mixing folder references,
shared references, direct files, plain objects and objects written by deltaglider 6.2.0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import stored_keys
from prometheus_client.parser import text_string_to_metric_families
from test_old_tool import old_deltaglider, run_old  # noqa: F401 (a fixture)

import deltaglider
from deltaglider.series import series_id, series_of

STATS_PREFIX = ".deltaglider/stats/"


@pytest.fixture
def mixed_bucket(
    cli: Any,
    raw: Any,
    bucket: str,
    s3_server: Any,
    tmp_path: Path,
    wheel_series: list[Path],
    sdist_series: list[Path],
    old_deltaglider: Path,  # noqa: F811
) -> dict[str, int]:
    """Fill `bucket` every way; returns the ground truth: {logical key: file size}."""
    truth: dict[str, int] = {}
    for version, wheel in enumerate(wheel_series[:4]):
        key = f"folder-layout/1.{version}/{wheel.name}"
        assert (
            cli("cp", "--references", "folder", str(wheel), f"s3://{bucket}/{key}").exit_code == 0
        )
        truth[key] = wheel.stat().st_size
    for version, wheel in enumerate(wheel_series[4:]):
        key = f"shared-layout/2.{version}/{wheel.name}"
        assert (
            cli("cp", "--references", "shared", str(wheel), f"s3://{bucket}/{key}").exit_code == 0
        )
        truth[key] = wheel.stat().st_size
    for sdist in sdist_series[:3]:
        key = f"sdists/{sdist.name}"
        assert cli("cp", str(sdist), f"s3://{bucket}/{key}").exit_code == 0
        truth[key] = sdist.stat().st_size
    notes = tmp_path / "NOTES.txt"
    notes.write_text("release notes\n" * 50)
    assert cli("cp", str(notes), f"s3://{bucket}/docs/NOTES.txt").exit_code == 0
    truth["docs/NOTES.txt"] = notes.stat().st_size
    raw.put_object(Bucket=bucket, Key="plain/data.bin", Body=b"x" * 5000)
    truth["plain/data.bin"] = 5000
    for version, wheel in enumerate(wheel_series[:2]):
        written = run_old(
            old_deltaglider, s3_server, "cp", str(wheel), f"s3://{bucket}/old/{version}/"
        )
        assert written.returncode == 0, written.stderr
        truth[f"old/{version}/{wheel.name}"] = wheel.stat().st_size
    return truth


def raw_totals(raw: Any, bucket: str, prefix: str = "") -> tuple[int, int]:
    keys = {
        k: v for k, v in stored_keys(raw, bucket, prefix).items() if not k.startswith(STATS_PREFIX)
    }
    return len(keys), sum(keys.values())


def stats_json(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("stats", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_detailed_stats_are_exact_and_cached(
    cli: Any, raw: Any, bucket: str, mixed_bucket: dict[str, int]
) -> None:
    objects, stored = raw_totals(raw, bucket)
    detailed = stats_json(cli, f"s3://{bucket}", "--detailed")
    assert detailed["logical_bytes"] == sum(mixed_bucket.values())
    assert detailed["files"] == len(mixed_bucket)
    assert detailed["stored_bytes"] == stored
    assert detailed["objects"] == objects
    assert detailed["logical_estimated"] is False
    assert detailed["from_cache"] is False and detailed["heads"] == detailed["deltas"] > 0
    assert detailed["references"] >= 2 and detailed["shared_references"] >= 1
    kinds = (
        "delta_bytes",
        "direct_bytes",
        "reference_bytes",
        "shared_reference_bytes",
        "internal_bytes",
    )
    assert sum(detailed[kind] for kind in kinds) == stored

    again = stats_json(cli, f"s3://{bucket}", "--detailed")
    assert again["from_cache"] is True and again["heads"] == 0
    assert {k: v for k, v in again.items() if k not in ("from_cache", "heads", "generated_at")} == {
        k: v for k, v in detailed.items() if k not in ("from_cache", "heads", "generated_at")
    }

    # A changed bucket invalidates the cache; a corrupt cache object is ignored, then replaced.
    raw.put_object(Bucket=bucket, Key="plain/more.bin", Body=b"y" * 10)
    changed = stats_json(cli, f"s3://{bucket}", "--detailed")
    assert (
        changed["from_cache"] is False
        and changed["logical_bytes"] == detailed["logical_bytes"] + 10
    )
    for key in stored_keys(raw, bucket, STATS_PREFIX):
        raw.put_object(Bucket=bucket, Key=key, Body=b"{not json")
    recovered = stats_json(cli, f"s3://{bucket}", "--detailed")
    assert (
        recovered["logical_bytes"] == changed["logical_bytes"] and recovered["from_cache"] is False
    )
    assert stats_json(cli, f"s3://{bucket}", "--detailed")["from_cache"] is True


def test_quick_and_sampled_are_marked_estimates_within_five_percent(
    cli: Any, raw: Any, bucket: str, mixed_bucket: dict[str, int]
) -> None:
    truth = sum(mixed_bucket.values())
    _, stored = raw_totals(raw, bucket)
    for mode in ([], ["--sampled"]):
        result = stats_json(cli, f"s3://{bucket}", *mode)
        assert result["logical_estimated"] is True and result["estimate_basis"]
        assert result["stored_bytes"] == stored
        assert abs(result["logical_bytes"] - truth) <= 0.05 * truth, (
            mode,
            result["logical_bytes"],
            truth,
        )
    text = cli("stats", f"s3://{bucket}")
    assert "* estimated:" in text.stdout


def test_prefix_stats_count_the_shared_references_its_deltas_use(
    cli: Any, raw: Any, bucket: str, mixed_bucket: dict[str, int]
) -> None:
    result = stats_json(cli, f"s3://{bucket}/shared-layout/", "--detailed", "--by", "folder")
    under = {k: v for k, v in mixed_bucket.items() if k.startswith("shared-layout/")}
    assert result["logical_bytes"] == sum(under.values())
    series_ids = {series_id(series_of(key)) for key in under}
    refs = {
        k: v
        for k, v in stored_keys(raw, bucket, ".deltaglider/refs/").items()
        if k.endswith("/reference.bin") and k.split("/")[2] in series_ids
    }
    assert refs
    _, stored_under = raw_totals(raw, bucket, "shared-layout/")
    assert result["stored_bytes"] == stored_under + sum(refs.values())
    assert {g["name"] for g in result["groups"]} == {str(Path(k).parent) for k in under}
    # The folder of the series' first version holds only the reference's own self-delta: no grade.
    grades = sorted(g["grade"] for g in result["groups"])
    assert (
        grades[0] == "-" and set(grades[1:]) <= {"excellent", "good"} and len(grades) == len(under)
    )


def test_prometheus_output_parses_and_agrees(
    cli: Any, bucket: str, mixed_bucket: dict[str, int]
) -> None:
    result = cli("stats", f"s3://{bucket}", "--detailed", "--format", "prometheus")
    assert result.exit_code == 0, result.output
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(result.stdout)
        for sample in family.samples
    }
    where = (("bucket", bucket), ("prefix", ""))
    assert samples[("deltaglider_logical_bytes", where)] == sum(mixed_bucket.values())
    series = {labels for name, labels in samples if name == "deltaglider_group_files"}
    assert any(("series", "sdists/six-#.tar.gz") in labels for labels in series)


def test_sdk_get_bucket_stats_matches_the_cli(
    cli: Any, bucket: str, s3_server: Any, mixed_bucket: dict[str, int]
) -> None:
    client = deltaglider.create_client(endpoint_url=s3_server.endpoint)
    result = client.get_bucket_stats(bucket, mode="detailed")
    assert isinstance(result, deltaglider.BucketStats)
    assert result.logical_bytes == sum(mixed_bucket.values())
    assert result.files == len(mixed_bucket)
    groups = {group.name: group for group in result.groups}
    # Compressed sdists: every version needed a new shared reference (renewal), so poor.
    assert groups["sdists/six-#.tar.gz"].grade is deltaglider.stats.Grade.POOR
    assert "--no-delta" in groups["sdists/six-#.tar.gz"].advice
    assert groups["shared-layout/#/boto3-#-py3-none-any.whl"].grade.value in ("excellent", "good")
    with pytest.raises(ValueError, match="mode must be quick, sampled or detailed"):
        client.get_bucket_stats(bucket, mode="fast")
    client.close()

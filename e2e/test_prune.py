"""`deltaglider prune`: old versions go per series (or folder), the newest N restore exactly,
references go only when no remaining delta needs them, and --dryrun predicts the bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import assert_bucket_consistent, sha256, stored_keys


def stored_total(raw: Any, bucket: str) -> int:
    return sum(
        v for k, v in stored_keys(raw, bucket).items() if not k.startswith(".deltaglider/stats/")
    )


def test_keep_last_three_per_series(
    cli: Any, raw: Any, bucket: str, engine: Any, wheel_series: list[Path], tmp_path: Path
) -> None:
    versions = wheel_series[:6]
    for number, wheel in enumerate(versions):
        assert (
            cli(
                "cp", "--references", "shared", str(wheel), f"s3://{bucket}/app/{number}/"
            ).exit_code
            == 0
        )
        assert (
            cli(
                "cp", "--references", "folder", str(wheel), f"s3://{bucket}/legacy/{number}/"
            ).exit_code
            == 0
        )
    before = stored_keys(raw, bucket)

    dry = cli("prune", f"s3://{bucket}/", "--keep-last", "3", "--dryrun")
    assert dry.exit_code == 0, dry.output
    assert stored_keys(raw, bucket) == before
    assert dry.stdout.count("(dryrun) delete: ") == 6 + 3  # 6 versions, 3 folder references
    predicted = dry.stdout.strip().splitlines()[-1]

    done = cli("prune", f"s3://{bucket}/", "--keep-last", "3")
    assert done.exit_code == 0, done.output
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("prune: 6 versions deleted, 6 kept, 3 references removed; ")
    assert predicted == summary.replace("deleted", "would be deleted").replace(
        "removed;", "would be removed;"
    ).replace("freed", "would be freed")
    from deltaglider.cli import human_size

    freed = sum(before.values()) - stored_total(raw, bucket)
    assert summary.endswith(f"; {human_size(freed)} freed")

    for number, wheel in enumerate(versions):
        for space in ("app", "legacy"):
            url = f"s3://{bucket}/{space}/{number}/{wheel.name}"
            got = cli("cp", url, str(tmp_path / f"{space}-{number}.whl"))
            if number < 3:
                assert got.exit_code == 1  # pruned
            else:
                assert got.exit_code == 0, got.output
                assert sha256(tmp_path / f"{space}-{number}.whl") == sha256(wheel)
    assert not any(k.startswith(f"legacy/{n}/") for k in stored_keys(raw, bucket) for n in range(3))
    assert assert_bucket_consistent(engine, raw, bucket) == 6


def test_freed_bytes_are_exact_and_age_guards_fresh_versions(
    cli: Any, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    for number, wheel in enumerate(wheel_series[:5]):
        assert (
            cli("cp", "--references", "folder", str(wheel), f"s3://{bucket}/v/{number}/").exit_code
            == 0
        )
    fresh = cli("prune", f"s3://{bucket}/v/", "--keep-last", "1", "--older-than", "1d")
    assert fresh.exit_code == 0
    assert (
        fresh.stdout.strip()
        == "prune: 0 versions deleted, 5 kept, 0 references removed; 0 Bytes freed"
    )

    before = stored_total(raw, bucket)
    result = cli("prune", f"s3://{bucket}/v/", "--keep-last", "2", "--by", "folder")
    assert result.exit_code == 0, result.output
    # --by folder: every version folder is its own group of one, so nothing goes.
    assert result.stdout.strip().endswith("0 Bytes freed") and stored_total(raw, bucket) == before

    result = cli("prune", f"s3://{bucket}/v/", "--keep-last", "2")
    freed_line = result.stdout.strip().splitlines()[-1]
    after = stored_total(raw, bucket)
    from deltaglider.cli import human_size

    assert freed_line.endswith(f"{human_size(before - after)} freed")

    assert cli("prune", f"s3://{bucket}/v/").exit_code == 2
    bad_age = cli("prune", f"s3://{bucket}/v/", "--older-than", "soon")
    assert bad_age.exit_code == 2 and "is not an age" in bad_age.stderr

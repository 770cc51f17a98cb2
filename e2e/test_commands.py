"""`estimate`, `presign`, `purge` and the bucket-ACL passthroughs, through the CLI against a
real server."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

from helpers import sha256, stored_keys


def test_estimate_says_what_cp_would_store_and_writes_nothing(
    cli: Any, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    first, second, third = wheel_series[:3]
    assert cli("cp", str(first), f"s3://{bucket}/1.0/").exit_code == 0
    before = stored_keys(raw, bucket)

    result = cli("estimate", str(second), str(third), f"s3://{bucket}/1.1/", "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["destination"] for r in records] == [
        f"s3://{bucket}/1.1/{w.name}" for w in (second, third)
    ]
    assert all(
        r["stored_as"] == "delta" and r["stored_size"] < r["file_size"] // 5 for r in records
    )
    assert stored_keys(raw, bucket) == before

    uploaded = cli("cp", str(second), f"s3://{bucket}/1.1/", "--json")
    assert json.loads(uploaded.stdout)["stored_size"] == records[0]["stored_size"]

    text = cli("estimate", str(third), f"s3://{bucket}/1.2/")
    assert text.stdout.startswith(f"estimate: {third} to s3://{bucket}/1.2/{third.name} (delta: ")

    missing = cli("estimate", str(tmp_path / "nope.zip"), f"s3://{bucket}/x/")
    assert (
        missing.exit_code == 2
        and missing.stderr.strip() == f"deltaglider: error: {tmp_path / 'nope.zip'}: not a file"
    )
    no_destination = cli("estimate", str(third))
    assert no_destination.exit_code == 2


def test_presign_serves_a_delta_whole_and_purge_keeps_unexpired_copies(
    cli: Any, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    first, second = wheel_series[:2]
    assert cli("cp", str(first), f"s3://{bucket}/1.0/").exit_code == 0
    assert cli("cp", str(second), f"s3://{bucket}/1.1/").exit_code == 0
    assert f"1.1/{second.name}.delta" in stored_keys(raw, bucket)

    presigned = cli("presign", f"s3://{bucket}/1.1/{second.name}", "--expires-in", "600")
    assert presigned.exit_code == 0, presigned.output
    url = presigned.stdout.strip()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert hashlib.sha256(response.read()).hexdigest() == sha256(second)

    purged = cli("purge", f"s3://{bucket}")
    assert purged.exit_code == 0
    assert purged.stdout.strip().splitlines()[-1] == "purge: 0 expired copies deleted, 1 kept"

    for bad in (f"s3://{bucket}", f"s3://{bucket}/1.1/"):
        refused = cli("presign", bad)
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    missing = cli("presign", f"s3://{bucket}/1.1/missing.zip")
    assert missing.exit_code == 1 and missing.stderr.startswith("deltaglider: error:")


def test_bucket_acl_passthrough(cli: Any, bucket: str, s3_server: Any) -> None:
    shown = cli("get-bucket-acl", "--bucket", bucket)
    assert shown.exit_code == 0, shown.output
    assert "Grants" in json.loads(shown.stdout)

    result = cli("put-bucket-acl", "--bucket", bucket, "--acl", "public-read")
    if s3_server.kind == "moto":
        assert result.exit_code == 0, result.output
        grants = json.loads(cli("get-bucket-acl", "--bucket", bucket).stdout)["Grants"]
        assert any(
            g["Grantee"].get("URI") == "http://acs.amazonaws.com/groups/global/AllUsers"
            and g["Permission"] == "READ"
            for g in grants
        )
    else:  # a server may refuse canned ACLs: one line, non-zero, nothing else
        assert result.exit_code == 0 or result.stderr.count("\n") == 1

    assert cli("put-bucket-acl", "--bucket", bucket).exit_code == 2
    bad = cli("put-bucket-acl", "--bucket", bucket, "--access-control-policy", "{nope")
    assert bad.exit_code == 2 and "is not valid JSON" in bad.stderr


def test_analyze_predicts_what_uploading_the_folder_then_stores(
    cli: Any,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    sdist_series: list[Path],
    tmp_path: Path,
) -> None:
    releases = tmp_path / "releases"
    for artifact in [*wheel_series, *sdist_series]:
        version = artifact.name.split("-")[1].removesuffix(".tar.gz")
        (releases / version).mkdir(parents=True, exist_ok=True)
        (releases / version / artifact.name).write_bytes(artifact.read_bytes())
    (releases / "README.txt").write_text("notes\n" * 100)

    predicted = cli("analyze", str(releases), "--json")
    assert predicted.exit_code == 0, predicted.output
    *files, totals = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(files) == len(wheel_series) + len(sdist_series) + 1
    logical = sum(p.stat().st_size for p in releases.rglob("*") if p.is_file())
    assert totals["logical_bytes"] == logical and totals["logical_estimated"] is False

    uploaded = cli("sync", "--jobs", "1", str(releases), f"s3://{bucket}/")
    assert uploaded.exit_code == 0, uploaded.output
    stored = sum(
        v for k, v in stored_keys(raw, bucket).items() if not k.startswith(".deltaglider/stats/")
    )
    assert abs(totals["stored_bytes"] - stored) <= 0.02 * stored, (totals["stored_bytes"], stored)
    assert totals["stored_bytes"] < logical / 3

    text = cli("analyze", str(releases))
    assert f"{releases}: {len(files)} files in " in text.stdout
    assert "boto3-#-py3-none-any.whl" in text.stdout
    assert cli("analyze", str(tmp_path / "missing")).exit_code == 2

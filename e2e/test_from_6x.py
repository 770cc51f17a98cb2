"""What deltaglider 6.x's documentation tells its users to write, re-typed (README, docs/sdk/
api.md, examples.md, getting-started.md, aws-s3-cli-compatibility.md, DG_MAX_RATIO.md,
CACHE_MANAGEMENT.md, STATS_CACHING.md, DOCKER.md of the 6.2.0 sdist), run against us on both
servers: every CLI line and SDK snippet must work unchanged, with the effect 6.x documents.
Where 6.2.0 itself does what its docs say, the same line is run with 6.2.0 on the same server
and the effects compared. What we do differently on purpose is the README's "From 6.x" table.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from artifacts import venv_tool
from local_s3 import LocalS3

import deltaglider

OLD_VERSION = "6.2.0"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def artifacts_dir(tmp_path: Path, wheel_series: list[Path]) -> Path:
    """The docs' file names with real bytes: three versions of one app, a log, a notes file."""
    folder = tmp_path / "work"
    (folder / "dist").mkdir(parents=True)
    for number, wheel in enumerate(wheel_series[:3]):
        (folder / f"my-app-v1.{number}.0.zip").write_bytes(wheel.read_bytes())
    (folder / "dist" / "my-app-v1.0.0.zip").write_bytes(wheel_series[0].read_bytes())
    (folder / "dist" / "build.log").write_text("a log\n")
    (folder / "file.zip").write_bytes(wheel_series[3].read_bytes())
    return folder


def ours(server: LocalS3, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`deltaglider ARGS` as a 6.x user runs it: the endpoint in AWS_ENDPOINT_URL."""
    environment = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint, **env}
    return subprocess.run(
        [sys.executable, "-m", "deltaglider", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def theirs(
    binary: Path, server: LocalS3, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint}
    environment.update(DG_SUPPRESS_DEPRECATION="1", DG_METRICS="noop")
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(binary), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def old_deltaglider() -> Path:
    return venv_tool(f"deltaglider-{OLD_VERSION}", f"deltaglider=={OLD_VERSION}", "deltaglider")


# ------------------------------------------------------------------------- CLI lines


def test_readme_quick_start_and_cli_reference_lines(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path, raw: Any
) -> None:
    """README's Quick Start and CLI Reference, line by line (bucket `releases` is ours)."""
    run = lambda *args: ours(s3_server, artifacts_dir, *args)  # noqa: E731
    b = bucket
    lines = [
        ("cp", "my-app-v1.0.0.zip", f"s3://{b}/"),
        ("cp", "my-app-v1.1.0.zip", f"s3://{b}/"),
        ("cp", f"s3://{b}/my-app-v1.0.0.zip", "./downloaded.zip"),
        ("ls", f"s3://{b}/"),
        ("sync", "./dist/", f"s3://{b}/v1.0.0/"),
        ("cp", "-r", "./dist/", f"s3://{b}/v1.0.0/"),
        ("cp", "-r", f"s3://{b}/v1.0.0/", "./local-copy/"),
        ("ls",),
        ("ls", "-r", f"s3://{b}/"),
        ("ls", "-h", "--summarize", f"s3://{b}/"),
        ("rm", "--dryrun", f"s3://{b}/my-app-v1.1.0.zip"),
        ("sync", "--exclude", "*.log", "./dist/", f"s3://{b}/excluded/"),
        ("sync", "--delete", "./dist/", f"s3://{b}/backup/"),
        ("sync", f"s3://{b}/backup/", "./local-backup/"),
        ("stats", b),
        ("stats", f"s3://{b}"),
        ("stats", f"s3://{b}/"),
        ("stats", b, "--sampled"),
        ("stats", b, "--detailed"),
        ("stats", b, "--refresh"),
        ("stats", b, "--no-cache"),
        ("stats", b, "--json"),
        ("verify", f"s3://{b}/my-app-v1.1.0.zip"),
        ("verify", f"s3://{b}/my-app-v1.1.0.zip.delta"),  # 6.x needed the stored key
        ("purge", b),
        ("purge", b, "--dry-run"),
        ("purge", b, "--json"),
        ("cp", "file.zip", f"s3://{b}/", "--no-delta", "--max-ratio", "0.8"),
        ("rm", f"s3://{b}/my-app-v1.1.0.zip"),
        ("rm", "-r", f"s3://{b}/v1.0.0/"),
    ]
    for line in lines:
        done = run(*line)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
    assert sha(artifacts_dir / "downloaded.zip") == sha(artifacts_dir / "my-app-v1.0.0.zip")
    copied = artifacts_dir / "local-copy" / "my-app-v1.0.0.zip"
    assert sha(copied) == sha(artifacts_dir / "dist" / "my-app-v1.0.0.zip")
    assert (artifacts_dir / "local-backup" / "build.log").exists()
    assert (artifacts_dir / "local-backup" / "my-app-v1.0.0.zip").exists()
    keys = {o["Key"] for o in raw.list_objects_v2(Bucket=b).get("Contents", [])}
    assert "file.zip" in keys  # --no-delta: stored whole at its own key
    assert "excluded/build.log" not in keys and "excluded/my-app-v1.0.0.zip.delta" in keys
    assert not any(k.startswith(("v1.0.0/", "my-app-v1.1.0")) for k in keys)


def test_stats_json_has_6x_keys_with_their_meaning(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path
) -> None:
    for name in ("my-app-v1.0.0.zip", "my-app-v1.1.0.zip", "my-app-v1.2.0.zip"):
        assert ours(s3_server, artifacts_dir, "cp", name, f"s3://{bucket}/").returncode == 0
    shown = json.loads(
        ours(s3_server, artifacts_dir, "stats", bucket, "--json", "--detailed").stdout
    )
    # 6.x's eight keys, as its STATS_CACHING.md and `stats --json` give them (the spec here)
    six = "bucket object_count total_size compressed_size space_saved average_compression_ratio"
    assert set(f"{six} delta_objects direct_objects".split()) <= shown.keys()
    sizes = sum((artifacts_dir / f"my-app-v1.{n}.0.zip").stat().st_size for n in range(3))
    assert (shown["object_count"], shown["delta_objects"], shown["total_size"]) == (3, 3, sizes)
    assert shown["space_saved"] == shown["total_size"] - shown["compressed_size"] > 0
    assert 0 < shown["average_compression_ratio"] < 1


def test_migrate_lines_keep_the_source_folder_as_documented(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path, raw: Any
) -> None:
    """README "Migration": `migrate s3://bucket/releases/ s3://bucket/archive/` lands in
    `archive/releases/`; `--no-preserve-prefix` straight in `archive/`; --yes, --dry-run,
    --exclude as documented."""
    for name in ("my-app-v1.0.0.zip", "my-app-v1.1.0.zip"):
        raw.upload_file(str(artifacts_dir / name), bucket, f"releases/{name}")
    raw.put_object(Bucket=bucket, Key="releases/build.log", Body=b"log")
    run = lambda *args: ours(s3_server, artifacts_dir, *args)  # noqa: E731
    for line in (
        ("migrate", "--dry-run", f"s3://{bucket}/releases/", f"s3://{bucket}/archive/"),
        ("migrate", "--yes", f"s3://{bucket}/releases/", f"s3://{bucket}/archive/"),
        (
            "migrate",
            "--no-preserve-prefix",
            "--exclude",
            "*.log",
            f"s3://{bucket}/releases/",
            f"s3://{bucket}/flat/",
        ),
    ):
        done = run(*line)
        assert done.returncode == 0, (line, done.stderr)
    keys = {o["Key"] for o in raw.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"archive/releases/my-app-v1.0.0.zip.delta", "archive/releases/build.log"} <= keys
    assert "flat/my-app-v1.1.0.zip.delta" in keys and "flat/build.log" not in keys


def test_acl_commands_take_the_bucket_first(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path
) -> None:
    for line in (
        ("get-bucket-acl", bucket),
        ("get-bucket-acl", f"s3://{bucket}"),
        ("put-bucket-acl", bucket, "--acl", "private"),
    ):
        done = ours(s3_server, artifacts_dir, *line)
        assert done.returncode == 0, (line, done.stderr)


def test_environment_lines(s3_server: LocalS3, bucket: str, artifacts_dir: Path) -> None:
    """DG_MAX_RATIO=0 (DG_MAX_RATIO.md: never a delta), DG_LOG_LEVEL=INFO (a version line
    on stderr), CACHE_MANAGEMENT.md's key recipe (base64 of a Fernet key)."""
    import base64

    from cryptography.fernet import Fernet

    key = base64.b64encode(Fernet.generate_key()).decode()
    whole = ours(
        s3_server,
        artifacts_dir,
        "cp",
        "my-app-v1.0.0.zip",
        f"s3://{bucket}/zero/",
        DG_MAX_RATIO="0",
        DG_LOG_LEVEL="INFO",
        DG_CACHE_ENCRYPTION_KEY=key,
    )
    assert whole.returncode == 0, whole.stderr
    assert "(direct:" in whole.stdout
    assert f"version={deltaglider.__version__!r}" in whole.stderr or "version=" in whole.stderr


def test_the_same_lines_against_6_2_0_give_the_same_files(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path, old_deltaglider: Path, raw: Any
) -> None:
    """Where 6.2.0 does what its docs say: cp to a bucket root and back, ls names, stats
    --json keys. Each tool's objects are readable by the other (one on-bucket format)."""
    other = f"{bucket}-old"
    raw.create_bucket(Bucket=other)
    for name in ("my-app-v1.0.0.zip", "my-app-v1.1.0.zip"):
        assert ours(s3_server, artifacts_dir, "cp", name, f"s3://{bucket}/").returncode == 0
        done = theirs(old_deltaglider, s3_server, artifacts_dir, "cp", name, f"s3://{other}/")
        assert done.returncode == 0, done.stderr
    for target, tool in ((bucket, "ours"), (other, "theirs")):
        out = artifacts_dir / f"back-{tool}.zip"
        done = ours(s3_server, artifacts_dir, "cp", f"s3://{target}/my-app-v1.1.0.zip", str(out))
        assert done.returncode == 0, done.stderr
        assert sha(out) == sha(artifacts_dir / "my-app-v1.1.0.zip")
    names = lambda text: sorted(line.split()[-1] for line in text.splitlines())  # noqa: E731
    listed_ours = ours(s3_server, artifacts_dir, "ls", f"s3://{bucket}/").stdout
    listed_theirs = theirs(old_deltaglider, s3_server, artifacts_dir, "ls", f"s3://{other}/").stdout
    assert names(listed_ours) == names(listed_theirs) == ["my-app-v1.0.0.zip", "my-app-v1.1.0.zip"]
    keys_theirs = json.loads(
        theirs(old_deltaglider, s3_server, artifacts_dir, "stats", other, "--json").stdout
    ).keys()
    keys_ours = json.loads(ours(s3_server, artifacts_dir, "stats", bucket, "--json").stdout).keys()
    assert set(keys_theirs) <= set(keys_ours)


# ------------------------------------------------------------------------- SDK snippets


@pytest.fixture
def client(s3_server: LocalS3) -> Any:
    made = deltaglider.create_client(endpoint_url=s3_server.endpoint)
    yield made
    made.close()


def test_imports_the_docs_use() -> None:
    from deltaglider import (  # noqa: F401
        BucketStats,
        DeltaGliderClient,
        DeltaService,
        DeltaSpace,
        ListObjectsV2Response,
        ObjectKey,
        UploadSummary,
        create_client,
    )
    from deltaglider.client_models import BucketStats as Stats  # noqa: F401
    from deltaglider.client_models import CompressionEstimate, ObjectInfo  # noqa: F401
    from deltaglider.types import ListObjectsV2Response as Listing  # noqa: F401
    from deltaglider.types import PutObjectResponse, S3Object  # noqa: F401

    assert DeltaGliderClient is deltaglider.DeltagliderClient


def test_boto3_compatible_snippet_with_the_paging_loop(
    client: Any, bucket: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    """README "boto3-compatible API": put_object with an open file, get_object, list_objects
    with the documented paging loop (it must end), head_object, delete_object."""
    for number in range(3):
        with (artifacts_dir / f"my-app-v1.{number}.0.zip").open("rb") as f:
            response = client.put_object(Bucket=bucket, Key=f"v1.{number}.0/app.zip", Body=f)
        assert response["ETag"]
    got = client.get_object(Bucket=bucket, Key="v1.1.0/app.zip")
    (tmp_path / "app.zip").write_bytes(got["Body"].read())
    assert sha(tmp_path / "app.zip") == sha(artifacts_dir / "my-app-v1.1.0.zip")
    keys: list[str] = []
    response = client.list_objects(Bucket=bucket, Prefix="v1.", MaxKeys=1)
    keys += [o["Key"] for o in response.get("Contents", [])]
    while response.get("IsTruncated"):
        response = client.list_objects(
            Bucket=bucket,
            Prefix="v1.",
            MaxKeys=1,
            ContinuationToken=response.get("NextContinuationToken"),
            FetchMetadata=False,
        )
        keys += [o["Key"] for o in response.get("Contents", [])]
    assert keys == [f"v1.{n}.0/app.zip" for n in range(3)]
    client.put_object(Bucket=bucket, Key="v1.notes.txt", Body=b"n", Metadata={"build": "42"})
    detailed = client.list_objects(Bucket=bucket, Prefix="v1.", FetchMetadata=True)
    assert all("Metadata" in o for o in detailed["Contents"])
    notes = next(o for o in detailed["Contents"] if o["Key"] == "v1.notes.txt")
    assert notes["Metadata"]["build"] == "42"  # a whole object's own metadata too
    assert client.head_object(Bucket=bucket, Key="v1.2.0/app.zip")["ContentLength"] > 0
    client.delete_object(Bucket=bucket, Key="v1.0.0/app.zip")


def test_simple_api_snippets(
    client: Any, bucket: str, artifacts_dir: Path, tmp_path: Path, s3_server: LocalS3
) -> None:
    """README "Simple API", api.md, examples.md: upload/download with 6.x's keyword names
    and summary fields, verify as a bool, stats, batches, chunked upload, object info,
    similar files, estimates, rehydrated presigned URLs, recursive delete, cache, purge."""
    first = client.upload(
        file_path=artifacts_dir / "my-app-v1.0.0.zip", s3_url=f"s3://{bucket}/v2/"
    )
    summary = client.upload(
        artifacts_dir / "my-app-v1.1.0.zip",
        f"s3://{bucket}/v2/",
        tags={"build": "7"},
        max_ratio=0.5,
    )
    assert not first.is_delta and first.operation == "create_reference"
    assert summary.is_delta and summary.operation == "create_delta"
    assert 0 < summary.delta_ratio < 0.5 and summary.savings_percent > 50
    assert summary.original_size == summary.original_size_mb * 1024 * 1024 > summary.stored_size
    client.download(s3_url=f"s3://{bucket}/v2/my-app-v1.1.0.zip", output_path=tmp_path / "l.zip")
    assert sha(tmp_path / "l.zip") == sha(artifacts_dir / "my-app-v1.1.0.zip")
    if client.verify(f"s3://{bucket}/v2/my-app-v1.1.0.zip"):
        verified = True
    assert verified
    stats = client.get_bucket_stats(bucket)
    detailed = client.get_bucket_stats(bucket, mode="detailed", refresh_cache=True)
    assert detailed.object_count == stats.object_count == 2 and detailed.delta_objects == 2
    assert detailed.space_saved > 0 and 0 < detailed.average_compression_ratio < 1
    assert not detailed.object_limit_reached
    told: list[tuple[str, int, int]] = []
    batch = [artifacts_dir / "my-app-v1.2.0.zip", artifacts_dir / "file.zip"]
    results = client.upload_batch(
        batch, f"s3://{bucket}/batch", progress_callback=lambda *a: told.append(a)
    )
    assert [r.key for r in results] == ["batch/my-app-v1.2.0.zip", "batch/file.zip"]
    assert [t[1:] for t in told] == [(1, 2), (2, 2)]
    written = client.download_batch([f"s3://{bucket}/batch/file.zip"], tmp_path / "out")
    assert sha(written[0]) == sha(artifacts_dir / "file.zip")
    size = (artifacts_dir / "my-app-v1.2.0.zip").stat().st_size
    estimate = client.estimate_compression(artifacts_dir / "my-app-v1.2.0.zip", bucket, "v2/")
    assert estimate.original_size == size and estimate.should_use_delta
    assert 0 < estimate.estimated_compressed_size < size / 2
    chunks: list[tuple[int, int, int, int]] = []
    client.upload_chunked(
        artifacts_dir / "my-app-v1.2.0.zip",
        f"s3://{bucket}/v2/",
        chunk_size=1024 * 1024,
        progress_callback=lambda *a: chunks.append(a),
    )
    assert chunks and chunks[-1][2:] == (size, size) and chunks[-1][0] == chunks[-1][1]
    info = client.get_object_info(f"s3://{bucket}/v2/my-app-v1.1.0.zip")
    assert info.is_delta and info.original_size == summary.original_size and info.reference_key
    similar = client.find_similar_files(bucket, "v2/", "my-app-v1.3.0.zip")
    assert similar and similar[0]["Similarity"] == 1.0
    temp = client.rehydrate_for_download(Bucket=bucket, Key="v2/my-app-v1.1.0.zip", ExpiresIn=60)
    assert temp and temp.startswith(".deltaglider/tmp/")
    url = client.generate_presigned_url_with_rehydration(bucket, "v2/my-app-v1.1.0.zip", 60)
    with urllib.request.urlopen(url) as served:
        assert hashlib.sha256(served.read()).hexdigest() == sha(artifacts_dir / "my-app-v1.1.0.zip")
    purged = client.purge_temp_files(bucket)
    assert {"deleted_count", "expired_count", "total_size_freed", "errors"} <= purged.keys()
    assert client.clear_cache() >= 0 and client.evict_cache() == 0
    removed = client.delete_objects_recursive(Bucket=bucket, Prefix="batch/")
    assert removed["DeletedCount"] == 2
    assert client.list_objects(Bucket=bucket, Prefix="batch/").get("Contents") is None


def test_create_client_takes_6x_arguments(
    s3_server: LocalS3, capfd: pytest.CaptureFixture[str]
) -> None:
    made = deltaglider.create_client(endpoint_url=s3_server.endpoint, log_level="INFO")
    made.close()
    assert "version=" in capfd.readouterr().err


def test_metrics_as_6x_names_them(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path, raw: Any
) -> None:
    """DG_METRICS=logging (6.x's default) logs each metric at INFO; DG_METRICS=cloudwatch sends
    6.x's names to CloudWatch in DG_METRICS_NAMESPACE (moto's CloudWatch, on the same port)."""
    logged = ours(
        s3_server,
        artifacts_dir,
        "cp",
        "my-app-v1.0.0.zip",
        f"s3://{bucket}/m/",
        DG_METRICS="logging",
        DG_LOG_LEVEL="INFO",
    )
    assert logged.returncode == 0, logged.stderr
    assert "name='deltaglider.reference.created'" in logged.stderr
    assert "name='deltaglider.put.duration'" in logged.stderr
    if s3_server.kind != "moto":
        pytest.skip("CloudWatch needs moto's server; SeaweedFS serves S3 only")
    for name in ("my-app-v1.1.0.zip", "my-app-v1.2.0.zip"):
        sent = ours(
            s3_server,
            artifacts_dir,
            "cp",
            name,
            f"s3://{bucket}/m/",
            DG_METRICS="cloudwatch",
            DG_METRICS_NAMESPACE="ReleaseBuckets",
        )
        assert sent.returncode == 0, sent.stderr
    import boto3

    watch = boto3.client(
        "cloudwatch", endpoint_url=s3_server.endpoint, region_name=raw.meta.region_name
    )
    names = {m["MetricName"] for m in watch.list_metrics(Namespace="ReleaseBuckets")["Metrics"]}
    assert {"deltaglider.put.duration", "deltaglider.delta.created"} <= names, names
    assert "deltaglider.delta.ratio" in names


def test_put_object_info_and_the_fast_listing_as_the_sdk_docs_use_them(
    client: Any, bucket: str, artifacts_dir: Path
) -> None:
    """README and examples.md: `put_object`'s `DeltaGliderInfo` tells a reference from a
    delta with 6.x's field names, and `list_objects` without `FetchMetadata` marks deltas in
    each entry's Metadata from the listing alone."""
    for number in range(3):
        name = f"my-app-v1.{number}.0.zip"
        with (artifacts_dir / name).open("rb") as body:
            info = client.put_object(Bucket=bucket, Key=f"1.{number}.0/{name}", Body=body)[
                "DeltaGliderInfo"
            ]
        assert info["IsDelta"] is (number > 0) and info["OriginalSizeMB"] > info["StoredSizeMB"] * (
            5 if number else 0
        )
        saved = info["SavingsPercent"]  # a reference also stores its few-byte self-delta
        assert 0 < saved < 100 if number else -1 < saved <= 0
        assert info["Operation"] == ("create_delta" if number else "create_reference")
    listed = client.list_objects(Bucket=bucket, MaxKeys=100)["Contents"]
    assert [o["Metadata"]["deltaglider-is-delta"] for o in listed] == ["true"] * 3
    assert all(o["Metadata"]["deltaglider-original-size"] == str(o["Size"]) for o in listed)


def test_cli_lines_on_stored_keys_and_the_stats_cache(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path, raw: Any
) -> None:
    """aws-s3-cli-compatibility.md and STATS_CACHING.md: `rm` of a stored `.delta` key, a
    `--no-delta` re-upload, and clearing the stats cache by its 6.x names (each file still
    reads back afterwards)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return ours(s3_server, artifacts_dir, *args)

    for number in range(2):
        assert run("cp", f"my-app-v1.{number}.0.zip", f"s3://{bucket}/app/").returncode == 0
    assert run("stats", f"s3://{bucket}", "--detailed").returncode == 0
    removed = run("rm", f"s3://{bucket}/app/my-app-v1.0.0.zip.delta")
    assert removed.returncode == 0 and "delete: " in removed.stdout
    whole = run(
        "cp", "my-app-v1.1.0.zip", f"s3://{bucket}/app/", "--no-delta", "--max-ratio", "0.8"
    )
    assert whole.returncode == 0 and "(direct:" in whole.stdout, whole.stdout
    for line in (
        ("rm", f"s3://{bucket}/.deltaglider/stats_abc.json"),
        ("rm", "-r", f"s3://{bucket}/.deltaglider/"),
    ):
        assert run(*line).returncode == 0, line
    keys = {o["Key"] for o in raw.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert (
        not any(k.startswith(".deltaglider/stats/") for k in keys)
        and "app/my-app-v1.1.0.zip" in keys
    )
    back = run("cp", f"s3://{bucket}/app/my-app-v1.1.0.zip", "back.zip")
    assert back.returncode == 0 and sha(artifacts_dir / "back.zip") == sha(
        artifacts_dir / "my-app-v1.1.0.zip"
    )


def test_aws_compatibility_page_lines(
    s3_server: LocalS3, bucket: str, artifacts_dir: Path, raw: Any
) -> None:
    """aws-s3-cli-compatibility.md and the README's bucket lines, re-typed: full-key and
    `.` destinations, S3-to-S3 copies, long flags, mb/rb/mv, ACL grants, and the global
    flags given on the command line instead of the environment."""
    run = lambda *args: ours(s3_server, artifacts_dir, *args)  # noqa: E731
    b, other = bucket, f"{bucket}-two"
    lines = [
        ("mb", f"s3://{other}"),
        ("cp", "my-app-v1.0.0.zip", f"s3://{b}/releases/my-app-v1.0.0.zip"),
        ("cp", "my-app-v1.1.0.zip", f"s3://{b}/releases/"),
        ("cp", f"s3://{b}/releases/my-app-v1.1.0.zip", "."),
        ("cp", f"s3://{b}/releases/my-app-v1.0.0.zip", f"s3://{other}/copied/"),
        ("cp", "--recursive", "dist/", f"s3://{b}/build/"),
        ("ls", "--recursive", "--human-readable", "--summarize", f"s3://{b}/"),
        ("mv", f"s3://{b}/build/build.log", f"s3://{b}/logs/build.log"),
        ("mv", "my-app-v1.2.0.zip", f"s3://{b}/releases/"),
        ("sync", "--size-only", "dist/", f"s3://{b}/build/"),
        ("sync", "--exact-timestamps", f"s3://{b}/build/", "mirror/"),
        ("put-bucket-acl", b, "--acl", "public-read"),
        (
            "put-bucket-acl",
            b,
            "--grant-read",
            "uri=http://acs.amazonaws.com/groups/global/AllUsers",
        ),
        ("get-bucket-acl", b),
        ("--endpoint-url", s3_server.endpoint, "--region", "us-east-1", "ls", f"s3://{b}/"),
        ("ls", f"s3://{b}/", "--endpoint-url", s3_server.endpoint),
        ("rm", "--recursive", f"s3://{other}/"),
        ("rb", f"s3://{other}"),
    ]
    for line in lines:
        done = run(*line)
        if line[0] == "put-bucket-acl" and s3_server.kind == "seaweedfs":
            assert done.returncode in (0, 1) and done.stderr.count("\n") <= 1, (line, done.stderr)
            continue  # SeaweedFS may refuse canned ACLs: one line, never a traceback
        assert done.returncode == 0, (line, done.stdout, done.stderr)
    keys = {o["Key"] for o in raw.list_objects_v2(Bucket=b).get("Contents", [])}
    assert "releases/my-app-v1.0.0.zip.delta" in keys and "logs/build.log" in keys
    assert "releases/my-app-v1.2.0.zip.delta" in keys  # mv: stored, then the local file goes
    assert not (artifacts_dir / "my-app-v1.2.0.zip").exists()
    assert (artifacts_dir / "mirror" / "my-app-v1.0.0.zip").exists()
    assert other not in {b["Name"] for b in raw.list_buckets()["Buckets"]}

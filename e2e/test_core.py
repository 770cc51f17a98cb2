"""The core against real servers: cp / ls / rm / verify, exact on-bucket format, compatibility.

Each test runs once per server (SeaweedFS, moto; MinIO and LocalStack when Docker answers).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun
from helpers import metadata, sha256, sha256_bytes, stored_keys
from local_s3 import LocalS3

from deltaglider.engine import Engine
from deltaglider.errors import IntegrityError, NotFoundError, UsageError
from deltaglider.models import DeltaPolicy, StoredAs, UploadOptions

# These tests pin the folder layout of FORMAT "Objects" (each folder's own reference.bin).
REFERENCES = "folder"
CONTAINERS = True  # also against the testcontainers servers (conftest)

SHA_FIELDS_DELTA = {
    "dg-tool",
    "dg-original-name",
    "dg-file-sha256",
    "dg-file-size",
    "dg-created-at",
    "dg-ref-key",
    "dg-ref-sha256",
    "dg-delta-size",
    "dg-delta-cmd",
    "dg-codec",
    "dg-md5",
}


def test_versioned_series_roundtrips_through_the_cli(
    cli: CliRun, bucket: str, wheel_series: list[Path], tmp_path: Path, raw: Any
) -> None:
    for index, wheel in enumerate(wheel_series):
        result = cli("cp", str(wheel), f"s3://{bucket}/wheels/")
        assert result.exit_code == 0, result.output
        expected = "(reference:" if index == 0 else "(delta:"
        assert result.stdout.startswith(f"upload: {wheel} to s3://{bucket}/wheels/{wheel.name} ")
        assert expected in result.stdout

    logical = sum(p.stat().st_size for p in wheel_series)
    stored = sum(stored_keys(raw, bucket).values())
    assert stored < 0.2 * logical  # one reference + seven ~5.5% deltas

    listing = cli("ls", "--logical-sizes", f"s3://{bucket}/wheels/")
    assert listing.exit_code == 0
    lines = listing.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == [p.name for p in wheel_series]
    assert [int(line.split()[2]) for line in lines] == [p.stat().st_size for p in wheel_series]
    # --stored-sizes: no request per object, each delta shows the bytes it takes
    stored_sizes = stored_keys(raw, bucket)
    plain = cli("ls", f"s3://{bucket}/wheels/", "--stored-sizes").stdout.splitlines()
    assert [int(line.split()[2]) for line in plain] == [
        stored_sizes[f"wheels/{p.name}.delta"] for p in wheel_series
    ]

    out = tmp_path / "back"
    out.mkdir()
    for wheel in wheel_series:
        result = cli("cp", f"s3://{bucket}/wheels/{wheel.name}", f"{out}/")
        assert result.exit_code == 0, result.output
        assert sha256(out / wheel.name) == sha256(wheel)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in wheel_series)


def test_zstd_codec_is_recorded_and_mixes_with_xdelta3_in_one_space(
    cli: CliRun, bucket: str, wheel_series: list[Path], tmp_path: Path, raw: Any
) -> None:
    """`--codec zstd` and DG_CODEC=zstd write zstd deltas (recorded in dg-codec, zstd magic);
    a later xdelta3 upload into the same space is VCDIFF; every file reads back exact."""
    first, second, third, fourth = wheel_series[:4]
    assert cli("cp", "--codec", "zstd", str(first), f"s3://{bucket}/z/").exit_code == 0
    assert cli("cp", "--codec", "zstd", str(second), f"s3://{bucket}/z/").exit_code == 0
    assert cli("cp", str(third), f"s3://{bucket}/z/", env={"DG_CODEC": "zstd"}).exit_code == 0
    assert cli("cp", str(fourth), f"s3://{bucket}/z/").exit_code == 0
    magic = {b"\x28\xb5\x2f\xfd": "zstd-patch-from", b"\xd6\xc3\xc4\x00": "xdelta3-D"}
    for wheel, codec in [
        (first, "zstd-patch-from"),
        (second, "zstd-patch-from"),
        (third, "zstd-patch-from"),
        (fourth, "xdelta3-D"),
    ]:
        key = f"z/{wheel.name}.delta"
        assert metadata(raw, bucket, key)["dg-codec"] == codec
        head = raw.get_object(Bucket=bucket, Key=key, Range="bytes=0-3")["Body"].read()
        assert magic[head] == codec
        assert cli("cp", f"s3://{bucket}/z/{wheel.name}", str(tmp_path / wheel.name)).exit_code == 0
        assert sha256(tmp_path / wheel.name) == sha256(wheel)
    refused = cli("cp", "--codec", "lz4", str(first), f"s3://{bucket}/z/")
    assert refused.exit_code == 2 and "lz4" in refused.output
    bad_env = cli("cp", str(first), f"s3://{bucket}/y/", env={"DG_CODEC": "lz4"})
    assert bad_env.exit_code == 2
    assert "DG_CODEC must be one of xdelta3, zstd, not 'lz4'" in bad_env.output
    assert not any(k.startswith("y/") for k in stored_keys(raw, bucket))


def test_exact_keys_and_metadata_follow_format(
    engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    first, second = wheel_series[0], wheel_series[1]
    notes = tmp_path / "notes.txt"
    notes.write_text("release notes\n")
    assert engine.upload(first, bucket, f"rel/{first.name}").stored_as is StoredAs.REFERENCE
    assert engine.upload(second, bucket, f"rel/{second.name}").stored_as is StoredAs.DELTA
    assert engine.upload(notes, bucket, "rel/notes.txt").stored_as is StoredAs.DIRECT

    keys = stored_keys(raw, bucket)
    assert set(keys) == {
        "rel/reference.bin",
        f"rel/{first.name}.delta",
        f"rel/{second.name}.delta",
        "rel/notes.txt",
    }

    ref = metadata(raw, bucket, "rel/reference.bin")
    assert set(ref) == {"dg-tool", "dg-source-name", "dg-file-sha256", "dg-created-at", "dg-note"}
    assert ref["dg-note"] == "reference"
    assert ref["dg-source-name"] == first.name
    assert ref["dg-file-sha256"] == sha256(first)
    assert ref["dg-created-at"].endswith("Z")
    assert keys["rel/reference.bin"] == first.stat().st_size

    zero = metadata(raw, bucket, f"rel/{first.name}.delta")
    assert set(zero) == SHA_FIELDS_DELTA | {"dg-note"}
    assert zero["dg-note"] == "zero-diff (reference identical)"
    assert keys[f"rel/{first.name}.delta"] < 200

    delta = metadata(raw, bucket, f"rel/{second.name}.delta")
    assert set(delta) == SHA_FIELDS_DELTA
    assert delta["dg-ref-key"] == "rel/reference.bin"
    assert delta["dg-ref-sha256"] == ref["dg-file-sha256"]
    assert delta["dg-file-sha256"] == sha256(second)
    assert delta["dg-file-size"] == str(second.stat().st_size)
    assert delta["dg-delta-size"] == str(keys[f"rel/{second.name}.delta"])
    assert delta["dg-original-name"] == second.name
    assert delta["dg-codec"] == "xdelta3-D"

    direct = metadata(raw, bucket, "rel/notes.txt")
    assert set(direct) == {
        "dg-tool",
        "dg-original-name",
        "dg-file-sha256",
        "dg-file-size",
        "dg-created-at",
        "dg-compression",
        "dg-md5",
    }
    assert direct["dg-compression"] == "none"


def _old_encode(source: Path, target: Path, out: Path) -> None:
    """Exactly what deltaglider 6.2.0 runs to make a delta."""
    subprocess.run(
        ["xdelta3", "-e", "-f", "-9", "-s", str(source), str(target), str(out)],
        check=True,
        capture_output=True,
    )


def put_old_delta(
    raw: Any, bucket: str, space: str, file: Path, delta: Path, reference: Path
) -> None:
    """A delta as deltaglider 6.2.0 stores it, against `<space>reference.bin`."""
    raw.put_object(
        Bucket=bucket,
        Key=f"{space}{file.name}.delta",
        Body=delta.read_bytes(),
        Metadata={
            "dg-tool": "deltaglider/6.2.0",
            "dg-original-name": file.name,
            "dg-file-sha256": sha256(file),
            "dg-file-size": str(file.stat().st_size),
            "dg-ref-key": f"{space}reference.bin",
            "dg-ref-sha256": sha256(reference),
            "dg-delta-size": str(delta.stat().st_size),
            "dg-delta-cmd": "xdelta3 -e -9 -s",
        },
    )


def test_reads_every_kind_and_spelling_older_writers_left(
    engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    """Fixtures written the way 6.2.0 (dg-*), 5.x (bare underscores), 6.0-6.1 (bare direct keys)
    and the Rust proxy (dg-ref-path, user-*) write them; a root-level space; zero-diff deltas."""
    ref, v2, v3 = wheel_series[0], wheel_series[1], wheel_series[2]
    zero, d2, d3 = tmp_path / "zero", tmp_path / "d2", tmp_path / "d3"
    _old_encode(ref, ref, zero)
    _old_encode(ref, v2, d2)
    _old_encode(ref, v3, d3)
    created = "2025-06-01T12:00:00.000001Z"

    # 6.2.0, root-level space
    raw.put_object(
        Bucket=bucket,
        Key="reference.bin",
        Body=ref.read_bytes(),
        Metadata={
            "dg-tool": "deltaglider/6.2.0",
            "dg-source-name": ref.name,
            "dg-file-sha256": sha256(ref),
            "dg-created-at": created,
            "dg-note": "reference",
        },
    )
    for name, body, source in ((ref.name, zero, ref), (v2.name, d2, v2)):
        meta = {
            "dg-tool": "deltaglider/6.2.0",
            "dg-original-name": name,
            "dg-file-sha256": sha256(source),
            "dg-file-size": str(source.stat().st_size),
            "dg-created-at": created,
            "dg-ref-key": "reference.bin",
            "dg-ref-sha256": sha256(ref),
            "dg-delta-size": str(body.stat().st_size),
            "dg-delta-cmd": f"xdelta3 -e -9 -s reference.bin {name} {name}.delta",
        }
        if source == ref:
            meta["dg-note"] = "zero-diff (reference identical)"
        raw.put_object(Bucket=bucket, Key=f"{name}.delta", Body=body.read_bytes(), Metadata=meta)

    # 5.x: bare underscored keys
    raw.put_object(
        Bucket=bucket,
        Key="v5/reference.bin",
        Body=ref.read_bytes(),
        Metadata={
            "tool": "deltaglider/5.0.0",
            "source_name": ref.name,
            "file_sha256": sha256(ref),
            "created_at": "2024-01-01T00:00:00",
        },
    )
    raw.put_object(
        Bucket=bucket,
        Key=f"v5/{v3.name}.delta",
        Body=d3.read_bytes(),
        Metadata={
            "tool": "deltaglider/5.0.0",
            "original_name": v3.name,
            "file_sha256": sha256(v3),
            "file_size": str(v3.stat().st_size),
            "created_at": "2024-01-01T00:00:00",
            "ref_key": "v5/reference.bin",
            "ref_sha256": sha256(ref),
            "delta_size": str(d3.stat().st_size),
            "delta_cmd": "xdelta3 -e -9 -s",
        },
    )

    # 6.0-6.1 direct: bare keys; dg_ underscored spelling too
    raw.put_object(
        Bucket=bucket,
        Key="v6/notes.txt",
        Body=b"notes",
        Metadata={
            "original_name": "notes.txt",
            "file_sha256": sha256_bytes(b"notes"),
            "file_size": "5",
            "created_at": "2025-01-01T00:00:00",
            "compression": "none",
        },
    )
    raw.put_object(
        Bucket=bucket,
        Key="v6/other.txt",
        Body=b"other",
        Metadata={
            "dg_original_name": "other.txt",
            "dg_file_sha256": sha256_bytes(b"other"),
            "dg_file_size": "5",
            "dg_compression": "none",
        },
    )

    # Rust proxy: ref-path relative to the space, extra keys
    raw.put_object(
        Bucket=bucket,
        Key="proxy/reference.bin",
        Body=ref.read_bytes(),
        Metadata={"dg-file-sha256": sha256(ref), "dg-note": "reference"},
    )
    raw.put_object(
        Bucket=bucket,
        Key=f"proxy/{v2.name}.delta",
        Body=d2.read_bytes(),
        Metadata={
            "dg-original-name": v2.name,
            "dg-file-sha256": sha256(v2),
            "dg-file-size": str(v2.stat().st_size),
            "dg-ref-path": "reference.bin",
            "dg-ref-sha256": sha256(ref),
            "dg-note": "delta",
            "dg-md5": "0" * 32,
            "user-owner": "ci",
        },
    )

    # a plain object no deltaglider wrote
    raw.put_object(Bucket=bucket, Key="plain/readme.md", Body=b"# hello")

    expected = {
        ref.name: ref.read_bytes(),
        v2.name: v2.read_bytes(),
        f"v5/{v3.name}": v3.read_bytes(),
        "v6/notes.txt": b"notes",
        "v6/other.txt": b"other",
        f"proxy/{v2.name}": v2.read_bytes(),
        "plain/readme.md": b"# hello",
    }
    for key, body in expected.items():
        out = tmp_path / "out" / key.replace("/", "_")
        out.parent.mkdir(exist_ok=True)
        result = engine.download(bucket, key, out)
        assert out.read_bytes() == body, key
        assert result.verified is (key != "plain/readme.md")

    listed = {e.key: e.size for e in engine.listing(bucket, "", recursive=True, logical_sizes=True)}
    assert listed == {key: len(body) for key, body in expected.items()}


def test_tar_gz_series_roundtrips_exactly_and_old_gz_deltas_are_named(
    engine: Engine, raw: Any, bucket: str, sdist_series: list[Path], tmp_path: Path
) -> None:
    for sdist in sdist_series:
        engine.upload(sdist, bucket, f"sdist/{sdist.name}")
    for sdist in sdist_series:
        out = tmp_path / sdist.name
        engine.download(bucket, f"sdist/{sdist.name}", out)
        assert sha256(out) == sha256(sdist)

    # what 6.2.0 stored for the same series: xdelta3 gunzipped behind its back
    first, second = sdist_series[0], sdist_series[1]
    old = tmp_path / "old.delta"
    _old_encode(first, second, old)
    raw.put_object(
        Bucket=bucket,
        Key="old/reference.bin",
        Body=first.read_bytes(),
        Metadata={"dg-file-sha256": sha256(first), "dg-note": "reference"},
    )
    put_old_delta(raw, bucket, "old/", second, old, first)
    target = tmp_path / "restored" / second.name
    target.parent.mkdir()
    with pytest.raises(IntegrityError, match="undecodable by an older deltaglider"):
        engine.download(bucket, f"old/{second.name}", target)
    assert list(target.parent.iterdir()) == []

    # 6.2.0's first file of a folder: reference.bin plus a self-delta that does not decode to
    # it; the file's SHA-256 is the reference's, so the reference itself is served
    self_delta = tmp_path / "self.delta"
    _old_encode(first, first, self_delta)
    put_old_delta(raw, bucket, "old/", first, self_delta, first)
    engine.download(bucket, f"old/{first.name}", target)
    assert sha256(target) == sha256(first)


def test_eight_concurrent_first_uploads_share_one_reference(
    s3_server: LocalS3,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    raw: Any,
    engine: Engine,
) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "deltaglider", "cp", str(wheel), f"s3://{bucket}/race/"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for wheel in wheel_series
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, outputs
    references = [k for k in stored_keys(raw, bucket) if k.endswith("reference.bin")]
    assert references == ["race/reference.bin"]
    assert sum(b"(reference:" in out for out, _ in outputs) == 1
    for wheel in wheel_series:
        out = tmp_path / wheel.name
        engine.download(bucket, f"race/{wheel.name}", out)
        assert sha256(out) == sha256(wheel)


@pytest.mark.parametrize("victim", ["delta", "reference", "direct"])
def test_corruption_is_an_error_and_leaves_no_file(
    cli: CliRun,
    engine: Engine,
    raw: Any,
    bucket: str,
    wheel_series: list[Path],
    tmp_path: Path,
    victim: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine.upload(wheel_series[0], bucket, "c/a.whl")
    engine.upload(wheel_series[1], bucket, "c/b.whl")
    engine.upload(wheel_series[2], bucket, "c/plain.bin", UploadOptions(DeltaPolicy.NEVER))
    key, logical = {
        "delta": ("c/b.whl.delta", "c/b.whl"),
        "reference": ("c/reference.bin", "c/b.whl"),
        "direct": ("c/plain.bin", "c/plain.bin"),
    }[victim]
    body = bytearray(raw.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    raw.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=metadata(raw, bucket, key))
    # verify reads what is stored, even where the reference cache still has good bytes
    assert cli("verify", f"s3://{bucket}/{logical}").exit_code == 1
    monkeypatch.setenv("DG_CACHE_DIR", str(tmp_path / "another-machine"))
    dest = tmp_path / "dest"
    dest.mkdir()
    result = cli("cp", f"s3://{bucket}/{logical}", f"{dest}/")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"download failed: s3://{bucket}/{logical} to ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(dest.iterdir()) == []
    assert cli("verify", f"s3://{bucket}/{logical}").exit_code == 1


def test_delta_over_max_ratio_is_stored_direct(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    engine.upload(wheel_series[0], bucket, "r/a.whl")
    unrelated = tmp_path / "random.zip"
    unrelated.write_bytes(random.Random(5).randbytes(200_000))
    result = cli("cp", str(unrelated), f"s3://{bucket}/r/")
    assert result.exit_code == 0
    assert "(direct:" in result.stdout and "over max ratio 0.5" in result.stdout
    assert "r/random.zip" in stored_keys(raw, bucket)
    # a strict ratio from the flag and from the environment turns a real delta direct too
    result = cli("cp", "--max-ratio", "0.01", str(wheel_series[1]), f"s3://{bucket}/r/")
    assert "(direct:" in result.stdout
    result = cli("cp", str(wheel_series[2]), f"s3://{bucket}/r/", env={"DG_MAX_RATIO": "0.01"})
    assert "(direct:" in result.stdout
    bad = cli("cp", str(wheel_series[3]), f"s3://{bucket}/r/", env={"DG_MAX_RATIO": "7"})
    assert bad.exit_code == 2 and "DG_MAX_RATIO" in bad.stderr


def test_identical_reupload_stores_nothing(
    engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    """Nothing is re-sent; the object is copied onto itself (metadata and Content-Type kept,
    its time brought forward, as a re-upload would, so `sync` settles)."""
    engine.upload(wheel_series[0], bucket, "u/a.whl")
    engine.upload(wheel_series[1], bucket, "u/b.whl", UploadOptions(content_type="application/zip"))

    def state() -> dict[str, tuple[Any, ...]]:
        heads = {k: raw.head_object(Bucket=bucket, Key=k) for k in stored_keys(raw, bucket)}
        return {
            k: (h["Metadata"], h["ContentType"], h["ContentLength"], h["LastModified"])
            for k, h in heads.items()
        }

    before = state()
    again = engine.upload(wheel_series[1], bucket, "u/b.whl")
    assert again.stored_as is StoredAs.UNCHANGED and again.stored_size == 0
    after = state()
    assert {k: v[:3] for k, v in after.items()} == {k: v[:3] for k, v in before.items()}
    assert all(after[k][3] >= before[k][3] for k in before)
    assert after["u/b.whl.delta"][1] == "application/zip"
    assert engine.verify(bucket, "u/b.whl").valid


def test_overwrite_switches_between_delta_and_direct(
    engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    engine.upload(wheel_series[0], bucket, "o/a.whl")
    engine.upload(wheel_series[1], bucket, "o/b.whl")
    unrelated = tmp_path / "b.whl"
    unrelated.write_bytes(random.Random(9).randbytes(100_000))
    assert engine.upload(unrelated, bucket, "o/b.whl").stored_as is StoredAs.DIRECT
    assert "o/b.whl.delta" not in stored_keys(raw, bucket)
    out = tmp_path / "out"
    engine.download(bucket, "o/b.whl", out)
    assert out.read_bytes() == unrelated.read_bytes()
    assert engine.upload(wheel_series[2], bucket, "o/b.whl").stored_as is StoredAs.DELTA
    assert "o/b.whl" not in stored_keys(raw, bucket)
    engine.download(bucket, "o/b.whl", out)
    assert sha256(out) == sha256(wheel_series[2])


def test_rm_removes_the_reference_with_the_last_delta_only(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    for wheel in wheel_series[:3]:
        engine.upload(wheel, bucket, f"d/{wheel.name}")
    a, b, c = (w.name for w in wheel_series[:3])
    result = cli("rm", f"s3://{bucket}/d/{a}")
    assert result.exit_code == 0 and result.stdout == f"delete: s3://{bucket}/d/{a}\n"
    assert "d/reference.bin" in stored_keys(raw, bucket)
    assert cli("rm", f"s3://{bucket}/d/{b}").exit_code == 0
    assert "d/reference.bin" in stored_keys(raw, bucket)
    engine.verify(bucket, f"d/{c}")  # the survivor still reads back (or this raises)
    assert cli("rm", f"s3://{bucket}/d/{c}").exit_code == 0
    assert stored_keys(raw, bucket) == {}
    missing = cli("rm", f"s3://{bucket}/d/{c}")  # gone already: done, as `aws s3 rm` says
    assert missing.exit_code == 0 and missing.stdout == f"delete: s3://{bucket}/d/{c}\n"
    assert stored_keys(raw, bucket) == {}


def test_rm_recursive_and_dryrun(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    for wheel in wheel_series[:2]:
        engine.upload(wheel, bucket, f"rel/1/{wheel.name}")
        engine.upload(wheel, bucket, f"rel/2/{wheel.name}")
    engine.upload(notes, bucket, "rel/1/notes.txt")
    before = stored_keys(raw, bucket)
    dry = cli("rm", "--recursive", "--dryrun", f"s3://{bucket}/rel/1/")
    assert dry.exit_code == 0
    assert sorted(dry.stdout.splitlines()) == sorted(
        f"(dryrun) delete: s3://{bucket}/rel/1/{n}"
        for n in ("notes.txt", wheel_series[0].name, wheel_series[1].name)
    )
    assert stored_keys(raw, bucket) == before
    assert cli("rm", "--recursive", f"s3://{bucket}/rel/1/").exit_code == 0
    assert all(k.startswith("rel/2/") for k in stored_keys(raw, bucket))
    assert "rel/2/reference.bin" in stored_keys(raw, bucket)
    assert cli("rm", "--recursive", f"s3://{bucket}/").exit_code == 0
    assert stored_keys(raw, bucket) == {}


@pytest.mark.parametrize("name", ["café-1.0.zip", "発売-🚀.whl", "שלום-1.0.jar", "a b+c=d.zip"])
def test_non_ascii_names_roundtrip(
    engine: Engine, bucket: str, wheel_series: list[Path], tmp_path: Path, name: str
) -> None:
    engine.upload(wheel_series[0], bucket, f"names/{name}")
    engine.upload(wheel_series[1], bucket, f"names/v2-{name}")
    listed = [e.key for e in engine.listing(bucket, "names/")]
    assert listed == sorted([f"names/{name}", f"names/v2-{name}"])
    out = tmp_path / name
    engine.download(bucket, f"names/v2-{name}", out)
    assert sha256(out) == sha256(wheel_series[1])


@pytest.mark.parametrize("name", ["reference.bin", "build.zip.delta"])
def test_reserved_names_are_refused(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], name: str
) -> None:
    engine.upload(wheel_series[0], bucket, "x/a.whl")
    before = stored_keys(raw, bucket)
    result = cli("cp", str(wheel_series[1]), f"s3://{bucket}/x/{name}")
    assert result.exit_code == 2 and "reserved" in result.stderr
    assert stored_keys(raw, bucket) == before


def test_s3_to_s3_copy_is_logical(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    other = f"{bucket}-copy"
    raw.create_bucket(Bucket=other)
    engine.upload(wheel_series[0], bucket, "src/a.whl")
    engine.upload(wheel_series[1], bucket, "src/b.whl")
    result = cli("cp", f"s3://{bucket}/src/b.whl", f"s3://{other}/dst/")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"copy: s3://{bucket}/src/b.whl to s3://{other}/dst/b.whl")
    # its own space in the destination: a reference of its own, never raw delta bytes
    assert set(stored_keys(raw, other)) == {"dst/reference.bin", "dst/b.whl.delta"}
    out = tmp_path / "b.whl"
    engine.download(other, "dst/b.whl", out)
    assert sha256(out) == sha256(wheel_series[1])


def test_download_to_stdout_and_to_a_file_path(
    s3_server: LocalS3, engine: Engine, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    engine.upload(wheel_series[0], bucket, "s/a.whl")
    engine.upload(wheel_series[1], bucket, "s/b.whl")
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint}
    piped = subprocess.run(
        [sys.executable, "-m", "deltaglider", "cp", f"s3://{bucket}/s/b.whl", "-"],
        env=env,
        capture_output=True,
        check=True,
    )
    assert piped.stdout == wheel_series[1].read_bytes()
    target = tmp_path / "deep" / "renamed.whl"
    target.parent.mkdir()
    engine.download(bucket, "s/b.whl", target)
    assert sha256(target) == sha256(wheel_series[1])


def test_ls_shows_the_logical_view(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    engine.upload(wheel_series[0], bucket, "a/one.whl")
    engine.upload(wheel_series[1], bucket, "a/two.whl")
    engine.upload(wheel_series[2], bucket, "root.whl")
    raw.put_object(Bucket=bucket, Key=".deltaglider/stats.json", Body=b"{}")
    top = cli("ls", "--logical-sizes", f"s3://{bucket}/")
    assert top.exit_code == 0
    lines = top.stdout.splitlines()
    assert lines[0] == f"{'PRE':>30} a/"
    assert lines[1].endswith(f"{wheel_series[2].stat().st_size:>10} root.whl")
    assert len(lines) == 2  # reference.bin and .deltaglider/ hidden
    summary = cli(
        "ls", "--recursive", "--human-readable", "--summarize", "--logical-sizes", f"s3://{bucket}/"
    )
    assert "a/one.whl" in summary.stdout and "135.9 KiB" in summary.stdout
    assert "Total Objects: 3" in summary.stdout
    buckets = cli("ls")
    assert any(line.endswith(f" {bucket}") for line in buckets.stdout.splitlines())
    assert cli("ls", f"s3://{bucket}/nothing-here/").exit_code == 1


def test_multipart_reference_and_direct_uploads(
    settings: Any, raw: Any, bucket: str, tmp_path: Path
) -> None:
    small = settings.with_overrides(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    engine = Engine(small)
    rng = random.Random(1)
    base = rng.randbytes(12 * 1024 * 1024)
    v1, v2, blob = tmp_path / "v1.tar", tmp_path / "v2.tar", tmp_path / "blob.bin"
    v1.write_bytes(base)
    v2.write_bytes(base[:6_000_000] + b"patched" + base[6_000_007:])
    blob.write_bytes(base[::-1])
    assert engine.upload(v1, bucket, "mp/v1.tar").stored_as is StoredAs.REFERENCE
    assert engine.upload(v2, bucket, "mp/v2.tar").stored_as is StoredAs.DELTA
    assert engine.upload(blob, bucket, "mp/blob.bin").stored_as is StoredAs.DIRECT
    assert "-" in raw.head_object(Bucket=bucket, Key="mp/reference.bin")["ETag"]  # multipart
    for name, source in (("v1.tar", v1), ("v2.tar", v2), ("blob.bin", blob)):
        out = tmp_path / f"out-{name}"
        engine.download(bucket, f"mp/{name}", out)
        assert sha256(out) == sha256(source)
    engine.close()


def test_missing_things_are_one_line_errors(
    cli: CliRun, bucket: str, wheel_series: list[Path], tmp_path: Path, engine: Engine
) -> None:
    cases = [
        (("cp", str(tmp_path / "nope.zip"), f"s3://{bucket}/"), "does not exist"),
        (("cp", str(tmp_path), f"s3://{bucket}/"), "is a directory"),
        (("cp", str(wheel_series[0]), "s3://no-such-bucket-dg/x/"), "bucket does not exist"),
        (("cp", f"s3://{bucket}/absent.zip", str(tmp_path)), "no such object"),
        (("cp", "s3://no-such-bucket-dg/a.zip", str(tmp_path)), "bucket does not exist"),
        (("cp", str(wheel_series[0]), "s3:/bad"), "not an S3 URL"),
        (("verify", f"s3://{bucket}/absent.zip"), "no such object"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    with pytest.raises(NotFoundError):
        engine.download(bucket, "absent.zip", tmp_path / "x")
    with pytest.raises(UsageError):
        engine.upload(wheel_series[0], bucket, "x/reference.bin")


def test_rust_proxy_passthrough_objects_read_as_direct(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    """The Rust proxy stores non-delta files with `dg-note=passthrough` and no
    `dg-compression` (its metadata_to_headers): a whole file, read and verified as direct."""
    wheel = wheel_series[0]
    raw.put_object(
        Bucket=bucket,
        Key=f"proxy/{wheel.name}",
        Body=wheel.read_bytes(),
        Metadata={
            "dg-tool": "deltaglider-proxy/0.4.0",
            "dg-original-name": wheel.name,
            "dg-file-sha256": sha256(wheel),
            "dg-file-size": str(wheel.stat().st_size),
            "dg-md5": hashlib.md5(wheel.read_bytes()).hexdigest(),
            "dg-created-at": "2026-01-02T03:04:05.123456Z",
            "dg-note": "passthrough",
        },
    )
    assert engine.verify(bucket, f"proxy/{wheel.name}").stored_as == "direct"
    result = cli("sync", f"s3://{bucket}/proxy/", str(tmp_path / "mirror"))
    assert result.exit_code == 0, result.output
    assert sha256(tmp_path / "mirror" / wheel.name) == sha256(wheel)
    raw.put_object(  # a passthrough whose bytes are not what it records is refused
        Bucket=bucket,
        Key="proxy/bad.whl",
        Body=b"other bytes",
        Metadata={"dg-file-sha256": sha256(wheel), "dg-note": "passthrough"},
    )
    with pytest.raises(IntegrityError, match="does not match its recorded SHA-256"):
        engine.verify(bucket, "proxy/bad.whl")


def test_rm_removes_every_form_two_tools_left(
    cli: CliRun, engine: Engine, raw: Any, bucket: str, wheel_series: list[Path]
) -> None:
    """`deltaglider cp v9.jar` (a delta), then `aws s3 cp v7.jar` to the same key (a plain
    object): reads see the newer, and `rm` removes both forms, so no older one resurfaces."""
    v9, v7 = wheel_series[3], wheel_series[1]
    engine.upload(v9, bucket, "p/app.jar")
    raw.put_object(Bucket=bucket, Key="p/app.jar", Body=v7.read_bytes())
    assert engine.verify(bucket, "p/app.jar").actual_sha256 == sha256(v7)
    assert [e.key for e in engine.listing(bucket, "p/", recursive=True)] == ["p/app.jar"]
    result = cli("rm", f"s3://{bucket}/p/app.jar")
    assert result.exit_code == 0 and result.stdout == f"delete: s3://{bucket}/p/app.jar\n"
    assert list(engine.listing(bucket, "p/", recursive=True)) == []
    assert stored_keys(raw, bucket, "p/") == {}  # the reference went with the delta

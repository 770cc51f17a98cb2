"""The container image used exactly as users run it: `<engine> run --rm -v $PWD:/work -e AWS_…
IMAGE cp …` against a real server on the host's loopback (so `--network host`).

The image is built by the `deltaglider_image` fixture (scripts/images.py; the engine's layer
cache makes an unchanged rebuild take seconds). Docker when one answers, podman otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import images
import local_s3
import pytest
from helpers import sha256, tree_digest

REFERENCES = "folder"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def image_run(
    container_engine: images.Engine,
    deltaglider_image: str,
    s3_server: local_s3.LocalS3,
    references: str,
) -> Run:
    """`<engine> run --rm --network host -v FOLDER:/work -e AWS_… IMAGE ARGS…` as a user types
    it, credentials passed by name from the environment (never on the command line)."""

    def run(folder: Path, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **container_engine.env,  # with the suite's test credentials
            "AWS_ENDPOINT_URL": s3_server.endpoint,
            "DG_REFERENCES": references,
        }
        command = [container_engine.name, "run", "--rm", "--network", "host"]
        if container_engine.name == "podman":
            # podman runs an image's HEALTHCHECK through systemd timers, and this machine has
            # no systemd: without this it prints an error line per run (docker has none)
            command.append("--no-healthcheck")
        command += ["-v", f"{folder}:/work"]
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
            "DG_REFERENCES",
        ):
            command += ["-e", name]
        if user is not None:
            command += ["--user", user]
        return subprocess.run(
            [*command, deltaglider_image, *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    return run


def owner_of(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid


def test_cp_up_and_down_through_the_image_is_byte_identical(
    image_run: Run, tmp_path: Path, bucket: str, wheel_series: list[Path]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for wheel in wheel_series[:3]:
        shutil.copy(wheel, work / wheel.name)
    me = f"{os.getuid()}:{os.getgid()}"
    for version, wheel in enumerate(wheel_series[:3]):
        uploaded = image_run(work, "cp", wheel.name, f"s3://{bucket}/app/{version}/", user=me)
        assert uploaded.returncode == 0, uploaded.stderr
        assert (
            f"upload: {wheel.name} to s3://{bucket}/app/{version}/{wheel.name}" in uploaded.stdout
        )

    listed = image_run(work, "ls", "--recursive", f"s3://{bucket}/app/", user=me)
    assert listed.returncode == 0, listed.stderr
    for wheel in wheel_series[:3]:
        assert wheel.name in listed.stdout

    last = wheel_series[2]
    (work / "back").mkdir()
    downloaded = image_run(work, "cp", f"s3://{bucket}/app/2/{last.name}", "back/", user=me)
    assert downloaded.returncode == 0, downloaded.stderr
    restored = work / "back" / last.name
    assert sha256(restored) == sha256(last)
    # Run as the invoking user, the file it wrote in the mounted folder is that user's.
    assert owner_of(restored) == (os.getuid(), os.getgid())


def test_sync_through_the_image_roundtrips_a_tree(
    image_run: Run, tmp_path: Path, bucket: str, wheel_series: list[Path]
) -> None:
    work = tmp_path / "work"
    (work / "dist" / "nested").mkdir(parents=True)
    shutil.copy(wheel_series[3], work / "dist" / wheel_series[3].name)
    shutil.copy(wheel_series[4], work / "dist" / "nested" / wheel_series[4].name)
    (work / "dist" / "notes.txt").write_text("release notes\n")
    me = f"{os.getuid()}:{os.getgid()}"

    up = image_run(work, "sync", "dist", f"s3://{bucket}/dist/", user=me)
    assert up.returncode == 0, up.stderr
    down = image_run(work, "sync", f"s3://{bucket}/dist/", "copy", user=me)
    assert down.returncode == 0, down.stderr
    assert tree_digest(work / "copy") == tree_digest(work / "dist")


def test_the_default_user_is_numeric_uid_1000(
    image_run: Run, tmp_path: Path, bucket: str, wheel_series: list[Path]
) -> None:
    """Without --user the image runs as uid/gid 1000 (not root); a folder that uid may write
    gets files owned by 1000:1000, never root."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(wheel_series[0], work / wheel_series[0].name)
    os.chmod(work, 0o777)
    uploaded = image_run(work, "cp", wheel_series[0].name, f"s3://{bucket}/one/")
    assert uploaded.returncode == 0, uploaded.stderr
    downloaded = image_run(work, "cp", f"s3://{bucket}/one/{wheel_series[0].name}", "copy.whl")
    assert downloaded.returncode == 0, downloaded.stderr
    assert owner_of(work / "copy.whl") == (1000, 1000)
    assert sha256(work / "copy.whl") == sha256(wheel_series[0])


def test_failures_pass_their_exit_status_through(
    image_run: Run, tmp_path: Path, bucket: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    me = f"{os.getuid()}:{os.getgid()}"
    missing = image_run(work, "cp", f"s3://{bucket}/no/such.zip", "got.zip", user=me)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"download failed: s3://{bucket}/no/such.zip to got.zip: no such object"
    ]
    assert not (work / "got.zip").exists()

    usage = image_run(work, "cp", "only-one-argument", user=me)
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr

    version = image_run(work, "--version", user=me)
    assert version.returncode == 0
    assert version.stdout.strip() == f"deltaglider, version {images.version()}"


def test_the_image_has_6x_documented_defaults_and_a_healthcheck_that_passes(
    container_engine: images.Engine, deltaglider_image: str
) -> None:
    """deltaglider 6.x's image had a HEALTHCHECK and DG_* ENV defaults: ours too, and the
    check's own command succeeds inside the image."""
    inspected = subprocess.run(
        [container_engine.name, "image", "inspect", deltaglider_image],
        env=container_engine.env,
        capture_output=True,
        text=True,
        check=True,
    )
    image = json.loads(inspected.stdout)[0]
    env = dict(item.split("=", 1) for item in image["Config"]["Env"])
    assert env["DG_MAX_RATIO"] == "0.5" and env["DG_CACHE_BACKEND"] == "filesystem"
    # docker puts it under Config, podman (docker format) beside it
    healthcheck = image["Config"].get("Healthcheck") or image.get("Healthcheck") or {}
    check = healthcheck.get("Test")
    assert check and check[0] == "CMD", healthcheck  # exec form: ["CMD", program, args…]
    program = [container_engine.name, "run", "--rm", "--entrypoint", check[1], deltaglider_image]
    ran = subprocess.run(
        [*program, *check[2:]],
        env=container_engine.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("deltaglider, version ")

"""Fixtures for the e2e suite: real S3 servers, real artifacts, the real CLI.

Every test that takes `s3_server` runs once per server (a module's `SERVERS` may name fewer).
SeaweedFS and moto run on 127.0.0.1 for every module. Modules whose tests are about S3 semantics (they set `CONTAINERS = True`) also run
against servers that testcontainers starts from images: LocalStack and SeaweedFS, built locally
by scripts/images.py (nothing is pulled), and MinIO where its image exists or can be pulled.
The container engine is Docker when one answers, else podman through its Docker-API socket.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import artifacts  # noqa: E402
import images  # noqa: E402
import local_s3  # noqa: E402

from deltaglider.cli import main  # noqa: E402
from deltaglider.config import Settings  # noqa: E402
from deltaglider.engine import Engine  # noqa: E402

NATIVE_SERVERS = ["seaweedfs", "moto"]
CONTAINER_SERVERS = ["localstack", "seaweedfs-container", "minio"]
TESTCONTAINERS_ENV = [
    "DOCKER_HOST",
    "TESTCONTAINERS_RYUK_DISABLED",
    "TESTCONTAINERS_CONNECTION_MODE",
]
MINIO_IMAGE = "docker.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "s3_server" in metafunc.fixturenames:
        servers = getattr(metafunc.module, "SERVERS", NATIVE_SERVERS) + (
            CONTAINER_SERVERS if getattr(metafunc.module, "CONTAINERS", False) else []
        )
        only = metafunc.definition.get_closest_marker("servers")
        servers = list(only.args) if only is not None else servers
        metafunc.parametrize("s3_server", servers, indirect=True, scope="session")


@pytest.fixture(scope="session")
def container_engine() -> images.Engine:
    with images.build_lock():  # `make test` may still be building in the background
        return images.engine()


@pytest.fixture(scope="session")
def deltaglider_image(container_engine: images.Engine) -> str:
    """The project's image, built (or found unchanged in the layer cache) once per session."""
    with images.build_lock():
        return images.deltaglider_image(container_engine, images.default_tag(), [])


@pytest.fixture(scope="session")
def docker_api(
    container_engine: images.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Docker-API endpoint testcontainers talks to, with the settings podman needs: no Ryuk
    (its image cannot be pulled here) and the host's view of ports (this machine has a
    /.dockerenv, which makes testcontainers think it runs inside a container)."""
    with images.build_lock():
        images.test_server_images(container_engine)
    with images.docker_api(container_engine, tmp_path_factory.mktemp("engine")) as url:
        saved = {name: os.environ.get(name) for name in TESTCONTAINERS_ENV}
        os.environ["DOCKER_HOST"] = url
        if container_engine.name == "podman":
            os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
            os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
        try:
            yield url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _start_container(kind: str, engine: images.Engine) -> local_s3.LocalS3:
    from testcontainers.core.container import DockerContainer

    if kind == "minio":
        if not (engine.has_image(MINIO_IMAGE) or engine.pull(MINIO_IMAGE, images.native_arch())):
            pytest.skip(
                f"minio: {MINIO_IMAGE} is not here and cannot be pulled (no registry reachable), "
                "and no MinIO server is packaged for Debian or PyPI to build one from"
            )
        from testcontainers.minio import MinioContainer

        minio = MinioContainer(
            image=MINIO_IMAGE, access_key=local_s3.ACCESS_KEY, secret_key=local_s3.SECRET_KEY
        )
        minio.start()
        host, port = minio.get_container_host_ip(), minio.get_exposed_port(9000)
        return local_s3.LocalS3("minio", f"http://{host}:{port}", minio.stop)
    if kind == "localstack":
        from testcontainers.community.localstack import LocalStackContainer

        localstack = LocalStackContainer(image=images.LOCALSTACK_IMAGE).with_services("s3")
        localstack.start(timeout=600)
        return local_s3.LocalS3("localstack", localstack.get_url(), localstack.stop)
    weed = DockerContainer(images.SEAWEEDFS_IMAGE).with_exposed_ports(8333)
    weed.start()
    endpoint = f"http://{weed.get_container_host_ip()}:{weed.get_exposed_port(8333)}"
    try:
        local_s3.wait_writable(endpoint)
    except BaseException:
        weed.stop()
        raise
    return local_s3.LocalS3("seaweedfs", endpoint, weed.stop)  # the same server software


@pytest.fixture(scope="session", autouse=True)
def aws_environment() -> None:
    """Credentials every server here accepts; no user AWS config leaks into the tests."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": local_s3.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": local_s3.SECRET_KEY,
            "AWS_REGION": local_s3.REGION,
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "DG_MAX_RATIO"):
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[local_s3.LocalS3]:
    kind: str = request.param
    if kind in CONTAINER_SERVERS:
        engine = request.getfixturevalue("container_engine")
        request.getfixturevalue("docker_api")
        server = _start_container(kind, engine)
    elif kind == "seaweedfs":
        server = local_s3.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    else:
        server = local_s3.start_moto()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def private_reference_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own persistent reference cache (commands in one test share it, as the
    steps of one CI job do): nothing from the user's ~/.cache, nothing from another test."""
    folder = tmp_path_factory.mktemp("dg-cache")
    monkeypatch.setenv("DG_CACHE_DIR", str(folder / "deltaglider"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    monkeypatch.setenv("DG_CACHE_KEY_FILE", str(folder / "config" / "cache.key"))


@pytest.fixture(autouse=True)
def references(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where new references go for this test: a parametrized value (indirect), else a
    module's `REFERENCES` ("folder" where its tests pin the folder layout), else shared. The CLI in-process and in
    subprocesses sees it as DG_REFERENCES."""
    mode = str(getattr(request, "param", None) or getattr(request.module, "REFERENCES", "shared"))
    monkeypatch.setenv("DG_REFERENCES", mode)
    return mode


@pytest.fixture
def settings(s3_server: local_s3.LocalS3, references: str) -> Settings:
    return Settings(endpoint_url=s3_server.endpoint, region=local_s3.REGION, references=references)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    built = Engine(settings)
    yield built
    built.close()


@pytest.fixture
def raw(s3_server: local_s3.LocalS3) -> Any:
    """A plain boto3 client, to look at (or tamper with) exactly what is stored."""
    return boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name=local_s3.REGION,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture
def bucket(raw: Any) -> str:
    name = f"dg-{uuid.uuid4().hex[:12]}"
    raw.create_bucket(Bucket=name)
    return name


CliRun = Callable[..., Result]


@pytest.fixture
def cli(s3_server: local_s3.LocalS3, references: str) -> CliRun:
    """Run `deltaglider ARGS…` in-process against the server; returns click's Result."""

    def run(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main,
            ["--endpoint-url", s3_server.endpoint, *args],
            env=env,
            input=input,
            catch_exceptions=False,
        )

    return run


@pytest.fixture(scope="session")
def wheel_series() -> list[Path]:
    """Eight consecutive boto3 wheels from PyPI (cached under .cache/)."""
    return artifacts.fetch(*artifacts.WHEEL_SERIES)


@pytest.fixture(scope="session")
def sdist_series() -> list[Path]:
    """Consecutive six sdists (.tar.gz: a compressed stream)."""
    return artifacts.fetch(*artifacts.SDIST_SERIES, sdist=True)

"""Fixtures for the e2e suite: real S3 servers on 127.0.0.1, real artifacts, the real CLI.

Every test that takes `s3_server` runs once per server: SeaweedFS and moto always; MinIO and
LocalStack through testcontainers when a Docker engine answers (skipped cleanly otherwise).
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
import local_s3  # noqa: E402

from deltaglider.cli import main  # noqa: E402
from deltaglider.config import Settings  # noqa: E402
from deltaglider.engine import Engine  # noqa: E402

SERVERS = ["seaweedfs", "moto", "minio", "localstack"]


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _start_container(kind: str) -> local_s3.LocalS3:
    if kind == "minio":
        from testcontainers.minio import MinioContainer

        minio = MinioContainer(access_key=local_s3.ACCESS_KEY, secret_key=local_s3.SECRET_KEY)
        minio.start()
        host, port = minio.get_container_host_ip(), minio.get_exposed_port(9000)
        return local_s3.LocalS3("minio", f"http://{host}:{port}", minio.stop)
    from testcontainers.localstack import LocalStackContainer

    localstack = LocalStackContainer().with_services("s3")
    localstack.start()
    return local_s3.LocalS3("localstack", localstack.get_url(), localstack.stop)


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


@pytest.fixture(scope="session", params=SERVERS)
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[local_s3.LocalS3]:
    kind: str = request.param
    if kind in ("minio", "localstack"):
        if not docker_answers():
            pytest.skip(f"{kind} needs a Docker engine and none answers")
        server = _start_container(kind)
    elif kind == "seaweedfs":
        server = local_s3.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    else:
        server = local_s3.start_moto()
    yield server
    server.stop()


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

"""Cost warnings before a migration: the EC2 region from the instance metadata service
(IMDSv2: a token PUT, then the region GET with it) and the cross-region cases. IMDS cannot
exist off EC2, so a local HTTP server plays it here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from deltaglider.migration import cost_warnings
from deltaglider.s3 import ec2_region


class FakeImds(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        assert self.path == "/latest/api/token"
        assert self.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        self._answer(b"token-123")

    def do_GET(self) -> None:
        if (
            self.path != "/latest/meta-data/placement/region"
            or self.headers.get("X-aws-ec2-metadata-token") != "token-123"
        ):
            self.send_response(401)
            self.end_headers()
            return
        self._answer(b"eu-central-1")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeImds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_region_comes_from_imdsv2(imds: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)
    assert ec2_region() == "eu-central-1"
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert ec2_region() is None


def test_no_imds_is_no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    server = HTTPServer(("127.0.0.1", 0), FakeImds)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}")
    assert ec2_region() is None
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "file:///etc/passwd")
    assert ec2_region() is None


def test_cost_warnings() -> None:
    assert cost_warnings("s3://a", "us-east-1", "s3://b", "us-east-1", None) == []
    assert cost_warnings("s3://a", None, "s3://b", None, "eu-west-1") == []
    [cross] = cost_warnings("s3://a", "us-east-1", "s3://b", "eu-west-1", None)
    assert "s3://a is in us-east-1 and s3://b in eu-west-1" in cross
    away = cost_warnings("s3://a", "us-east-1", "s3://b", "us-east-1", "eu-west-1")
    assert len(away) == 2 and all("this machine runs in eu-west-1" in line for line in away)

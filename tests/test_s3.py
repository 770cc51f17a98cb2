"""`s3.Store` against a stub boto3 client, for what no real server sends: a GET body longer
than the length its own response announced (HTTP stacks cut at Content-Length; a broken
gateway or a proxy rewriting bodies need not)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from deltaglider.config import Settings
from deltaglider.errors import IntegrityError
from deltaglider.s3 import Store


class OverlongBody:
    """Sends `chunks` chunks of 1 MiB whatever length was announced."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        for _ in range(self.chunks):
            yield b"x" * (1 << 20)


class StubClient:
    def __init__(self, announced: int, chunks: int) -> None:
        self.announced, self.chunks = announced, chunks

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "ContentLength": self.announced,
            "ETag": '"e"',
            "LastModified": datetime(2026, 1, 1, tzinfo=UTC),
            "Body": OverlongBody(self.chunks),
        }


def test_a_body_past_its_announced_length_stops_before_the_excess_is_written() -> None:
    store = Store(StubClient(announced=1000, chunks=64), Settings())  # type: ignore[arg-type]
    out = io.BytesIO()
    with pytest.raises(IntegrityError, match="more than the 1000 bytes it announced"):
        store.download("b", "k", out)
    assert out.tell() == 0  # not one byte past the announced length reached the sink


def test_a_body_of_its_announced_length_is_written_whole() -> None:
    store = Store(StubClient(announced=2 << 20, chunks=2), Settings())  # type: ignore[arg-type]
    out = io.BytesIO()
    assert store.download("b", "k", out).size == 2 << 20
    assert out.tell() == 2 << 20

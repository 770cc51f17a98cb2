"""boto3-shaped pieces of the SDK: response metadata, `ClientError`s with S3's codes, the
ETag a logical object shows, `get_object`'s streaming body and ranges, and listing pages with
their continuation tokens and paginators.

Owns: the shapes boto3 users match on. Must not decide anything about storage (the engine
does) or hold client state.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import botocore.exceptions

from deltaglider.engine import Engine
from deltaglider.errors import NotFoundError, StorageError, UsageError
from deltaglider.files import CHUNK_SIZE
from deltaglider.metadata import DELTA_SUFFIX, ObjectKind, delta_reference, user_metadata
from deltaglider.models import ListEntry, ObjectHead
from deltaglider.reading import Located
from deltaglider.shapes import (
    CommonPrefix,
    ListObjectsResponse,
    ListObjectsV2Response,
    ObjectEntry,
    ResponseMetadata,
)

_TOKEN_PREFIX = "dg1:"  # noqa: S105 - a pagination token prefix, not a secret


def response_metadata(status: int = 200) -> ResponseMetadata:
    return {
        "RequestId": "",
        "HostId": "",
        "HTTPStatusCode": status,
        "HTTPHeaders": {},
        "RetryAttempts": 0,
    }


def client_error(
    code: str, message: str, status: int, operation: str
) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": cast(Any, response_metadata(status)),
        },
        operation,
    )


@contextlib.contextmanager
def as_client_errors(operation: str, *, head: bool = False) -> Iterator[None]:
    """Engine errors as boto3 raises them: ClientError with S3's code (a HEAD's is "404")."""
    try:
        yield
    except NotFoundError as error:
        code = "404" if head else error.code
        raise client_error(code, "Not Found" if head else str(error), 404, operation) from None
    except StorageError as error:
        if isinstance(
            error.cause, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError
        ):
            raise error.cause from None
        raise
    except UsageError as error:
        raise client_error("InvalidArgument", str(error), 400, operation) from None


def etag_of(located: Located, sha256: str | None = None) -> str:
    md5 = located.md5
    if md5:
        return f'"{md5}"'
    if located.kind is ObjectKind.PLAIN:
        return f'"{located.head.etag}"'
    return f'"{(sha256 or located.sha256 or "")[:32]}"'  # older writers kept no MD5


class StreamingBody:
    """`get_object()["Body"]`: read(), iter_chunks(), iter_lines(), a context manager.

    The bytes were reconstructed and verified before this object exists; they live in an
    anonymous temp file that disappears when the body is closed."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self._handle = handle
        self._remaining = length
        self.content_length = length

    def read(self, amt: int | None = None) -> bytes:
        size = self._remaining if amt is None or amt < 0 else min(amt, self._remaining)
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def iter_lines(self, chunk_size: int = 1024, keepends: bool = False) -> Iterator[bytes]:
        pending = b""
        for chunk in self.iter_chunks(chunk_size):
            lines = (pending + chunk).splitlines(True)
            pending = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
            for line in lines:
                yield line if keepends else line.rstrip(b"\r\n")
        if pending:
            yield pending

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks(CHUNK_SIZE)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> StreamingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_range(header: str, size: int) -> tuple[int, int]:
    """`bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive (start, end); ClientError if bad."""
    unit, _, spec = header.partition("=")
    first, sep, last = spec.partition("-")
    try:
        if unit.strip() != "bytes" or not sep or "," in spec:
            raise ValueError
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start > end or start >= size:
            raise ValueError
    except ValueError:
        raise client_error(
            "InvalidRange", "The requested range is not satisfiable", 416, "GetObject"
        ) from None
    return start, end


def next_token(after: str) -> str:
    return base64.urlsafe_b64encode((_TOKEN_PREFIX + after).encode("utf-8")).decode("ascii")


def token_start(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        text = ""
    if not text.startswith(_TOKEN_PREFIX):
        raise client_error(
            "InvalidArgument", "The continuation token provided is incorrect", 400, "ListObjectsV2"
        )
    return text[len(_TOKEN_PREFIX) :]


class Paginator:
    """`get_paginator("list_objects_v2" | "list_objects")` over the logical view."""

    def __init__(self, list_page: Callable[..., Any], token_key: str, next_key: str) -> None:
        self._list_page = list_page
        self._token_key, self._next_key = token_key, next_key

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        config = kwargs.pop("PaginationConfig", None) or {}
        if config.get("PageSize"):
            kwargs["MaxKeys"] = int(config["PageSize"])
        if config.get("StartingToken"):
            kwargs[self._token_key] = config["StartingToken"]
        budget = config.get("MaxItems")
        while True:
            if budget is not None:
                kwargs["MaxKeys"] = min(kwargs.get("MaxKeys", 1000), budget)
            page = self._list_page(**kwargs)
            yield page
            if budget is not None:
                budget -= len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
            following = page.get(self._next_key)
            if not page["IsTruncated"] or not following or budget == 0:
                return
            kwargs[self._token_key] = following


def last_key(contents: list[ObjectEntry], prefixes: list[CommonPrefix]) -> str:
    return max([c["Key"] for c in contents] + [p["Prefix"] for p in prefixes])


@dataclass(frozen=True)
class ListingRequest:
    """One listing call's page: where it starts (`token` wins over `start_after`)."""

    prefix: str
    delimiter: str
    max_keys: int
    token: str | None
    start_after: str

    @property
    def after(self) -> str:
        return token_start(self.token) if self.token else self.start_after


def list_page(
    engine: Engine, bucket: str, page: ListingRequest, metadata: bool = False, listed: bool = False
) -> tuple[list[ObjectEntry], list[CommonPrefix], bool]:
    """One page of entries; `metadata`: each with its user metadata and how it is stored
    (HEADs where the page has none), `listed`: how it is stored as the listing shows it."""
    if page.max_keys <= 0:
        return [], [], False
    found = engine.listing_page(
        bucket,
        page.prefix,
        delimiter=page.delimiter,
        start_after=page.after,
        max_keys=page.max_keys,
    )
    contents = [
        _entry(engine, bucket, e, metadata, listed) for e in found.entries if not e.is_prefix
    ]
    prefixes: list[CommonPrefix] = [{"Prefix": e.key} for e in found.entries if e.is_prefix]
    return contents, prefixes, found.truncated


def _entry(
    engine: Engine, bucket: str, entry: ListEntry, metadata: bool, listed: bool
) -> ObjectEntry:
    head: ObjectHead | None = entry.head
    etag = etag_of(Located(head.key, head, ObjectKind.DELTA)) if head else f'"{entry.etag}"'
    assert entry.last_modified is not None
    found: ObjectEntry = {
        "Key": entry.key,
        "LastModified": entry.last_modified,
        "ETag": etag,
        "Size": entry.size,
        "StorageClass": "STANDARD",
    }
    if metadata:  # a delta's HEAD came with the page; a whole object's is asked for now
        head = entry.head or engine.head_stored(bucket, entry.stored_key or entry.key)
        found["Metadata"] = listed_metadata(entry, head)
    elif listed:  # 6.x's list_objects: from the listing alone, no HEAD
        found["Metadata"] = listed_metadata(entry, None)
    return found


def listed_metadata(entry: ListEntry, head: ObjectHead | None) -> dict[str, str]:
    """`FetchMetadata=True` (deltaglider 6.x): the user's own metadata, and how the file is
    stored, under 6.x's `deltaglider-*` names."""
    is_delta = entry.stored_key.endswith(DELTA_SUFFIX)
    found = user_metadata(head.metadata) if head is not None else {}
    found["deltaglider-is-delta"] = "true" if is_delta else "false"
    found["deltaglider-original-size"] = str(entry.size)
    ratio = entry.stored_size / entry.size if is_delta and entry.size else 0.0
    found["deltaglider-compression-ratio"] = f"{ratio:.6f}"
    if is_delta and entry.head is not None:
        found["deltaglider-reference-key"] = delta_reference(entry.head.metadata, entry.head.key)
    return found


def add_entries(
    response: dict[str, Any],
    contents: list[ObjectEntry],
    prefixes: list[CommonPrefix],
    delimiter: str,
) -> None:
    """The optional listing keys, present only when non-empty, as S3 returns them."""
    if contents:
        response["Contents"] = contents
    if prefixes:
        response["CommonPrefixes"] = prefixes
    if delimiter:
        response["Delimiter"] = delimiter


def list_v2_response(
    engine: Engine, bucket: str, page: ListingRequest, metadata: bool = False
) -> ListObjectsV2Response:
    """`list_objects_v2`'s response for one page of the logical view."""
    with as_client_errors("ListObjectsV2"):
        contents, prefixes, truncated = list_page(engine, bucket, page, metadata)
    response: ListObjectsV2Response = {
        "IsTruncated": truncated,
        "Name": bucket,
        "Prefix": page.prefix,
        "MaxKeys": page.max_keys,
        "KeyCount": len(contents) + len(prefixes),
        "ResponseMetadata": response_metadata(),
    }
    add_entries(cast(dict[str, Any], response), contents, prefixes, page.delimiter)
    if page.token:
        response["ContinuationToken"] = page.token
    if page.start_after:
        response["StartAfter"] = page.start_after
    if truncated:
        response["NextContinuationToken"] = next_token(last_key(contents, prefixes))
    return response


def list_v1_response(
    engine: Engine, bucket: str, page: ListingRequest, marker: str, metadata: bool = False
) -> ListObjectsResponse:
    """`list_objects`' response for one page: boto3's V1 keys (`NextMarker` with a
    delimiter, as S3), and when truncated `NextContinuationToken` for 6.x's loops."""
    with as_client_errors("ListObjects"):
        contents, prefixes, truncated = list_page(engine, bucket, page, metadata, listed=True)
    response: ListObjectsResponse = {
        "IsTruncated": truncated,
        "Name": bucket,
        "Prefix": page.prefix,
        "Marker": marker,
        "MaxKeys": page.max_keys,
        "ResponseMetadata": response_metadata(),
    }
    add_entries(cast(dict[str, Any], response), contents, prefixes, page.delimiter)
    if page.token:
        response["ContinuationToken"] = page.token
    if truncated:
        last = last_key(contents, prefixes)
        response["NextContinuationToken"] = next_token(last)
        if page.delimiter:  # as S3: without a delimiter, V1 loops take the last key
            response["NextMarker"] = last
    return response

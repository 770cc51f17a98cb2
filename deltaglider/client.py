"""A boto3-shaped S3 client whose object calls are delta-aware: `create_client()` works where
code used `boto3.client("s3")`.

Owns: translating boto3 request parameters and response dicts to and from `Engine` calls,
ClientError codes, logical-order pagination tokens, presigned URLs for delta objects
(rehydrated under `.deltaglider/tmp/`), and falling through to the underlying boto3 client for
every method it does not override. Must not decide how anything is stored (the engine does);
every object call goes through an `Engine` method, and boto3 is reached only through
`Engine.boto3_client` for the methods passed through unchanged.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import botocore.exceptions

from deltaglider.client_extras import ClientExtras
from deltaglider.config import Settings, check_log_level
from deltaglider.engine import Engine
from deltaglider.errors import NotFoundError
from deltaglider.files import CHUNK_SIZE, temp_root
from deltaglider.log import configure_library_logging
from deltaglider.maintenance import DEFAULT_CONTENT_TYPE
from deltaglider.metadata import TMP_PREFIX, delta_key, now, user_metadata
from deltaglider.models import (
    StoredAs,
    UploadOptions,
)
from deltaglider.reading import Located
from deltaglider.responses import (
    ListingRequest,
    Paginator,
    StreamingBody,
    as_client_errors,
    etag_of,
    list_v1_response,
    list_v2_response,
    parse_range,
    response_metadata,
)
from deltaglider.shapes import (
    CopyObjectResponse,
    DeletedObject,
    DeleteError,
    DeleteObjectResponse,
    DeleteObjectsResponse,
    DeltaGliderInfo,
    GetObjectResponse,
    HeadObjectResponse,
    ListObjectsResponse,
    ListObjectsV2Response,
    PurgeResponse,
    PutObjectResponse,
)
from deltaglider.urls import base_name

_DELTA_FORMS = (StoredAs.DELTA, StoredAs.REFERENCE)  # what 6.x called the stored key
_PUT_ARGS = {"Bucket", "Key", "Body", "Metadata", "ContentType", "Tagging"}


def create_client(
    endpoint_url: str | None = None,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    profile_name: str | None = None,
    max_ratio: float | None = None,
    log_level: str | None = None,
    **settings: Any,
) -> DeltagliderClient:
    """A delta-aware S3 client. Arguments are boto3's; `max_ratio`, `log_level` (as
    deltaglider 6.x: DEBUG, INFO, WARNING or ERROR on stderr; DG_LOG_LEVEL when not given)
    and other `Settings` fields (e.g. `codec="zstd"`, `cache_backend="memory"`) are
    deltaglider's. Unset values come from the environment (`AWS_*`, `DG_*`) as for the CLI."""
    level = check_log_level(log_level) or Settings.from_env().log_level
    if level is not None:
        configure_library_logging(level)
    base = Settings.from_env().with_overrides(
        endpoint_url=endpoint_url,
        region=region_name,
        profile=profile_name,
        max_ratio=max_ratio,
        **settings,
    )
    credentials = {
        k: v
        for k, v in {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }.items()
        if v
    }
    return DeltagliderClient(Engine(base, credentials=credentials, boto3_methods=True))


class DeltagliderClient(ClientExtras):
    """Delta-aware object calls with boto3's names, parameters, responses and errors.

    Methods not defined here (bucket policies, ACLs, create_bucket, list_buckets, …) are the
    underlying boto3 client's, unchanged."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.boto3_client = engine.boto3_client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.boto3_client, name)

    # ------------------------------------------------------------------- writes

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: Any = b"",
        Metadata: dict[str, str] | None = None,
        ContentType: str | None = None,
        Tagging: str | None = None,
        **unsupported: Any,
    ) -> PutObjectResponse:
        """Body: bytes, str, a readable file object, or a `pathlib.Path` to upload."""
        _refuse(_client_args_checked(self.engine, unsupported), "PutObject")
        with as_client_errors("PutObject"), self._spooled(Key, Body) as path:
            options = UploadOptions(
                metadata=Metadata or {}, content_type=ContentType, tagging=Tagging
            )
            result = self.engine.upload(path, Bucket, Key, options)
        info: DeltaGliderInfo = {  # deltaglider 6.x's extra key, with its names
            "OriginalSizeMB": result.original_size_mb,
            "StoredSizeMB": result.stored_size_mb,
            "IsDelta": result.is_delta,
            "CompressionRatio": result.delta_ratio or 1.0,
            "SavingsPercent": result.savings_percent,
            "StoredAs": delta_key(Key) if result.stored_as in _DELTA_FORMS else Key,
            "Operation": result.operation,
        }
        response: PutObjectResponse = {
            "ETag": f'"{result.md5}"',
            "ResponseMetadata": response_metadata(),
            "DeltaGliderInfo": info,
        }
        return response

    @contextlib.contextmanager
    def _spooled(self, key: str, body: Any) -> Iterator[Path]:
        """The body as a local file (the key, not the file's name, decides delta eligibility)."""
        if isinstance(body, Path):
            yield body
            return
        with self.engine.work_directory() as scratch:
            path = Path(scratch) / "body"  # never named after the key: names have length limits
            with path.open("wb") as out:
                if isinstance(body, str):
                    out.write(body.encode("utf-8"))
                elif isinstance(body, bytes | bytearray | memoryview):
                    out.write(body)
                else:
                    shutil.copyfileobj(body, out, CHUNK_SIZE)
            yield path

    def upload_file(
        self,
        Filename: str,
        Bucket: str,
        Key: str,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Callable[[int], None] | None = None,
        Config: Any = None,
    ) -> None:
        extra = _client_args_checked(self.engine, dict(ExtraArgs or {}))
        _refuse({k: v for k, v in extra.items() if k not in _PUT_ARGS}, "PutObject")
        with as_client_errors("PutObject"):
            options = UploadOptions(
                metadata=extra.get("Metadata"),
                content_type=extra.get("ContentType"),
                tagging=extra.get("Tagging"),
            )
            self.engine.upload(Path(Filename), Bucket, Key, options, Callback)

    def upload_fileobj(
        self,
        Fileobj: BinaryIO,
        Bucket: str,
        Key: str,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Callable[[int], None] | None = None,
        Config: Any = None,
    ) -> None:
        with self._spooled(Key, Fileobj) as path:
            self.upload_file(str(path), Bucket, Key, ExtraArgs, Callback, Config)

    def copy_object(
        self,
        *,
        Bucket: str,
        Key: str,
        CopySource: str | dict[str, str],
        MetadataDirective: str = "COPY",
        Metadata: dict[str, str] | None = None,
        ContentType: str | None = None,
        **unsupported: Any,
    ) -> CopyObjectResponse:
        _refuse(_client_args_checked(self.engine, unsupported), "CopyObject")
        if isinstance(CopySource, str):
            source_bucket, _, source_key = (
                urllib.parse.unquote(CopySource).lstrip("/").partition("/")
            )
        else:
            source_bucket, source_key = CopySource["Bucket"], CopySource["Key"]
        replace = MetadataDirective == "REPLACE"
        with as_client_errors("CopyObject"):
            options = UploadOptions(
                metadata=(Metadata or {}) if replace else None,
                content_type=ContentType if replace else None,
            )
            result = self.engine.copy(source_bucket, source_key, Bucket, Key, options)
        return {
            "CopyObjectResult": {"ETag": f'"{result.md5}"', "LastModified": now()},
            "ResponseMetadata": response_metadata(),
        }

    def delete_object(
        self,
        *,
        Bucket: str,
        Key: str,
        **unsupported: Any,
    ) -> DeleteObjectResponse:
        """Deleting a key that does not exist succeeds, as in S3; a missing bucket does not."""
        _refuse(unsupported, "DeleteObject")
        with as_client_errors("DeleteObject"):
            try:
                self.engine.delete(Bucket, Key)
            except NotFoundError as error:
                if error.code == "NoSuchBucket":
                    raise
        return {"ResponseMetadata": response_metadata(204)}

    def delete_objects(
        self,
        *,
        Bucket: str,
        Delete: dict[str, Any],
        **unsupported: Any,
    ) -> DeleteObjectsResponse:
        _refuse(unsupported, "DeleteObjects")
        deleted: list[DeletedObject] = []
        errors: list[DeleteError] = []
        for item in Delete.get("Objects", []):
            key = item["Key"]
            try:
                self.delete_object(Bucket=Bucket, Key=key)
                deleted.append({"Key": key})
            except botocore.exceptions.ClientError as error:
                info = error.response.get("Error", {})
                errors.append(
                    {
                        "Key": key,
                        "Code": str(info.get("Code", "")),
                        "Message": str(info.get("Message", "")),
                    }
                )
        response: DeleteObjectsResponse = {"ResponseMetadata": response_metadata()}
        if deleted and not Delete.get("Quiet"):
            response["Deleted"] = deleted
        if errors:
            response["Errors"] = errors
        return response

    # -------------------------------------------------------------------- reads

    def head_object(
        self,
        *,
        Bucket: str,
        Key: str,
        **unsupported: Any,
    ) -> HeadObjectResponse:
        _refuse(_client_args_checked(self.engine, unsupported, read=True), "HeadObject")
        with as_client_errors("HeadObject", head=True):
            located = self._locate(Bucket, Key)
        return self._head_shape(located)

    def _locate(self, bucket: str, key: str) -> Located:
        if not base_name(key):
            raise NotFoundError(f"s3://{bucket}/{key}: no such object")
        return self.engine.locate(bucket, key)

    def _head_shape(self, located: Located, sha256: str | None = None) -> HeadObjectResponse:
        head = located.head
        return {
            "ContentLength": located.logical_size,
            "ETag": etag_of(located, sha256),
            "LastModified": head.last_modified,
            "Metadata": user_metadata(head.metadata),
            "ContentType": head.content_type or DEFAULT_CONTENT_TYPE,
            "AcceptRanges": "bytes",
            "ResponseMetadata": response_metadata(),
        }

    def get_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Range: str | None = None,
        **unsupported: Any,
    ) -> GetObjectResponse:
        """The logical file, reconstructed and verified, as a streaming `Body`."""
        _refuse(_client_args_checked(self.engine, unsupported, read=True), "GetObject")
        handle = tempfile.TemporaryFile(dir=temp_root())  # noqa: SIM115 - the body owns it
        try:
            with as_client_errors("GetObject"):
                if not base_name(Key):
                    raise NotFoundError(f"s3://{Bucket}/{Key}: no such object")
                located, digest = self.engine.read(Bucket, Key, cast(BinaryIO, handle))
            response = cast(GetObjectResponse, dict(self._head_shape(located, digest.sha256)))
            response["ContentLength"] = digest.size
            start, end = 0, digest.size - 1
            if Range is not None:
                start, end = parse_range(Range, digest.size)
                response["ContentRange"] = f"bytes {start}-{end}/{digest.size}"
                response["ContentLength"] = end - start + 1
                response["ResponseMetadata"] = response_metadata(206)
            handle.seek(start)
            response["Body"] = StreamingBody(handle, max(0, end - start + 1))
            return response
        except BaseException:
            handle.close()
            raise

    def download_file(
        self,
        Bucket: str,
        Key: str,
        Filename: str,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Callable[[int], None] | None = None,
        Config: Any = None,
    ) -> None:
        _refuse(_client_args_checked(self.engine, dict(ExtraArgs or {}), read=True), "GetObject")
        with as_client_errors("GetObject", head=True):
            self.engine.download(Bucket, Key, Path(Filename), Callback)

    def download_fileobj(
        self,
        Bucket: str,
        Key: str,
        Fileobj: BinaryIO,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Callable[[int], None] | None = None,
        Config: Any = None,
    ) -> None:
        response = self.get_object(Bucket=Bucket, Key=Key, **(ExtraArgs or {}))
        with response["Body"] as body:
            for chunk in body.iter_chunks(CHUNK_SIZE):
                Fileobj.write(chunk)
                if Callback is not None:
                    Callback(len(chunk))

    # ----------------------------------------------------------------- listings

    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str = "",
        MaxKeys: int = 1000,
        ContinuationToken: str | None = None,
        StartAfter: str | None = None,
        FetchOwner: bool = False,
        FetchMetadata: bool = False,
        **unsupported: Any,
    ) -> ListObjectsV2Response:
        """The logical view in logical key order, with logical sizes and ETags (FetchMetadata,
        as deltaglider 6.x: each entry's `Metadata` too). Arguments it cannot honour raise."""
        _refuse({**unsupported, **({"FetchOwner": True} if FetchOwner else {})}, "ListObjectsV2")
        page = ListingRequest(Prefix, Delimiter, MaxKeys, ContinuationToken, StartAfter or "")
        return list_v2_response(self.engine, Bucket, page, FetchMetadata)

    def list_objects(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str = "",
        Marker: str = "",
        MaxKeys: int = 1000,
        ContinuationToken: str | None = None,
        StartAfter: str | None = None,
        FetchMetadata: bool = False,
        **unsupported: Any,
    ) -> ListObjectsResponse:
        """boto3's ListObjects (V1, `Marker`/`NextMarker`) and deltaglider 6.x's
        `list_objects` (`ContinuationToken`/`NextContinuationToken`, `StartAfter`,
        `FetchMetadata`) in one: a truncated page carries both next markers, so either
        documented loop reaches the end. Arguments it cannot honour raise."""
        _refuse(unsupported, "ListObjects")
        start = max(Marker, StartAfter or "")
        page = ListingRequest(Prefix, Delimiter, MaxKeys, ContinuationToken, start)
        return list_v1_response(self.engine, Bucket, page, Marker, FetchMetadata)

    def get_paginator(self, operation_name: str) -> Any:
        if operation_name == "list_objects_v2":
            return Paginator(self.list_objects_v2, "ContinuationToken", "NextContinuationToken")
        if operation_name == "list_objects":
            return Paginator(self.list_objects, "Marker", "NextMarker")
        return cast(Any, self.boto3_client).get_paginator(operation_name)

    # --------------------------------------------------------- presigned URLs

    def generate_presigned_url(
        self,
        ClientMethod: str,
        Params: dict[str, Any] | None = None,
        ExpiresIn: int = 3600,
        HttpMethod: str | None = None,
    ) -> str:
        """For `get_object` of a delta: the file is rehydrated once under `.deltaglider/tmp/`
        (kept until the URL expires, then removed by `purge_temp_files`) and the URL serves
        it with its original name; direct and plain objects get a plain presigned URL."""
        operation = "GetObject" if ClientMethod == "get_object" else ClientMethod
        with as_client_errors(operation):
            return self.engine.presigned_url(ClientMethod, Params or {}, ExpiresIn, HttpMethod)

    def purge_temp_files(self, Bucket: str) -> PurgeResponse:
        """Delete rehydrated files whose presigned URLs have expired (6.x's keys too)."""
        with as_client_errors("ListObjectsV2"):
            purged = self.engine.purge_rehydrations(Bucket)
        return {
            "Deleted": len(purged.expired),
            "Kept": purged.kept,
            "ResponseMetadata": response_metadata(),
            "bucket": Bucket,
            "prefix": TMP_PREFIX,
            "deleted_count": len(purged.expired),
            "expired_count": len(purged.expired),
            "error_count": 0,
            "total_size_freed": purged.freed_bytes,
            "duration_seconds": round(purged.seconds, 3),
            "errors": [],
        }

    def close(self) -> None:
        self.engine.close()


_CLIENT_ARGS = {  # boto3's request arguments the client sends itself, and its field for each
    "ServerSideEncryption": "server_side_encryption",
    "SSEKMSKeyId": "sse_kms_key_id",
    "StorageClass": "storage_class",
    "ACL": "acl",
    "SSECustomerAlgorithm": "sse_customer_key",
    "SSECustomerKey": "sse_customer_key",
    "SSECustomerKeyMD5": "sse_customer_key",  # boto3 computes it; accepted, not compared
    "CopySourceSSECustomerAlgorithm": "sse_customer_key",  # one key for source and target
    "CopySourceSSECustomerKey": "sse_customer_key",
    "CopySourceSSECustomerKeyMD5": "sse_customer_key",
}


def _client_args_checked(
    engine: Engine, given: dict[str, Any], read: bool = False
) -> dict[str, Any]:
    """`given` without the arguments the client already sends with every object it writes
    (ServerSideEncryption, SSEKMSKeyId, StorageClass, ACL, SSE-C) or, for a `read`, every
    request on an object (SSE-C); one that differs is refused, naming `create_client(...)`'s
    field, since a write's reference and markers, and a read's reference, must carry it too."""
    sent: dict[str, Any] = dict(engine.settings.customer_key_args)
    if not read:
        sent.update(engine.settings.write_args)
    ours = [n for n in given if n in _CLIENT_ARGS]
    for name in [n for n in ours if not read or _CLIENT_ARGS[n] == "sse_customer_key"]:
        value = given.pop(name)
        if isinstance(value, str) and name.endswith("SSECustomerKey"):
            value = value.encode()
        if not name.endswith("MD5") and value != sent.get(name.removeprefix("CopySource")):
            raise botocore.exceptions.ParamValidationError(
                report=f"{name}: give it to create_client({_CLIENT_ARGS[name]}=...), so every "
                "object a call reads or writes (its reference, markers) carries it"
            )
    return given


def _refuse(unsupported: dict[str, Any], operation: str) -> None:
    if unsupported:
        names = ", ".join(sorted(unsupported))
        raise botocore.exceptions.ParamValidationError(
            report=f"{operation}: deltaglider does not support {names}"
        )


__all__ = ["DeltaGliderClient", "DeltagliderClient", "StreamingBody", "create_client"]


DeltaGliderClient = DeltagliderClient  # deltaglider 6.x's spelling

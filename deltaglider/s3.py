"""Every byte that leaves or enters the machine over S3 goes through this module.

Owns: the boto3 client and its configuration (checksums `when_required`, SigV4, standard
retries), multipart transfers, conditional writes, listing pagination, and turning botocore
errors into deltaglider errors with one readable line. Must not decide anything about deltas.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import botocore.exceptions
import botocore.session
import urllib3.exceptions
from botocore.config import Config

from deltaglider import interrupt
from deltaglider.config import Settings
from deltaglider.errors import IntegrityError, NotFoundError, StorageError, UsageError
from deltaglider.files import CHUNK_SIZE, Progress, Sink
from deltaglider.log import get_logger
from deltaglider.metadata import PROBE_PREFIX, SETTINGS_KEY, is_stats_cache
from deltaglider.models import Bucket, ListedPrefix, ObjectHead

log = get_logger(__name__)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
else:
    S3Client = Any


class ObjectStore(Protocol):
    """What the engine needs of an object store: `Store` over S3, the scratch store of
    `analyze` and `migrate --dryrun` (local disk), and the tests' in-memory store."""

    client: Any  # the boto3/botocore client (None where there is no server)

    def head(self, bucket: str, key: str) -> ObjectHead | None: ...

    def download(self, bucket: str, key: str, out: Sink) -> ObjectHead: ...

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        metadata: dict[str, str],
        *,
        sha256: str | None,
        headers: dict[str, str] | None = None,
        exclusive: bool = False,
        progress: Progress | None = None,
    ) -> None: ...

    def put_bytes(self, bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None: ...

    def conditional_writes_work(self, bucket: str, prefix: str) -> bool: ...

    def copy_within(
        self, bucket: str, source: str, target: str, metadata: dict[str, str] | None = None
    ) -> None: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def delete_many(self, bucket: str, keys: list[str]) -> list[str]: ...

    def iter_listing(
        self, bucket: str, prefix: str, delimiter: str = "", start_after: str = ""
    ) -> Iterator[list[ObjectHead | ListedPrefix]]: ...

    def incomplete_uploads(self, bucket: str, prefix: str) -> list[tuple[str, str, datetime]]: ...

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None: ...

    def bucket_exists(self, bucket: str) -> bool: ...

    def list_buckets(self) -> list[Bucket]: ...

    def create_bucket(self, bucket: str, region: str | None = None) -> None: ...

    def delete_bucket(self, bucket: str) -> None: ...

    def presigned_url(
        self, method: str, params: dict[str, Any], expires_in: int, http_method: str | None
    ) -> str: ...

    def bucket_region(self, bucket: str) -> str | None: ...

    def bucket_acl(self, bucket: str) -> dict[str, Any]: ...

    def put_bucket_acl(self, bucket: str, acl: dict[str, Any]) -> None: ...


DOWNLOAD_ATTEMPTS = 6
SINGLE_PUT_LIMIT = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
_STREAM_ERRORS = (
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    urllib3.exceptions.ProtocolError,
    ConnectionError,
)


def data_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_unchanged(actual: str, expected: str, path: Path) -> None:
    if actual != expected:
        raise IntegrityError(
            f"{path} changed while it was being uploaded; nothing was stored "
            "(upload it again once it is complete)"
        )


def _backoff(attempt: int) -> None:
    """Exponential backoff with full jitter: up to 0.1 s, 0.2 s, 0.4 s, … capped at 5 s."""
    time.sleep(random.uniform(0, min(5.0, 0.1 * 2**attempt)))


class AlreadyExists(Exception):
    """A conditional write lost: the key was created by someone else first."""


def make_client(
    settings: Settings, credentials: dict[str, str] | None = None, *, boto3_methods: bool = False
) -> S3Client:
    """An S3 client that works against S3-compatible stores as well as AWS.

    `credentials` (aws_access_key_id, aws_secret_access_key, aws_session_token) override the
    usual chain; they are handed to botocore and never stored or logged here. The client is
    botocore's (boto3 and s3transfer take ~0.1 s to import and set up, a tenth of a small
    upload); with `boto3_methods` it is boto3's, with the methods boto3 adds (`upload_fileobj`,
    `copy`, `generate_presigned_post`, …) that the SDK passes through."""
    given = {k: v for k, v in (credentials or {}).items() if v}
    config = Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.max_concurrency * 2),
    )
    options: dict[str, Any] = {
        "endpoint_url": settings.endpoint_url,
        "config": config,
        "verify": settings.verify_ssl,
        "region_name": settings.region,
        **given,
    }
    try:
        if boto3_methods:
            import boto3.session

            session = boto3.session.Session(profile_name=settings.profile)
            return session.client("s3", **options)
        core = botocore.session.Session(profile=settings.profile)
        return cast(S3Client, core.create_client("s3", **options))
    except botocore.exceptions.BotoCoreError as error:
        raise UsageError(f"cannot create an S3 client: {error}") from None


def cloudwatch_publisher(
    settings: Settings, credentials: dict[str, str] | None = None
) -> Callable[[str, list[dict[str, Any]]], None]:
    """PutMetricData through a CloudWatch client of the same profile, region and credentials
    (its endpoint botocore's own choice: AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL, or
    AWS), made on the first batch."""
    clients: list[Any] = []

    def publish(namespace: str, points: list[dict[str, Any]]) -> None:
        if not clients:
            given: dict[str, Any] = {k: v for k, v in (credentials or {}).items() if v}
            core = botocore.session.Session(profile=settings.profile)
            region = settings.region or core.get_config_variable("region") or "us-east-1"
            clients.append(core.create_client("cloudwatch", region_name=region, **given))
        clients[0].put_metric_data(Namespace=namespace, MetricData=points)

    return publish


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: botocore.exceptions.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _translate(error: Exception, what: str) -> Exception:
    """One readable line for an S3 failure on `what` (`s3://bucket/key`)."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "") or code
        if code == "NoSuchBucket":  # name the bucket only: never an internal key of ours
            bucket = what.removeprefix("s3://").split("/", 1)[0]
            return NotFoundError(f"s3://{bucket}: bucket does not exist", "NoSuchBucket")
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFoundError(f"{what}: no such key")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(f"{what}: access denied ({code}); check your credentials", error)
        if code == "400" or "customer" in message.lower():  # a HEAD's 400 has no body
            hint = "an SSE-C object is read with its key (--sse-c-key or DG_SSE_C_KEY)"
            return StorageError(f"{what}: S3 error {code}: {message}; {hint}", error)
        return StorageError(f"{what}: S3 error {code}: {message}", error)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return StorageError("no AWS credentials found (set AWS_ACCESS_KEY_ID or a profile)")
    if isinstance(
        error,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError,
    ):
        return StorageError(f"{what}: cannot reach the S3 endpoint ({type(error).__name__})", error)
    return StorageError(f"{what}: {type(error).__name__}: {error}", error)


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """botocore's exceptions inside the block become deltaglider errors naming `what`."""
    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise _translate(error, what) from None


def _head_of(key: str, response: Any) -> ObjectHead:
    """An object's HEAD from a HeadObject or (whole-object) GetObject response."""
    return ObjectHead(
        key=key,
        size=int(response["ContentLength"]),
        etag=str(response.get("ETag", "")).strip('"'),
        last_modified=response["LastModified"],
        metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
        content_type=response.get("ContentType"),
    )


class Store:
    """Thin, typed operations over one boto3 client."""

    def __init__(self, client: S3Client, settings: Settings) -> None:
        self.client = client
        self.multipart_threshold = settings.multipart_threshold
        self.multipart_chunksize = settings.multipart_chunksize
        self.max_concurrency = settings.max_concurrency
        self.write_args: dict[str, Any] = dict(settings.write_args)  # every write and copy
        self.customer_key: dict[str, Any] = dict(settings.customer_key_args)  # SSE-C, or {}

    def _keyed(self, key: str) -> dict[str, Any]:
        """The SSE-C arguments for a request on `key`: none for the bucket-wide objects every
        user of the bucket must read whatever key they hold (its settings, the write probe,
        the stats cache, which hold no file's bytes)."""
        if key == SETTINGS_KEY or key.startswith(PROBE_PREFIX) or is_stats_cache(key):
            return {}
        return self.customer_key

    def head(self, bucket: str, key: str) -> ObjectHead | None:
        """Metadata of one object, or None when it does not exist."""
        with _s3_errors(f"s3://{bucket}/{key}"):
            try:
                response = self.client.head_object(Bucket=bucket, Key=key, **self._keyed(key))
            except botocore.exceptions.ClientError as error:
                if _status(error) == 404 and error_code(error) != "NoSuchBucket":
                    return None
                raise
        return _head_of(key, response)

    def download(self, bucket: str, key: str, out: Sink) -> ObjectHead:
        """Stream an object's body into `out` in bounded chunks; returns what the GET said
        about the object (as a HEAD would: size, ETag, metadata), so a read that knows the key
        needs no HEAD first.

        A body cut off mid-stream (reset, truncation, timeout) is resumed with a ranged GET
        pinned to the first response's ETag (`If-Match`), so two versions are never spliced;
        at most `DOWNLOAD_ATTEMPTS` tries, with jittered backoff."""
        where = f"s3://{bucket}/{key}"
        received = 0
        etag = ""
        total: int | None = None
        first: ObjectHead | None = None
        for attempt in range(DOWNLOAD_ATTEMPTS):
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **self._keyed(key)}
            if received:
                kwargs.update(Range=f"bytes={received}-", IfMatch=etag)
            try:
                response = self.client.get_object(**kwargs)
                if not received:
                    first = _head_of(key, response)
                etag = etag or str(response.get("ETag", ""))
                if total is None:
                    total = int(response.get("ContentLength", 0))
                for chunk in response["Body"].iter_chunks(CHUNK_SIZE):
                    interrupt.check()
                    if total and received + len(chunk) > total:
                        raise IntegrityError(
                            f"{where}: the server sent more than the {total} bytes it announced"
                        )
                    out.write(chunk)
                    received += len(chunk)
                if received < total:
                    raise botocore.exceptions.IncompleteReadError(
                        actual_bytes=received, expected_bytes=total
                    )
                assert first is not None  # set by the GET that started at byte 0
                return first
            except _STREAM_ERRORS as error:
                log.warning(
                    "download_interrupted",
                    bucket=bucket,
                    key=key,
                    received=received,
                    attempt=attempt + 1,
                    error=type(error).__name__,
                )
                _backoff(attempt)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
                raise _translate(error, where) from None  # not a cut-off stream: no retry
        raise StorageError(f"{where}: download kept failing after {DOWNLOAD_ATTEMPTS} tries")

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        metadata: dict[str, str],
        *,
        sha256: str | None,
        headers: dict[str, str] | None = None,
        exclusive: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """Upload a file whose SHA-256 was computed before (None: a private temp file of ours),
        re-hashing exactly the bytes sent.

        If the file changed since it was hashed, nothing is committed (the single PUT is not
        sent, a multipart upload is aborted) and IntegrityError says so: an object never holds
        bytes that differ from its recorded SHA-256. With `exclusive` the object is created
        only if the key does not exist (`If-None-Match: *`); AlreadyExists if it does.
        Files up to `SINGLE_PUT_LIMIT` go in one PUT from memory; larger ones in parts of
        `multipart_chunksize`, `max_concurrency` in flight at most."""
        where = f"s3://{bucket}/{key}"
        extra: dict[str, Any] = {
            "Metadata": metadata,
            **self.write_args,
            **self._keyed(key),
            **(headers or {}),
        }
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if exclusive else {}
        with _s3_errors(where):
            try:
                if path.stat().st_size <= min(SINGLE_PUT_LIMIT, self.multipart_threshold):
                    data = path.read_bytes()
                    if sha256 is not None:
                        _check_unchanged(data_sha256(data), sha256, path)
                    self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra, **condition)
                    if progress is not None:
                        progress(len(data))
                else:
                    self._put_multipart(bucket, key, path, extra, condition, sha256, progress)
            except botocore.exceptions.ClientError as error:
                if exclusive and (
                    _status(error) == 412
                    or error_code(error) in ("PreconditionFailed", "ConditionalRequestConflict")
                ):
                    raise AlreadyExists(where) from None
                raise

    def _put_multipart(
        self,
        bucket: str,
        key: str,
        path: Path,
        extra: dict[str, Any],
        condition: dict[str, Any],
        sha256: str | None,
        progress: Progress | None,
    ) -> None:
        part_size = max(self.multipart_chunksize, MIN_PART_SIZE)
        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
        hasher = hashlib.sha256()
        try:
            with (
                ThreadPoolExecutor(max_workers=self.max_concurrency) as pool,
                path.open("rb") as source,
            ):
                pending: list[Future[dict[str, Any]]] = []
                number = 1
                while True:
                    # bounded memory: at most max_concurrency parts exist at once, the
                    # next one is read only when one of them has been sent
                    while sum(not f.done() for f in pending) >= self.max_concurrency:
                        wait(pending, return_when=FIRST_COMPLETED)
                    interrupt.check()  # cancelled: the except below aborts the upload
                    chunk = source.read(part_size)
                    if not chunk:
                        break
                    hasher.update(chunk)
                    pending.append(
                        pool.submit(self._put_part, bucket, key, upload_id, number, chunk, progress)
                    )
                    del chunk
                    number += 1
                parts = [f.result() for f in pending]
            if sha256 is not None:
                _check_unchanged(hasher.hexdigest(), sha256, path)
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": cast(Any, parts)},
                **condition,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def _put_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        chunk: bytes,
        progress: Progress | None,
    ) -> dict[str, Any]:
        etag = self.client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            **self._keyed(key),
        )["ETag"]
        if progress is not None:
            progress(len(chunk))
        return {"PartNumber": number, "ETag": etag}

    def put_bytes(self, bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
        """A small object of ours (a user marker, the bucket's settings) in one PUT."""
        with _s3_errors(f"s3://{bucket}/{key}"):
            self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                Metadata=metadata,
                **self.write_args,
                **self._keyed(key),
            )

    def conditional_writes_work(self, bucket: str, prefix: str) -> bool:
        """Whether the server honours `If-None-Match: *` (a second create gets 412)."""
        key = f"{prefix}{uuid.uuid4().hex}"
        try:
            with _s3_errors(f"s3://{bucket}/{key}"):
                probe = {"Bucket": bucket, "Key": key, "Body": b"probe", **self.write_args}
                self.client.put_object(**probe, IfNoneMatch="*")
                try:
                    self.client.put_object(**probe, IfNoneMatch="*")
                except botocore.exceptions.ClientError as error:
                    if _status(error) == 412 or error_code(error) == "PreconditionFailed":
                        return True
                    raise
                return False
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=bucket, Key=key)

    def copy_within(
        self, bucket: str, source: str, target: str, metadata: dict[str, str] | None = None
    ) -> None:
        """Server-side copy of one object inside a bucket (onto itself too), its metadata
        included, or replaced by `metadata` when given (its Content-Type kept)."""
        extra = {**self.write_args, **self._keyed(target)}
        if keyed := self._keyed(source):
            extra.update(
                CopySourceSSECustomerAlgorithm=keyed["SSECustomerAlgorithm"],
                CopySourceSSECustomerKey=keyed["SSECustomerKey"],
            )
        if metadata is not None:
            extra.update(Metadata=metadata, MetadataDirective="REPLACE")
        with _s3_errors(f"s3://{bucket}/{source}"):
            head = self.head(bucket, source)
            if metadata is not None and head is not None and head.content_type:
                extra["ContentType"] = head.content_type
            if head is not None and head.size > SINGLE_PUT_LIMIT * 512:
                # a managed multipart copy for objects over 4 GiB (imported only for one)
                from s3transfer.manager import TransferConfig, TransferManager

                config = TransferConfig(
                    multipart_chunksize=max(self.multipart_chunksize, MIN_PART_SIZE),
                    max_request_concurrency=self.max_concurrency,
                )
                with TransferManager(self.client, config) as manager:
                    origin = {"Bucket": bucket, "Key": source}
                    manager.copy(origin, bucket, target, extra_args=extra).result()
            else:
                self.client.copy_object(
                    Bucket=bucket,
                    Key=target,
                    CopySource={"Bucket": bucket, "Key": source},
                    **extra,
                )

    def delete(self, bucket: str, key: str) -> None:
        with _s3_errors(f"s3://{bucket}/{key}"):
            self.client.delete_object(Bucket=bucket, Key=key)

    def delete_many(self, bucket: str, keys: list[str]) -> list[str]:
        """Delete keys in batches of 1000; return the keys that failed."""
        failed: list[str] = []
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            with _s3_errors(f"s3://{bucket}/"):
                response = self.client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            failed.extend(str(e.get("Key", "")) for e in response.get("Errors", []))
        return failed

    def iter_listing(
        self, bucket: str, prefix: str, delimiter: str = "", start_after: str = ""
    ) -> Iterator[list[ObjectHead | ListedPrefix]]:
        """Pages of a listing (objects and common prefixes, in the server's order)."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if start_after:
            kwargs["StartAfter"] = start_after
        with _s3_errors(f"s3://{bucket}/{prefix}"):
            for page in paginator.paginate(**kwargs):
                entries: list[ObjectHead | ListedPrefix] = [
                    ListedPrefix(p["Prefix"]) for p in page.get("CommonPrefixes", [])
                ]
                entries.extend(
                    ObjectHead(
                        key=o["Key"],
                        size=int(o["Size"]),
                        etag=str(o.get("ETag", "")).strip('"'),
                        last_modified=o["LastModified"],
                    )
                    for o in page.get("Contents", [])
                )
                yield entries

    def incomplete_uploads(self, bucket: str, prefix: str) -> list[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of every unfinished multipart upload under `prefix`."""
        found: list[tuple[str, str, datetime]] = []
        with _s3_errors(f"s3://{bucket}/{prefix}"):
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                found.extend(
                    (u["Key"], u["UploadId"], u["Initiated"]) for u in page.get("Uploads", [])
                )
        return found

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with _s3_errors(f"s3://{bucket}/{key}"):
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def bucket_exists(self, bucket: str) -> bool:
        with _s3_errors(f"s3://{bucket}"):
            try:
                self.client.head_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as error:
                if _status(error) == 404:
                    return False
                raise
        return True

    def list_buckets(self) -> list[Bucket]:
        with _s3_errors("s3://"):
            response = self.client.list_buckets()
        return [Bucket(b["Name"], b["CreationDate"]) for b in response.get("Buckets", [])]

    def create_bucket(self, bucket: str, region: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with _s3_errors(f"s3://{bucket}"):
            self.client.create_bucket(**kwargs)

    def delete_bucket(self, bucket: str) -> None:
        with _s3_errors(f"s3://{bucket}"):
            self.client.delete_bucket(Bucket=bucket)

    def presigned_url(
        self, method: str, params: dict[str, Any], expires_in: int, http_method: str | None
    ) -> str:
        """A presigned URL (signed locally; no request is made)."""
        extra = {"HttpMethod": http_method} if http_method else {}
        with _s3_errors(f"s3://{params.get('Bucket', '')}/{params.get('Key', '')}"):
            return str(
                self.client.generate_presigned_url(
                    method, Params=params, ExpiresIn=expires_in, **extra
                )
            )

    def bucket_region(self, bucket: str) -> str | None:
        """The region a bucket lives in, as HeadBucket's `x-amz-bucket-region` says (None when
        the server does not say)."""
        with _s3_errors(f"s3://{bucket}"):
            response = self.client.head_bucket(Bucket=bucket)
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region")
        return str(region) if region else None

    def bucket_acl(self, bucket: str) -> dict[str, Any]:
        """GetBucketAcl's Owner and Grants."""
        with _s3_errors(f"s3://{bucket}"):
            response = self.client.get_bucket_acl(Bucket=bucket)
        return {name: response[name] for name in ("Owner", "Grants") if name in response}

    def put_bucket_acl(self, bucket: str, acl: dict[str, Any]) -> None:
        """PutBucketAcl with `acl`'s arguments (ACL, Grant*, AccessControlPolicy…)."""
        with _s3_errors(f"s3://{bucket}"):
            self.client.put_bucket_acl(Bucket=bucket, **acl)


IMDS_ENDPOINT = "http://169.254.169.254"


def ec2_region(timeout: float = 0.3) -> str | None:
    """The EC2 region this machine runs in, from the instance metadata service (IMDSv2, a short
    timeout), or None: not on EC2, IMDS disabled (AWS_EC2_METADATA_DISABLED) or not answering.
    AWS_EC2_METADATA_SERVICE_ENDPOINT points it elsewhere, as it does botocore."""
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", IMDS_ENDPOINT).rstrip("/")
    if not base.startswith(("http://", "https://")):
        return None
    try:
        token_request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
            f"{base}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
        with urllib.request.urlopen(token_request, timeout=timeout) as response:  # noqa: S310
            token = response.read().decode()
        region_request = urllib.request.Request(  # noqa: S310 (http(s) only)
            f"{base}/latest/meta-data/placement/region",
            headers={"X-aws-ec2-metadata-token": token},
        )
        with urllib.request.urlopen(region_request, timeout=timeout) as response:  # noqa: S310
            region = response.read().decode().strip()
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return region or None

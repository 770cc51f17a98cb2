"""Every byte that leaves or enters the machine over S3 goes through this module.

Owns: the boto3 client and its configuration (checksums `when_required`, SigV4, standard
retries), multipart transfers, conditional writes, listing pagination, and turning botocore
errors into deltaglider errors with one readable line. Must not decide anything about deltas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from deltaglider.config import Settings
from deltaglider.errors import NotFoundError, StorageError, UsageError
from deltaglider.files import CHUNK_SIZE, Sink

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
else:
    S3Client = Any


@dataclass(frozen=True)
class ObjectHead:
    """What a HEAD (or a listing entry, with empty metadata) says about one object."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True)
class ListedPrefix:
    """A common prefix (folder) from a delimited listing."""

    prefix: str


@dataclass(frozen=True)
class Bucket:
    name: str
    created: datetime


class AlreadyExists(Exception):
    """A conditional write lost: the key was created by someone else first."""


def make_client(settings: Settings, credentials: dict[str, str] | None = None) -> S3Client:
    """A boto3 S3 client that works against S3-compatible stores as well as AWS.

    `credentials` (aws_access_key_id, aws_secret_access_key, aws_session_token) override the
    usual chain; they are handed to boto3 and never stored or logged here."""
    given = credentials or {}
    session = boto3.session.Session(
        aws_access_key_id=given.get("aws_access_key_id"),
        aws_secret_access_key=given.get("aws_secret_access_key"),
        aws_session_token=given.get("aws_session_token"),
        profile_name=settings.profile,
        region_name=settings.region,
    )
    config = Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max(10, settings.max_concurrency * 2),
    )
    try:
        return session.client("s3", endpoint_url=settings.endpoint_url, config=config)
    except botocore.exceptions.BotoCoreError as error:
        raise UsageError(f"cannot create an S3 client: {error}") from None


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: botocore.exceptions.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _translate(error: Exception, what: str) -> Exception:
    """One readable line for an S3 failure on `what` (`s3://bucket/key`)."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "") or code
        if code == "NoSuchBucket":
            return NotFoundError(f"{what}: bucket does not exist", "NoSuchBucket")
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFoundError(f"{what}: no such key")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(f"{what}: access denied ({code}); check your credentials", error)
        return StorageError(f"{what}: S3 error {code}: {message}", error)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return StorageError(
            f"{what}: no AWS credentials found (set AWS_ACCESS_KEY_ID or a profile)"
        )
    if isinstance(
        error,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError,
    ):
        return StorageError(f"{what}: cannot reach the S3 endpoint ({type(error).__name__})", error)
    return StorageError(f"{what}: {type(error).__name__}: {error}", error)


class Store:
    """Thin, typed operations over one boto3 client."""

    def __init__(self, client: S3Client, settings: Settings) -> None:
        self.client = client
        self.transfer = TransferConfig(
            multipart_threshold=settings.multipart_threshold,
            multipart_chunksize=settings.multipart_chunksize,
            max_concurrency=settings.max_concurrency,
            use_threads=True,
        )

    def head(self, bucket: str, key: str) -> ObjectHead | None:
        """Metadata of one object, or None when it does not exist."""
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if _status(error) == 404 and error_code(error) != "NoSuchBucket":
                return None
            raise _translate(error, f"s3://{bucket}/{key}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise _translate(error, f"s3://{bucket}/{key}") from None
        return ObjectHead(
            key=key,
            size=int(response["ContentLength"]),
            etag=str(response.get("ETag", "")).strip('"'),
            last_modified=response["LastModified"],
            metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
            content_type=response.get("ContentType"),
        )

    def download(self, bucket: str, key: str, out: Sink) -> None:
        """Stream an object's body into `out` in bounded chunks."""
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK_SIZE):
                out.write(chunk)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, f"s3://{bucket}/{key}") from None

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        metadata: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> None:
        """Upload a file (multipart above the threshold) with user metadata and optional
        `ContentType`, `ContentDisposition` or `Tagging`."""
        extra: dict[str, Any] = {"Metadata": metadata, **(headers or {})}
        try:
            self.client.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=self.transfer)
        except boto3.exceptions.S3UploadFailedError as error:
            cause = error.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise _translate(cause, f"s3://{bucket}/{key}") from None
            raise StorageError(f"s3://{bucket}/{key}: upload failed: {error}") from None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, f"s3://{bucket}/{key}") from None

    def create_exclusive(self, bucket: str, key: str, path: Path, metadata: dict[str, str]) -> None:
        """Create `key` only if it does not exist (`If-None-Match: *`); AlreadyExists if it does.

        A single PUT up to the multipart threshold (botocore streams the file from disk); above
        it, a multipart upload whose completion carries the condition.
        """
        size = path.stat().st_size
        where = f"s3://{bucket}/{key}"
        try:
            if size <= self.transfer.multipart_threshold:
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=bucket, Key=key, Body=body, Metadata=metadata, IfNoneMatch="*"
                    )
            else:
                self._create_exclusive_multipart(bucket, key, path, metadata)
        except botocore.exceptions.ClientError as error:
            if _status(error) == 412 or error_code(error) in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise AlreadyExists(where) from None
            raise _translate(error, where) from None
        except botocore.exceptions.BotoCoreError as error:
            raise _translate(error, where) from None

    def _create_exclusive_multipart(
        self, bucket: str, key: str, path: Path, metadata: dict[str, str]
    ) -> None:
        part_size = max(self.transfer.multipart_chunksize, 5 * 1024 * 1024)
        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)[
            "UploadId"
        ]
        try:
            parts: list[Any] = []
            with path.open("rb") as source:
                number = 1
                while chunk := source.read(part_size):
                    etag = self.client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                    number += 1
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, f"s3://{bucket}/{key}") from None

    def delete_many(self, bucket: str, keys: list[str]) -> list[str]:
        """Delete keys in batches of 1000; return the keys that failed."""
        failed: list[str] = []
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                response = self.client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
                raise _translate(error, f"s3://{bucket}/") from None
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
        try:
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
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, f"s3://{bucket}/{prefix}") from None

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as error:
            if _status(error) == 404:
                return False
            raise _translate(error, f"s3://{bucket}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise _translate(error, f"s3://{bucket}") from None
        return True

    def list_buckets(self) -> list[Bucket]:
        try:
            response = self.client.list_buckets()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, "s3://") from None
        return [Bucket(b["Name"], b["CreationDate"]) for b in response.get("Buckets", [])]

    def create_bucket(self, bucket: str, region: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, f"s3://{bucket}") from None

    def delete_bucket(self, bucket: str) -> None:
        try:
            self.client.delete_bucket(Bucket=bucket)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise _translate(error, f"s3://{bucket}") from None

"""TypedDicts for the boto3-shaped responses `DeltagliderClient` returns.

Key names are boto3's, so code written against `boto3.client("s3")` reads them unchanged.
Holds no logic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict


class ResponseMetadata(TypedDict):
    RequestId: str
    HostId: str
    HTTPStatusCode: int
    HTTPHeaders: dict[str, str]
    RetryAttempts: int


class DeltaGliderInfo(TypedDict):
    """deltaglider 6.x's extra key of a `put_object` response: how the file was stored."""

    OriginalSizeMB: float
    StoredSizeMB: float
    IsDelta: bool
    CompressionRatio: float
    SavingsPercent: float
    StoredAs: str
    Operation: str


class PutObjectResponse(TypedDict):
    ETag: str
    ResponseMetadata: ResponseMetadata
    DeltaGliderInfo: NotRequired[DeltaGliderInfo]


class HeadObjectResponse(TypedDict):
    ContentLength: int
    ETag: str
    LastModified: datetime
    Metadata: dict[str, str]
    ContentType: str
    ResponseMetadata: ResponseMetadata
    AcceptRanges: NotRequired[str]


class GetObjectResponse(HeadObjectResponse):
    Body: Any  # deltaglider.client.StreamingBody
    ContentRange: NotRequired[str]
    TagCount: NotRequired[int]


class ObjectEntry(TypedDict):
    Key: str
    LastModified: datetime
    ETag: str
    Size: int
    StorageClass: str
    Metadata: NotRequired[dict[str, str]]  # FetchMetadata=True (deltaglider 6.x)


class CommonPrefix(TypedDict):
    Prefix: str


class ListObjectsV2Response(TypedDict):
    IsTruncated: bool
    Name: str
    Prefix: str
    MaxKeys: int
    KeyCount: int
    ResponseMetadata: ResponseMetadata
    Contents: NotRequired[list[ObjectEntry]]
    CommonPrefixes: NotRequired[list[CommonPrefix]]
    Delimiter: NotRequired[str]
    ContinuationToken: NotRequired[str]
    NextContinuationToken: NotRequired[str]
    StartAfter: NotRequired[str]


class ListObjectsResponse(TypedDict):
    IsTruncated: bool
    Name: str
    Prefix: str
    Marker: str
    MaxKeys: int
    ResponseMetadata: ResponseMetadata
    Contents: NotRequired[list[ObjectEntry]]
    CommonPrefixes: NotRequired[list[CommonPrefix]]
    Delimiter: NotRequired[str]
    NextMarker: NotRequired[str]
    ContinuationToken: NotRequired[str]  # deltaglider 6.x's paging, beside V1's markers
    NextContinuationToken: NotRequired[str]


class DeletedObject(TypedDict):
    Key: str


class DeleteError(TypedDict):
    Key: str
    Code: str
    Message: str


class DeleteObjectsResponse(TypedDict):
    ResponseMetadata: ResponseMetadata
    Deleted: NotRequired[list[DeletedObject]]
    Errors: NotRequired[list[DeleteError]]


class CopyObjectResult(TypedDict):
    ETag: str
    LastModified: datetime


class CopyObjectResponse(TypedDict):
    CopyObjectResult: CopyObjectResult
    ResponseMetadata: ResponseMetadata


class DeleteObjectResponse(TypedDict):
    ResponseMetadata: ResponseMetadata


class PurgeResponse(TypedDict):
    Deleted: int
    Kept: int
    ResponseMetadata: ResponseMetadata
    # deltaglider 6.x's keys for the same run
    bucket: str
    prefix: str
    deleted_count: int
    expired_count: int
    error_count: int
    total_size_freed: int
    duration_seconds: float
    errors: list[str]

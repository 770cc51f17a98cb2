"""deltaglider 6.x's `deltaglider.types`: the boto3-shaped response TypedDicts, by the names
its users import (`shapes` is where they live)."""

from deltaglider.shapes import (
    CommonPrefix,
    CopyObjectResponse,
    DeletedObject,
    DeleteError,
    DeleteObjectResponse,
    DeleteObjectsResponse,
    GetObjectResponse,
    HeadObjectResponse,
    ListObjectsResponse,
    ListObjectsV2Response,
    ObjectEntry,
    PutObjectResponse,
    ResponseMetadata,
)

S3Object = ObjectEntry  # 6.x's name for one listed object
BucketName = str
ObjectKey = str
Prefix = str
Delimiter = str

__all__ = [
    "BucketName",
    "CommonPrefix",
    "CopyObjectResponse",
    "DeleteError",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeletedObject",
    "Delimiter",
    "GetObjectResponse",
    "HeadObjectResponse",
    "ListObjectsResponse",
    "ListObjectsV2Response",
    "ObjectEntry",
    "ObjectKey",
    "Prefix",
    "PutObjectResponse",
    "ResponseMetadata",
    "S3Object",
]

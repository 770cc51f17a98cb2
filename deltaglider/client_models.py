"""deltaglider 6.x's `deltaglider.client_models`: its SDK's result types, by the names its
users import (`models` and `stats` are where they live)."""

from deltaglider.models import CompressionEstimate, ObjectInfo, UploadSummary
from deltaglider.shapes import ListObjectsResponse
from deltaglider.stats import BucketStats

__all__ = [
    "BucketStats",
    "CompressionEstimate",
    "ListObjectsResponse",
    "ObjectInfo",
    "UploadSummary",
]

"""deltaglider: versioned build artifacts on S3-compatible storage as binary deltas.

This module exports the public API only; each submodule owns one job (see its docstring).

    import deltaglider
    s3 = deltaglider.create_client(endpoint_url="http://127.0.0.1:9000")
    s3.put_object(Bucket="releases", Key="1.2.3/app.zip", Body=open("app.zip", "rb"))
"""

__version__ = "7.0.0"

from deltaglider.client import DeltagliderClient, StreamingBody, create_client
from deltaglider.errors import (
    DeltagliderError,
    IntegrityError,
    NotFoundError,
    StorageError,
    UsageError,
)
from deltaglider.models import (
    DeleteResult,
    DeltaPolicy,
    DownloadResult,
    StoredAs,
    UploadResult,
    VerifyResult,
)
from deltaglider.stats import BucketStats, GroupStats

__all__ = [
    "BucketStats",
    "DeleteResult",
    "DeltaPolicy",
    "DeltagliderClient",
    "DeltagliderError",
    "DownloadResult",
    "GroupStats",
    "IntegrityError",
    "NotFoundError",
    "StorageError",
    "StoredAs",
    "StreamingBody",
    "UploadResult",
    "UsageError",
    "VerifyResult",
    "__version__",
    "create_client",
]

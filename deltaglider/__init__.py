"""deltaglider: versioned build artifacts on S3-compatible storage as binary deltas.

This module exports the public API only; each submodule owns one job (see its docstring).
The exports are imported on first use (PEP 562), so `deltaglider --version` and `--help` start
without boto3 or the engine.

    import deltaglider
    s3 = deltaglider.create_client(endpoint_url="http://127.0.0.1:9000")
    s3.put_object(Bucket="releases", Key="1.2.3/app.zip", Body=open("app.zip", "rb"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


def _version() -> str:
    """The installed distribution's version: pyproject.toml's, the one place it is written."""
    from importlib import metadata

    try:
        return metadata.version("deltaglider")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


__version__ = _version()

if TYPE_CHECKING:
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

_EXPORTED_FROM = {
    # deltaglider 6.x's names, kept so its users' imports work unchanged
    "DeltaGliderClient": "client",
    "UploadSummary": "models",
    "DeltaService": "engine",
    "DeltaSpace": "models",
    "ObjectKey": "models",
    "ObjectInfo": "models",
    "CompressionEstimate": "models",
    "ListObjectsV2Response": "shapes",
    "ListObjectsResponse": "shapes",
    "PutObjectResponse": "shapes",
    "GetObjectResponse": "shapes",
    "DeleteObjectResponse": "shapes",
    "DeleteObjectsResponse": "shapes",
    "HeadObjectResponse": "shapes",
    # ours
    "BucketStats": "stats",
    "DeleteResult": "models",
    "DeltaPolicy": "models",
    "DeltagliderClient": "client",
    "DeltagliderError": "errors",
    "DownloadResult": "models",
    "GroupStats": "stats",
    "IntegrityError": "errors",
    "NotFoundError": "errors",
    "StorageError": "errors",
    "StoredAs": "models",
    "StreamingBody": "client",
    "UploadResult": "models",
    "UsageError": "errors",
    "VerifyResult": "models",
    "create_client": "client",
}

__all__ = [
    "BucketStats",
    "CompressionEstimate",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeleteResult",
    "DeltaGliderClient",
    "DeltaPolicy",
    "DeltaService",
    "DeltaSpace",
    "DeltagliderClient",
    "DeltagliderError",
    "DownloadResult",
    "GetObjectResponse",
    "GroupStats",
    "HeadObjectResponse",
    "IntegrityError",
    "ListObjectsResponse",
    "ListObjectsV2Response",
    "NotFoundError",
    "ObjectInfo",
    "ObjectKey",
    "PutObjectResponse",
    "StorageError",
    "StoredAs",
    "StreamingBody",
    "UploadResult",
    "UploadSummary",
    "UsageError",
    "VerifyResult",
    "__version__",
    "create_client",
]


def __getattr__(name: str) -> Any:
    """Import an export's module the first time the export is asked for."""
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module 'deltaglider' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"deltaglider.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTED_FROM})

"""The exceptions deltaglider raises to its callers.

Every error carries one sentence a person can act on; the CLI prints it as a single line.
This module holds no logic and must not import boto3 or run anything.
"""


class DeltagliderError(Exception):
    """Base class: the message is one line, naming the object and the problem."""

    exit_code = 1


class UsageError(DeltagliderError):
    """Bad input from the caller (URL, name, option, environment variable)."""

    exit_code = 2


class NotFoundError(DeltagliderError):
    """The bucket, key or local file named does not exist; `code` is S3's error code."""

    def __init__(self, message: str, code: str = "NoSuchKey") -> None:
        super().__init__(message)
        self.code = code


class IntegrityError(DeltagliderError):
    """A SHA-256 check failed: stored or reconstructed bytes are not what metadata promises."""


class ReferenceMismatch(IntegrityError):
    """A reference's bytes are not the ones its deltas (or our HEAD of it) named: it was
    replaced, or corrupted, after we looked."""


class CodecError(DeltagliderError):
    """The delta codec failed to encode or decode."""


class StorageError(DeltagliderError):
    """The S3 endpoint refused or failed a request; `cause` is botocore's own exception, which
    the boto3-shaped client re-raises unchanged."""

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class CacheError(DeltagliderError):
    """The reference cache cannot be used (bad key, unwritable directory)."""


class FatalError(DeltagliderError):
    """The command could not run at all (a missing local path, an unreachable bucket listing):
    `aws s3` exits 255 for these."""

    exit_code = 255

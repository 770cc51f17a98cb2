"""Parsing and formatting of `s3://bucket/key` URLs and the key arithmetic around them.

Owns: what a valid S3 URL is, how a destination key is derived from a source name
(`aws s3 cp` semantics), and a key's parent (its DeltaSpace prefix). Must not touch the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deltaglider.errors import UsageError

SCHEME = "s3://"
MAX_KEY_BYTES = 1024
# Bucket names as S3-compatible servers accept them (lenient on case and underscores,
# which some non-AWS stores allow); a name with spaces, slashes or control characters never is.
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class S3Url:
    """A bucket and a key (possibly empty, possibly a prefix ending in `/`)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> S3Url:
        """Parse `s3://bucket[/key]`, raising UsageError with the reason on anything malformed."""
        if not text.startswith(SCHEME):
            raise UsageError(f"not an S3 URL (expected s3://bucket/key): {text!r}")
        rest = text[len(SCHEME) :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise UsageError(f"S3 URL has no bucket name: {text!r}")
        if not _BUCKET_RE.match(bucket):
            raise UsageError(f"invalid bucket name {bucket!r} in {text!r}")
        validate_key(key, text)
        return cls(bucket, key)

    @classmethod
    def parse_loose(cls, text: str) -> S3Url:
        """As `parse`, also taking a bare `bucket[/key]` (as `aws s3 ls` does, and
        deltaglider 6.x's `stats BUCKET`, `purge BUCKET` and ACL commands)."""
        return cls.parse(text if is_s3_url(text) else f"{SCHEME}{text}")

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        """True when the URL names a folder (bucket root or a key ending in `/`)."""
        return self.key == "" or self.key.endswith("/")

    def child(self, key: str) -> S3Url:
        """The same bucket with another key."""
        return S3Url(self.bucket, key)


def validate_key(key: str, shown: str) -> None:
    """Refuse keys S3 would mangle or reject: empty path segments, control characters, >1024 B."""
    if _CONTROL_RE.search(key):
        raise UsageError(f"S3 key contains a control character: {shown!r}")
    if "//" in key or key.startswith("/"):
        raise UsageError(f"S3 key has an empty path segment ('//'): {shown!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise UsageError(f"S3 key is longer than {MAX_KEY_BYTES} bytes: {shown[:80]!r}...")


def is_s3_url(text: str) -> bool:
    """True when text means to be an S3 URL (`s3:…`), whether or not it is well formed."""
    return text.lower().startswith("s3:")


def destination_key(dest: S3Url, source_name: str) -> str:
    """The key `aws s3 cp SRC DEST` writes: DEST's prefix plus the source's name when DEST ends
    in `/` (or is the bucket root), else DEST's key itself."""
    key = dest.key + source_name if dest.is_prefix else dest.key
    validate_key(key, f"{SCHEME}{dest.bucket}/{key}")
    return key


def parent_prefix(key: str) -> str:
    """A key's parent prefix without the trailing slash: the DeltaSpace of `key`."""
    return key.rpartition("/")[0]


def base_name(key: str) -> str:
    """The last path part of a key."""
    return key.rpartition("/")[2]


def join_key(prefix: str, name: str) -> str:
    """`prefix/name`, or `name` at the bucket root."""
    return f"{prefix}/{name}" if prefix else name

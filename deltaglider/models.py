"""Result types returned by the engine and the client: frozen dataclasses, no behaviour.

Must not import boto3 or perform I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltaglider.s3 import ObjectHead


class StoredAs(StrEnum):
    """How an upload was stored."""

    REFERENCE = "reference"  # first file of its space: reference.bin plus a self-delta
    DELTA = "delta"
    DIRECT = "direct"
    UNCHANGED = "unchanged"  # same name, same SHA-256 already stored: nothing written


class DeltaPolicy(StrEnum):
    """Which files are tried as deltas."""

    AUTO = "auto"  # by file name (archive formats)
    NEVER = "never"  # --no-delta
    ALWAYS = "always"  # --force-delta


@dataclass(frozen=True)
class UploadOptions:
    """How one upload (or copy) is stored. None means: the engine's setting, or for a copy
    the source's own metadata and content type."""

    policy: DeltaPolicy = DeltaPolicy.AUTO
    max_ratio: float | None = None
    metadata: dict[str, str] | None = None  # the user's own; None: not part of "unchanged"
    content_type: str | None = None
    tagging: str | None = None


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    key: str  # logical key
    stored_as: StoredAs
    file_size: int
    stored_size: int  # bytes this upload added to the bucket (reference included)
    sha256: str
    elapsed: float
    note: str = ""  # why a file went direct, or other detail worth telling the user
    md5: str = ""  # of the file: the ETag a plain single-part upload would have had

    @property
    def ratio(self) -> float:
        """Stored bytes over file bytes (0 for an empty file)."""
        return self.stored_size / self.file_size if self.file_size else 0.0


@dataclass(frozen=True)
class DownloadResult:
    bucket: str
    key: str
    stored_as: str  # "delta", "direct", "reference" or "plain"
    size: int
    sha256: str
    verified: bool  # False only for plain objects, which carry no checksum to verify
    elapsed: float
    last_modified: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # the user's own
    content_type: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    bucket: str
    key: str
    stored_as: str
    expected_sha256: str
    actual_sha256: str
    size: int

    @property
    def ok(self) -> bool:
        return self.expected_sha256 == self.actual_sha256


@dataclass(frozen=True)
class ListEntry:
    """One line of a logical listing: a folder (`is_prefix`) or a user's file."""

    key: str
    size: int = 0
    last_modified: datetime | None = None
    is_prefix: bool = False
    stored_size: int = 0
    head: ObjectHead | None = None  # the delta's HEAD when one was made (for ETag, metadata)
    etag: str = ""  # the stored object's ETag, as listed
    stored_key: str = ""  # `key` or `key.delta`; empty for a folder
    both_forms: bool = False  # `key` and `key.delta` were both listed (a read decides which)


@dataclass(frozen=True)
class DeleteResult:
    bucket: str
    key: str  # logical key
    removed: tuple[str, ...]  # stored keys deleted, a no-longer-needed reference included


@dataclass(frozen=True)
class LogicalPage:
    """One page of a logical listing, in logical key order."""

    entries: list[ListEntry]
    truncated: bool  # more entries follow `entries[-1]`

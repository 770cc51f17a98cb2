"""Result types returned by the engine and the client: frozen dataclasses, no behaviour.

Must not import boto3 or another deltaglider module, or perform I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from deltaglider.errors import UsageError


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


class StoredAs(StrEnum):
    """How an upload was stored."""

    REFERENCE = "reference"  # the file became a new reference (shared or its folder's), plus
    # its self-delta at its own key
    DELTA = "delta"
    DIRECT = "direct"
    UNCHANGED = "unchanged"  # same name, same SHA-256 already stored: nothing written


class ReferenceMode(StrEnum):
    """Where new references go (FORMAT "Bucket settings")."""

    SHARED = "shared"  # one per file series under .deltaglider/refs/, used across folders
    FOLDER = "folder"  # each folder's own reference.bin, as deltaglider 6.x writes
    CHAIN = "chain"  # shared, each version a reference stored as a delta of an earlier one


REFERENCE_MODES = tuple(mode.value for mode in ReferenceMode)


class GroupBy(StrEnum):
    """What a group of versions is, for `prune` and `stats`."""

    SERIES = "series"  # the file series (`series.series_of`), across folders
    FOLDER = "folder"  # the folder a file is in


GROUPINGS = tuple(group.value for group in GroupBy)


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

    # deltaglider 6.x's `UploadSummary` names for the same facts
    @property
    def original_size(self) -> int:
        return self.file_size

    @property
    def is_delta(self) -> bool:
        return self.stored_as is StoredAs.DELTA

    @property
    def delta_ratio(self) -> float:
        """A delta's bytes over the file's (0 when not stored as a delta), as 6.x reports."""
        return self.ratio if self.is_delta else 0.0

    @property
    def savings_percent(self) -> float:
        if not self.file_size:
            return 0.0
        return (self.file_size - self.stored_size) / self.file_size * 100

    @property
    def original_size_mb(self) -> float:
        return self.file_size / (1024 * 1024)

    @property
    def stored_size_mb(self) -> float:
        return self.stored_size / (1024 * 1024)

    @property
    def operation(self) -> str:
        """6.x's names: create_reference, create_delta, upload_direct (and unchanged)."""
        return _OPERATIONS[self.stored_as]


UploadSummary = UploadResult  # deltaglider 6.x's name for an upload's result


_OPERATIONS = {
    StoredAs.REFERENCE: "create_reference",
    StoredAs.DELTA: "create_delta",
    StoredAs.DIRECT: "upload_direct",
    StoredAs.UNCHANGED: "unchanged",
}


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
    message: str = "Integrity verified"

    @property
    def valid(self) -> bool:
        return self.actual_sha256 == self.expected_sha256

    def __bool__(self) -> bool:
        """`if client.verify(url):` as deltaglider 6.x documents it."""
        return self.valid


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


@dataclass(frozen=True)
class ObjectInfo:
    """One stored file, as deltaglider 6.x's `get_object_info` describes it."""

    key: str  # logical key
    size: int  # the file's own size
    last_modified: str  # ISO 8601
    etag: str | None = None
    storage_class: str = "STANDARD"
    original_size: int | None = None
    compressed_size: int | None = None  # what it takes in the bucket
    compression_ratio: float | None = None  # stored bytes over the file's
    is_delta: bool = False
    reference_key: str | None = None
    delta_chain_length: int = 0


@dataclass(frozen=True)
class CompressionEstimate:
    """What a file would take (deltaglider 6.x's `estimate_compression`); ours is the real
    encode against what the bucket holds now, so `confidence` is 1."""

    original_size: int
    estimated_compressed_size: int
    estimated_ratio: float  # stored bytes over the file's
    confidence: float
    recommended_reference: str | None = None
    should_use_delta: bool = True


@dataclass(frozen=True)
class DeltaSpace:
    """deltaglider 6.x's name for a folder whose files share a reference."""

    bucket: str
    prefix: str

    def reference_key(self) -> str:
        return f"{self.prefix.rstrip('/')}/reference.bin" if self.prefix else "reference.bin"


@dataclass(frozen=True)
class ObjectKey:
    """deltaglider 6.x's bucket-and-key pair."""

    bucket: str
    key: str

    @property
    def full_key(self) -> str:
        return f"{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Shard:
    """`--shard I/N` of migrate and verify: a key belongs to shard `sha256(key) mod N`, so N
    runners with no coordinator share the keys, disjoint and complete."""

    index: int  # 1-based, as typed: --shard 1/4 … 4/4
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
            raise UsageError(f"--shard takes I/N with 1 <= I <= N, not {text!r}")
        return cls(int(index), int(count))

    def holds(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

"""The on-bucket format: object names and the `dg-*` metadata of references, deltas and directs.

Owns: reading every metadata spelling older writers used, writing the canonical one, encoding
non-ASCII names so they survive S3's ASCII-only metadata, and deciding what kind of object a
key plus its metadata is (FORMAT "How a read decides"). Must not perform I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum

from deltaglider import __version__
from deltaglider import codec as codecs
from deltaglider.errors import IntegrityError, UsageError
from deltaglider.models import REFERENCE_MODES, ReferenceMode
from deltaglider.urls import base_name, join_key, parent_prefix, validate_key

REFERENCE_NAME = "reference.bin"
DELTA_SUFFIX = ".delta"
INTERNAL_PREFIX = ".deltaglider/"
# Internal objects (FORMAT "Objects"): every key deltaglider writes outside the user's own.
TMP_PREFIX = f"{INTERNAL_PREFIX}tmp/"  # presigned-URL rehydrations: tmp/<sha256>/<name>
TRASH_PREFIX = f"{INTERNAL_PREFIX}trash/"  # a reference while it is being removed
PROBE_PREFIX = f"{INTERNAL_PREFIX}probe/"  # the conditional-write probe, deleted at once
REFS_PREFIX = f"{INTERNAL_PREFIX}refs/"  # shared references: refs/<series id>/<slot>/reference.bin
USERS_FOLDER = "users/"  # beside a shared reference: one marker per delta made against it
REMOVING_FOLDER = "removing/"  # beside a shared reference: one marker per removal under way
STATS_PREFIX = f"{INTERNAL_PREFIX}stats/"  # `deltaglider stats` results: stats/<id>.json
SETTINGS_KEY = f"{INTERNAL_PREFIX}config.json"  # the bucket's deltaglider settings
SETTINGS_VERSION = 1
_NEWEST_FIRST = 10**16 - 1  # shared reference slots sort newest first: this minus microseconds
TOOL = f"deltaglider/{__version__}"
REFERENCE_NOTE = "reference"
ZERO_DIFF_NOTE = "zero-diff (reference identical)"
PASSTHROUGH_NOTE = "passthrough"  # the Rust proxy's note on a file stored whole
# Our extra key `dg-codec`: which codec and flags made a delta (its values: `codec.TABLE`). Old
# readers ignore unknown keys; when it is absent the delta came from an older writer whose
# xdelta3 flags are unknown.
# S3 limits user metadata (keys + values, UTF-8, without the x-amz-meta- prefix) to 2 KB.
MAX_METADATA_BYTES = 2048

_ENCODED_PREFIX = "=?UTF-8?B?"
_ENCODED_SUFFIX = "?="


class ObjectKind(Enum):
    """What an S3 object is, per FORMAT "Objects"."""

    REFERENCE = "reference"
    DELTA = "delta"
    DIRECT = "direct"
    PLAIN = "plain"  # no deltaglider metadata: written by another tool


def check_user_key(key: str) -> None:
    """Refuse logical keys that would collide with deltaglider's own objects."""
    name = base_name(key)
    if not name:
        raise UsageError(f"no file name in key {key!r}")
    if name == REFERENCE_NAME:
        raise UsageError(f"{key!r}: the name {REFERENCE_NAME!r} is reserved for delta references")
    if name.endswith(DELTA_SUFFIX):
        raise UsageError(f"{key!r}: names ending in {DELTA_SUFFIX!r} are reserved for deltas")
    if key.startswith(INTERNAL_PREFIX):
        raise UsageError(f"{key!r}: keys under {INTERNAL_PREFIX!r} are reserved")
    validate_key(key, key)


def lookup(meta: dict[str, str], field: str) -> str | None:
    """The first non-empty value among FORMAT's spellings of `field` (given with underscores):
    `dg-a-b`, `dg_a_b`, `a_b`, `a-b`."""
    hyphens = field.replace("_", "-")
    for key in (f"dg-{hyphens}", f"dg_{field}", field, hyphens):
        value = meta.get(key)
        if value:
            return value
    return None


def encode_name(name: str) -> str:
    """An ASCII form of a file name for metadata; plain ASCII names are kept as they are.

    Non-ASCII names (and the rare ASCII name that looks encoded) become an RFC 2047 encoded
    word, the form S3 itself uses for non-ASCII metadata, so `decode_name` restores them exactly.
    """
    if name.isascii() and not name.startswith(_ENCODED_PREFIX):
        return name
    payload = base64.b64encode(name.encode("utf-8")).decode("ascii")
    return f"{_ENCODED_PREFIX}{payload}{_ENCODED_SUFFIX}"


def decode_name(value: str) -> str:
    """Inverse of `encode_name`; values that are not encoded words are returned unchanged."""
    if value.startswith(_ENCODED_PREFIX) and value.endswith(_ENCODED_SUFFIX):
        payload = value[len(_ENCODED_PREFIX) : -len(_ENCODED_SUFFIX)]
        try:
            return base64.b64decode(payload, validate=True).decode("utf-8")
        except ValueError:
            return value
    return value


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with a trailing `Z` (the form 6.x writes)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def parse_time(text: str) -> datetime:
    """Accept ISO-8601 with or without `Z` or an offset; naive values are UTC."""
    value = datetime.fromisoformat(text.removesuffix("Z"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


# Every field name older writers used bare (5.x, 6.0-6.1): never a user's own metadata.
_BARE_FIELDS = """tool original_name file_sha256 file_size created_at ref_key ref_path ref_sha256
delta_size delta_cmd note compression source_name codec md5 series"""
_FORMAT_FIELDS = frozenset(_BARE_FIELDS.split())


def is_format_key(key: str) -> bool:
    """True for keys deltaglider (any version) or the Rust proxy writes for itself."""
    lowered = key.lower()
    if lowered.startswith(("dg-", "dg_")):
        return True
    return lowered.replace("-", "_") in _FORMAT_FIELDS


def user_metadata(meta: dict[str, str]) -> dict[str, str]:
    """The user's own metadata on a stored object (the Rust proxy's `user-<name>` unwrapped)."""
    found = {k: v for k, v in meta.items() if not is_format_key(k) and not k.startswith("user-")}
    found.update({k[len("user-") :]: v for k, v in meta.items() if k.startswith("user-")})
    return found


def check_user_metadata(meta: dict[str, str]) -> dict[str, str]:
    """User metadata to store beside ours: lower-case keys, none that the format reserves."""
    checked = {}
    for key, value in meta.items():
        lowered = key.lower()
        if not lowered or is_format_key(lowered) or lowered.startswith("user-"):
            raise UsageError(f"metadata key {key!r} is reserved by deltaglider")
        checked[lowered] = value
    return checked


def metadata_size(meta: dict[str, str]) -> int:
    """Bytes S3 counts against its user-metadata limit."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in meta.items())


def check_metadata(meta: dict[str, str], key: str) -> dict[str, str]:
    """Return `meta` if S3 will take it: ASCII values and under 2 KB; else raise UsageError."""
    for field, value in meta.items():
        if not (field.isascii() and value.isascii()):
            raise UsageError(f"metadata {field!r} for {key!r} is not ASCII")
    size = metadata_size(meta)
    if size > MAX_METADATA_BYTES:
        raise UsageError(
            f"metadata for {key!r} is {size} bytes; S3 allows at most {MAX_METADATA_BYTES}"
        )
    return meta


def _require(meta: dict[str, str], field: str, key: str) -> str:
    value = lookup(meta, field)
    if value is None:
        raise IntegrityError(f"{key}: deltaglider metadata is missing {field!r}")
    return value


def _int(meta: dict[str, str], field: str, key: str) -> int:
    raw = _require(meta, field, key)
    try:
        value = int(raw)
    except ValueError:
        raise IntegrityError(f"{key}: metadata {field!r} is not a number: {raw!r}") from None
    if value < 0:
        raise IntegrityError(f"{key}: metadata {field!r} is negative: {raw!r}")
    return value


def _sha(meta: dict[str, str], field: str, key: str) -> str:
    raw = _require(meta, field, key).lower()
    if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
        raise IntegrityError(f"{key}: metadata {field!r} is not a SHA-256: {raw!r}")
    return raw


def _time(meta: dict[str, str], key: str) -> datetime:
    raw = lookup(meta, "created_at")
    if raw is None:
        return datetime.fromtimestamp(0, UTC)
    try:
        return parse_time(raw)
    except ValueError:
        raise IntegrityError(f"{key}: metadata 'created_at' is not a date: {raw!r}") from None


@dataclass(frozen=True)
class ReferenceMeta:
    """Metadata of `<space>/reference.bin`."""

    source_name: str
    file_sha256: str
    created_at: datetime
    tool: str = TOOL
    series: str | None = None  # shared references: the series they serve

    def to_dict(self) -> dict[str, str]:
        meta = {
            "dg-tool": self.tool,
            "dg-source-name": encode_name(self.source_name),
            "dg-file-sha256": self.file_sha256,
            "dg-created-at": format_time(self.created_at),
            "dg-note": REFERENCE_NOTE,
        }
        if self.series is not None:
            meta["dg-series"] = encode_name(self.series)
        return meta

    @classmethod
    def from_dict(cls, meta: dict[str, str], key: str) -> ReferenceMeta:
        series = lookup(meta, "series")
        return cls(
            source_name=decode_name(lookup(meta, "source_name") or ""),
            file_sha256=_sha(meta, "file_sha256", key),
            created_at=_time(meta, key),
            tool=lookup(meta, "tool") or "",
            series=decode_name(series) if series is not None else None,
        )


@dataclass(frozen=True)
class DeltaMeta:
    """Metadata of `<space>/<name>.delta`. `ref_key` is relative to the bucket."""

    original_name: str
    file_sha256: str
    file_size: int
    created_at: datetime
    ref_key: str
    ref_sha256: str
    delta_size: int
    delta_cmd: str
    note: str | None = None
    codec: str | None = None
    md5: str | None = None
    tool: str = TOOL
    ref_linked: bool = False  # the reference is a chain link (FORMAT "Delta chains")

    def to_dict(self) -> dict[str, str]:
        meta = {
            "dg-tool": self.tool,
            "dg-original-name": encode_name(self.original_name),
            "dg-file-sha256": self.file_sha256,
            "dg-file-size": str(self.file_size),
            "dg-created-at": format_time(self.created_at),
            "dg-ref-key": encode_name(self.ref_key),
            "dg-ref-sha256": self.ref_sha256,
            "dg-delta-size": str(self.delta_size),
            "dg-delta-cmd": self.delta_cmd,
        }
        if self.note:
            meta["dg-note"] = self.note
        if self.codec:
            meta["dg-codec"] = self.codec
        if self.md5:
            meta["dg-md5"] = self.md5
        if self.ref_linked:
            meta.update({"dg-ref-linked": "true", "dg-format-version": str(CHAIN_FORMAT)})
        return meta

    @classmethod
    def from_dict(cls, meta: dict[str, str], key: str) -> DeltaMeta:
        """Read a delta's metadata; `key` is the delta's own key (for `ref-path` and errors)."""
        check_format(meta, key)
        ref_key = named_reference(meta, key)
        if ref_key is None:
            raise IntegrityError(f"{key}: delta metadata names no reference (dg-ref-key)")
        note = lookup(meta, "note")
        return cls(
            original_name=decode_name(
                lookup(meta, "original_name") or base_name(key).removesuffix(DELTA_SUFFIX)
            ),
            file_sha256=_sha(meta, "file_sha256", key),
            file_size=_int(meta, "file_size", key),
            created_at=_time(meta, key),
            ref_key=ref_key,
            ref_sha256=_sha(meta, "ref_sha256", key),
            delta_size=_int(meta, "delta_size", key) if lookup(meta, "delta_size") else 0,
            delta_cmd=lookup(meta, "delta_cmd") or "",
            note=note,
            codec=lookup(meta, "codec"),
            md5=lookup(meta, "md5"),
            tool=lookup(meta, "tool") or "",
            ref_linked=lookup(meta, "ref_linked") == "true",
        )


CHAIN_FORMAT = 2  # FORMAT "Delta chains": chain links and the deltas made against one


def check_format(meta: dict[str, str], key: str) -> None:
    """Refuse an object written in an on-bucket format newer than this reader knows."""
    raw = lookup(meta, "format_version") or "1"
    if not raw.isdigit() or int(raw) > CHAIN_FORMAT:
        raise IntegrityError(
            f"{key}: written in on-bucket format {raw}, newer than this deltaglider reads "
            f"({CHAIN_FORMAT}); upgrade deltaglider"
        )


@dataclass(frozen=True)
class LinkMeta:
    """A chain member's fields beside its ReferenceMeta (FORMAT "Delta chains"): its number in
    the series' chain and, for a link, the member its body is a delta against."""

    seq: int
    base_key: str | None = None  # None: the member's body is its whole file
    base_sha256: str = ""
    base_linked: bool = False  # the base is itself a link
    codec: str | None = None
    file_size: int = 0  # the member's file (a link's body is smaller)

    @property
    def linked(self) -> bool:
        """Whether the member's body is a delta against `base_key` (else its whole file)."""
        return self.base_key is not None

    def to_dict(self) -> dict[str, str]:
        meta = {"dg-chain-seq": str(self.seq)}
        if self.base_key is not None:
            meta.update(
                {
                    "dg-format-version": str(CHAIN_FORMAT),
                    "dg-ref-key": encode_name(self.base_key),
                    "dg-ref-sha256": self.base_sha256,
                    "dg-ref-linked": "true" if self.base_linked else "false",
                    "dg-codec": self.codec or "",
                    "dg-file-size": str(self.file_size),
                }
            )
        return meta

    @classmethod
    def from_dict(cls, meta: dict[str, str], key: str) -> LinkMeta | None:
        """None for a reference that is no chain member."""
        seq = lookup(meta, "chain_seq")
        if seq is None:
            return None
        check_format(meta, key)
        if not seq.isdigit():
            raise IntegrityError(f"{key}: dg-chain-seq is not a number: {seq!r}")
        base = lookup(meta, "ref_key")
        if base is None:
            return cls(int(seq))
        return cls(
            int(seq),
            decode_name(base),
            _sha(meta, "ref_sha256", key),
            lookup(meta, "ref_linked") == "true",
            lookup(meta, "codec"),
            _int(meta, "file_size", key) if lookup(meta, "file_size") else 0,
        )


def is_stats_cache(key: str) -> bool:
    """A `deltaglider stats` cache: ours (`stats/<id>.json`) or 6.x's (`stats_*.json`); it
    holds no file's bytes, so deleting it is always safe."""
    ours = key.startswith(STATS_PREFIX) and key.endswith(".json")
    return ours or (key.startswith(f"{INTERNAL_PREFIX}stats_") and key.endswith(".json"))


def without_link(meta: dict[str, str]) -> dict[str, str]:
    """A chain link's metadata as its whole form's: the link fields dropped, seq kept."""
    link = {"format_version", "ref_key", "ref_sha256", "ref_linked", "codec", "file_size"}
    return {k: v for k, v in meta.items() if k.removeprefix("dg-").replace("-", "_") not in link}


def named_reference(meta: dict[str, str], key: str) -> str | None:
    """The reference key a delta's metadata names: `ref-key`, or the Rust proxy's `ref-path`
    joined to the delta's space (`key` is the delta's own key); None when it names none."""
    ref_key = lookup(meta, "ref_key")
    if ref_key is not None:
        return decode_name(ref_key)
    ref_path = lookup(meta, "ref_path")
    return None if ref_path is None else join_key(parent_prefix(key), ref_path)


def delta_reference(meta: dict[str, str], key: str) -> str:
    """The reference a delta at `key` was made against: the one its metadata names, else its
    folder's `reference.bin` (what the old tool would assume)."""
    return named_reference(meta, key) or reference_key(parent_prefix(key))


@dataclass(frozen=True)
class DirectMeta:
    """Metadata of a file stored whole (`dg-compression` = `none`)."""

    original_name: str
    file_sha256: str
    file_size: int
    created_at: datetime
    md5: str | None = None
    tool: str = TOOL
    ref_linked: bool = False  # the reference is a chain link (FORMAT "Delta chains")

    def to_dict(self) -> dict[str, str]:
        meta = {
            "dg-tool": self.tool,
            "dg-original-name": encode_name(self.original_name),
            "dg-file-sha256": self.file_sha256,
            "dg-file-size": str(self.file_size),
            "dg-created-at": format_time(self.created_at),
            "dg-compression": "none",
        }
        if self.md5:
            meta["dg-md5"] = self.md5
        return meta

    @classmethod
    def from_dict(cls, meta: dict[str, str], key: str) -> DirectMeta:
        return cls(
            original_name=decode_name(lookup(meta, "original_name") or base_name(key)),
            file_sha256=_sha(meta, "file_sha256", key),
            file_size=_int(meta, "file_size", key),
            created_at=_time(meta, key),
            md5=lookup(meta, "md5"),
            tool=lookup(meta, "tool") or "",
        )


def shared_reference_key(series_id: str, created_at: datetime, sha256: str) -> str:
    """A new shared reference's key (FORMAT "Objects"): unique per file and moment, never
    overwritten, ending in `/reference.bin` so 6.x finds it by `dg-ref-key`; its slot name
    sorts newest first, so the newest references of a series are one short listing away."""
    micros = int(created_at.timestamp() * 1_000_000)
    return f"{REFS_PREFIX}{series_id}/{_NEWEST_FIRST - micros:016d}-{sha256}/{REFERENCE_NAME}"


def slot_sha256(slot: str) -> str | None:
    """The SHA-256 a shared reference slot's name carries (`…/<16 digits>-<sha256>/`), or None
    for a name of another shape."""
    parsed = _slot(slot)
    return parsed[1] if parsed else None


def slot_created_at(ref_key: str) -> datetime | None:
    """When the shared reference at `ref_key` was created, as its slot's name says."""
    parsed = _slot(ref_key.removesuffix(REFERENCE_NAME))
    if parsed is None:
        return None
    return datetime.fromtimestamp((_NEWEST_FIRST - int(parsed[0])) / 1_000_000, UTC)


def _slot(slot: str) -> tuple[str, str] | None:
    name = slot.rstrip("/").rsplit("/", 1)[-1]
    digits, _, sha256 = name.partition("-")
    if len(digits) != 16 or not digits.isdigit() or len(sha256) != 64:
        return None
    if any(c not in "0123456789abcdef" for c in sha256):
        return None
    return digits, sha256


def trash_folder(ref_key: str) -> str:
    """Where a reference being removed is kept until the removal is sure (FORMAT "Objects"):
    one folder per reference key, so a writer about to create that key can find it."""
    return f"{TRASH_PREFIX}{hashlib.sha256(ref_key.encode('utf-8')).hexdigest()[:24]}/"


def trash_meta(ref_meta: dict[str, str], ref_key: str) -> dict[str, str]:
    """A trash copy's metadata: the reference's, plus `dg-trash-of` naming the key it is a
    copy of (left out in the rare case it would take the metadata past S3's 2 KB)."""
    meta = {**ref_meta, "dg-trash-of": encode_name(ref_key)}
    return meta if metadata_size(meta) <= MAX_METADATA_BYTES else dict(ref_meta)


def untrashed_meta(trash_copy_meta: dict[str, str]) -> dict[str, str]:
    """The reference's own metadata, as a trash copy of it carries it (inverse of
    `trash_meta`)."""
    return {k: v for k, v in trash_copy_meta.items() if k != "dg-trash-of"}


def trashed_reference_key(meta: dict[str, str]) -> str | None:
    """The reference a trash copy is a copy of (None when the copy does not say)."""
    raw = meta.get("dg-trash-of")
    return decode_name(raw) if raw else None


def is_shared_reference(key: str) -> bool:
    return key.startswith(REFS_PREFIX) and base_name(key) == REFERENCE_NAME


def series_refs_prefix(series_id: str) -> str:
    """Where the shared references of one series live."""
    return f"{REFS_PREFIX}{series_id}/"


def users_prefix(ref_key: str) -> str:
    """The folder of user markers beside a shared reference."""
    return join_key(parent_prefix(ref_key), USERS_FOLDER)


def user_marker_key(ref_key: str, delta_key: str) -> str:
    """The marker saying that the delta at `delta_key` was made against `ref_key`."""
    name = hashlib.sha256(delta_key.encode("utf-8")).hexdigest()[:32]
    return users_prefix(ref_key) + name


def removal_marker_key(ref_key: str, removal_id: str) -> str:
    """The marker saying that a removal of the shared reference at `ref_key` is under way."""
    return join_key(parent_prefix(ref_key), REMOVING_FOLDER) + removal_id


def is_removal_marker(key: str) -> bool:
    return key.startswith(REFS_PREFIX) and base_name(parent_prefix(key)) == REMOVING_FOLDER[:-1]


def user_marker_meta(delta_key: str) -> dict[str, str]:
    return {"dg-delta-key": encode_name(delta_key)}


def marker_delta_key(meta: dict[str, str]) -> str | None:
    """The delta a user marker names (None when unreadable)."""
    raw = lookup(meta, "delta_key")
    return decode_name(raw) if raw else None


@dataclass(frozen=True)
class BucketSettings:
    """`.deltaglider/config.json` (FORMAT "Bucket settings"): JSON, versioned."""

    references: ReferenceMode = ReferenceMode.SHARED  # where new references go
    version: int = SETTINGS_VERSION
    codec: str | None = None  # the codec writers use unless told otherwise; None: xdelta3
    conditional_writes: bool | None = None  # the probe's answer, kept for later writers

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", ReferenceMode(self.references))

    def changed(self, change: str) -> BucketSettings:
        """These settings with one `KEY=VALUE` (`config --set`) applied; UsageError for
        anything else."""
        key, sep, value = change.partition("=")
        choices = {
            "references": REFERENCE_MODES,
            "codec": (*codecs.NAMES, "default"),
            "conditional_writes": ("true", "false", "probe"),
        }
        if not sep or key not in choices:
            raise UsageError(
                f"--set expects one of {', '.join(choices)} as KEY=VALUE, not {change!r}"
            )
        if value not in choices[key]:
            raise UsageError(f"{key} must be one of {', '.join(choices[key])}, not {value!r}")
        if key == "references":
            return replace(self, references=ReferenceMode(value))
        if key == "codec":
            return replace(self, codec=None if value == "default" else value)
        return replace(self, conditional_writes=None if value == "probe" else value == "true")

    def to_json(self) -> bytes:
        document: dict[str, object] = {"version": self.version, "references": self.references}
        if self.codec is not None:
            document["codec"] = self.codec
        if self.conditional_writes is not None:
            document["conditional_writes"] = self.conditional_writes
        return json.dumps(document).encode()

    @classmethod
    def from_json(cls, data: bytes, key: str) -> BucketSettings:
        try:
            loaded = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeError):
            raise IntegrityError(f"{key}: not valid JSON") from None
        if not isinstance(loaded, dict):
            raise IntegrityError(f"{key}: not a JSON object")
        version = loaded.get("version", SETTINGS_VERSION)
        if not isinstance(version, int) or version > SETTINGS_VERSION:
            raise IntegrityError(
                f"{key}: settings version {version!r} is newer than this deltaglider reads "
                f"({SETTINGS_VERSION}); upgrade deltaglider"
            )
        references = loaded.get("references", ReferenceMode.SHARED.value)
        if references not in REFERENCE_MODES:
            raise IntegrityError(
                f"{key}: references must be one of {', '.join(REFERENCE_MODES)}, not "
                f"{references!r} (a newer deltaglider's setting? upgrade deltaglider)"
            )
        codec = loaded.get("codec")
        if codec not in (None, *codecs.NAMES):
            raise IntegrityError(f"{key}: codec must be xdelta3 or zstd, not {codec!r}")
        conditional = loaded.get("conditional_writes")
        if conditional is not None and not isinstance(conditional, bool):
            raise IntegrityError(f"{key}: conditional_writes must be true or false")
        return cls(ReferenceMode(references), version, codec, conditional)


@dataclass(frozen=True)
class RehydrationMeta:
    """Metadata of a presigned-URL rehydration `.deltaglider/tmp/<sha256>/<name>`
    (FORMAT "Metadata"): when it may be purged, and which logical key it is a copy of."""

    expires_at: datetime
    source_key: str

    def to_dict(self) -> dict[str, str]:
        return {
            "dg-expires-at": format_time(self.expires_at),
            "dg-source-key": encode_name(self.source_key),
        }

    @classmethod
    def from_dict(cls, meta: dict[str, str]) -> RehydrationMeta | None:
        """None when the metadata does not say when it expires (then it is purged)."""
        raw = lookup(meta, "expires_at")
        if raw is None:
            return None
        try:
            expires_at = parse_time(raw)
        except ValueError:
            return None
        return cls(expires_at, decode_name(lookup(meta, "source_key") or ""))


def classify(key: str, meta: dict[str, str]) -> ObjectKind:
    """FORMAT "How a read decides what an object is", plus: a `reference.bin` carrying a
    SHA-256 (or the note `reference`) is a reference, never a delta."""
    if lookup(meta, "file_sha256") is None:
        return ObjectKind.PLAIN
    if lookup(meta, "compression") == "none" or lookup(meta, "note") == PASSTHROUGH_NOTE:
        return ObjectKind.DIRECT  # the Rust proxy marks its whole files `passthrough`
    if base_name(key) == REFERENCE_NAME or lookup(meta, "note") == REFERENCE_NOTE:
        return ObjectKind.REFERENCE
    return ObjectKind.DELTA


class KeyRole(Enum):
    """What a stored key is by its name alone (FORMAT "Objects"), as a listing shows it."""

    SHARED_REFERENCE = "shared reference"  # .deltaglider/refs/<series>/<slot>/reference.bin
    INTERNAL = "internal"  # any other .deltaglider/ object (markers, settings, trash, tmp)
    FOLDER_REFERENCE = "folder reference"  # <folder>/reference.bin
    DELTA = "delta"  # <key>.delta
    FILE = "file"  # a direct object, another tool's plain one, or a folder marker


def role_of(key: str) -> KeyRole:
    if key.startswith(INTERNAL_PREFIX):
        return KeyRole.SHARED_REFERENCE if is_shared_reference(key) else KeyRole.INTERNAL
    if base_name(key) == REFERENCE_NAME:
        return KeyRole.FOLDER_REFERENCE
    return KeyRole.DELTA if key.endswith(DELTA_SUFFIX) else KeyRole.FILE


def is_internal_key(key: str) -> bool:
    """Keys that are deltaglider's own and never shown as user files."""
    return key.startswith(INTERNAL_PREFIX) or base_name(key) == REFERENCE_NAME


def reference_key(space: str) -> str:
    return join_key(space, REFERENCE_NAME)


def delta_key(logical_key: str) -> str:
    return logical_key + DELTA_SUFFIX


def logical_key_of(stored_key: str) -> str:
    """The logical key a stored key shows as: `.delta` stripped, unless nothing of the name
    would be left (FORMAT "The logical view")."""
    logical = stored_key.removesuffix(DELTA_SUFFIX)
    return logical if base_name(logical) else stored_key


def recorded_size(meta: dict[str, str]) -> int | None:
    """The logical file size our metadata records (`file-size`), when it is a number."""
    size = lookup(meta, "file_size")
    return int(size) if size and size.isdigit() else None

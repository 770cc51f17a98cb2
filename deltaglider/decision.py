"""The upload decision (FORMAT "Writing") as a pure function of what is known: which names
are tried as deltas, and given the file, what the key holds now and (once encoded) the best
delta, whether the upload is unchanged, direct, a new reference, a delta, or stored whole over
the max ratio. The same for upload, estimate, sync and migrate.

Owns: the rule, its inputs (`Artifact`, `DeltaTrial`) and its answer (`Decision`). Must not
perform I/O: `writing` gathers the inputs and carries out the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deltaglider.files import Digest, Progress
from deltaglider.metadata import DELTA_SUFFIX, ObjectKind, delta_key, user_metadata
from deltaglider.models import DeltaPolicy, ReferenceMode, StoredAs, UploadOptions
from deltaglider.reading import Located
from deltaglider.urls import MAX_KEY_BYTES, base_name

# The old tool's list (FORMAT), then zip-based formats it missed. Matched case-insensitively
# against the end of the name, so `.tar.gz` is covered by `.gz` too.
DELTA_EXTENSIONS = (
    ".zip",
    ".tar",
    ".gz",
    ".tgz",
    ".bz2",
    ".xz",
    ".7z",
    ".rar",
    ".dmg",
    ".iso",
    ".pkg",
    ".deb",
    ".rpm",
    ".apk",
    ".jar",
    ".war",
    ".ear",
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".whl",
    ".nupkg",
    ".vsix",
    ".aar",
    ".ipa",
    ".apks",
    ".egg",
)


def wants_delta(key: str, policy: DeltaPolicy) -> bool:
    """Whether an upload to `key` is tried as a delta under `policy`."""
    return policy is DeltaPolicy.ALWAYS or (
        policy is DeltaPolicy.AUTO and is_delta_eligible(base_name(key))
    )


def is_delta_eligible(name: str) -> bool:
    """True when a file of this name is tried as a delta by default."""
    return name.lower().endswith(DELTA_EXTENSIONS)


@dataclass(frozen=True)
class Artifact:
    """A local file on its way to a logical key, checked and hashed."""

    path: Path
    digest: Digest
    bucket: str
    key: str
    options: UploadOptions
    user_metadata: dict[str, str]  # options.metadata checked, or {} when not given
    progress: Progress | None = None  # told the bytes sent of a direct object


@dataclass(frozen=True)
class DeltaTrial:
    """A delta encoded for an upload: its size, and whether it is the self-delta of a new
    reference."""

    size: int
    new_reference: bool = False


@dataclass(frozen=True)
class Decision:
    """What an upload stores and why. `stored_as` None: encode a delta, then decide again
    with its `DeltaTrial`."""

    stored_as: StoredAs | None
    note: str = ""


def decide_upload(
    item: Artifact,
    existing: Located | None,
    max_ratio: float,
    trial: DeltaTrial | None = None,
    *,
    mode: ReferenceMode = ReferenceMode.SHARED,
    renew_ratio: float | None = None,
) -> Decision:
    """The upload decision (FORMAT "Writing"), the same for upload, estimate and sync.

    Unchanged when the key already holds these bytes (and, when given, this user metadata and
    content type); direct when the name is not delta-eligible under the policy or the file is
    empty; otherwise a delta against the best reference: a new reference when there is none,
    or, for shared references (`mode`), when the best delta is over `renew_ratio` of the file
    (renewal; None: the max ratio); stored whole when the delta is over `max_ratio`."""
    digest, options = item.digest, item.options
    if (
        existing is not None
        and existing.sha256 == digest.sha256
        and (
            options.metadata is None or user_metadata(existing.head.metadata) == item.user_metadata
        )
        and options.content_type in (None, existing.head.content_type)
        and not (options.policy is DeltaPolicy.NEVER and existing.kind is ObjectKind.DELTA)
    ):  # --no-delta over the same bytes stored as a delta stores them whole, as asked
        return Decision(StoredAs.UNCHANGED, "identical file already stored")
    if not wants_delta(item.key, options.policy):
        return Decision(StoredAs.DIRECT)
    if max_ratio <= 0:
        return Decision(StoredAs.DIRECT, "max ratio 0: every file stored whole")
    if len(delta_key(item.key).encode("utf-8")) > MAX_KEY_BYTES:
        return Decision(StoredAs.DIRECT, f"key too long for its {DELTA_SUFFIX} form")
    if digest.size == 0:
        return Decision(StoredAs.DIRECT, "empty file")
    if trial is None:
        return Decision(None)
    whose = "folder" if mode is ReferenceMode.FOLDER else "series"
    if trial.new_reference:
        return Decision(StoredAs.REFERENCE, f"new reference for its {whose}")
    renew = max_ratio if renew_ratio is None else renew_ratio
    if mode is ReferenceMode.SHARED and trial.size > renew * digest.size:
        return Decision(
            StoredAs.REFERENCE,
            f"new reference for its series (best delta {trial.size / digest.size:.0%} of the file)",
        )
    if trial.size > max_ratio * digest.size:
        return Decision(StoredAs.DIRECT, f"delta over max ratio {max_ratio:g}")
    return Decision(StoredAs.DELTA)

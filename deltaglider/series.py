"""File series: which stored files are versions of one artifact, whatever folder they are in.

Owns: the rule (docs/FORMAT.md "Series") that turns a logical key into its series name by
abstracting version-like parts (dates, git hashes, semantic and PEP 440 versions, build
numbers) in every path segment, and the series id used in shared reference keys. Must not
perform I/O.
"""

from __future__ import annotations

import hashlib
import re

VERSION_MARK = "#"

# Applied in order to each path segment; each match becomes VERSION_MARK.
_DATE = r"(?:19|20)\d\d[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:0[1-9]|[12]\d|3[01])(?:[T_-]?\d{4,6}Z?)?"
_HASH = r"(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}"
_PRE_WORDS = (
    "alpha|beta|rc|dev|post|pre|preview|snapshot|nightly|canary|next|final|ga|release|a|b|c"
)
_PRE = rf"(?:[-._]?(?:{_PRE_WORDS})[-._]?\d*)"
_VERSION = rf"v?\d+(?:[._]\d+)*{_PRE}*(?:\+[0-9A-Za-z]+(?:[._][0-9A-Za-z]+)*)?"
_PATTERNS = [
    re.compile(rf"(?<![0-9A-Za-z]){_DATE}(?![0-9A-Za-z])"),
    re.compile(rf"(?<![0-9A-Za-z]){_HASH}(?![0-9A-Za-z])"),
    re.compile(rf"(?<![0-9A-Za-z]){_VERSION}(?![0-9A-Za-z])", re.IGNORECASE),
]
# Version marks joined by separators are one version: `#.#`, `#-#`, `#_#` become `#`.
_RUN = re.compile(rf"{VERSION_MARK}(?:[-._+]?{VERSION_MARK})+")


def series_of(key: str) -> str:
    """The series a logical key belongs to: the key with every version-like part replaced by
    `#`. `releases/1.2.4/app-linux-1.2.4.zip` and `releases/1.2.5/app-linux-1.2.5.zip` are one
    series (`releases/#/app-linux-#.zip`); `app-win-1.2.5.zip` is another."""
    segments = []
    for segment in key.split("/"):
        for pattern in _PATTERNS:
            segment = pattern.sub(VERSION_MARK, segment)
        segments.append(_RUN.sub(VERSION_MARK, segment))
    return "/".join(segments)


def series_id(series: str) -> str:
    """A short, key-safe, stable name for a series (its shared references live under it)."""
    return hashlib.sha256(series.encode("utf-8")).hexdigest()[:24]


def natural_key(key: str) -> list[tuple[int, int, str]]:
    """The order of a series' versions: digit runs compare as numbers (`1.9` before `1.10`)."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", key)
    ]

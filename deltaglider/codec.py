"""The delta codecs deltaglider knows, as one table: each codec's name (what `--codec`,
DG_CODEC and the bucket setting accept), the `dg-codec` tag its deltas carry, its binary, how to
install it, the magic bytes its deltas start with, and whether deltaglider 6.x reads it.

Owns: the table and the names derived from it. Every other module takes codec names, tags and
magic bytes from here. Must not run anything (`xdelta` starts the binaries) or import another
deltaglider module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Codec:
    name: str  # as `--codec`, DG_CODEC and the bucket setting spell it
    tag: str  # the `dg-codec` of its deltas (FORMAT "Metadata")
    binary: str
    install_hint: str
    magic: bytes  # how its deltas start
    read_by_6x: bool  # whether deltaglider 6.x decodes its deltas


XDELTA3 = Codec("xdelta3", "xdelta3-D", "xdelta3", "apt-get install xdelta3", b"\xd6\xc3\xc4", True)
# zstd --patch-from with the reference as a prefix dictionary: several times faster to encode,
# slightly larger deltas; deltaglider 6.x cannot read them.
ZSTD = Codec("zstd", "zstd-patch-from", "zstd", "apt-get install zstd", b"\x28\xb5\x2f\xfd", False)

TABLE = (XDELTA3, ZSTD)
DEFAULT = XDELTA3
NAMES = tuple(codec.name for codec in TABLE)  # ("xdelta3", "zstd")
BY_NAME = {codec.name: codec for codec in TABLE}
BY_TAG = {codec.tag: codec for codec in TABLE}


def of_magic(head: bytes) -> Codec | None:
    """The codec whose deltas start like `head` (None: no known codec's)."""
    return next((codec for codec in TABLE if head.startswith(codec.magic)), None)

"""Delta chains (`references=chain`; FORMAT "Delta chains").

In a chain bucket every new version of a series becomes the series' newest shared reference,
stored as a *link*: a delta of its file against an earlier member of the series' chain (its
base), which may itself be a link. The version's own key holds its self-delta against that
reference, as a series' first file does in a shared bucket. Bases follow the skip-delta rule:
version n is encoded against version n with its lowest set bit cleared, so reading any version
decodes at most popcount(n) <= log2(n) + 1 links, each checked against its SHA-256. A link
keeps its base with a user marker beside the base, as every delta keeps its shared reference:
a member goes only when no marker is left, and a link's removal releases the marker on its
base (`References.release`), so deleting versions never leaves another unreadable.

Owns: numbering members and choosing a version's base, the members' metadata, and rebuilding
a member's file through the reference cache. Must not call boto3, write objects (References
does) or decide deletions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from deltaglider import xdelta
from deltaglider.errors import CodecError, IntegrityError, NotFoundError
from deltaglider.files import CHUNK_SIZE, Sink
from deltaglider.metadata import LinkMeta, ReferenceMeta, without_link
from deltaglider.models import ObjectHead
from deltaglider.parts import EngineParts
from deltaglider.references import Reference


def base_seq(seq: int) -> int:
    """The number of the member version `seq` is encoded against (skip-deltas)."""
    return seq & (seq - 1)


def links_to_read(seq: int) -> int:
    """At most how many links a read of member `seq` decodes (the chain's read bound)."""
    return bin(seq).count("1")


@dataclass(frozen=True)
class Member:
    """A reference of a chain series as stored: whole (a start) or a link."""

    reference: Reference
    link: LinkMeta

    @property
    def linked(self) -> bool:
        return self.link.linked

    def whole_form(self) -> Reference:
        """The same member with its file as its body (how a vanished base is put back)."""
        meta = without_link(self.reference.metadata)
        return Reference(self.reference.key, self.reference.sha256, meta)


def member_of(key: str, head: ObjectHead) -> Member:
    """A shared reference as a chain member; one written outside a chain is a start (0)."""
    sha256 = ReferenceMeta.from_dict(head.metadata, key).file_sha256
    link = LinkMeta.from_dict(head.metadata, key) or LinkMeta(0)
    return Member(Reference(key, sha256, head.metadata), link)


def newest(
    parts: EngineParts, bucket: str, series: str, listed: list[Reference] | None = None
) -> Member | None:
    """The series' newest reference (from one listing page, or `listed`, and a HEAD), or
    None when it has none."""
    candidates = parts.references.shared_candidates(bucket, series) if listed is None else listed
    for candidate in candidates:
        head = parts.store.head(bucket, candidate.key)
        if head is not None:
            return member_of(candidate.key, head)
    return None


def base_for(parts: EngineParts, bucket: str, latest: Member) -> Member:
    """The member the version after `latest` is encoded against: walking from `latest`
    along its bases (HEADs only) to the one numbered `base_seq`; a member stored whole ends
    the walk early (the read bound only shrinks)."""
    target = base_seq(latest.link.seq + 1)
    current = latest
    while current.link.seq > target and current.link.base_key is not None:
        key = current.link.base_key
        head = parts.store.head(bucket, key)
        if head is None:
            raise NotFoundError(f"s3://{bucket}/{key}: a chain member a link needs is gone")
        current = member_of(key, head)
    return current


@contextlib.contextmanager
def fetch(
    parts: EngineParts, bucket: str, key: str, sha256: str, *, linked: bool, fresh: bool = False
) -> Iterator[Path]:
    """A local copy of a reference's file, checked against `sha256`: a whole reference is
    fetched as any (`References.fetch`); a link is rebuilt from its base, recursively, each
    step through the cache (so a nearby version's next read decodes one link) and checked.
    A link that is missing, corrupt or does not decode is an error naming it."""
    if not linked:
        with parts.references.fetch(bucket, key, sha256, fresh=fresh) as path:
            yield path
        return
    where = f"s3://{bucket}/{key}"

    def rebuild(out: Sink) -> None:
        with parts.work_directory() as scratch:
            body = Path(scratch) / "link"
            with body.open("wb") as handle:
                head = parts.store.download(bucket, key, handle)
            link = LinkMeta.from_dict(head.metadata, key)
            if link is None or link.base_key is None:  # put back whole after a race
                with body.open("rb") as source:
                    while chunk := source.read(CHUNK_SIZE):
                        out.write(chunk)
                return
            with fetch(
                parts,
                bucket,
                link.base_key,
                link.base_sha256,
                linked=link.base_linked,
                fresh=fresh,
            ) as base:
                try:
                    xdelta.decode(
                        base,
                        body,
                        cast(BinaryIO, out),
                        tag=link.codec,
                        limit=link.file_size or None,
                    )
                except CodecError as error:
                    raise IntegrityError(f"{where}: chain link does not decode: {error}") from None

    with parts.cache.reference(sha256, rebuild, where, fresh=fresh) as path:
        yield path

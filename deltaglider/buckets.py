"""A bucket's deltaglider settings and what follows from them for writers.

Owns: reading `.deltaglider/config.json` once per process and writing it (FORMAT "Bucket
settings"), the reference mode and codec in force (command-line and environment over the
bucket's setting), the remembered conditional-write probe, and the one rule for which group a
new reference serves (`reference_group`), used by the engine, `transfer`, `migration`,
`retention` and `stats` alike. Must not encode, decode or list the logical view.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from dataclasses import dataclass

from deltaglider import codec as codecs
from deltaglider.config import Settings
from deltaglider.errors import DeltagliderError, NotFoundError
from deltaglider.log import get_logger
from deltaglider.metadata import SETTINGS_KEY, BucketSettings
from deltaglider.models import ReferenceMode
from deltaglider.references import References
from deltaglider.s3 import ObjectStore
from deltaglider.series import series_of
from deltaglider.urls import parent_prefix

log = get_logger(__name__)


@dataclass(frozen=True)
class ReferenceGroup:
    """The files one new reference serves: a series (shared) or a folder (folder mode)."""

    bucket: str
    mode: ReferenceMode
    name: str  # the series, or the folder's prefix


def group_of(bucket: str, key: str, mode: ReferenceMode) -> ReferenceGroup:
    """`key`'s group when new references go where `mode` says."""
    name = parent_prefix(key) if mode is ReferenceMode.FOLDER else series_of(key)
    return ReferenceGroup(bucket, mode, name)


class BucketConfig:
    """The settings of every bucket one engine writes to, each read once."""

    def __init__(self, store: ObjectStore, references: References, settings: Settings) -> None:
        self._store = store
        self._references = references
        self._settings = settings
        self._known: dict[str, BucketSettings] = {}
        self._stored: set[str] = set()  # buckets that have a settings object
        self._lock = threading.Lock()

    def get(self, bucket: str) -> BucketSettings:
        """The bucket's `.deltaglider/config.json` (defaults when there is none)."""
        with self._lock:
            known = self._known.get(bucket)
            if known is None:
                out = io.BytesIO()
                try:
                    self._store.download(bucket, SETTINGS_KEY, out)
                    known = BucketSettings.from_json(
                        out.getvalue(), f"s3://{bucket}/{SETTINGS_KEY}"
                    )
                    self._stored.add(bucket)
                except NotFoundError as error:
                    if error.code == "NoSuchBucket":
                        raise
                    known = BucketSettings()
                self._known[bucket] = known
            return known

    def put(self, bucket: str, settings: BucketSettings) -> None:
        self._store.put_bytes(bucket, SETTINGS_KEY, settings.to_json(), {})
        with self._lock:
            self._known[bucket] = settings
            self._stored.add(bucket)

    def reference_mode(self, bucket: str) -> ReferenceMode:
        """Where new references go in `bucket`: `--references`/DG_REFERENCES, else the
        bucket's setting, else shared."""
        return self._settings.references or self.get(bucket).references

    def codec(self, bucket: str) -> str:
        """The codec new deltas in `bucket` use: `--codec`/DG_CODEC, else the bucket's
        setting, else xdelta3, which deltaglider 6.x reads."""
        return self._settings.codec or self.get(bucket).codec or codecs.DEFAULT.name

    def conditional_writes(self, bucket: str) -> bool:
        """Whether the server honours `If-None-Match: *`: the bucket settings' remembered
        answer, else probed once (FORMAT "Writing") and, in a bucket that has a settings
        object, remembered there for later writers (none is created just for this)."""
        remembered = self.get(bucket).conditional_writes
        answer = self._references.conditional_writes(bucket, remembered)
        if remembered is None and bucket in self._stored:
            current = self.get(bucket)
            try:
                self.put(bucket, dataclasses.replace(current, conditional_writes=answer))
            except DeltagliderError as error:  # only a speed-up for the next writer
                log.warning("probe_not_remembered", bucket=bucket, error=str(error))
        return answer

    def reference_group(self, bucket: str, key: str) -> ReferenceGroup:
        """The group a new reference made by an upload to `key` serves (FORMAT "Writing"):
        its folder in folder mode where the server honours If-None-Match; otherwise its
        series. Folder mode on a server without conditional writes makes shared references,
        whose keys are unique, so racing writers of one folder cannot each create one."""
        mode = self.reference_mode(bucket)
        if mode is ReferenceMode.FOLDER and self.conditional_writes(bucket):
            return group_of(bucket, key, ReferenceMode.FOLDER)
        chained = mode is ReferenceMode.CHAIN
        return group_of(bucket, key, ReferenceMode.CHAIN if chained else ReferenceMode.SHARED)

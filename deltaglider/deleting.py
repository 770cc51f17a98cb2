"""Deleting: a logical key's stored forms, or everything under a prefix, and then the
references no remaining delta needs (FORMAT "Deleting and references").

Owns: which stored objects a logical delete removes (both forms, then its reference through
`references.References.release`), folder markers, and the batched `rm --recursive`/`rb
--force` sweep. Must not call boto3 or decide retention (`retention` does).
"""

from __future__ import annotations

import time

from deltaglider.errors import IntegrityError, NotFoundError
from deltaglider.events import Subscriber
from deltaglider.listing import stored_objects
from deltaglider.metadata import (
    INTERNAL_PREFIX,
    KeyRole,
    ObjectKind,
    check_user_key,
    classify,
    delta_key,
    is_internal_key,
    is_stats_cache,
    logical_key_of,
    role_of,
)
from deltaglider.models import DeleteResult
from deltaglider.parts import EngineParts
from deltaglider.reading import locate, reference_of
from deltaglider.urls import parent_prefix

BATCH = 1000  # keys per DeleteObjects request, S3's limit


def delete(parts: EngineParts, bucket: str, key: str) -> DeleteResult:
    """Delete a logical object, both its forms (`k` and `k.delta`) if two writers left
    both; a reference goes too once no delta needs it. A folder marker (`name/`, zero
    bytes, as S3 consoles make folders) is deleted as it is."""
    store = parts.store
    if key.endswith("/") and not key.startswith(INTERNAL_PREFIX):
        marker = store.head(bucket, key)
        if marker is None or marker.size:
            raise NotFoundError(f"s3://{bucket}/{key}: no such folder marker")
        store.delete(bucket, key)
        return DeleteResult(bucket, key, (key,))
    if is_stats_cache(key):  # as `aws s3 rm`: gone afterwards, whether it was there or not
        store.delete(bucket, key)
        return DeleteResult(bucket, key, (key,))
    check_user_key(key)
    started = time.monotonic()
    located = locate(parts, bucket, key)
    removed: list[str] = []
    for stored_key in (key, delta_key(key)):  # every form: an older one must not resurface
        head = located.head if stored_key == located.stored_key else None
        head = head or store.head(bucket, stored_key)
        if head is None:
            continue
        store.delete(bucket, stored_key)
        removed.append(stored_key)
        if classify(stored_key, head.metadata) is ObjectKind.DELTA:
            removed += parts.references.release(bucket, reference_of(head), stored_key)
    parts.metrics.timing("delete.duration", time.monotonic() - started)
    parts.metrics.increment(f"delete.{located.kind.value}")
    return DeleteResult(bucket, key, tuple(removed))


def delete_recursive(
    parts: EngineParts, bucket: str, prefix: str, subscriber: Subscriber | None = None
) -> list[DeleteResult]:
    """Delete every stored object under `prefix`, internal ones included (as `rb --force`
    needs), then every reference that no remaining delta needs. `subscriber.on_done` is told
    each deletion (`result=`)."""
    told = subscriber or Subscriber()
    started = time.monotonic()
    results: list[DeleteResult] = []
    spaces: set[str] = set()
    batch: list[str] = []

    def flush() -> None:
        failed = set(parts.store.delete_many(bucket, batch))
        for stored_key in batch:
            if stored_key in failed:
                continue
            logical = stored_key if is_internal_key(stored_key) else logical_key_of(stored_key)
            result = DeleteResult(bucket, logical, (stored_key,))
            results.append(result)
            told.on_done(result=result)
        if failed:
            raise IntegrityError(
                f"s3://{bucket}: {len(failed)} objects could not be deleted, e.g. "
                f"{sorted(failed)[0]!r}"
            )
        batch.clear()

    for head in stored_objects(parts.store, bucket, prefix):
        role = role_of(head.key)
        if role in (KeyRole.DELTA, KeyRole.FOLDER_REFERENCE):
            spaces.add(parent_prefix(head.key))
        if role is not KeyRole.FOLDER_REFERENCE:
            batch.append(head.key)
            if len(batch) == BATCH:
                flush()
    if batch:
        flush()
    for space in sorted(spaces):
        parts.references.drop_unused(bucket, space)
    parts.metrics.timing("delete_recursive.duration", time.monotonic() - started)
    parts.metrics.increment("delete_recursive.completed")
    return results

"""What one engine's flows share: its settings, store, reference cache, reference protocol,
bucket settings and the pool its small concurrent requests go through.

Owns: building those once per engine and closing them. Must not decide anything: the flows
(`writing`, `reading`, `deleting`) do, and only `engine.Engine` hands these parts out.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from deltaglider.buckets import BucketConfig
from deltaglider.cache import ReferenceCache, open_cache
from deltaglider.config import Settings
from deltaglider.metrics import Metrics, open_metrics
from deltaglider.references import References
from deltaglider.s3 import ObjectStore, Store, cloudwatch_publisher, make_client


@dataclass(frozen=True)
class EngineParts:
    settings: Settings
    store: ObjectStore
    cache: ReferenceCache
    references: References
    buckets: BucketConfig
    # small requests one operation sends together (HEADs, the settings, a listing page); only
    # leaf calls run here, never one that submits more
    requests: ThreadPoolExecutor
    metrics: Metrics

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: ObjectStore | None = None,
        cache: ReferenceCache | None = None,
        *,
        credentials: dict[str, str] | None = None,
        boto3_methods: bool = False,
    ) -> EngineParts:
        store = store or Store(
            make_client(settings, credentials, boto3_methods=boto3_methods), settings
        )
        cache = cache or open_cache(settings)
        references = References(store, cache)
        return cls(
            settings,
            store,
            cache,
            references,
            BucketConfig(store, references, settings),
            ThreadPoolExecutor(
                max_workers=4 * max(settings.max_concurrency, 2),
                thread_name_prefix="deltaglider-request",
            ),
            open_metrics(
                settings.metrics,
                settings.metrics_namespace,
                lambda: cloudwatch_publisher(settings, credentials),
            ),
        )

    def work_directory(self) -> tempfile.TemporaryDirectory[str]:
        """A private scratch directory, removed with the cache by the next process if a
        killed one left it behind."""
        return self.cache.work_directory()

    def close(self) -> None:
        self.metrics.flush()
        self.requests.shutdown(wait=False, cancel_futures=True)
        self.cache.close()

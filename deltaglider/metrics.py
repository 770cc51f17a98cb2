"""Operational metrics with deltaglider 6.x's names (`deltaglider.put.duration`,
`deltaglider.delta.created`, …), chosen by DG_METRICS: `noop`, `logging` (6.x's default: one
key=value event per metric, at INFO) or `cloudwatch` (DG_METRICS_NAMESPACE, default
`DeltaGlider`; data points are sent in batches when the engine closes).

Owns: the metric names, their units, and buffering. Must not call boto3 (`s3.py` makes the
CloudWatch publisher) or let a metric fail an operation: a publisher that fails is logged
once and dropped.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from deltaglider.log import get_logger

log = get_logger(__name__)

PREFIX = "deltaglider."
BATCH = 20  # data points per PutMetricData call (CloudWatch's limit is larger; 20 is safe)
Publish = Callable[[str, list[dict[str, Any]]], None]  # (namespace, data points)


class Metrics:
    """Records nothing (`DG_METRICS=noop`); the base of the others."""

    def increment(self, name: str, value: int = 1) -> None:
        self._record(name, float(value), "Count", "increment")

    def gauge(self, name: str, value: float, unit: str = "None") -> None:
        self._record(name, value, unit, "gauge")

    def timing(self, name: str, seconds: float) -> None:
        self._record(name, round(seconds * 1000, 3), "Milliseconds", "timing")

    def _record(self, name: str, value: float, unit: str, kind: str) -> None:
        """Keep one data point (`name` without the `deltaglider.` prefix)."""

    def flush(self) -> None:
        """Send what is buffered."""


class LoggingMetrics(Metrics):
    def _record(self, name: str, value: float, unit: str, kind: str) -> None:
        log.info("metric", kind=kind, name=PREFIX + name, value=value, unit=unit)


class CloudWatchMetrics(Metrics):
    """Buffers data points and publishes them in batches (on `flush`, and when full)."""

    def __init__(self, publish: Publish, namespace: str) -> None:
        self._publish: Publish | None = publish
        self._namespace = namespace
        self._points: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        atexit.register(self.flush)  # a command's engine is not closed before it exits

    def _record(self, name: str, value: float, unit: str, kind: str) -> None:
        point = {
            "MetricName": PREFIX + name,
            "Value": value,
            "Unit": unit,
            "Timestamp": datetime.now(UTC),
        }
        with self._lock:
            self._points.append(point)
            full = len(self._points) >= BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            points, self._points = self._points, []
        for start in range(0, len(points), BATCH):
            if self._publish is None:
                return
            try:
                self._publish(self._namespace, points[start : start + BATCH])
            except Exception as error:  # a metric never fails an operation
                log.warning("metrics_not_sent", namespace=self._namespace, error=str(error))
                self._publish = None


def open_metrics(kind: str, namespace: str, publisher: Callable[[], Publish]) -> Metrics:
    """The metrics DG_METRICS asks for; `publisher` makes the CloudWatch one when needed."""
    if kind == "logging":
        return LoggingMetrics()
    if kind == "cloudwatch":
        return CloudWatchMetrics(publisher(), namespace)
    return Metrics()

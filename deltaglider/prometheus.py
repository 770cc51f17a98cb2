"""`deltaglider stats --format prometheus`: a BucketStats as the Prometheus text exposition
format (node_exporter's textfile collector reads it).

Owns: metric names, labels and their escaping. Must not compute statistics (stats does) or
reach storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltaglider.stats import BucketStats


def text(result: BucketStats) -> str:
    """The text exposition format (node_exporter's textfile collector reads it)."""
    where = f'bucket="{_label(result.bucket)}",prefix="{_label(result.prefix)}"'
    lines: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP deltaglider_{name} {help_text}")
        lines.append(f"# TYPE deltaglider_{name} gauge")
        for labels, value in samples:
            number = str(value) if isinstance(value, int) else repr(float(value))
            lines.append(f"deltaglider_{name}{{{where}{labels}}} {number}")

    metric("logical_bytes", "Bytes of the files as users see them.", [("", result.logical_bytes)])
    metric(
        "stored_bytes",
        "Bytes of every object kept, by kind.",
        [
            ("", result.stored_bytes),
            *((f',kind="{kind}"', size) for kind, size in _stored_by_kind(result)),
        ],
    )
    metric("saved_bytes", "Logical minus stored bytes.", [("", result.saved_bytes)])
    metric("stored_ratio", "Stored bytes / logical bytes.", [("", round(result.stored_ratio, 6))])
    metric(
        "objects",
        "Stored objects by kind.",
        [(f',kind="{kind}"', count) for kind, count in _objects_by_kind(result)],
    )
    metric(
        "logical_bytes_estimated",
        "1 when logical bytes of deltas are estimated (quick and sampled modes).",
        [("", int(result.logical_estimated))],
    )
    for name, help_text, samples in _group_metrics(result):
        metric(name, help_text, samples)
    return "\n".join(lines) + "\n"


def _group_metrics(result: BucketStats) -> list[tuple[str, str, list[tuple[str, float]]]]:
    """The per-series (or per-folder) metrics: name, help, (labels, value) samples."""
    label = result.by
    found: list[tuple[str, str, list[tuple[str, float]]]] = []
    for name, help_text, field_name in (
        ("group_logical_bytes", f"Logical bytes per {label}.", "logical_bytes"),
        (
            "group_stored_bytes",
            f"Stored bytes of deltas and direct files per {label}.",
            "stored_bytes",
        ),
        ("group_files", f"Files per {label}.", "files"),
    ):
        samples = [
            (f',{label}="{_label(group.name)}"', getattr(group, field_name))
            for group in result.groups
        ]
        found.append((name, help_text, samples))
    ratios = [
        (f',{label}="{_label(group.name)}",grade="{group.grade.value}"', group.median_delta_ratio)
        for group in result.groups
        if group.median_delta_ratio is not None
    ]
    found.append(
        ("group_delta_ratio_median", f"Median delta bytes / reference bytes per {label}.", ratios)
    )
    return found


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _stored_by_kind(result: BucketStats) -> list[tuple[str, int]]:
    return [
        ("delta", result.delta_bytes),
        ("direct", result.direct_bytes),
        ("reference", result.reference_bytes),
        ("shared_reference", result.shared_reference_bytes),
        ("internal", result.internal_bytes),
    ]


def _objects_by_kind(result: BucketStats) -> list[tuple[str, int]]:
    return [
        ("delta", result.deltas),
        ("direct", result.direct),
        ("reference", result.references),
        ("shared_reference", result.shared_references),
        ("internal", result.internal_objects),
    ]

"""Pure numbers: percentiles, per-hop attribution, bounded-lag check, the result's JSON schema."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

#: the points a marker can be seen at (each observed by the benchmark process, one clock)
POINTS = ("commit", "kafka", "bronze", "silver_commit", "trino")
#: the path a change takes to Trino, by silver's source (silver.json `source`): from Kafka, bronze
#: is a side branch, measured (`kafka_to_bronze`) but not on the way
PATHS = {
    "bronze": POINTS,
    "kafka": ("commit", "kafka", "silver_commit", "trino"),
}
SIDE_HOPS = {"bronze": (), "kafka": (("kafka", "bronze"),)}
#: every hop a result can hold
HOPS = tuple(
    dict.fromkeys(
        f"{a}_to_{b}" for source, path in PATHS.items() for a, b in [*pairwise(path), *SIDE_HOPS[source]]
    )
)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample: always one of the values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def hops(seen: Mapping[str, Mapping[int, float]], source: str = "bronze") -> dict[str, list[float]]:
    """Per hop of silver's path from `source` (then its side hops), the time each marker spent in
    it (only markers seen at both ends of the hop). The path's hops add up to the freshness."""
    out: dict[str, list[float]] = {}
    for a, b in [*pairwise(PATHS[source]), *SIDE_HOPS[source]]:
        start, end = seen.get(a, {}), seen.get(b, {})
        out[f"{a}_to_{b}"] = [max(0.0, end[m] - start[m]) for m in sorted(start) if m in end]
    return out


def freshness(seen: Mapping[str, Mapping[int, float]]) -> list[tuple[float, float]]:
    """(commit time, commit → visible in Trino) per marker, in commit order."""
    commit, trino = seen.get("commit", {}), seen.get("trino", {})
    return [(commit[m], trino[m] - commit[m]) for m in sorted(commit) if m in trino]


def bottleneck(hop_values: Mapping[str, Sequence[float]], source: str = "bronze") -> str | None:
    """The hop of silver's path with the largest median."""
    on_path = {f"{a}_to_{b}" for a, b in pairwise(PATHS[source])}
    medians = {h: statistics.median(v) for h, v in hop_values.items() if v and h in on_path}
    return max(medians, key=lambda h: medians[h]) if medians else None


def lag_bounded(samples: Sequence[tuple[float, float]], slack_s: float = 10.0) -> bool:
    """Lag is bounded if the last quarter of the run is not behind the first quarter by more than
    half again plus `slack_s` (a growing backlog shows as a steadily rising lag)."""
    if len(samples) < 8:
        return False
    quarter = len(samples) // 4
    first = statistics.median(v for _, v in samples[:quarter])
    last = statistics.median(v for _, v in samples[-quarter:])
    return last <= first * 1.5 + slack_s


_SUMMARY = {
    "type": "object",
    "required": ["n", "p50", "p95", "p99", "max"],
    "properties": {k: {"type": ["number", "null"]} for k in ("p50", "p95", "p99", "max", "mean")}
    | {"n": {"type": "integer", "minimum": 0}},
}


#: what `lakehouse bench --json` prints (documented in docs/benchmarks.md)
def batch_breakdown(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, Any]:
    """Silver's micro-batches during a run, from two scrapes of its counters (silver/job.py):
    batches, seconds and Spark jobs per batch, and seconds per phase per batch."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    batches = delta.get("batches", 0.0)
    per = (lambda v: round(v / batches, 3)) if batches > 0 else (lambda v: None)
    phases = {k.split(":", 1)[1]: per(v) for k, v in sorted(delta.items()) if k.startswith("phase:")}
    return {
        "batches": int(batches),
        "seconds_per_batch": per(delta.get("seconds", 0.0)),
        "spark_jobs_per_batch": per(delta.get("jobs", 0.0)),
        "phase_seconds_per_batch": phases,
    }


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "freshness_s", "achieved_rate", "target_rate", "duration_s", "markers", "hops_s",
        "bottleneck", "lag_bounded", "footprint", "files", "machine", "target", "freshness_samples_s",
    ],
    "properties": {
        "freshness_s": _SUMMARY,
        "freshness_samples_s": {"type": "array", "items": {"type": "number"}},
        "target": {"enum": ["silver", "floor"]},
        "achieved_rate": {"type": "number", "minimum": 0},
        "target_rate": {"type": "number", "exclusiveMinimum": 0},
        "duration_s": {"type": "number", "exclusiveMinimum": 0},
        "markers": {
            "type": "object",
            "required": ["written", "visible"],
            "properties": {"written": {"type": "integer"}, "visible": {"type": "integer"}},
        },
        "hops_s": {
            "type": "object",
            "required": ["commit_to_kafka", "silver_commit_to_trino"],
            "propertyNames": {"enum": list(HOPS)},
            "additionalProperties": _SUMMARY,
        },
        "bottleneck": {"type": ["string", "null"]},
        "lag_bounded": {"type": "boolean"},
        "footprint": {
            "type": "object",
            "required": ["rss_mib", "total_rss_mib"],
            "properties": {
                "rss_mib": {"type": "object", "additionalProperties": {"type": "number"}},
                "total_rss_mib": {"type": "number"},
                "cpu_s": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
                "cpu_window_s": {"type": "number"},
            },
        },
        "silver_batches": {
            "type": "object",
            "required": ["batches", "seconds_per_batch", "spark_jobs_per_batch", "phase_seconds_per_batch"],
            "properties": {
                "batches": {"type": "integer", "minimum": 0},
                "phase_seconds_per_batch": {
                    "type": "object",
                    "additionalProperties": {"type": ["number", "null"]},
                },
            },
        },
        "files": {
            "type": "object",
            "additionalProperties": {
                "type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2},
            },
        },
        "machine": {"type": "object", "required": ["cpus", "memory_gib"]},
    },
}  # fmt: skip

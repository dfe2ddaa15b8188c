"""`lakehouse bench bronze`: commit → bronze object latency at light load, written as JSON + a plot.

Latency per change = Last-Modified of the bronze object holding the event (MinIO's clock)
minus the source commit time Debezium reports in `source.ts_ms` (Postgres's clock); both run
on this machine, so the clocks agree. Timing targets are never asserted in tests — only here.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from .bronze.reader import read_topic
from .errors import LakehouseError
from .stack import Stack

BENCH_MOVIE_ID = 9_900_100


def _objects_modified(stack: Stack, prefix: str) -> dict[str, float]:
    mc = stack.minio.client()
    return {
        o.object_name: o.last_modified.timestamp()
        for o in mc.list_objects(stack.s.bucket, prefix=prefix, recursive=True)
    }


def bronze_latency(stack: Stack, changes: int, interval_s: float, out_dir: Path) -> dict[str, Any]:
    schema = stack.s.source_schema
    topic = f"{stack.s.topic_prefix}.{schema}.movies"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            f"insert into {schema}.movies values (%s, 'bench', 'Documentary') on conflict do nothing",
            [BENCH_MOVIE_ID],
        )
        marker = f"bench-{time.time_ns()}"
        for i in range(changes):
            conn.execute(
                f"update {schema}.movies set title = %s where movie_id = %s",
                [f"{marker}-{i}", BENCH_MOVIE_ID],
            )
            time.sleep(interval_s)
    deadline = time.monotonic() + 120
    latencies: dict[int, float] = {}
    while time.monotonic() < deadline and len(latencies) < changes:
        modified = _objects_modified(stack, f"bronze/{topic}/")
        for e in read_topic(stack.minio.client(), stack.s.bucket, "bronze", topic):
            title = ((e.payload.get("after") or {}).get("title")) or ""
            if title.startswith(marker + "-"):
                i = int(title.rsplit("-", 1)[1])
                commit_s = e.payload["source"]["ts_ms"] / 1000
                latencies[i] = modified[e.object_key] - commit_s
        time.sleep(1)
    if len(latencies) < changes:
        raise LakehouseError(f"only {len(latencies)}/{changes} changes reached bronze in 120s")
    values = [latencies[i] for i in range(changes)]
    q = statistics.quantiles(values, n=20)
    result = {
        "what": "commit → bronze object (s), light load",
        "changes": changes,
        "interval_s": interval_s,
        "p50_s": statistics.median(values),
        "p95_s": q[18],
        "max_s": max(values),
        "flush_interval_ms": _flush_interval(stack),
        "samples_s": values,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bronze-latency.json").write_text(json.dumps(result, indent=2))
    _plot(values, result, out_dir / "bronze-latency.png")
    return result


def _flush_interval(stack: Stack) -> int:
    doc = json.loads((stack.s.root / "bronze" / "sink.json").read_text())
    return int(doc["flush.interval.ms"])


def _plot(values: list[float], result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(1, len(values) + 1), values, marker="o", label="per change")
    ax.axhline(result["p50_s"], linestyle="--", color="tab:green", label=f"p50 {result['p50_s']:.2f}s")
    ax.axhline(result["p95_s"], linestyle=":", color="tab:red", label=f"p95 {result['p95_s']:.2f}s")
    ax.set_xlabel("change #")
    ax.set_ylabel("commit → bronze object (s)")
    ax.set_title(f"Postgres commit to bronze in MinIO (sink flush {result['flush_interval_ms']} ms)")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

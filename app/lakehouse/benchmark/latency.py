"""`lakehouse bench bronze|silver|trino`: commit → bronze object / silver commit / Trino query latency
at light load, written as JSON + a plot (p50/p95 are `stats.percentile`, nearest rank).

bronze: Last-Modified of the bronze object holding the event (MinIO's clock) minus the source
commit time Debezium reports in `source.ts_ms` (Postgres's clock); both run on this machine.
silver: the silver job's `lakehouse_silver_last_commit_timestamp_seconds` when its
`lakehouse_silver_events_applied_total` first counts the change, minus the client's commit time
(polled every 0.1 s; the gauge is set just after the batch's Delta commits, so this slightly
over-states).
trino: one clock — this process commits a change to its own row, and a poller keeps querying
Trino (as the analyst) for the rows; a change counts as visible when the query that returned it
finished (over-states by at most one query plus the pause between polls: `poll_s` + 0.25 s).
Timing targets are never asserted in tests — only measured here.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from lakehouse.benchmark.plots import _plt
from lakehouse.benchmark.report import save, write_json
from lakehouse.benchmark.stats import percentile
from lakehouse.clients import analyst_client
from lakehouse.clients.trino_client import QueryError
from lakehouse.errors import LakehouseError
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.connector import SinkSettings
from lakehouse.pipeline.bronze.reader import read_topic

BENCH_MOVIE_ID = 9_900_100
#: the Trino benchmark updates one row per change: movie ids from here on
TRINO_BENCH_FIRST_ID = 9_900_200
#: pause between the Trino benchmark's polls, so polling does not take the CPU the pipeline needs
POLL_PAUSE_S = 0.25
# commit → bronze takes under 2 s at light load (bench bronze); a batch started later has the change
BRONZE_SLACK_S = 3.0


def _objects_modified(stack: Stack, prefix: str) -> dict[str, float]:
    mc = stack.minio.client()
    return {
        o.object_name: o.last_modified.timestamp()
        for o in mc.list_objects(stack.s.bucket, prefix=prefix, recursive=True)
    }


Conn = psycopg.Connection[tuple[Any, ...]]


def _bench_row(conn: Conn, schema: str) -> None:
    """The one movie both benchmarks update (created once, left in place)."""
    conn.execute(
        f"insert into {schema}.movies values (%s, 'bench', 'Documentary') on conflict do nothing",
        [BENCH_MOVIE_ID],
    )


def _retitle(conn: Conn, schema: str, title: str) -> None:
    conn.execute(f"update {schema}.movies set title = %s where movie_id = %s", [title, BENCH_MOVIE_ID])


def bronze_latency(stack: Stack, changes: int, interval_s: float, out_dir: Path) -> dict[str, Any]:
    schema = stack.s.source_schema
    topic = f"{stack.s.topic_prefix}.{schema}.movies"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        _bench_row(conn, schema)
        marker = f"bench-{time.time_ns()}"
        for i in range(changes):
            _retitle(conn, schema, f"{marker}-{i}")
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
    flush = _flush_interval(stack)
    return _write(
        values,
        {
            "what": "commit → bronze object (s), light load",
            "interval_s": interval_s,
            "flush_interval_ms": flush,
        },
        out_dir / "bronze-latency",
        "commit → bronze object (s)",
        f"Postgres commit to bronze in MinIO (sink flush {flush} ms)",
    )


def _write(values: list[float], meta: dict[str, Any], stem: Path, ylabel: str, title: str) -> dict[str, Any]:
    """Summary (p50/p95/max + samples) as `<stem>.json` and the per-change plot as `<stem>.png`."""
    result = {
        **meta,
        "changes": len(values),
        "p50_s": percentile(values, 50),
        "p95_s": percentile(values, 95),
        "max_s": max(values),
        "samples_s": values,
    }
    write_json(stem.with_suffix(".json"), result)
    _plot(values, result, stem.with_suffix(".png"), ylabel, title)
    return result


def _silver_metrics(stack: Stack, table: str) -> tuple[float, float, float]:
    """(events applied to `table` so far, last batch commit time, last batch duration)."""
    text = httpx.get(stack.silver.metrics_url, timeout=2).text

    def value(pattern: str) -> float:
        m = re.search(rf"^{pattern} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    return (
        value(rf'lakehouse_silver_events_applied_total{{table="{re.escape(table)}"}}'),
        value("lakehouse_silver_last_commit_timestamp_seconds"),
        value("lakehouse_silver_batch_duration_seconds"),
    )


def silver_latency(stack: Stack, changes: int, interval_s: float, out_dir: Path) -> dict[str, Any]:
    schema = stack.s.source_schema
    table = f"{schema}.movies"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        _bench_row(conn, schema)
        # settle: a batch that *started* after a sentinel change reached bronze has applied it and
        # everything before it; only then do counted events belong to this run
        _retitle(conn, schema, f"settle-{time.time_ns()}")
        sentinel, deadline = time.time(), time.monotonic() + 300
        while True:
            base, commit, duration = _silver_metrics(stack, table)
            if commit - duration > sentinel + BRONZE_SLACK_S:
                break
            if time.monotonic() > deadline:
                raise LakehouseError("silver did not catch up within 300 s; is the silver job ready?")
            time.sleep(0.5)
        seen: list[tuple[float, float]] = []  # (applied, last commit) at each change of the counter
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                applied, commit, _ = _silver_metrics(stack, table)
                if not seen or applied != seen[-1][0]:
                    seen.append((applied, commit))
                time.sleep(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        committed: list[float] = []
        marker = f"bench-{time.time_ns()}"
        for i in range(changes):
            _retitle(conn, schema, f"{marker}-{i}")
            committed.append(time.time())
            time.sleep(interval_s)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not seen or seen[-1][0] < base + changes):
        time.sleep(0.5)
    stop.set()
    poller.join()
    values = []
    for i, t in enumerate(committed):
        hit = next((c for a, c in seen if a >= base + i + 1), None)
        if hit is None:
            raise LakehouseError(f"only {i}/{changes} changes reached silver in time")
        values.append(hit - t)
    trigger = _trigger(stack)
    return _write(
        values,
        {
            "what": "commit → silver Delta commit (s), light load",
            "interval_s": interval_s,
            "trigger": trigger,
        },
        out_dir / "silver-latency",
        "commit → silver commit (s)",
        f"Postgres commit to silver Delta commit (trigger {trigger}, 2 cores)",
    )


def _trigger(stack: Stack) -> str:
    return str(json.loads((stack.s.root / "spark_streaming" / "silver.json").read_text())["trigger.interval"])


def _flush_interval(stack: Stack) -> int:
    return SinkSettings.of(stack.s).flush_interval_ms


def _plot(values: list[float], result: dict[str, Any], path: Path, ylabel: str, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(1, len(values) + 1), values, marker="o", label="per change")
    ax.axhline(result["p50_s"], linestyle="--", color="tab:green", label=f"p50 {result['p50_s']:.2f}s")
    ax.axhline(result["p95_s"], linestyle=":", color="tab:red", label=f"p95 {result['p95_s']:.2f}s")
    ax.set_xlabel("change #")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend()
    save(fig, path)


def trino_latency(stack: Stack, changes: int, interval_s: float, out_dir: Path) -> dict[str, Any]:
    schema = stack.s.source_schema
    lo, hi = TRINO_BENCH_FIRST_ID, TRINO_BENCH_FIRST_ID + changes - 1
    trino = analyst_client(stack.s, stack.ctx.secrets)
    rows_sql = f"SELECT movie_id, title FROM silver.movies WHERE movie_id BETWEEN {lo} AND {hi}"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            f"insert into {schema}.movies select id, 'bench', 'Documentary' "
            "from generate_series(%s::int, %s::int) id on conflict do nothing",
            [lo, hi],
        )
        deadline = time.monotonic() + 300
        while len(_query_rows(trino, rows_sql)) < changes:
            if time.monotonic() > deadline:
                raise LakehouseError("the benchmark rows did not reach Trino within 300 s")
            time.sleep(1)
        marker = f"bench-{time.time_ns()}"
        committed: dict[int, float] = {}
        seen: dict[int, float] = {}
        polls: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                started = time.time()
                rows = _query_rows(trino, f"{rows_sql} AND title LIKE '{marker}-%'")
                now = time.time()
                polls.append(now - started)
                for movie_id, _ in rows:
                    seen.setdefault(int(movie_id), now)
                stop.wait(POLL_PAUSE_S)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        for i in range(changes):
            conn.execute(
                f"update {schema}.movies set title = %s where movie_id = %s", [f"{marker}-{i}", lo + i]
            )
            committed[lo + i] = time.time()
            time.sleep(interval_s)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(seen) < changes:
        time.sleep(0.5)
    stop.set()
    poller.join()
    missing = [m for m in committed if m not in seen]
    if missing:
        raise LakehouseError(f"{len(missing)}/{changes} changes were not visible in Trino within 180 s")
    values = [seen[m] - committed[m] for m in sorted(committed)]
    trigger = _trigger(stack)
    return _write(
        values,
        {
            "what": "commit → visible in a Trino query (s), light load",
            "interval_s": interval_s,
            "trigger": trigger,
            "poll_s": statistics.median(polls),
        },
        out_dir / "trino-latency",
        "commit → visible in Trino (s)",
        f"Postgres commit to a Trino query seeing it (silver trigger {trigger}, 2 cores)",
    )


def _query_rows(trino: Any, sql: str) -> list[list[Any]]:
    try:
        rows: list[list[Any]] = trino.query(sql).rows
    except QueryError:  # silver.movies not registered yet
        return []
    return rows

"""`lakehouse bench`: changes at a steady rate plus a marker, followed through every hop.

A generator thread writes the load; every half second the benchmark bumps its marker row
(`bench_marker.seq`) and notes the commit time. Watchers in this same process note when the
marker is seen in Kafka, in a bronze object and in Trino; the silver commit time comes from the
Delta history afterwards. One clock throughout (this process's), except the silver commit time,
which is the Spark driver's clock on the same machine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from lakehouse.benchmark import plots
from lakehouse.benchmark.footprint import machine, tree_cpu_s, tree_rss_mib
from lakehouse.benchmark.observe import (
    MARKER_TABLE,
    SILVER,
    Target,
    Watcher,
    bronze_poll,
    committed_in,
    delta_head,
    kafka_poll,
    on_commit,
    silver_commits,
    silver_counters,
    table_folder,
    trino_poll,
)
from lakehouse.benchmark.report import write_json
from lakehouse.benchmark.stats import (
    POINTS,
    batch_breakdown,
    bottleneck,
    freshness,
    hops,
    lag_bounded,
    summary,
)
from lakehouse.clients import admin_client, analyst_client, client_for
from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.demo.generator import run as generate
from lakehouse.errors import LakehouseError
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.connector import SinkSettings

MARKER_EVERY_S = 0.5
WATCH_EVERY_S = 0.25
DRAIN_S = 300.0
#: how long the target may take to catch up before the run (a bulk load still being applied)
READY_S = 900.0
SAMPLE_EVERY_S = 10.0
#: data files per table take one Trino query per table: a minute apart, not at every sample
FILES_EVERY_S = 60.0


def touch_marker(stack: Stack) -> None:
    """Create the marker row, or write it again unchanged but for `written_at` (one more event)."""
    schema = stack.s.source_schema
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.{MARKER_TABLE} "
            "(id int PRIMARY KEY, seq bigint NOT NULL, written_at timestamptz NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {schema}.{MARKER_TABLE} VALUES (1, 0, now()) "
            "ON CONFLICT (id) DO UPDATE SET written_at = now()"
        )


def _marker_ready(stack: Stack, target: Target) -> int:
    """Bump the marker once and wait until Trino shows it: every hop is warm and caught up (a
    backlog, e.g. a bulk load still being applied, would otherwise be timed as freshness). The
    marker's `seq` then."""
    touch_marker(stack)
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        row = conn.execute(
            f"UPDATE {stack.s.source_schema}.{MARKER_TABLE} SET seq = seq + 1, written_at = now() "
            "WHERE id = 1 RETURNING seq"
        ).fetchone()
    seq = int(row[0]) if row else 0
    poll = trino_poll(client_for(stack.s, stack.ctx.secrets, target.user), target)
    deadline = time.monotonic() + READY_S
    while (seen := poll()) is None or seen < seq:
        if time.monotonic() > deadline:
            raise LakehouseError(
                f"the benchmark marker ({seq}) did not reach Trino within {READY_S:.0f}s (seen: {seen})"
            )
        time.sleep(1)
    return seq


def _file_counts(stack: Stack) -> dict[str, int]:
    """Active data files per silver table (what a query has to open)."""
    trino = analyst_client(stack.s, stack.ctx.secrets)
    out = {}
    for (table,) in trino.query(
        "SELECT table_name FROM lakehouse.information_schema.tables "
        "WHERE table_schema = 'silver' AND table_type = 'BASE TABLE'"
    ).rows:
        try:
            out[table] = int(trino.scalar(f'SELECT count(DISTINCT "$path") FROM silver."{table}"'))
        except QueryError:
            continue
    return out


def _cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far per running service, its child processes included (a service that
    restarts during the run starts again from zero, so its figure is clamped at 0)."""
    out = {}
    for svc in stack.services:
        pid = svc.pid()
        if pid is not None:
            out[svc.name] = tree_cpu_s(pid)
    return out


def _trino_watch(stack: Stack, trino: Trino, target: Target) -> Callable[[], int | None]:
    """The marker as Trino shows it, asked only when the table's Delta log has a new commit."""
    admin = admin_client(stack.s, stack.ctx.secrets)  # analysts may not
    bucket, folder = table_folder(admin, committed_in(admin, target))
    return on_commit(trino_poll(trino, target), delta_head(stack.minio.client(), bucket, folder))


def _sample(
    stack: Stack,
    started: float,
    rss: dict[str, float],
    files: dict[str, list[tuple[float, int]]],
    loader: threading.Thread,
) -> None:
    """Peak memory per service every SAMPLE_EVERY_S, data files per table every FILES_EVERY_S,
    while the load runs.

    Its own thread, so the Trino queries it makes never delay the marker's cadence.
    """
    counted = -FILES_EVERY_S
    while loader.is_alive():
        now = time.time()
        for svc in stack.services:
            pid = svc.pid()
            if pid is not None:
                rss[svc.name] = max(rss.get(svc.name, 0.0), tree_rss_mib(pid))
        if now - started - counted >= FILES_EVERY_S:
            counted = now - started
            for table, n in _file_counts(stack).items():
                files.setdefault(table, []).append((round(counted, 1), n))
        loader.join(timeout=max(0.0, SAMPLE_EVERY_S - (time.time() - now)))


def run(
    stack: Stack,
    rate: float,
    duration_s: float,
    out_dir: Path,
    seed: int = 1,
    *,
    target: Target = SILVER,
    warmup_s: float = 0.0,
) -> dict[str, Any]:
    """One freshness run; `target` is where the marker is read back (silver, or the floor job's).
    With `warmup_s`, the same load runs that long first, unmeasured: a job started a minute ago
    (a floor's, or silver after `up`) compiles its code and, for silver, makes its first folds
    under the load, which a run of minutes would otherwise count as its steady state."""
    s = stack.s
    if warmup_s > 0:
        generate(stack.postgres.app_dsn, s.source_schema, rate=rate, duration_s=warmup_s, seed=seed + 1)
    base = _marker_ready(stack, target)
    topic = f"{s.topic_prefix}.{s.source_schema}.{MARKER_TABLE}"
    trino = client_for(s, stack.ctx.secrets, target.user)
    watchers = {
        "kafka": Watcher("kafka", kafka_poll(s.kafka_bootstrap, topic), 0.0),
        "bronze": Watcher(
            "bronze", bronze_poll(stack.minio.client(), s.bucket, f"bronze/{topic}/"), WATCH_EVERY_S
        ),
        "trino": Watcher("trino", _trino_watch(stack, trino, target), WATCH_EVERY_S),
    }
    for w in watchers.values():
        w.start()
    metrics_url = f"http://{s.addr('silver')}:{s.silver_metrics_port}/metrics"
    counters_before = silver_counters(metrics_url)
    committed: dict[int, float] = {}
    lag: list[tuple[float, float]] = []
    files: dict[str, list[tuple[float, int]]] = {}
    rss: dict[str, float] = {}
    stop = threading.Event()
    load: dict[str, Any] = {}

    def load_thread() -> None:
        try:
            load["result"] = generate(
                s_dsn, s.source_schema, rate=rate, duration_s=duration_s, seed=seed, should_stop=stop.is_set
            )
        except Exception as exc:  # reported by the main thread, which owns the error
            load["error"] = exc

    s_dsn = stack.postgres.app_dsn
    loader = threading.Thread(target=load_thread, name="load", daemon=True)
    cpu_before = _cpu(stack)
    started = time.time()
    loader.start()
    sampler = threading.Thread(
        target=_sample, args=(stack, started, rss, files, loader), name="sample", daemon=True
    )
    sampler.start()
    try:
        with psycopg.connect(s_dsn, autocommit=True) as conn:
            seq = base
            while loader.is_alive():
                seq += 1
                conn.execute(
                    f"UPDATE {s.source_schema}.{MARKER_TABLE} SET seq = %s, written_at = now() WHERE id = 1",
                    (seq,),
                )
                now = time.time()
                committed[seq] = now
                visible = watchers["trino"].seen.snapshot()
                newest = max((committed[k] for k in visible if k in committed), default=None)
                if newest is not None:
                    lag.append((now, now - newest))
                time.sleep(max(0.0, MARKER_EVERY_S - (time.time() - now)))
    except BaseException:  # Ctrl-C or a failed marker write: the load stops with the run
        stop.set()
        for w in watchers.values():
            w.stop.set()
        raise
    loader.join()
    sampler.join()
    if "error" in load:
        for w in watchers.values():
            w.stop.set()
        error = load["error"]
        raise (
            error
            if isinstance(error, LakehouseError)
            else LakehouseError(f"the load generator failed: {error}")
        )
    last = seq
    deadline = time.monotonic() + DRAIN_S
    while max(watchers["trino"].seen.snapshot(), default=0) < last and time.monotonic() < deadline:
        now = time.time()
        visible = watchers["trino"].seen.snapshot()
        newest = max((committed[k] for k in visible if k in committed), default=started)
        lag.append((now, now - newest))
        time.sleep(WATCH_EVERY_S)
    for w in watchers.values():
        w.stop.set()
        w.join()
    cpu_after, cpu_window = _cpu(stack), time.time() - started
    batches = batch_breakdown(counters_before, silver_counters(metrics_url))
    seen = {name: w.seen.snapshot() for name, w in watchers.items()}
    seen["commit"] = committed
    admin = admin_client(s, stack.ctx.secrets)
    seen["silver_commit"] = silver_commits(admin, committed_in(admin, target))
    seen = {p: {k: v for k, v in seen.get(p, {}).items() if k in committed} for p in POINTS}
    result = _result(
        stack,
        rate=rate,
        duration_s=duration_s,
        generated=load["result"],
        seen=seen,
        files=files,
        rss=rss,
        started=started,
    )
    result["target"] = target.schema
    result["footprint"]["cpu_s"] = {
        name: round(max(0.0, cpu_after[name] - cpu_before[name]), 1)
        for name in cpu_after
        if name in cpu_before
    }
    result["footprint"]["cpu_window_s"] = round(cpu_window, 1)
    if target == SILVER:
        result["silver_batches"] = batches
    _write(result, seen, lag, started, out_dir)
    return result


def _result(
    stack: Stack,
    *,
    rate: float,
    duration_s: float,
    generated: Any,
    seen: dict[str, dict[int, float]],
    files: dict[str, list[tuple[float, int]]],
    rss: dict[str, float],
    started: float,
) -> dict[str, Any]:
    fresh = freshness(seen)
    silver = json.loads((stack.s.root / "spark_streaming" / "silver.json").read_text())
    per_hop = hops(seen, silver["source"])
    sink = SinkSettings.of(stack.s)
    return {
        "freshness_s": summary([v for _, v in fresh]),
        "freshness_samples_s": [round(v, 3) for _, v in fresh],
        "achieved_rate": round(generated.achieved_rate, 1),
        "target_rate": rate,
        "duration_s": duration_s,
        "changes": generated.changes,
        "markers": {"written": len(seen["commit"]), "visible": len(seen["trino"])},
        "hops_s": {h: summary(v) for h, v in per_hop.items()},
        "bottleneck": bottleneck(per_hop, silver["source"]),
        "lag_bounded": lag_bounded(fresh),
        "footprint": {"rss_mib": rss, "total_rss_mib": round(sum(rss.values()), 1)},
        "files": {t: [list(p) for p in pts] for t, pts in files.items()},
        "machine": machine(),
        "settings": {
            "silver_source": silver["source"],
            "silver_trigger": silver["trigger.interval"],
            "silver_max_bytes_per_trigger": silver["max.bytes.per.trigger"],
            "bronze_flush_interval_ms": sink.flush_interval_ms,
            "spark_master": stack.s.silver_master,
            "spark_driver_memory": stack.s.spark_driver_memory,
            "scale_out": stack.s.scale_out,
            "kafka_partitions": stack.s.topic_partitions,
            "marker_every_s": MARKER_EVERY_S,
            "watch_every_s": WATCH_EVERY_S,
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    }


def _write(
    result: dict[str, Any],
    seen: dict[str, dict[int, float]],
    lag: list[tuple[float, float]],
    started: float,
    out_dir: Path,
) -> None:
    write_json(out_dir / "bench.json", result)
    fresh = freshness(seen)
    label = f"{result['achieved_rate']:.0f} changes/s, {result['machine']['cpus']} cores"
    if result["target"] != SILVER.schema:
        label += f", {result['target']} job"
    plots.freshness_over_time(fresh, lag, started, f"Freshness and lag at {label}", out_dir / "freshness.png")
    if fresh:
        plots.cdf([v for _, v in fresh], f"Commit → visible in Trino, CDF ({label})", out_dir / "cdf.png")
    plots.hops(result["hops_s"], f"Where the time goes, per hop ({label})", out_dir / "hops.png")

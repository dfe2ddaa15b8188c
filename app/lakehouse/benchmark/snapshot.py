"""`lakehouse bench snapshot`: on a fresh scratch stack, the MovieLens sample loaded *before*
Debezium starts, so it arrives as the connector's initial snapshot; timed until every table is
complete in silver (seen through Trino). Then the stack is stopped and started again to time a
warm `up`. With `--live`, `make demo`'s path instead: the stack is up first and the sample is
loaded while the connector streams (large source transactions of inserts), timed from the start
of the load — the demo's catch-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lakehouse.benchmark import plots
from lakehouse.benchmark.footprint import machine, tree_rss_mib
from lakehouse.benchmark.report import write_json
from lakehouse.clients import analyst_client
from lakehouse.clients.trino_client import QueryError
from lakehouse.demo.movielens import TABLES, load
from lakehouse.errors import LakehouseError
from lakehouse.launcher.scratch import scratch_stack
from lakehouse.launcher.stack import Stack

#: scratch ports: defaults + this (the integration tests use +1000)
PORT_OFFSET = 2000
TIMEOUT_S = 1800


def _silver_counts(stack: Stack, tables: list[str]) -> dict[str, int]:
    trino = analyst_client(stack.s, stack.ctx.secrets)
    out = {}
    for t in tables:
        try:
            out[t] = int(trino.scalar(f"SELECT count(*) FROM silver.{t}"))
        except QueryError:
            out[t] = 0
    return out


def run(path: Path | None, out_dir: Path, *, live: bool = False) -> dict[str, Any]:
    with scratch_stack(PORT_OFFSET, prefix="lakehouse-bench-") as stack:
        schema = stack.s.source_schema
        load_s = None
        if live:  # make demo: streaming first, then the load arrives as inserts
            t_up = time.time()
            stack.up()
            cold_up_s = time.time() - t_up
            t_start = time.time()
            loaded = {r.table: r.total for r in load(stack.postgres.app_dsn, schema, path)}
            load_s = round(time.time() - t_start, 1)
        else:
            stack.postgres.start()
            loaded = {r.table: r.total for r in load(stack.postgres.app_dsn, schema, path)}
            t_up = time.time()
            stack.up()  # registers Debezium: the initial snapshot starts now
            cold_up_s = time.time() - t_up
            t_start = stack.ready_at["connector"]
        tables = [t.table for t in TABLES]
        progress: list[tuple[float, int]] = []
        done_at: dict[str, float] = {}
        while len(done_at) < len(tables):
            if time.time() - t_start > TIMEOUT_S:
                raise LakehouseError(f"MovieLens was not complete in silver after {TIMEOUT_S}s: {done_at}")
            counts = _silver_counts(stack, [t for t in tables if t not in done_at])
            now = time.time()
            for t, n in counts.items():
                if n >= loaded[t]:
                    done_at[t] = now
            progress.append((round(now - t_start, 1), counts.get("ratings", loaded["ratings"])))
            time.sleep(2)
        complete = max(done_at.values())
        rss = {svc.name: tree_rss_mib(pid) for svc in stack.services if (pid := svc.pid()) is not None}
        stack.down()
        t_warm = time.time()
        stack.up()
        warm_up_s = time.time() - t_warm
        result = {
            "mode": "live" if live else "snapshot",
            "rows": loaded,
            # snapshot: from the connector's registration; live: from the start of the load
            "snapshot_to_silver_s": round(complete - t_start, 1),
            "load_s": load_s,
            "per_table_s": {t: round(v - t_start, 1) for t, v in done_at.items()},
            "cold_up_s": round(cold_up_s, 1),
            "warm_up_s": round(warm_up_s, 1),
            "service_ready_s": {
                name: round(at - t_warm, 1)
                for name, at in sorted(stack.ready_at.items(), key=lambda kv: kv[1])
            },
            "rss_after_snapshot_mib": rss,
            "total_rss_mib": round(sum(rss.values()), 1),
            "ratings_in_silver_over_time": progress,
            "machine": machine(),
        }
    name = "catchup" if live else "snapshot"
    write_json(out_dir / f"{name}.json", result)
    what = "loaded while streaming (make demo)" if live else "as the initial snapshot"
    plots.progress(
        progress,
        loaded["ratings"],
        f"MovieLens {what}: ratings in silver",
        out_dir / f"{name}.png",
    )
    return result

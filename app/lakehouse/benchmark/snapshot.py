"""`lakehouse bench snapshot`: on a fresh scratch stack, the MovieLens sample loaded *before*
Debezium starts, so it arrives as the connector's initial snapshot; timed until every table is
complete in silver (seen through Trino). Then the stack is stopped and started again to time a
warm `up`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import LakehouseError
from ..movielens import TABLES, load
from ..query.client import QueryError
from ..query.connect import analyst_client
from ..scratch import scratch_stack
from ..stack import Stack
from .footprint import machine, tree_rss_mib
from .results import write_json

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


def run(path: Path | None, out_dir: Path) -> dict[str, Any]:
    with scratch_stack(PORT_OFFSET, prefix="lakehouse-bench-") as stack:
        stack.postgres.start()
        loaded = {r.table: r.total for r in load(stack.postgres.app_dsn, stack.s.source_schema, path)}
        t_up = time.time()
        stack.up()  # registers Debezium: the initial snapshot starts now
        cold_up_s = time.time() - t_up
        t_connector = stack.ready_at["connector"]
        tables = [t.table for t in TABLES]
        progress: list[tuple[float, int]] = []
        done_at: dict[str, float] = {}
        while len(done_at) < len(tables):
            if time.time() - t_connector > TIMEOUT_S:
                raise LakehouseError(f"the snapshot was not complete in silver after {TIMEOUT_S}s: {done_at}")
            counts = _silver_counts(stack, [t for t in tables if t not in done_at])
            now = time.time()
            for t, n in counts.items():
                if n >= loaded[t]:
                    done_at[t] = now
            progress.append((round(now - t_connector, 1), counts.get("ratings", loaded["ratings"])))
            time.sleep(2)
        complete = max(done_at.values())
        rss = {svc.name: tree_rss_mib(pid) for svc in stack.services if (pid := svc.pid()) is not None}
        stack.down()
        t_warm = time.time()
        stack.up()
        warm_up_s = time.time() - t_warm
        result = {
            "rows": loaded,
            "snapshot_to_silver_s": round(complete - t_connector, 1),
            "per_table_s": {t: round(v - t_connector, 1) for t, v in done_at.items()},
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
    write_json(out_dir / "snapshot.json", result)
    return result

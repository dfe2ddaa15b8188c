"""`python -m tools.table_size`: does silver's freshness depend on the size of the table it writes?

For each size (rows of the source's `ratings`, ascending), it tops `ratings` up to that size with
one bulk SQL load (new users' ratings of the existing movies, committed in transactions of
`--chunk` rows), waits until Trino's `silver.ratings` has them all, then runs the freshness
benchmark (`lakehouse bench`: the generator at RATE changes/s, a marker followed to Trino) for
DURATION s. Reports each run's commit → Trino percentiles and p50's ratio to the smallest size's,
as JSON and a CDF plot. Run it on a stack with the MovieLens movies loaded (the ratings reference
them); the load only adds rows, so one stack serves every size in turn.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import psycopg

from lakehouse.benchmark import plots
from lakehouse.benchmark.report import write_json
from lakehouse.benchmark.run import run
from lakehouse.clients import admin_client
from lakehouse.clients.trino_client import QueryError
from lakehouse.launcher.stack import Stack

#: `rows` ratings by new users from `first_user` on, each rating every movie in movie order
TOP_UP = """
WITH m AS (SELECT movie_id, row_number() OVER (ORDER BY movie_id) - 1 AS i, count(*) OVER () AS n
           FROM {schema}.movies)
INSERT INTO {schema}.ratings (user_id, movie_id, rating, rated_at)
SELECT %(first_user)s + g / m.n, m.movie_id, (1 + g %% 10) / 2.0, now() - make_interval(secs => g %% 86400)
FROM generate_series(0, %(rows)s - 1) AS g JOIN m ON m.i = g %% m.n
"""


def source_rows(dsn: str, schema: str) -> tuple[int, int, int]:
    """(ratings, the highest user id, movies)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM {schema}.ratings), (SELECT coalesce(max(user_id), 0) "
            f"FROM {schema}.ratings), (SELECT count(*) FROM {schema}.movies)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def top_up(dsn: str, schema: str, size: int, chunk: int) -> int:
    """Add ratings until the source holds `size`; how many were added."""
    have, _, movies = source_rows(dsn, schema)
    if not movies:
        raise SystemExit("no movies in the source: load MovieLens first (lakehouse load-movielens)")
    added = 0
    started = time.monotonic()
    while have + added < size:
        rows = min(chunk, size - have - added)
        last_user = source_rows(dsn, schema)[1]  # each chunk's users are new ones
        with psycopg.connect(dsn) as conn:
            conn.execute(TOP_UP.format(schema=schema), {"first_user": last_user + 1, "rows": rows})
        added += rows
        print(f"  +{added:,} ratings ({time.monotonic() - started:.0f}s)", flush=True)
    return added


def wait_for_silver(stack: Stack, size: int, timeout_s: float) -> float:
    """Seconds until Trino's silver.ratings holds `size` rows."""
    trino = admin_client(stack.s, stack.ctx.secrets)
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            n = int(trino.scalar("SELECT count(*) FROM silver.ratings"))
        except QueryError as exc:  # silver has not created the table yet (a load right after `up`)
            if exc.name != "TABLE_NOT_FOUND":
                raise
            n = 0
        print(f"  silver.ratings: {n:,} of {size:,}", flush=True)
        if n >= size:
            return time.monotonic() - started
        time.sleep(15)
    raise SystemExit(f"silver.ratings did not reach {size:,} rows within {timeout_s:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tools.table_size", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="rows of ratings, comma-separated, ascending")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--chunk", type=int, default=20_000, help="rows per transaction of the bulk load")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("artifacts/bench/table-size"))
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    if sizes != sorted(sizes) or sizes[0] < 1:
        ap.error("--sizes: positive and ascending")
    stack = Stack()
    dsn, schema = stack.postgres.app_dsn, stack.s.source_schema
    runs: dict[int, dict[str, Any]] = {}
    loads: dict[int, dict[str, float]] = {}
    for size in sizes:
        print(f"ratings → {size:,} rows", flush=True)
        started = time.monotonic()
        added = top_up(dsn, schema, size, a.chunk)
        loaded = time.monotonic() - started
        # the generator adds and deletes ratings as it runs: what silver must hold is the source's count
        now_rows = source_rows(dsn, schema)[0]
        caught_up = wait_for_silver(stack, now_rows, timeout_s=3600)
        loads[size] = {"added": added, "load_s": round(loaded, 1), "silver_caught_up_s": round(caught_up, 1)}
        runs[size] = run(stack, a.rate, a.duration, a.out / f"ratings-{size}", a.seed)
        f = runs[size]["freshness_s"]
        print(
            f"  at {runs[size]['achieved_rate']}/s: commit → Trino p50 {f['p50']}s p95 {f['p95']}s",
            flush=True,
        )
    smallest = runs[sizes[0]]["freshness_s"]["p50"]
    result = {
        "rate": a.rate,
        "duration_s": a.duration,
        "loads": loads,
        "runs": {
            str(size): {k: r["freshness_s"][k] for k in ("p50", "p95", "p99", "max")}
            | {
                "achieved_rate": r["achieved_rate"],
                "lag_bounded": r["lag_bounded"],
                "markers": r["markers"],
                "p50_vs_smallest": round(r["freshness_s"]["p50"] / smallest, 2) if smallest else None,
            }
            for size, r in runs.items()
        },
    }
    write_json(a.out / "table-size.json", result)
    plots.cdf(
        {
            f"ratings at {size:,} rows (p50 {r['freshness_s']['p50']:.1f} s)": r["freshness_samples_s"]
            for size, r in runs.items()
        },
        f"Freshness against the table's size, {a.rate:g} changes/s",
        a.out / "table-size.png",
    )
    print(f"wrote {a.out}/table-size.json and table-size.png")


if __name__ == "__main__":
    main()

"""`lakehouse demo` (make demo): the stack up, MovieLens loaded, a gentle stream of changes,
and the page where you edit a movie and watch it reach silver.

Ctrl-C stops the change generator only; the stack keeps running until `make down`.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
from rich.console import Console

from lakehouse.clients import analyst_client
from lakehouse.clients.trino_client import QueryError
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.query.output import as_table

console = Console(soft_wrap=True)

#: how long the demo waits for the MovieLens snapshot to be in silver before going on anyway
CATCH_UP_S = 900


def source_counts(stack: Stack) -> dict[str, int]:
    schema = stack.s.source_schema
    with psycopg.connect(stack.postgres.app_dsn) as conn:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0])  # type: ignore[index]
            for t in ("movies", "ratings")
        }


def ensure_movielens(stack: Stack, path: Path | None) -> None:
    from lakehouse.demo.movielens import load

    if source_counts(stack)["ratings"] > 0:
        console.print("[green]✓[/] source already has ratings — not loading MovieLens again")
        return
    console.print("Loading MovieLens into the source Postgres (COPY, then committed in chunks) …")
    for r in load(stack.postgres.app_dsn, stack.s.source_schema, path):
        console.print(f"  {r.table:<8} {r.inserted:>7} rows loaded")


def wait_for_silver(stack: Stack) -> None:
    """Until silver.ratings in Trino has as many rows as the source (bounded, with progress)."""
    trino = analyst_client(stack.s, stack.ctx.secrets)
    want = source_counts(stack)["ratings"]
    started = time.monotonic()
    have = 0
    next_line = started + 15
    with console.status("silver catching up …") as status:
        while time.monotonic() - started < CATCH_UP_S:
            try:
                have = int(trino.scalar("SELECT count(*) FROM silver.ratings"))
            except QueryError:  # not registered yet: its first batch is still running
                have = 0
            line = f"silver catching up: {have:,}/{want:,} ratings ({time.monotonic() - started:.0f}s)"
            status.update(line)
            if not console.is_terminal and time.monotonic() >= next_line:  # logs: a line every 15 s
                console.print(line)
                next_line = time.monotonic() + 15
            if have >= want:
                console.print(
                    f"[green]✓[/] silver has the {have:,} ratings ({time.monotonic() - started:.0f}s)"
                )
                return
            time.sleep(3)
    console.print(f"[yellow]silver has {have:,}/{want:,} ratings after {CATCH_UP_S}s — going on[/]")


def show_freshness(stack: Stack) -> None:
    trino = analyst_client(stack.s, stack.ctx.secrets)
    sql = (
        "SELECT table_name, row_count, last_source_commit, round(apply_lag_s, 1) AS apply_lag_s "
        "FROM analytics.pipeline_freshness ORDER BY table_name"
    )
    console.print(f'\n$ lakehouse sql "{sql}"')
    for line in as_table(trino.query(sql)).splitlines():
        console.print(f"  {line}", markup=False, highlight=False)


def run(stack: Stack, *, rate: float, duration_s: float | None, path: Path | None) -> None:
    from lakehouse.demo.generator import run_until_interrupted as generate

    stack.up()
    ensure_movielens(stack, path)
    wait_for_silver(stack)
    show_freshness(stack)
    env = stack.env()
    console.print(
        "\n[bold]Edit a row and watch it propagate[/]\n"
        f"  Open {env['app']['url']} — search a movie, change its title, and see it arrive in the\n"
        "  silver column (read through Trino) with the seconds it took.\n"
        f"\n  Trino {env['trino']['url']} (user {env['trino']['user']}; password: `lakehouse env --json`)"
        f" · MinIO console {env['object_store']['console']}\n"
        '  .venv/bin/lakehouse sql "SELECT * FROM analytics.top_movies ORDER BY rank LIMIT 10"\n'
        f'\n  Superset "Movies live" {env["superset"]["dashboard"]} (user {env["superset"]["user"]};'
        " password: `lakehouse env --json`)\n"
        f"  Prometheus alerts {env['prometheus']['url']}/alerts · Alertmanager {env['alertmanager']['url']}\n"
    )
    until = (
        " — Ctrl-C stops the generator; the stack keeps running (`make down` stops it)."
        if duration_s is None
        else f" for {duration_s:g}s."
    )
    console.print(
        f"Generating changes at {rate:g}/s (new ratings, re-ratings, deletes, tags, movie edits){until}"
    )
    r = generate(
        stack.postgres.app_dsn, stack.s.source_schema, rate=rate, duration_s=duration_s, seed=int(time.time())
    )
    console.print(
        f"\nGenerator stopped: {r.changes} changes at {r.achieved_rate:.1f}/s. "
        f"The stack is still running ({env['app']['url']}); `make down` stops it."
    )

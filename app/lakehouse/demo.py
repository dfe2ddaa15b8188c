"""`lakehouse demo` (make demo): bring the stack up, change one row, show its raw events in bronze,
then check that silver equals the source."""

from __future__ import annotations

import json
import time

import psycopg
from rich.console import Console

from .bronze.reader import BronzeEvent, read_topic
from .errors import LakehouseError
from .stack import Stack

console = Console(soft_wrap=True)

DEMO_MOVIE_ID = 9_900_001


def current_lsn(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("select (pg_current_wal_lsn() - '0/0')::bigint").fetchone()
    assert row is not None
    return int(str(row[0]))


def change_demo_row(dsn: str, schema: str) -> int:
    """Insert, update and delete the demo movie; returns the WAL position before the changes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = current_lsn(conn)
        conn.execute(f"delete from {schema}.movies where movie_id = %s", [DEMO_MOVIE_ID])
        conn.execute(
            f"insert into {schema}.movies (movie_id, title, genres) values (%s, %s, %s)",
            [DEMO_MOVIE_ID, "Lakehouse: The Demo (2026)", "Documentary"],
        )
        conn.execute(
            f"update {schema}.movies set title = %s where movie_id = %s",
            ["Lakehouse: The Demo, Director's Cut (2026)", DEMO_MOVIE_ID],
        )
        conn.execute(f"delete from {schema}.movies where movie_id = %s", [DEMO_MOVIE_ID])
    return start


def wait_for_events(
    stack: Stack, *, topic: str, movie_id: int, after_lsn: int, want: list[str], timeout: float = 60
) -> list[BronzeEvent]:
    """The events for `movie_id` at or after `after_lsn`, once their ops are `want`."""
    mc = stack.minio.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [
            e
            for e in read_topic(mc, stack.s.bucket, "bronze", topic)
            if isinstance(e.key, dict)
            and e.key.get("payload", {}).get("movie_id") == movie_id
            and (e.lsn or 0) >= after_lsn
        ]
        if [e.op for e in events] == want:
            return events
        time.sleep(0.5)
    raise LakehouseError(f"the demo events did not reach bronze within {timeout:.0f}s")


def show_in_trino(stack: Stack) -> None:
    """Silver as Trino's analyst sees it: freshness per table (the catalog sync registers tables)."""
    from .query.connect import analyst_client
    from .query.output import as_table

    console.print("\n[bold]Trino[/]: silver as the read-only analyst sees it")
    trino = analyst_client(stack.s, stack.ctx.secrets)
    sql = (
        "SELECT table_name, row_count, last_source_commit, round(apply_lag_s, 1) AS apply_lag_s "
        "FROM analytics.pipeline_freshness ORDER BY table_name"
    )
    console.print(f'  $ lakehouse sql "{sql}"')
    for line in as_table(trino.query(sql)).splitlines():
        console.print(f"  {line}", markup=False, highlight=False)


def run(stack: Stack) -> None:
    stack.up()
    schema = stack.s.source_schema
    topic = f"{stack.s.topic_prefix}.{schema}.movies"
    console.print(f"\n[bold]Changing movie {DEMO_MOVIE_ID} in Postgres[/]: insert → update → delete")
    started = time.monotonic()
    start = change_demo_row(stack.postgres.app_dsn, schema)
    events = wait_for_events(
        stack, topic=topic, movie_id=DEMO_MOVIE_ID, after_lsn=start, want=["c", "u", "d"]
    )
    console.print(f"All three raw events landed in bronze after {time.monotonic() - started:.1f}s:\n")
    for e in events:
        p = e.payload
        console.print(
            f"  op={e.op}  lsn={e.lsn}  s3://{stack.s.bucket}/{e.object_key}\n"
            f"     before={json.dumps(p.get('before'))}\n     after={json.dumps(p.get('after'))}"
        )
    console.print("\n[bold]Silver[/]: comparing every source table with its Delta table (Spark)…")
    from .silver.ops import tables, verify

    for d in verify(stack, None, wait_s=180):
        mark = "[green]✓[/]" if d.clean else "[red]✗[/]"
        console.print(
            f"  {mark} {d.source}: {d.source_rows} source rows, {d.silver_rows} silver rows, "
            f"missing {d.missing}, extra {d.extra}, different {d.different}"
        )
    for t in tables(stack):
        if t["version"] is None:
            console.print(f"  {t['location']}  (no events yet: created by the first change)")
        else:
            console.print(f"  {t['location']}  Delta version {t['version']}  rows {t['rows']}")
    show_in_trino(stack)
    env = stack.env()
    console.print(
        "\n[bold]Try it yourself[/]\n"
        f"  psql '{env['source']['dsn']}'\n"
        '  .venv/bin/lakehouse sql "SELECT * FROM analytics.pipeline_freshness"\n'
        f"  Trino: {env['trino']['url']}  (user {env['trino']['user']}, password: "
        "`lakehouse env --json` → trino)\n"
        f"  MinIO console: {env['object_store']['console']}  "
        f"(user/password: `lakehouse env --json` → object_store)\n"
        "  Stop with `make down`; everything is described by `lakehouse status`."
    )

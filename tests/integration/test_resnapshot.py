"""A replication slot Postgres invalidated, end to end: rows deleted, changed and inserted while
nothing streams, the slot lost (more WAL than max_slot_wal_keep_size), `status` naming the cause
and the recovery, `lakehouse resnapshot`, and silver equal to the source again — deletes included.

It re-snapshots every captured table of the session's stack, so it runs before the other
integration tests, while those tables are small (marker `early`); the tests after it run on the
stack it recovered."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from lakehouse.apps.monitor.probes import slots
from lakehouse.launcher import connectors
from lakehouse.launcher.services.postgres import SLOT
from lakehouse.launcher.stack import Stack
from lakehouse.polling import wait_until

from .helpers import BULK_S, analyst, lakehouse, source, topic, topic_events, wait_rows

TABLE = "resnap"
pytestmark = [pytest.mark.early, pytest.mark.long]  # 2.5 minutes: a slot lost, a re-snapshot


def _write_until(stack: Stack, schema: str, stop: threading.Event, writes: list[int]) -> None:
    """Transactions that stay open a little while (so some straddle the snapshot's position):
    each changes two rows, one of them inserted and deleted again later."""
    with source(stack) as conn:
        n = 0
        while not stop.is_set():
            n += 1
            with conn.transaction():
                conn.execute(f"UPDATE {schema}.{TABLE} SET v = %s WHERE id = %s", (f"w{n}", 3 + n % 5))
                time.sleep(0.05)
                conn.execute(f"INSERT INTO {schema}.{TABLE} VALUES (%s, %s)", (1000 + n, f"n{n}"))
                conn.execute(f"DELETE FROM {schema}.{TABLE} WHERE id = %s", (1000 + n - 3,))
            writes.append(n)
            time.sleep(0.05)


def _lost(conn: psycopg.Connection[Any]) -> bool:
    return any(s.name == SLOT and s.lost for s in slots(conn))


@pytest.mark.timeout(1500)
def test_a_lost_slot_is_named_and_resnapshot_brings_silver_back_deletes_included(stack: Stack) -> None:
    schema = stack.s.source_schema
    statement = f"SELECT id, v FROM silver.{TABLE} ORDER BY id"
    with source(stack) as conn:
        conn.execute(f"CREATE TABLE {schema}.{TABLE} (id int PRIMARY KEY, v text NOT NULL)")
        conn.execute(f"INSERT INTO {schema}.{TABLE} SELECT g, 'v' || g FROM generate_series(1, 6) g")
    wait_rows(analyst(stack), statement, [[i, f"v{i}"] for i in range(1, 7)])

    name = stack.source_connector_name()
    connectors.stop(stack.s.connect_url, name)
    with source(stack) as conn:  # nothing streams these
        conn.execute(f"DELETE FROM {schema}.{TABLE} WHERE id <= 2")
        conn.execute(f"UPDATE {schema}.{TABLE} SET v = 'changed' WHERE id = 3")
        conn.execute(f"INSERT INTO {schema}.{TABLE} VALUES (7, 'v7')")
    with psycopg.connect(stack.postgres.superuser_dsn, autocommit=True) as su:
        assert wait_until(lambda: not next(s for s in slots(su) if s.name == SLOT).active, timeout=60)
        try:  # ~120 MB of WAL outside the captured schema, then a 64 MB cap for one checkpoint
            su.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '64MB'")
            su.execute("SELECT pg_reload_conf()")
            su.execute(
                "CREATE TABLE public.wal_filler AS "
                "SELECT g, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 120000) g"
            )
            su.execute("SELECT pg_switch_wal()")
            su.execute("CHECKPOINT")
            assert _lost(su), slots(su)
        finally:
            su.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            su.execute("SELECT pg_reload_conf()")
            su.execute("DROP TABLE IF EXISTS public.wal_filler")

    status = lakehouse("status")
    assert status.returncode == 1
    assert f"replication slot '{SLOT}' was invalidated" in status.stdout, status.stdout
    assert "lakehouse resnapshot --yes" in status.stdout, status.stdout
    refused = lakehouse("resnapshot")
    assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stderr

    # the application keeps writing while the new snapshot is taken: transactions that begin
    # before its position and commit after it are the first ones streamed after it, and must win
    # over its reads (docs/cdc-semantics.md, "Ordering")
    stop = threading.Event()
    writes: list[int] = []
    writer = threading.Thread(target=_write_until, args=(stack, schema, stop, writes), daemon=True)
    writer.start()
    try:
        done = lakehouse("resnapshot", "--yes")
        time.sleep(3)  # and a little after it
    finally:
        stop.set()
        writer.join(timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(writes) > 10, writes  # the writer really ran during the snapshot
    with psycopg.connect(stack.postgres.superuser_dsn, autocommit=True) as su:
        assert not _lost(su)
    # silver: the deleted rows gone, the change, the insert and the writes made during the
    # snapshot there — and every other table (all of them were read again) equal to the source
    with source(stack) as conn:
        expected = [list(r) for r in conn.execute(f"SELECT id, v FROM {schema}.{TABLE} ORDER BY id")]
    assert [3, "changed"] not in expected and [1, "v1"] not in expected
    wait_rows(analyst(stack), statement, expected, BULK_S)
    verified = lakehouse("verify", "--wait", str(BULK_S), "--json")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    assert lakehouse("status").returncode == 0

    # what the rule rests on, checked on what Debezium wrote: one snapshot's reads of a table all
    # carry one position, so cutting just before it never removes a read of the same snapshot
    reads = [
        e.payload["source"] for e in topic_events(stack, topic(stack, TABLE)) if e.payload.get("op") == "r"
    ]
    assert len(reads) >= 5, reads
    assert len({(json.dumps(s.get("sequence")), s["lsn"]) for s in reads}) == 1, reads

"""Capture what the pinned Debezium really emits for the type matrix, as test fixtures.

    .venv/bin/python -m tests.capture_debezium          # against the stack of `make up`

Writes the type-matrix table's changes (tests/typematrix.py: inserts of every edge value, updates
that leave a TOASTed value unchanged, a primary-key change, deletes) to the source, waits until
their bronze lines are in object storage and stores those lines unchanged in
tests/fixtures/debezium/type_matrix.jsonl, beside the Postgres rendering of every value
(type_matrix.expected.json). The Spark-tier test (tests/spark/test_captured.py) runs the silver
rules on them, so crafted events cannot drift from what the real connector writes. Re-run it when
the Debezium, Postgres or connector settings change, and commit the result.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.reader import read_records

from . import typematrix as tm

FIXTURES = Path(__file__).parent / "fixtures" / "debezium"


def write_changes(dsn: str, schema: str) -> None:
    """The matrix's workload: every edge value inserted, changed, TOAST kept, a key moved, deleted."""
    table = f"{schema}.{tm.TABLE}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in tm.ddl(schema):
            conn.execute(statement)
        conn.execute(f"DELETE FROM {table}")
        for row in range(tm.ROWS):
            conn.execute(tm.insert(schema, row))
        for statement in tm.changes(schema):
            conn.execute(statement)


def expected(dsn: str, schema: str) -> tm.Rendered:
    """id → column → the Postgres rendering (TypeCase.pg) of the source row now."""
    with psycopg.connect(dsn) as conn:
        return tm.source_rendered(conn, schema)


def _records(stack: Stack, topic: str) -> list[dict[str, Any]]:
    client = stack.minio.client()
    objects = client.list_objects(stack.s.bucket, prefix=f"bronze/{topic}/", recursive=True)
    return [
        rec
        for obj in sorted(objects, key=lambda o: o.object_name or "")
        for rec in read_records(client, stack.s.bucket, obj.object_name or "")
    ]


def _line(rec: dict[str, Any]) -> str:
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False)


def _lsn(rec: dict[str, Any]) -> int:
    return int(((rec.get("value") or {}).get("payload") or {}).get("source", {}).get("lsn") or 0)


def bronze_lines(
    stack: Stack, topic: str, since_lsn: int, until_marker: int, timeout: float = 120
) -> list[str]:
    """The bronze lines of `topic` written since `since_lsn` and the transaction records of their
    events, once the marker row's insert and delete are among them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = [r for r in _records(stack, topic) if _lsn(r) >= since_lsn]
        marker = [r for r in data if ((r.get("key") or {}).get("payload") or {}).get("id") == until_marker]
        txids = {
            str(r["value"]["payload"]["transaction"]["id"]).split(":")[0]
            for r in data
            if (r.get("value") or {}).get("payload", {}).get("transaction")
        }
        txn = [
            r
            for r in _records(stack, f"{stack.s.topic_prefix}.transaction")
            if str(r["value"]["payload"]["id"]).split(":")[0] in txids
        ]
        ends = {
            str(r["value"]["payload"]["id"]).split(":")[0]
            for r in txn
            if r["value"]["payload"]["status"] == "END"
        }
        if len(marker) == 2 and txids <= ends:
            return [_line(r) for r in data + txn]
        time.sleep(1)
    raise SystemExit(f"the marker events of {topic} did not reach bronze in {timeout:.0f}s")


def main() -> int:
    stack = Stack()
    schema = stack.s.source_schema
    dsn = stack.postgres.app_dsn
    with psycopg.connect(dsn) as conn:
        start = conn.execute("SELECT pg_current_wal_lsn() - '0/0'").fetchone()
    assert start is not None
    write_changes(dsn, schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {schema}.{tm.TABLE} (id) VALUES ({tm.MARKER})")
        conn.execute(f"DELETE FROM {schema}.{tm.TABLE} WHERE id = {tm.MARKER}")
    topic = f"{stack.s.topic_prefix}.{schema}.{tm.TABLE}"
    lines = bronze_lines(stack, topic, int(start[0]), tm.MARKER)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "type_matrix.jsonl").write_text("\n".join(lines) + "\n")
    (FIXTURES / "type_matrix.expected.json").write_text(json.dumps(expected(dsn, schema), indent=1) + "\n")
    print(f"captured {len(lines)} events of {topic} into {FIXTURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

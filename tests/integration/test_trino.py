"""The query layer on the real stack: Trino over silver, views, time travel, access control, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from lakehouse.clients import admin_client
from lakehouse.clients.trino_client import QueryError
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.store import QUARANTINE_SCHEMA

from .helpers import VISIBLE_S, analyst, delta_schema, fold, source, wait_rows


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args], capture_output=True, text=True, check=False
    )


def sql_json(statement: str) -> list[dict[str, Any]]:
    proc = cli("sql", statement, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


def test_row_change_delete_and_time_travel_through_sql(stack: Stack) -> None:
    t = analyst(stack)
    mid = 9_400_001
    with source(stack) as conn:
        conn.execute("INSERT INTO movielens.movies VALUES (%s, 'Before (2026)', 'Drama')", (mid,))
    wait_rows(t, f"SELECT title FROM silver.movies WHERE movie_id = {mid}", [["Before (2026)"]])
    # history is the Delta table's: with merge-on-read, the base's, once the row is folded into it
    delta = delta_schema(t, "movies")
    fold(stack, "movies")
    wait_rows(t, f"SELECT title FROM {delta}.movies WHERE movie_id = {mid}", [["Before (2026)"]], 30)
    before = t.scalar(f'SELECT max(version) FROM {delta}."movies$history"')

    with source(stack) as conn:
        conn.execute("UPDATE movielens.movies SET title = 'After (2026)' WHERE movie_id = %s", (mid,))
    wait_rows(t, f"SELECT title FROM silver.movies WHERE movie_id = {mid}", [["After (2026)"]])
    fold(stack, "movies")
    wait_rows(t, f"SELECT title FROM {delta}.movies WHERE movie_id = {mid}", [["After (2026)"]], 30)
    # the CLI shows the same row
    assert sql_json(f"SELECT movie_id, title FROM movies WHERE movie_id = {mid}") == [
        {"movie_id": mid, "title": "After (2026)"}
    ]
    # time travel: the version before the update still has the old title
    old = t.query(f"SELECT title FROM {delta}.movies FOR VERSION AS OF {before} WHERE movie_id = {mid}")
    assert old.rows == [["Before (2026)"]]
    # the change data feed has the update as a pre/post image pair
    changes = t.query(
        "SELECT _change_type, title FROM TABLE(lakehouse.system.table_changes("
        f"schema_name => '{delta}', table_name => 'movies', since_version => {before})) "
        f"WHERE movie_id = {mid} ORDER BY _commit_version, _change_type"
    ).rows
    assert changes == [["update_postimage", "After (2026)"], ["update_preimage", "Before (2026)"]]

    with source(stack) as conn:
        conn.execute("DELETE FROM movielens.movies WHERE movie_id = %s", (mid,))
    wait_rows(t, f"SELECT count(*) FROM silver.movies WHERE movie_id = {mid}", [[0]])


def test_table_created_after_start_is_queryable(stack: Stack) -> None:
    with source(stack) as conn:
        conn.execute(
            "CREATE TABLE movielens.wishlist (user_id int, movie_id int, PRIMARY KEY (user_id, movie_id))"
        )
        conn.execute("INSERT INTO movielens.wishlist VALUES (1, 1), (1, 2)")
    wait_rows(analyst(stack), "SELECT count(*) FROM silver.wishlist", [[2]])
    with source(stack) as conn:
        conn.execute("ALTER TABLE movielens.wishlist ADD COLUMN note text")
        conn.execute("INSERT INTO movielens.wishlist VALUES (2, 1, 'later')")
    # a column added later is visible too (its schema comes from the Delta log)
    wait_rows(analyst(stack), "SELECT note FROM silver.wishlist WHERE user_id = 2", [["later"]])
    tables = json.loads(cli("tables", "--json").stdout)
    assert {"source": "movielens.wishlist", "silver": "lakehouse.silver.wishlist"}.items() <= next(
        t for t in tables if t["source"] == "movielens.wishlist"
    ).items()


def test_analyst_is_read_only_and_cannot_see_quarantine(stack: Stack) -> None:
    t = analyst(stack)
    delta = delta_schema(t, "movies")  # the Delta table (a view takes no writes for another reason)
    with pytest.raises(QueryError, match="Access Denied"):
        t.query(f"INSERT INTO {delta}.movies (movie_id, title, genres) VALUES (1, 'x', 'y')")
    with pytest.raises(QueryError, match=r"does not exist|Access Denied"):
        t.query("SELECT count(*) FROM ops.quarantine")
    assert ["ops"] not in t.query("SHOW SCHEMAS FROM lakehouse").rows
    # the admin sees the quarantine table (the silver job creates it at start)
    admin = admin_client(stack.s, stack.ctx.secrets)
    deadline = time.monotonic() + VISIBLE_S
    while True:
        try:
            columns = [r[0] for r in admin.query("DESCRIBE ops.quarantine").rows]
            break
        except QueryError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert columns == QUARANTINE_SCHEMA.fieldNames()
    # the analyst sees only its own queries and kills none (the admin's query above is listed
    # in system.runtime.queries for minutes; without the `queries` rule the analyst would see it)
    assert admin.query("SELECT count(*) FROM system.runtime.queries WHERE \"user\" = 'admin'").rows[0][0] > 0
    assert t.query("SELECT count(*) FROM system.runtime.queries WHERE \"user\" = 'admin'").rows == [[0]]
    assert t.query("SELECT count(*) FROM system.runtime.queries WHERE \"user\" = 'analyst'").rows[0][0] > 0
    with pytest.raises(QueryError, match="Access Denied"):
        t.query("CALL system.runtime.kill_query(query_id => '20260101_000000_00000_xxxxx')")
    # a wrong password is refused
    from dataclasses import replace

    with pytest.raises(Exception, match="refused the login"):
        replace(t, password="wrong").query("SELECT 1")


def test_sql_errors_name_line_and_column(stack: Stack) -> None:
    proc = cli("sql", "SELECT movie_id,\n  no_such_column FROM movies")
    assert proc.returncode == 1
    assert "line 2:3: Column 'no_such_column' cannot be resolved" in proc.stderr
    proc = cli("sql", "SELECT 1", "--format", "xml")
    assert proc.returncode == 2
    assert "xml" in proc.stderr

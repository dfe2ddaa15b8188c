"""The query layer on the real stack: Trino over silver, views, time travel, access control, the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakehouse.movielens import default_path, load
from lakehouse.query.client import QueryError, Trino
from lakehouse.query.connect import admin_client, analyst_client
from lakehouse.stack import Stack

# bounded waits: one change crosses Kafka, the bronze sink, a Spark micro-batch and Trino
VISIBLE_S = 120
BULK_S = 600


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args], capture_output=True, text=True, check=False
    )


def sql_json(statement: str) -> list[dict[str, Any]]:
    proc = cli("sql", statement, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


def analyst(stack: Stack) -> Trino:
    return analyst_client(stack.s, stack.ctx.secrets)


def wait_rows(trino: Trino, statement: str, expected: list[list[Any]], timeout: float = VISIBLE_S) -> None:
    deadline = time.monotonic() + timeout
    rows: list[list[Any]] | str = []
    while time.monotonic() < deadline:
        try:
            rows = trino.query(statement).rows
        except QueryError as exc:  # the table may not be registered yet
            rows = str(exc)
        if rows == expected:
            return
        time.sleep(1)
    raise AssertionError(f"{statement}: {rows!r} != {expected!r} after {timeout}s")


def source(stack: Stack) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(stack.postgres.app_dsn, autocommit=True)


def test_row_change_delete_and_time_travel_through_sql(stack: Stack) -> None:
    t = analyst(stack)
    mid = 9_400_001
    with source(stack) as conn:
        conn.execute("INSERT INTO movielens.movies VALUES (%s, 'Before (2026)', 'Drama')", (mid,))
    wait_rows(t, f"SELECT title FROM silver.movies WHERE movie_id = {mid}", [["Before (2026)"]])
    before = t.scalar('SELECT max(version) FROM silver."movies$history"')

    with source(stack) as conn:
        conn.execute("UPDATE movielens.movies SET title = 'After (2026)' WHERE movie_id = %s", (mid,))
    wait_rows(t, f"SELECT title FROM silver.movies WHERE movie_id = {mid}", [["After (2026)"]])
    # the CLI shows the same row
    assert sql_json(f"SELECT movie_id, title FROM movies WHERE movie_id = {mid}") == [
        {"movie_id": mid, "title": "After (2026)"}
    ]
    # time travel: the version before the update still has the old title
    old = t.query(f"SELECT title FROM silver.movies FOR VERSION AS OF {before} WHERE movie_id = {mid}")
    assert old.rows == [["Before (2026)"]]
    # the change data feed has the update as a pre/post image pair
    changes = t.query(
        "SELECT _change_type, title FROM TABLE(lakehouse.system.table_changes("
        f"schema_name => 'silver', table_name => 'movies', since_version => {before})) "
        f"WHERE movie_id = {mid} ORDER BY _commit_version, _change_type"
    ).rows
    assert changes == [["update_postimage", "After (2026)"], ["update_preimage", "Before (2026)"]]

    with source(stack) as conn:
        conn.execute("DELETE FROM movielens.movies WHERE movie_id = %s", (mid,))
    wait_rows(t, f"SELECT count(*) FROM silver.movies WHERE movie_id = {mid}", [[0]])


def test_table_created_after_start_is_queryable(stack: Stack) -> None:
    with source(stack) as conn:
        conn.execute(
            "CREATE TABLE movielens.watchlist (user_id int, movie_id int, PRIMARY KEY (user_id, movie_id))"
        )
        conn.execute("INSERT INTO movielens.watchlist VALUES (1, 1), (1, 2)")
    wait_rows(analyst(stack), "SELECT count(*) FROM silver.watchlist", [[2]])
    with source(stack) as conn:
        conn.execute("ALTER TABLE movielens.watchlist ADD COLUMN note text")
        conn.execute("INSERT INTO movielens.watchlist VALUES (2, 1, 'later')")
    # a column added later is visible too (its schema comes from the Delta log)
    wait_rows(analyst(stack), "SELECT note FROM silver.watchlist WHERE user_id = 2", [["later"]])
    tables = json.loads(cli("tables", "--json").stdout)
    assert {"source": "movielens.watchlist", "silver": "lakehouse.silver.watchlist"}.items() <= next(
        t for t in tables if t["source"] == "movielens.watchlist"
    ).items()


def test_analyst_is_read_only_and_cannot_see_quarantine(stack: Stack) -> None:
    t = analyst(stack)
    with pytest.raises(QueryError, match="Access Denied"):
        t.query("INSERT INTO silver.movies (movie_id, title, genres) VALUES (1, 'x', 'y')")
    with pytest.raises(QueryError, match=r"does not exist|Access Denied"):
        t.query("SELECT count(*) FROM ops.quarantine")
    assert ["ops"] not in t.query("SHOW SCHEMAS FROM lakehouse").rows
    # the admin sees the quarantine table (the silver job creates it at start)
    admin = admin_client(stack.s, stack.ctx.secrets)
    deadline = time.monotonic() + VISIBLE_S
    while True:
        try:
            assert admin.scalar("SELECT count(*) FROM ops.quarantine") >= 0
            break
        except QueryError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
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


def reference_top_movies(folder: Path) -> list[tuple[int, int, float]]:
    """Computed from the CSVs alone: the 100 best averages among the 1000 most-rated movies."""
    ratings: dict[int, list[float]] = defaultdict(list)
    with open(folder / "ratings.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            ratings[int(row["movieId"])].append(float(row["rating"]))
    most = sorted(ratings, key=lambda m: (-len(ratings[m]), m))[:1000]
    avg = {m: sum(ratings[m]) / len(ratings[m]) for m in most}
    best = sorted(most, key=lambda m: (-avg[m], -len(ratings[m]), m))[:100]
    return [(m, len(ratings[m]), avg[m]) for m in best]


@pytest.mark.skipif(not default_path().is_dir(), reason="the MovieLens sample is not beside the checkout")
def test_top_movies_over_movielens_matches_the_csvs(stack: Stack) -> None:
    loaded = {r.table: r for r in load(stack.postgres.app_dsn, stack.s.source_schema)}
    assert loaded["ratings"].csv_rows == 100_836
    t = analyst(stack)
    with source(stack) as conn:
        in_source = conn.execute("SELECT count(*) FROM movielens.ratings").fetchone()
    assert in_source is not None
    wait_rows(t, "SELECT count(*) FROM silver.ratings", [[in_source[0]]], timeout=BULK_S)
    wait_rows(t, "SELECT count(*) FROM silver.movies WHERE movie_id < 9000000", [[9742]], timeout=BULK_S)
    rows = t.query("SELECT rank, movie_id, ratings, avg_rating FROM analytics.top_movies ORDER BY rank").rows
    assert len(rows) == 100
    expected = reference_top_movies(default_path())
    assert [(r[1], r[2]) for r in rows] == [(m, n) for m, n, _ in expected]
    for r, (_, _, avg) in zip(rows, expected, strict=True):  # the view rounds to 3 decimals
        assert abs(r[3] - avg) <= 0.0005 + 1e-9, (r, avg)
    assert [r[0] for r in rows] == list(range(1, 101))
    # the other views answer too
    assert t.scalar("SELECT sum(ratings) FROM analytics.ratings_per_day") == in_source[0]
    assert t.scalar("SELECT count(*) FROM analytics.most_active_users") == 100
    assert t.scalar("SELECT count(*) FROM analytics.genre_popularity WHERE genre = 'Drama'") == 1
    fresh = t.query("SELECT table_name, row_count FROM analytics.pipeline_freshness").rows
    assert ["ratings", in_source[0]] in fresh

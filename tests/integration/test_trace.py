"""`lakehouse trace` on the real stack: a change followed through every hop by its own identity,
a deleted row, an unknown table or key (a change held up: test_silver.py, silver stopped)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from lakehouse.launcher.stack import Stack

from .helpers import analyst, fold, lakehouse, wait_rows

#: a movie id of this test's own (test_superset.py's is 9_700_001)
MOVIE = 9_700_201


def _folded(stack: Stack, titles: list[list[Any]]) -> None:
    """Once the live view has the change, fold it into the base (the trace's `base` hop) rather
    than wait for the compactor's age."""
    wait_rows(analyst(stack), f"SELECT title FROM silver.movies WHERE movie_id = {MOVIE}", titles)
    fold(stack, "movies")


def _trace(*args: str) -> tuple[int, dict[str, Any], str]:
    out = lakehouse("trace", *args, "--json")
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}, out.stderr


def _write(stack: Stack, sql: str, *params: Any) -> int:
    """Run one statement in its own transaction; its transaction id."""
    with psycopg.connect(stack.postgres.app_dsn) as conn:
        txid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        conn.execute(sql, params)
    assert txid is not None
    return int(txid[0])


def _hops(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["hop"]: h for h in doc["hops"]}


def test_a_change_is_followed_through_every_hop_by_its_own_transaction(stack: Stack) -> None:
    """(A change held up is named where it is: test_silver.py, while silver is stopped.)"""
    _write(
        stack,
        "INSERT INTO movielens.movies VALUES (%s, 'Trace Me (2026)', 'Drama') ON CONFLICT DO NOTHING",
        MOVIE,
    )
    _folded(stack, [["Trace Me (2026)"]])
    rc, first, err = _trace("movies", str(MOVIE), "--timeout", "180")
    assert rc == 0 and first["op"] == "c", (err, first)

    txid = _write(stack, "UPDATE movielens.movies SET title = 'Traced (2026)' WHERE movie_id = %s", MOVIE)
    _folded(stack, [["Traced (2026)"]])
    rc, done, err = _trace("movies", str(MOVIE), "--timeout", "240")
    assert rc == 0 and done["complete"] and done["op"] == "u", (err, done)
    hops = _hops(done)
    assert hops["postgres"]["txid"] == txid % 2**32 and done["lsn"] > first["lsn"]  # this very change
    # in order along the path, each after the one before (one clock: the machine's)
    path = [hops[h]["at"] for h in ("postgres", "kafka", "silver", "trino")]
    assert path == sorted(path), path
    assert hops["postgres"]["after_s"] == 0 and 0 < hops["trino"]["after_s"] < 600
    assert hops["kafka"]["topic"] == f"{stack.s.topic_prefix}.movielens.movies"
    assert hops["bronze"]["at"] >= hops["kafka"]["at"] - 1 and "partition=" in hops["bronze"]["object"]
    assert hops["postgres"]["commit_lsn"] > 0  # the commit LSN, from silver's row
    if done["write_mode"] == "merge-on-read":  # folded into the base after the log had it
        assert hops["base"]["at"] >= hops["silver"]["at"]
        assert (
            hops["silver"]["table"] == "silver_log.movies" and hops["base"]["table"] == "silver_base.movies"
        )
    assert done["slowest"] in ("kafka", "silver", "trino")

    # a deleted row: its change is the delete, visible as the row's absence
    _write(stack, "DELETE FROM movielens.movies WHERE movie_id = %s", MOVIE)
    _folded(stack, [])
    rc, gone, err = _trace("movies", str(MOVIE), "--timeout", "240")
    assert rc == 0 and gone["op"] == "d" and gone["complete"], (err, gone)
    assert gone["lsn"] > done["lsn"]

    text = lakehouse("trace", "movies", str(MOVIE)).stdout
    assert text.splitlines()[0].startswith(f"movielens.movies movie_id={MOVIE}: delete"), text


def test_an_unknown_table_or_key_is_a_one_line_error() -> None:
    out = lakehouse("trace", "no_such_table", "1")
    assert out.returncode == 2 and out.stderr.strip() == (
        "lakehouse: error: no table movielens.no_such_table in the source"
    ), out.stderr
    out = lakehouse("trace", "movies", "987654321", "--timeout", "5")
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == (
        "lakehouse: error: movielens.movies has no row 987654321 and its topic no change of it"
    ), out.stderr
    out = lakehouse("trace", "ratings", "1")
    assert out.returncode == 2 and "the key has 2 columns (user_id, movie_id)" in out.stderr, out.stderr

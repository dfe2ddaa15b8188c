"""The demo page's search on the real source: what a user types is matched as typed — quotes,
`%`, `_` and accents are text, never SQL and never LIKE wildcards."""

from __future__ import annotations

from pathlib import Path

import psycopg

from lakehouse.apps.web.app import Backend
from lakehouse.clients.trino_client import Trino
from lakehouse.launcher.stack import Stack

PROBES = {
    990_001: "Pct 100% Probe",
    990_002: "Plain 100 Probe",
    990_003: "Under_score Probe",
    990_004: "UnderXscore Probe",
    990_005: "Quote O'Probe",
    990_006: "Unicode Amélie Probe",
    990_007: "Back\\slash Probe",
}


def test_search_matches_quotes_wildcards_and_unicode_literally(stack: Stack, tmp_path: Path) -> None:
    table = f"{stack.s.source_schema}.movies"
    # the search reads only Postgres: nothing listens behind this Trino
    backend = Backend(
        stack.postgres.app_dsn,
        stack.s.source_schema,
        Trino("127.0.0.1", 9, "x", "x", tmp_path / "cert.pem"),
        {},
    )
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {table} WHERE movie_id = ANY(%s)", (list(PROBES),))
        try:
            for movie_id, title in PROBES.items():
                conn.execute(
                    f"INSERT INTO {table} (movie_id, title, genres) VALUES (%s, %s, 'Drama')",
                    (movie_id, title),
                )

            def titles(q: str) -> list[str]:
                return [m["title"] for m in backend.search(q)]

            assert titles("100%") == ["Pct 100% Probe"]  # a wildcard would also find "Plain 100"
            assert titles("Under_score") == ["Under_score Probe"]  # … and "UnderXscore"
            assert titles("O'Probe") == ["Quote O'Probe"]
            assert titles("Amélie Probe") == ["Unicode Amélie Probe"]
            assert titles("k\\s") == ["Back\\slash Probe"]
            assert titles("'; DROP TABLE movies; --") == []
            # a lone `_` or `%` is every title as a wildcard; as text, only titles holding it
            assert all("_" in t for t in titles("_")) and "Under_score Probe" in titles("_")
            assert all("%" in t for t in titles("%")) and "Pct 100% Probe" in titles("%")
            assert conn.execute(
                f"SELECT count(*) FROM {table} WHERE movie_id = ANY(%s)", (list(PROBES),)
            ).fetchone() == (len(PROBES),)
        finally:
            conn.execute(f"DELETE FROM {table} WHERE movie_id = ANY(%s)", (list(PROBES),))

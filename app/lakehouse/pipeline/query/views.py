"""The analytics views (schema `analytics`) that replace a gold layer.

Static views are SQL files in trino/views/ (one `CREATE OR REPLACE VIEW` each); the pipeline
freshness view is generated, since it spans every silver table, including ones created later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lakehouse.config.names import ANALYTICS, CATALOG, OPS, SILVER
from lakehouse.config.render import render_file

FRESHNESS = "pipeline_freshness"


@dataclass(frozen=True)
class View:
    name: str
    sql: str
    #: what else makes the view what it is (a live view: its base's column types, which Trino
    #: stores with the view; a view whose types no longer match is stale)
    signature: str = ""


#: the placeholders of SQL written against Trino's schemas (views, cross-table expectations)
SCHEMAS = {"catalog": CATALOG, "silver": SILVER, "analytics": ANALYTICS, "ops": OPS}


def load_views(directory: Path) -> list[View]:
    return [View(f.stem, render_file(f, SCHEMAS)) for f in sorted(directory.glob("*.sql"))]


def freshness_view(tables: list[str]) -> View:
    """Per silver table: rows, newest source commit, how old it is, and the apply lag of the newest row."""
    parts = [
        f"SELECT '{t}' AS table_name, count(*) AS row_count,"
        " max(_source_ts) AS last_source_commit, max(_ingested_at) AS last_applied,"
        " date_diff('millisecond', max(_source_ts), current_timestamp) / 1e3 AS freshness_s,"
        " date_diff('millisecond', max_by(_source_ts, _ingested_at), max(_ingested_at)) / 1e3"
        " AS apply_lag_s"
        f" FROM {CATALOG}.{SILVER}.{t}"
        for t in sorted(tables)
    ]
    body = (
        "\nUNION ALL\n".join(parts)
        if parts
        else (
            "SELECT CAST(NULL AS varchar) AS table_name, CAST(NULL AS bigint) AS row_count,"
            " CAST(NULL AS timestamp(3) with time zone) AS last_source_commit,"
            " CAST(NULL AS timestamp(3) with time zone) AS last_applied,"
            " CAST(NULL AS double) AS freshness_s, CAST(NULL AS double) AS apply_lag_s WHERE false"
        )
    )
    sql = (
        f"CREATE OR REPLACE VIEW {CATALOG}.{ANALYTICS}.{FRESHNESS}\n"
        "COMMENT 'per silver table: newest source commit, its age (freshness_s) and apply lag'\n"
        f"AS\n{body}"
    )
    return View(FRESHNESS, sql)

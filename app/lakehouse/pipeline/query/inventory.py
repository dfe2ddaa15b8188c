"""What Trino lists of silver — its tables and live views, their bases, the quarantine — and the
events waiting in the quarantine per source table: what `status`, `tables` and the monitor show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakehouse.clients.trino_client import Trino
from lakehouse.config.names import CATALOG, OPS, SILVER, SILVER_BASE


@dataclass(frozen=True)
class Registered:
    """What Trino lists: the silver tables, and whether the quarantine table is there yet (silver
    creates it at start; the catalog sync registers it after that)."""

    silver: list[str]
    quarantine: bool
    #: merge-on-read: the silver tables that are a live view over a base (silver_base.<t>)
    bases: tuple[str, ...] = ()


def registered(trino: Trino) -> Registered:
    """One information_schema query for all three (a poll asks Trino three things, not six).
    A silver table is a Delta table, or with merge-on-read the live view over its base."""
    rows = trino.query(
        f"SELECT table_schema, table_name FROM {CATALOG}.information_schema.tables "
        f"WHERE table_schema IN ('{SILVER}', '{SILVER_BASE}') "
        f"OR (table_schema = '{OPS}' AND table_name = 'quarantine') ORDER BY table_name"
    ).rows
    return Registered(
        [str(t) for s, t in rows if s == SILVER],
        any(s == OPS for s, _ in rows),
        tuple(str(t) for s, t in rows if s == SILVER_BASE),
    )


@dataclass(frozen=True)
class Blocked:
    """A source table with events silver refused that are still in quarantine (not replayed yet)."""

    source_table: str  # e.g. 'movielens.movies'
    events: int
    reason: str  # of the latest refused event
    since: float  # epoch seconds of the oldest refused event still waiting


QUARANTINED_BY_TABLE_SQL = f"""
    SELECT source_table, count(*), max_by(reason, quarantined_at), min(quarantined_at)
    FROM {CATALOG}.{OPS}.quarantine
    GROUP BY source_table
    ORDER BY source_table"""


def quarantine(trino: Trino) -> tuple[int, list[Blocked]]:
    """Rows in the quarantine, and per source table the events waiting there.

    Replay deletes the rows it applies, so what is left are events silver still refuses. Lines
    that could not be parsed have no source table: counted in the rows, in no table's entry.
    """
    rows = trino.query(QUARANTINED_BY_TABLE_SQL).rows
    blocked = [
        Blocked(str(t), int(n), str(reason or ""), epoch_seconds(since) or 0.0)
        for t, n, reason, since in rows
        if t is not None
    ]
    return sum(int(r[1]) for r in rows), blocked


def epoch_seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)

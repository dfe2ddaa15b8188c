"""The CDC ordering rule, in one place (docs/cdc-semantics.md, "Ordering").

A change's position is (commit LSN, change LSN): the commit LSN orders transactions by commit, the
change LSN orders the changes within one. Every comparison silver makes — latest event per key,
stale event against a stored row or a tombstone, events after a TRUNCATE, the value a TOAST
placeholder stands for — goes through these functions.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

COMMIT = "_commit_lsn"
CHANGE = "_lsn"


def after_sql(a: str, b: str) -> str:
    """SQL: the position of alias `a` is strictly after the position of alias `b`."""
    return f"({a}.{COMMIT} > {b}.{COMMIT} OR ({a}.{COMMIT} = {b}.{COMMIT} AND {a}.{CHANGE} > {b}.{CHANGE}))"


def after(a_commit: Column, a_change: Column, b_commit: Column, b_change: Column) -> Column:
    """Position a strictly after position b (columns)."""
    return (a_commit > b_commit) | ((a_commit == b_commit) & (a_change > b_change))


def after_point(commit: int, change: int) -> Column:
    """Rows whose position is strictly after a fixed position (e.g. a TRUNCATE's)."""
    return after(F.col(COMMIT), F.col(CHANGE), F.lit(commit), F.lit(change))


def before_point_sql(commit: int, change: int) -> str:
    """SQL: rows strictly before a fixed position (what a TRUNCATE removes)."""
    c, x = int(commit), int(change)
    return f"({COMMIT} < {c} OR ({COMMIT} = {c} AND {CHANGE} < {x}))"


def latest_first(*tiebreak: Column) -> list[Column]:
    """Ordering that puts the highest position first (then `tiebreak`, e.g. the bronze offset)."""
    return [F.col(COMMIT).desc(), F.col(CHANGE).desc(), *tiebreak]


Point = tuple[int, int]


def position() -> Column:
    """A row's position as one value; structs compare field by field, so `F.min`/`F.max` over it
    give the earliest/latest position."""
    return F.struct(F.col(COMMIT).alias(COMMIT), F.col(CHANGE).alias(CHANGE))


def point(value: Any) -> Point | None:
    """A collected `position()` (or None) as a (commit, change) tuple, ordered like positions."""
    return None if value is None else (int(value[0]), int(value[1]))

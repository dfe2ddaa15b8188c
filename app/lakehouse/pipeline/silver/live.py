"""Merge-on-read's live rule, in one place: what a silver table holds now.

Silver keeps each table as a **base** (a plain Delta table, as of the last compaction) and a
**log** (the changes appended since, one entry per key and batch: the row, `_op` and its
position). A key's live row is the newest of its base row and its log entries, by position
(position.py); none when that newest is a delete. Written as one join of the base with each key's
newest log entry, so a query scans the base once (no window over it) plus the (small) log:

- per key, the newest log entry (of two at one position, the later appended: `_seq`);
- the base FULL OUTER JOINed with it on the key: where the entry is strictly newer than the base
  row, or the base has no row for the key, the entry is the row (none when it is a delete);
  otherwise the base row stands (a late or replayed event, or one a fold already took in).

The rule is SQL text made from the table's key and columns, so that one definition serves every
reader: Trino (the `silver.<table>` view), Spark (`Store.live`, `live_rows.read`: the jobs, `verify`) and
the compactor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from lakehouse.pipeline.silver.position import CHANGE, COMMIT, after_sql

Dialect = Literal["trino", "spark"]
#: the log's own column beside the table's: when the entry was appended, in microseconds since
#: the epoch, strictly increasing within a job (store.append_log). Not the micro-batch id: each
#: streaming query of the job (a bronze catch-up, then Kafka) counts its batches from 0.
SEQ = "_seq"


def _quoter(dialect: Dialect) -> Callable[[str], str]:
    if dialect == "spark":
        return lambda n: "`" + n.replace("`", "``") + "`"
    return lambda n: '"' + n.replace('"', '""') + '"'


def live_sql(base: str, log: str, keys: Sequence[str], columns: Sequence[str], dialect: Dialect) -> str:
    """SELECT of the live rows of a table with primary key `keys`, whose base is the relation
    `base` and whose log is `log` (names as the engine reads them), with `columns` (the table's,
    metadata included, `_op` among them) in that order."""
    if not keys:
        raise ValueError("the live rule needs the table's primary key")
    missing = {"_op", COMMIT, CHANGE} - set(columns)
    if missing:
        raise ValueError(f"the live rule needs the column(s) {', '.join(sorted(missing))}")
    q = _quoter(dialect)
    cols = ", ".join(q(c) for c in columns)
    part = ", ".join(q(k) for k in keys)
    on = " AND ".join(f"b.{q(k)} = n.{q(k)}" for k in keys)
    # the entry is the row: the base has none for the key, or the entry is strictly newer
    entry = f"(b.{q(keys[0])} IS NULL OR (n.{q(keys[0])} IS NOT NULL AND {after_sql('n', 'b')}))"
    picked = ", ".join(
        f"coalesce(b.{q(c)}, n.{q(c)}) AS {q(c)}"
        if c in keys
        else f"CASE WHEN {entry} THEN n.{q(c)} ELSE b.{q(c)} END AS {q(c)}"
        for c in columns
    )
    return (
        # ties (one event appended twice: a re-run batch) go to the later append, as in a fold
        # (compaction.py), so the live row and the folded base agree in every column
        f"WITH _entries AS (SELECT {cols}, row_number() OVER (PARTITION BY {part} "
        f"ORDER BY {COMMIT} DESC, {CHANGE} DESC, {SEQ} DESC) AS _rn FROM {log}), "
        f"_newest AS (SELECT {cols} FROM _entries WHERE _rn = 1) "
        f"SELECT {picked} FROM {base} b FULL OUTER JOIN _newest n ON {on} "
        f"WHERE NOT ({entry} AND n._op = 'd')"
    )

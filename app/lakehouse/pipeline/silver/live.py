"""Merge-on-read's live rule, in one place: what a silver table holds now.

Silver keeps each table as a **base** (a plain Delta table, as of the last compaction) and a
**log** (the changes appended since, one entry per key and batch: the row, `_op` and its
position). A key's live row is the newest of its base row and its log entries, by position
(position.py); none when that newest is a delete. Written without a window over the base, so a
query costs a scan of the base plus the (small) log:

- base rows that no log entry outranks, and
- per key, the newest log entry (of two at one position, the later appended: `_seq`), unless it
  is a delete or the base already holds the key at or after its position (a late or replayed
  event).

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

    def same_key(a: str, b: str) -> str:
        return " AND ".join(f"{a}.{q(k)} = {b}.{q(k)}" for k in keys)

    def listed(alias: str) -> str:
        return ", ".join(f"{alias}.{q(c)}" for c in columns)

    return (
        # ties (one event appended twice: a re-run batch) go to the later append, as in a fold
        # (compaction.py), so the live row and the folded base agree in every column
        f"WITH _entries AS (SELECT {cols}, row_number() OVER (PARTITION BY {part} "
        f"ORDER BY {COMMIT} DESC, {CHANGE} DESC, {SEQ} DESC) AS _rn FROM {log}), "
        f"_newest AS (SELECT {cols} FROM _entries WHERE _rn = 1) "
        f"SELECT {listed('b')} FROM {base} b WHERE NOT EXISTS "
        f"(SELECT 1 FROM _newest n WHERE {same_key('n', 'b')} AND {after_sql('n', 'b')}) "
        f"UNION ALL "
        f"SELECT {listed('n')} FROM _newest n WHERE n._op <> 'd' AND NOT EXISTS "
        f"(SELECT 1 FROM {base} b WHERE {same_key('b', 'n')} AND NOT {after_sql('n', 'b')})"
    )

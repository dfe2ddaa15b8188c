"""The batch summary: one pass over the parsed lines, counted per (transaction, table).

What the driver decides from — which transactions are complete (transactions.decide), which
tables have work and of what kind (TRUNCATE, snapshot reads, deletes), the new schema ids' texts —
comes from one Spark job of two stages whose few rows are collected (docs/design.md, "The lean
batch").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.transactions import End

Newest = tuple[datetime, datetime | None]


def newer(a: Newest | None, b: Newest | None) -> Newest | None:
    """Of two changes, the one committed later (the first on a tie)."""
    return b if a is None or (b is not None and b[0] > a[0]) else a


@dataclass
class TableWork:
    """What the batch summary says about one table's events that are ready to apply."""

    schema_ids: set[str] = field(default_factory=set)
    events: int = 0
    deletes: int = 0
    truncate: tuple[int, int] | None = None  # position of its latest TRUNCATE
    snapshot: tuple[int, int] | None = None  # position of its latest blocking-snapshot read
    #: its newest change: (source commit time, its Kafka record's time when the line has one)
    newest: Newest | None = None

    @property
    def max_ts(self) -> datetime | None:
        return None if self.newest is None else self.newest[0]


@dataclass
class Summary:
    lines: int = 0
    replayed: int = 0
    bad: int = 0
    # (txid, table) → [events, lines, oldest first_seen, lines new this batch, lines read from no
    # file, the files its lines were read from]
    groups: dict[tuple[int, str], list[Any]] = field(default_factory=dict)
    ends: list[End] = field(default_factory=list)
    schemas: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # new schema id → texts
    # per (table, txid or None): the ready-candidate work of that slice
    slices: dict[tuple[str, int | None], TableWork] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)


def utc(ts: datetime | None) -> datetime | None:
    """A timestamp collected from Spark (naive, in this process's local time) as aware UTC."""
    return None if ts is None else ts.astimezone(UTC)


def iso(ts: datetime | None, default: datetime) -> str:
    return (utc(ts) or default).isoformat()


def group_key() -> Column:
    """A parsed event's (transaction, table) group as one string: `<txid>:<schema.table>`."""
    return F.concat_ws(":", F.col("txid").cast("string"), F.col("table"))


def later(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    return b if a is None or (b is not None and b > a) else a


def summarise(parsed: DataFrame, now: datetime) -> Summary:
    """One pass over the parsed batch → counts per (kind, bad, transaction, table, schema id),
    with the END records' per-table counts (one Spark job, two stages)."""
    first = F.col("first_seen").isNull() & ~F.col("replayed")
    is_end = (F.col("kind") == "txn") & F.col("reason").isNull() & (F.col("txn_status") == "END")
    rows = (
        parsed.groupBy("kind", F.col("reason").isNotNull().alias("bad"), "txid", "table", "schema_id")
        .agg(
            F.count("*").alias("n"),
            F.count_if(first).alias("new"),
            F.count_if(F.col("replayed")).alias("replayed"),
            F.count_if(F.col("file") == "").alias("unfiled"),
            F.collect_set("file").alias("files"),
            # distinct events: a re-sent line repeats its event's order number (a size of a
            # set keeps the aggregation in one stage, where a distinct count adds an expand
            # and a second shuffle)
            F.size(F.collect_set("dco")).alias("events"),
            F.min("first_seen").alias("oldest"),
            F.max("source_ts").alias("max_ts"),
            F.max_by("kafka_ts", "source_ts").alias("max_ts_kafka"),
            F.count_if(F.col("op") == "d").alias("deletes"),
            F.max(F.when(F.col("op") == "t", F.struct("commit_lsn", "lsn"))).alias("truncate"),
            F.max(F.when(F.col("snapshot_read"), F.struct("commit_lsn", "lsn"))).alias("snapshot"),
            F.first("value_schema", ignorenulls=True).alias("value_schema"),
            F.first("key_schema", ignorenulls=True).alias("key_schema"),
            # the END records with their per-table counts, in the same pass (txn groups only)
            F.collect_list(
                F.when(is_end, F.struct("txn_id", "txn_commit", "first_seen", "txn_collections"))
            ).alias("ends"),
        )
        .collect()
    )
    s = Summary()
    for r in rows:
        s.lines += r["new"]
        s.replayed += r["replayed"]
        s.files.update(f for f in r["files"] if f)
        if r["bad"]:
            s.bad += r["n"]
            continue
        if r["kind"] != "data":
            s.ends += [
                End(
                    int(e["txn_id"]),
                    c["data_collection"],
                    int(c["event_count"]),
                    utc(e["first_seen"]) or now,
                    int(e["txn_commit"]) if e["txn_commit"] is not None else None,
                )
                for e in r["ends"]
                for c in e["txn_collections"] or []
            ]
            continue
        txid, table = r["txid"], r["table"]
        if txid is not None:
            oldest = utc(r["oldest"]) or now
            g = s.groups.setdefault((txid, table), [0, 0, oldest, 0, 0, set()])
            g[0] += r["events"]
            g[1] += r["n"]
            g[2] = min(g[2], oldest)
            g[3] += r["new"]
            g[4] += r["unfiled"]
            g[5] |= set(r["files"])
        if r["value_schema"] is not None:
            s.schemas[r["schema_id"]] = (r["value_schema"], r["key_schema"])
        w = s.slices.setdefault((table, txid), TableWork())
        w.schema_ids.add(r["schema_id"])
        w.events += r["n"]
        w.deletes += r["deletes"]
        t = r["truncate"]
        w.truncate = later(w.truncate, (int(t["commit_lsn"]), int(t["lsn"])) if t else None)
        r0 = r["snapshot"]
        w.snapshot = later(w.snapshot, (int(r0["commit_lsn"]), int(r0["lsn"])) if r0 else None)
        ts = utc(r["max_ts"])
        w.newest = newer(w.newest, (ts, utc(r["max_ts_kafka"])) if ts is not None else None)
    return s

"""Hold back events of source transactions that are not complete yet (pure transforms).

Debezium's transaction metadata (`provide.transaction.metadata=true`) gives every data event
`transaction.data_collection_order` and every transaction an END record with the number of events
per table. Bronze files are cut by time, so one transaction's events for one table can land in two
micro-batches; applying the first half alone would leave silver half-updated. A (transaction,
table) group is released when all of its events are there, or — so the stream never blocks on a
record that will not come — when it has waited `timeout` (counted in a metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

PENDING_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),  # "data" (a bronze line) or "end" (one table of an END)
        T.StructField("line", T.StringType()),
        T.StructField("txid", T.LongType()),
        T.StructField("collection", T.StringType()),
        T.StructField("expected", T.LongType()),
        T.StructField("first_seen", T.TimestampType()),
    ]
)


@dataclass
class Split:
    ready: DataFrame  # parsed data events to apply now
    pending: DataFrame  # PENDING_SCHEMA rows to keep for the next batch
    groups: DataFrame  # (txid, table, released, timed_out) per transaction group seen


def ends_of(parsed: DataFrame) -> DataFrame:
    """END records → one (txid, collection, expected, first_seen) row per table they touched."""
    return (
        parsed.where((F.col("kind") == "txn") & F.col("reason").isNull() & (F.col("txn_status") == "END"))
        .select("txn_id", "first_seen", F.explode("txn_collections").alias("c"))
        .select(
            F.col("txn_id").alias("txid"),
            F.col("c.data_collection").alias("collection"),
            F.col("c.event_count").alias("expected"),
            "first_seen",
        )
    )


def split(
    parsed: DataFrame, pending_ends: DataFrame, now: datetime, timeout: timedelta, end_ttl: timedelta
) -> Split:
    """`parsed`: envelope rows of new and pending lines (envelope.parse). `pending_ends`: stored END rows."""
    data = parsed.where((F.col("kind") == "data") & F.col("reason").isNull())
    ends = (
        ends_of(parsed)
        .unionByName(pending_ends)
        .groupBy("txid", "collection")
        .agg(F.max("expected").alias("expected"), F.min("first_seen").alias("first_seen"))
    )
    cutoff = F.lit(now - timeout).cast(T.TimestampType())
    groups = (
        data.where(F.col("txid").isNotNull())
        .groupBy("txid", "table")
        .agg(F.count_distinct("dco").alias("n"), F.min("first_seen").alias("oldest"))
        .join(ends.withColumnRenamed("collection", "table"), ["txid", "table"], "left")
        .select(
            "txid",
            "table",
            (F.col("expected").isNotNull() & (F.col("n") >= F.col("expected"))).alias("complete"),
            (F.col("oldest") < cutoff).alias("old"),
        )
        .select(
            "txid",
            "table",
            (F.col("complete") | F.col("old")).alias("released"),
            (~F.col("complete") & F.col("old")).alias("timed_out"),
        )
    )
    released = groups.where("released").select("txid", "table")
    ready = data.where(F.col("txid").isNull()).unionByName(
        data.join(released, ["txid", "table"], "left_semi")
    )
    held = (
        data.where(F.col("txid").isNotNull())
        .join(released, ["txid", "table"], "left_anti")
        .dropDuplicates(["topic", "partition", "offset"])
    )
    done = groups.where("released").select("txid", F.col("table").alias("collection"))
    ttl_cutoff = F.lit(now - end_ttl).cast(T.TimestampType())
    kept_ends = ends.join(done, ["txid", "collection"], "left_anti").where(
        (F.col("expected") > 0) & (F.col("first_seen") >= ttl_cutoff)
    )
    pending = held.select(
        F.lit("data").alias("kind"),
        "line",
        F.lit(None).cast("long").alias("txid"),
        F.lit(None).cast("string").alias("collection"),
        F.lit(None).cast("long").alias("expected"),
        "first_seen",
    ).unionByName(
        kept_ends.select(
            F.lit("end").alias("kind"),
            F.lit(None).cast("string").alias("line"),
            "txid",
            "collection",
            "expected",
            "first_seen",
        )
    )
    return Split(ready, pending, groups)

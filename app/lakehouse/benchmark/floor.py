"""`python -m lakehouse.benchmark.floor`: the floor the benchmark holds silver against.

The simplest CDC job a user would copy from a tutorial: Spark's Kafka source, `foreachBatch`, and
the last event per key MERGEd into one Delta table per topic. None of silver's rules apply: no
transaction boundaries, no TOAST, no contract or quarantine, no tombstones against replays, no
key changes, no types (a row is kept as Debezium's `after` JSON text). It runs with silver's own
`spark-defaults.conf` and trigger, so what it costs is what Spark, Delta and this machine cost.

It writes under `floor/` in the bucket, never under `silver/`; `lakehouse bench --floor` starts it
with silver stopped and deletes its tables afterwards.

Two ways to write (`--write`, from `bench --floor-write`): `merge` (the default, the
tutorial job) and `append`, which appends each batch's last event per key — with its op and
Kafka offset — to the table instead of MERGEing it. The append is the cheapest write a Spark job
can make to Delta, so its freshness bounds what any silver write path on this engine and machine
can reach (merge-on-read included: the latest row per key by offset is a query over the log).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.benchmark import FLOOR_WRITES, FloorWrite
from lakehouse.config.settings import Settings
from lakehouse.pipeline.silver.launch import start

log = logging.getLogger("lakehouse.floor")

#: the part of a Connect JSON envelope the floor reads; `after` stays raw JSON text
EVENT = "payload STRUCT<op STRING, after STRING>"
PREFIX = "floor"


def topics_pattern(s: Settings) -> str:
    """The source tables' topics (not the transaction or heartbeat topics)."""
    return rf"^{s.topic_prefix}\.{s.source_schema}\..+"


def table_of(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


def latest_per_key(records: DataFrame) -> DataFrame:
    """Kafka records (topic, key, value, offset) → the last event per (topic, key): `op`, `row`,
    `offset`.

    A key always lands in the same partition, so its offset orders its events. Kafka tombstones
    (a null value after a delete) are skipped."""
    events = records.where(F.col("value").isNotNull()).select(
        "topic",
        "offset",
        F.get_json_object(F.col("key").cast("string"), "$.payload").alias("key"),
        F.from_json(F.col("value").cast("string"), EVENT).alias("e"),
    )
    event = F.struct(F.col("e.payload.op").alias("op"), F.col("e.payload.after").alias("row"), "offset")
    last = F.max_by(event, "offset")
    return (
        events.where(F.col("key").isNotNull())
        .groupBy("topic", "key")
        .agg(last.alias("last"))
        .select("topic", "key", "last.op", "last.row", "last.offset")
    )


def merge(spark: SparkSession, path: str, rows: DataFrame) -> None:
    """Upsert the last row per key; a delete removes the key. The first batch creates the table."""
    if not DeltaTable.isDeltaTable(spark, path):
        rows.where("op != 'd'").select("key", "row").write.format("delta").save(path)
        return
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("s"), "t.key = s.key")
        .whenMatchedDelete("s.op = 'd'")
        .whenMatchedUpdate(set={"row": "s.row"})
        .whenNotMatchedInsert(condition="s.op != 'd'", values={"key": "s.key", "row": "s.row"})
        .execute()
    )


def append(path: str, rows: DataFrame) -> None:
    """The batch's last event per key appended (deletes too: `op` = d), ordered by `offset`."""
    rows.select("key", "op", "row", "offset").write.format("delta").mode("append").save(path)


def apply(
    spark: SparkSession, root: str, records: DataFrame, batch_id: int, write: FloorWrite = "merge"
) -> None:
    started = time.monotonic()
    latest = latest_per_key(records).persist()
    try:
        topics = [r.topic for r in latest.select("topic").distinct().collect()]
        for topic in topics:
            path, rows = f"{root}/{table_of(topic)}", latest.where(F.col("topic") == topic).drop("topic")
            if write == "append":
                append(path, rows)
            else:
                merge(spark, path, rows)
    finally:
        latest.unpersist()
    done = "appended to" if write == "append" else "merged into"
    log.info("batch %d: %s %d tables in %.2fs", batch_id, done, len(topics), time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lakehouse.benchmark.floor")
    ap.add_argument("--write", choices=FLOOR_WRITES, default="merge")
    write: FloorWrite = ap.parse_args(argv).write
    stop = threading.Event()  # SIGTERM: the query is stopped between calls into Spark, not unwound
    # from inside one (which left `spark.stop()` hanging and the job alive after `bench --floor`)
    setup = start("floor", on_stop=stop.set)
    if setup is None:
        return 2
    s, cfg = setup.settings, setup.cfg
    spark = setup.session("lakehouse-floor")
    root = s.storage.spark(PREFIX)
    try:
        records = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", s.kafka_bootstrap)
            .option("subscribePattern", topics_pattern(s))
            .option("startingOffsets", "latest")
            .option("failOnDataLoss", "true")
            .load()
        )
        query = (
            records.writeStream.foreachBatch(lambda df, i: apply(spark, root, df, i, write))
            .option("checkpointLocation", f"{root}/_checkpoint")
            .trigger(processingTime=cfg.trigger)
            .start()
        )
        log.info("floor job running: %s → %s (%s)", topics_pattern(s), root, write)
        while query.isActive and not stop.is_set():
            query.awaitTermination(1)
        query.stop()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

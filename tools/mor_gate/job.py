"""`python -m tools.mor_gate.job`: silver's job whose batch only appends (the gate's prototype).

Every event the batch would MERGE (or append) into a table — the latest per key, deletes included,
with `_op` and its position — is appended to that table's change log instead; tombstones are not
written (the log holds the deletes) and nothing reads the log back on the write path. The latest
row per key is then a query over the log (the live view), which the gate reads as the floor does:
the marker's highest `seq`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from functools import reduce

from prometheus_client import start_http_server
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config.layout import bronze_glob
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.silver import job
from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.faults import Faults
from lakehouse.pipeline.silver.launch import start
from lakehouse.pipeline.silver.outcome import Ctx, TableOutcome
from lakehouse.pipeline.silver.position import Point
from lakehouse.pipeline.silver.sources import KAFKA, Epoch, kafka_partitions
from lakehouse.pipeline.silver.store import QUARANTINE_SCHEMA, Layout, Store, read_text, write_text
from lakehouse.pipeline.silver.summary import TableWork

#: everything the prototype writes, under the stack's bucket
PREFIX = "proto"
SHARED_LOG = "_log"


class LogStore(Store):
    """Appends to each table's own log (one Delta commit per touched table per batch), or, when
    `shared`, keeps the batch's rows for one commit to a single log of every table (row as JSON)."""

    shared = False
    pending: list[DataFrame]

    def merge(self, source: str, latest: DataFrame, columns: list[str], keys: list[str]) -> None:
        self.proto_append(source, latest, columns)

    def append(self, source: str, latest: DataFrame, columns: list[str]) -> None:
        self.proto_append(source, latest, columns)

    def proto_append(self, source: str, latest: DataFrame, columns: list[str]) -> None:
        if not self.shared:
            latest.select(*columns).write.format("delta").mode("append").save(self.layout.table(source))
            return
        meta = ["_op", "_commit_lsn", "_lsn", "_source_ts", "_ingested_at"]
        row = F.to_json(F.struct(*[F.col(c) for c in columns if c not in meta]))
        with self._creating:
            self.pending.append(latest.select(F.lit(source).alias("table"), *meta, row.alias("row")))

    def commit_shared(self) -> None:
        """The batch's rows of every table in one Delta commit."""
        frames, self.pending = self.pending, []
        if frames:
            rows = reduce(DataFrame.unionByName, frames)
            rows.write.format("delta").mode("append").save(f"{self.layout.root}/{SHARED_LOG}")

    def holds_any(self, source: str, rows: DataFrame, keys: list[str]) -> bool:
        return False

    def add_tombstones(self, rows: DataFrame) -> None:
        return None


class LogProcessor(BatchProcessor):
    def __init__(
        self, spark: SparkSession, layout: Layout, rules: Rules, faults: Faults | None = None
    ) -> None:
        super().__init__(spark, layout, rules, faults)
        self.store = LogStore(spark, layout, self.store.properties)
        self.store.pending = []
        self.held.store = self.store

    def _may_be_outranked(self, table: str, oldest: Point | None) -> bool:
        return False

    def _apply_tables(
        self, work: dict[str, TableWork], ready: DataFrame, ctx: Ctx
    ) -> dict[str, TableOutcome]:
        out = super()._apply_tables(work, ready, ctx)
        if isinstance(self.store, LogStore) and self.store.shared:
            with ctx.ph("merge"):
                self.store.commit_shared()
        return out


def start_at_kafka_end(
    spark: SparkSession, layout: Layout, checkpoint: str, bootstrap: str, pattern: str
) -> None:
    """A new prototype starts where the topics end now (silver's catch-up from bronze is not what
    the gate measures): its first epoch is a Kafka one, as if everything before had been applied."""
    from confluent_kafka import Consumer, TopicPartition

    if read_text(spark, layout.source_state):
        return
    Store(spark, layout).ensure(layout.quarantine, QUARANTINE_SCHEMA)  # what a start makes first
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakehouse-mor-gate"})
    try:
        applied: dict[str, dict[int, int]] = {}
        for topic, partitions in kafka_partitions(bootstrap, pattern).items():
            for p in partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                applied.setdefault(topic, {})[p] = int(high) - 1
    finally:
        consumer.close()
    write_text(spark, layout.source_state, Epoch(1, KAFKA, f"{checkpoint}-{KAFKA}-1", 0, applied).to_json())


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.mor_gate.job")
    ap.add_argument(
        "--log",
        choices=("table", "shared", "product"),
        default="table",
        help="a log per table, or one; or silver's own merge-on-read (silver.json `write`)",
    )
    kind = ap.parse_args().log
    LogStore.shared = kind == "shared"
    setup = start("silver", on_stop=job.request_stop)
    if setup is None:
        return 2
    log = logging.getLogger("lakehouse.silver")
    s, cfg = setup.settings, setup.cfg
    if kind == "product":
        cfg = dataclasses.replace(cfg, merge_on_read=True)
    start_http_server(s.silver_metrics_port, addr=s.addr("silver"))
    spark = setup.session()
    root = s.storage.spark(PREFIX)
    if kind != "product":  # the one change: the batch appends
        job.BatchProcessor = LogProcessor  # type: ignore[attr-defined]
    checkpoint, layout = f"{root}/_checkpoints/silver", Layout(root)
    start_at_kafka_end(spark, layout, checkpoint, s.kafka_bootstrap, setup.topics_regex)
    try:
        job.run(
            spark,
            s.storage.spark(bronze_glob(s.topic_prefix)),
            checkpoint,
            layout,
            rules=dataclasses.replace(setup.rules(), merge_on_read=cfg.merge_on_read),
            cfg=cfg,
            kafka=job.KafkaSource(s.kafka_bootstrap, setup.topics_regex, cfg.max_records_per_trigger),
        )
    except LakehouseError as exc:
        log.error("%s", exc)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

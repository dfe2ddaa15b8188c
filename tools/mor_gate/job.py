"""`python -m tools.mor_gate.job`: silver's job whose batch only appends (the gate's prototype).

Every event the batch would MERGE (or append) into a table — the latest per key, deletes included,
with `_op` and its position — is appended to that table's change log instead; tombstones are not
written (the log holds the deletes) and nothing reads the log back on the write path. The latest
row per key is then a query over the log (the live view), which the gate reads as the floor does:
the marker's highest `seq`.
"""

from __future__ import annotations

import logging
import sys

from prometheus_client import start_http_server
from pyspark.sql import DataFrame, SparkSession

from lakehouse.errors import LakehouseError
from lakehouse.silver import job
from lakehouse.silver.batch import BatchProcessor, Rules
from lakehouse.silver.faults import Faults
from lakehouse.silver.launch import start
from lakehouse.silver.position import Point
from lakehouse.silver.store import Layout, Store

#: everything the prototype writes, under the stack's bucket
PREFIX = "proto"


class LogStore(Store):
    def merge(self, source: str, latest: DataFrame, columns: list[str], keys: list[str]) -> None:
        self.append_log(source, latest, columns)

    def append(self, source: str, latest: DataFrame, columns: list[str]) -> None:
        self.append_log(source, latest, columns)

    def append_log(self, source: str, latest: DataFrame, columns: list[str]) -> None:
        latest.select(*columns).write.format("delta").mode("append").save(self.layout.table(source))

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

    def _may_be_outranked(self, table: str, oldest: Point | None) -> bool:
        return False


def main() -> int:
    setup = start("silver", on_stop=job.request_stop)
    if setup is None:
        return 2
    log = logging.getLogger("lakehouse.silver")
    s, cfg = setup.settings, setup.cfg
    start_http_server(s.silver_metrics_port, addr=s.addr("silver"))
    spark = setup.session()
    root = f"s3a://{s.bucket}/{PREFIX}"
    job.BatchProcessor = LogProcessor  # type: ignore[attr-defined]  # the one change: the batch appends
    try:
        job.run(
            spark,
            f"s3a://{s.bucket}/bronze/{s.topic_prefix}.*/partition=*",
            f"{root}/_checkpoints/silver",
            Layout(root),
            rules=setup.rules(),
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

"""`ops.expectation_results`: per batch, source table and rule, the rows checked and failed.

Written off the micro-batch's path: each batch leaves its tallies here and the status thread
(job.py) appends them every STATUS_EVERY_S in one Delta commit, so the rules add no commit to a
batch. A batch re-run after a crash may leave its tallies twice; rows of batches the table already
holds are left out, so each batch is written once. What a hard kill loses is the last interval's
rows (the Prometheus counters restart from zero at a restart too)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.expectation_checks import Tally
from lakehouse.pipeline.silver.store import EXPECTATION_SCHEMA, Store

log = logging.getLogger("lakehouse.silver")

APP_ID = "silver-expectations"
#: batch_id, checked_at, source_table, rule, action, passed, failed, sample (EXPECTATION_SCHEMA)
Row = tuple[int, datetime, str, str, str, int, int, str | None]


class ExpectationLog:
    def __init__(self, spark: SparkSession, store: Store) -> None:
        self.spark, self.store = spark, store
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        #: the newest batch the table holds (None: not read yet this run)
        self._written: int | None = None

    def add(self, batch_id: int, at: datetime, results: dict[str, list[Tally]]) -> None:
        rows = [
            (batch_id, at, table, t.rule.name, t.rule.action, t.checked - t.failed, t.failed, t.sample)
            for table, tallies in sorted(results.items())
            for t in tallies
            if t.checked
        ]
        if rows:
            with self._lock:
                self._rows += rows

    def flush(self) -> int:
        """Append what the batches left since the last flush; the rows written."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        path = self.store.layout.expectation_results
        try:
            if self._written is None:
                self.store.ensure(path, EXPECTATION_SCHEMA)
                newest = self.spark.read.format("delta").load(path).agg(F.max("batch_id")).collect()[0][0]
                self._written = -1 if newest is None else int(newest)
            fresh = [r for r in rows if r[0] > self._written]
            if fresh:
                newest_batch = max(r[0] for r in fresh)
                df = self.spark.createDataFrame(fresh, EXPECTATION_SCHEMA)
                self.store.append_once(df, path, APP_ID, newest_batch)
                self._written = newest_batch
            return len(fresh)
        except Exception:
            with self._lock:  # kept for the next round
                self._rows = rows + self._rows
            raise

"""Each silver table's Delta version, rows and files, published off the batch's critical path
(metrics and `_state/tables.json`), with the batches' expectation tallies."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.config.layout import as_trino
from lakehouse.pipeline.silver.expectation_log import ExpectationLog
from lakehouse.pipeline.silver.maintenance import Maintenance
from lakehouse.pipeline.silver.metrics import FILES, ROWS, VERSION
from lakehouse.pipeline.silver.store import SOURCE_PROPERTY, Layout, write_text

log = logging.getLogger("lakehouse.silver")

# Delta version / row count per table are refreshed at most this often (they cost a few reads).
STATUS_EVERY_S = 60.0


class StatusWriter:
    """Publishes per-table Delta version and row count (metrics + `_state/tables.json`), from a
    background thread at most every STATUS_EVERY_S: off the micro-batch's critical path."""

    def __init__(
        self, spark: SparkSession, layout: Layout, maintenance: Maintenance, results: ExpectationLog
    ) -> None:
        self.spark, self.layout, self.maintenance = spark, layout, maintenance
        #: the batches' expectation tallies, written from this thread (silver/expectation_log.py)
        self.results = results
        self.tables: dict[str, dict[str, Any]] = {}
        self.touched: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def touch(self, tables: list[str]) -> None:
        with self._lock:
            self.touched.update(tables)

    def start(self) -> None:
        threading.Thread(target=self._loop, name="silver-status", daemon=True).start()

    def stop(self) -> None:
        """The stream ended: no more refreshes (one in flight finishes); the last tallies written."""
        self._stopped.set()
        self._flush_results()

    def _flush_results(self) -> None:
        try:
            self.results.flush()
        except Exception as exc:  # never stops the stream; the rows are kept for the next round
            log.warning("writing expectation results failed (%s); retrying in %.0fs", exc, STATUS_EVERY_S)

    def _loop(self) -> None:
        self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", "silver-status")
        try:  # every table once at start, beside the first micro-batches rather than before them
            self.refresh()
        except Exception as exc:  # the touched tables follow every round
            log.warning("table status refresh failed (%s)", exc)
        while not self._stopped.wait(STATUS_EVERY_S):
            self._flush_results()
            with self._lock:
                tables, self.touched = sorted(self.touched), set()
            if not tables:
                continue
            try:
                self.refresh([self.layout.table(t) for t in tables])
            except Exception as exc:  # a status read must never stop the stream; retried next round
                log.warning("table status refresh failed (%s); retrying in %.0fs", exc, STATUS_EVERY_S)
                self.touch(tables)

    def refresh(self, paths: list[str] | None = None) -> None:
        for path in paths if paths is not None else self.maintenance.table_paths():
            dt = DeltaTable.forPath(self.spark, path)
            detail = dt.detail().collect()[0]
            source = (detail["properties"] or {}).get(SOURCE_PROPERTY) or path.rsplit("/", 2)[-2:]
            source = source if isinstance(source, str) else ".".join(source)
            version = int(dt.history(1).collect()[0]["version"])
            rows = self.spark.read.format("delta").load(path).count()
            self.tables[source] = {
                "source": source,
                "location": as_trino(path),
                "version": version,
                "rows": rows,
            }
            VERSION.labels(source).set(version)
            ROWS.labels(source).set(rows)
            FILES.labels(source).set(int(detail["numFiles"] or 0))
        body = json.dumps(
            {
                "as_of": datetime.now(UTC).isoformat(),
                "tables": sorted(self.tables.values(), key=lambda t: t["source"]),
            }
        )
        write_text(self.spark, self.layout.root + "/_state/tables.json", body)

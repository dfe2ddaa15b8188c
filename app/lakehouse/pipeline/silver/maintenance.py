"""OPTIMIZE / VACUUM / tombstone expiry, on schedule, by the same job.

VACUUM, the tombstone expiry and the OPTIMIZE of the job's own state run between micro-batches
(never concurrent with a batch's writes, so they cannot conflict with the stream). So does the
OPTIMIZE of the tables with merge-on-write, where each batch MERGEs into them. With merge-on-read a
batch writes a table only under the table's lock (schema changes, cuts), so its OPTIMIZE runs off
the freshness path, on the compactor's thread: one table per round, its log folded first, both
under the lock, and the compactor rests after it as after a fold (compaction.py). Run between
batches, a round of every table's fold and OPTIMIZE held the stream up: a 102 s batch at 300
changes/s, every `optimize.interval.s`."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.compaction import Compactor
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.store import Layout, logged_tables, tables_under

log = logging.getLogger("lakehouse.silver")


class Maintenance:
    def __init__(
        self,
        spark: SparkSession,
        layout: Layout,
        cfg: SilverConfig,
        now: datetime,
        compactor: Compactor | None = None,
    ) -> None:
        self.spark, self.layout, self.cfg, self.compactor = spark, layout, cfg, compactor
        self.last_optimize = now
        self.last_vacuum = now
        self.dirty: set[str] = set()
        #: merge-on-read: the tables whose OPTIMIZE is due, for the compactor's thread
        self.due: set[str] = set()
        self._tables = threading.Lock()
        self.runs = {"optimize": 0, "vacuum": 0}
        if compactor is not None:
            compactor.chore = self.optimize_next

    def touched(self, tables: list[str]) -> None:
        with self._tables:
            self.dirty.update(tables)

    def maybe_run(self, now: datetime) -> None:
        """Between micro-batches: what is due (the module's docstring)."""
        if self.cfg.optimize_every.total_seconds() and now - self.last_optimize >= self.cfg.optimize_every:
            with self._tables:
                dirty, self.dirty = self.dirty, set()
                if self.compactor is not None:
                    self.due |= dirty
            if self.compactor is None:
                for table in sorted(dirty):
                    self.optimize(table)
            # the job's own state grows by small appends (tombstones) every batch
            for path in self.state_paths():
                DeltaTable.forPath(self.spark, path).optimize().executeCompaction()
            self.last_optimize = now
        if self.cfg.vacuum_every.total_seconds() and now - self.last_vacuum >= self.cfg.vacuum_every:
            self.vacuum(now)
            self.last_vacuum = now

    def optimize_next(self) -> bool:
        """Merge-on-read, on the compactor's thread: fold and OPTIMIZE the next table whose
        OPTIMIZE is due, under its lock. Whether there was one."""
        assert self.compactor is not None
        with self._tables:
            if not self.due:
                return False
            table = min(self.due)
            self.due.discard(table)
        try:
            with self.compactor.locks.held(table):
                self.compactor.fold(table)
                self.optimize(table)
        except BaseException:
            with self._tables:  # the next round tries again
                self.due.add(table)
            raise
        return True

    def optimize(self, table: str) -> None:
        metrics = DeltaTable.forPath(self.spark, self.layout.table(table)).optimize().executeCompaction()
        log.info("OPTIMIZE %s: %s", table, metrics.select("metrics.numFilesRemoved").first())
        self.runs["optimize"] += 1

    def state_paths(self) -> list[str]:
        return [p for p in (self.layout.tombstones,) if DeltaTable.isDeltaTable(self.spark, p)]

    def vacuum(self, now: datetime) -> None:
        """VACUUM every table, then expire the tombstones older than `tombstone.retention.h` — except
        those of a table that has events in the quarantine.

        A tombstone is what stops an event older than a delete from bringing the deleted key back
        (docs/cdc-semantics.md, rule 2). The quarantine never expires, and `lakehouse quarantine
        replay` applies its events whatever their age: with the tombstone gone, a quarantined insert
        of K replayed after the delete of K had been applied and had expired would resurrect K. So
        while a table has quarantined events its tombstones are kept, all of them: conservative
        (per table, not per key — the quarantine keeps raw lines, and a line it holds may not even
        decode to a key yet) and simple. They expire as usual once the table's quarantine is empty
        (replayed, or cleared), so what is kept is bounded by the deletes made while events wait."""
        for path in self.table_paths():
            DeltaTable.forPath(self.spark, path).vacuum(float(self.cfg.vacuum_retention_h))
            self.runs["vacuum"] += 1
        # the logs and the job's state: not counted as a silver table's run
        for path in [*tables_under(self.spark, self.layout.log_root), *self.state_paths()]:
            DeltaTable.forPath(self.spark, path).vacuum(float(self.cfg.vacuum_retention_h))
        if DeltaTable.isDeltaTable(self.spark, self.layout.tombstones):
            cutoff = now - self.cfg.tombstone_retention
            expired = F.col("deleted_at") < F.lit(cutoff)
            kept = self.quarantined_tables()
            if kept:
                expired = expired & ~F.col("table").isin(kept)
                log.info("tombstones of %s kept: events wait in the quarantine", ", ".join(kept))
            DeltaTable.forPath(self.spark, self.layout.tombstones).delete(expired)
        log.info("VACUUM done (retention %sh)", self.cfg.vacuum_retention_h)

    def quarantined_tables(self) -> list[str]:
        """Source tables with events in the quarantine. Lines of no known table (they did not
        parse) name no tombstones to keep and are left out."""
        if not DeltaTable.isDeltaTable(self.spark, self.layout.quarantine):
            return []
        rows = (
            self.spark.read.format("delta")
            .load(self.layout.quarantine)
            .where(F.col("source_table").isNotNull())
            .select("source_table")
            .distinct()
            .collect()
        )
        return sorted(str(r["source_table"]) for r in rows)

    def table_paths(self) -> list[str]:
        """Every silver table: `<root>/<schema>/<table>` directories holding a _delta_log."""
        return tables_under(self.spark, self.layout.root)

    def logged_tables(self) -> list[str]:
        """The source tables (`schema.table`) that have a change log."""
        return logged_tables(self.spark, self.layout)

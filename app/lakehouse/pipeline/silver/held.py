"""Held-back transactions between batches: their lines, where to read them again, their ENDs.

A transaction whose events have not all arrived (its END record says how many each table has) is
held back. Its lines stay in driver-side memory (a checkpointed DataFrame) from batch to batch;
what is stored is only where they can be read again after a restart — per held (transaction,
table) group, the bronze files its lines are in (`_state/held.json`; lines read from no file are
written under `_state/held/` first) — and the END records not matched yet (`pending-ends.json`).
Each is rewritten only when it changes.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline.silver import envelope
from lakehouse.pipeline.silver.phases import Phases
from lakehouse.pipeline.silver.store import Store, read_text, write_text
from lakehouse.pipeline.silver.summary import Summary, group_key, iso, utc
from lakehouse.pipeline.silver.transactions import Decision, End

log = logging.getLogger("lakehouse.silver")


def _compact(df: DataFrame) -> DataFrame:
    """Held lines in one partition per core. They are kept from batch to batch and read with each
    new batch: kept in the partitions they were found in, every batch would add its input's
    partitions to theirs (8 more tasks per pass and per table for each 128 MB batch of a bulk load)."""
    return df.coalesce(max(1, df.sparkSession.sparkContext.defaultParallelism))


class Held:
    def __init__(self, spark: SparkSession, store: Store, transaction_topic: str) -> None:
        self.spark, self.store, self.transaction_topic = spark, store, transaction_topic
        #: lines of held-back transactions (line, first_seen, file)
        self.lines: DataFrame | None = None
        #: END records whose transactions are not complete yet
        self.ends: list[End] = []
        self._state: dict[str, Any] = {"groups": []}  # as stored (store.held_state)
        #: held lines came from storage this run: the re-run batch may hold them too (drop duplicates once)
        self.reloaded = False

    def load(self) -> None:
        """At start: the END entries, and the held lines read again from the files they are in."""
        text = read_text(self.spark, self.store.layout.pending_ends)
        self.ends = [
            End(
                int(e["txid"]),
                e["collection"],
                int(e["expected"]),
                datetime.fromisoformat(e["first_seen"]),
                int(e["commit"]) if e.get("commit") is not None else None,
            )
            for e in (json.loads(text) if text else [])
        ]
        self._migrate_older()
        state = self.store.held_state() or {"groups": []}
        groups = state["groups"]
        if groups:
            # the held lines are read again from the files they are in, and picked by their group
            oldest = {f"{g['txid']}:{g['table']}": datetime.fromisoformat(g["oldest"]) for g in groups}
            files = sorted({f for g in groups for f in g["files"]})
            raw = self.store.read_lines(files)
            no_ts = F.lit(None).cast("timestamp").alias("first_seen")
            lines = raw.select("line", no_ts, F.lit(False).alias("replayed"), "file")
            parsed = envelope.parse(lines, self.transaction_topic)
            seen = F.create_map(*[c for k, ts in sorted(oldest.items()) for c in (F.lit(k), F.lit(ts))])
            key = group_key()
            held = parsed.where(F.col("txid").isNotNull() & key.isin(sorted(oldest)))
            held = held.select("line", seen[key].cast("timestamp").alias("first_seen"), "file")
            self.lines = _compact(held).localCheckpoint(eager=True)
            self.reloaded = True
            log.info("held-back transactions: %d groups reloaded from %d files", len(groups), len(files))
        self._state = state
        self.store.drop_held_lines({f for g in groups for f in g["files"]})

    def _migrate_older(self) -> None:
        """An older version kept held lines whole in a Delta table (before that, with its END
        entries as rows): they move to `_state/held/`, named by a held state, and the table goes."""
        pending = self.store.older_pending()
        if pending is None:
            return
        now = datetime.now(UTC)
        self.ends += [
            End(int(r["txid"]), r["collection"], int(r["expected"]), utc(r["first_seen"]) or now)
            for r in pending.where("kind = 'end'").collect()
        ]
        lines = pending.where("kind = 'data'").select("line", "first_seen", F.lit(False).alias("replayed"))
        rows = envelope.parse(lines, self.transaction_topic).where(F.col("txid").isNotNull())
        rows = rows.localCheckpoint(eager=True)
        groups = rows.groupBy("txid", "table").agg(F.min("first_seen").alias("oldest")).collect()
        body: dict[str, Any] = {"groups": []}
        if groups:
            path = self.store.write_held_lines(rows, "migrated")
            body["groups"] = [
                {
                    "txid": int(g["txid"]),
                    "table": g["table"],
                    "oldest": iso(g["oldest"], now),
                    "files": [path],
                }
                for g in groups
            ]
        self.store.write_held_state(body)
        self._write_ends(self.ends)
        self.store.drop_older_pending()
        log.info(
            "held-back transaction state migrated (%d groups, %d END entries)", len(groups), len(self.ends)
        )

    def _write_ends(self, ends: list[End]) -> None:
        body = [
            {
                "txid": e.txid,
                "collection": e.collection,
                "expected": e.expected,
                "first_seen": e.first_seen.isoformat(),
                "commit": e.commit,
            }
            for e in ends
        ]
        write_text(self.spark, self.store.layout.pending_ends, json.dumps(body))

    def keep(
        self,
        held: DataFrame,
        decision: Decision,
        summary: Summary,
        *,
        batch_id: int,
        now: datetime,
        ph: Phases,
    ) -> None:
        """After a batch: `held` (its lines of the transactions `decision` holds back) stays in
        memory; the stored state and END entries are rewritten where they changed."""
        stored = ""
        unfiled = sum(g[4] for k, g in summary.groups.items() if k in decision.held)
        if unfiled:
            with ph("hold"):
                stored = self.store.write_held_lines(held.where(F.col("file") == ""), f"batch-{batch_id}")
            held = held.withColumn(
                "file", F.when(F.col("file") == "", F.lit(stored)).otherwise(F.col("file"))
            )
        groups: list[dict[str, Any]] = []
        for txid, table in sorted(decision.held):
            g = summary.groups[(txid, table)]
            files = sorted({f for f in g[5] if f} | ({stored} if g[4] else set()))
            groups.append({"txid": txid, "table": table, "oldest": iso(g[2], now), "files": files})
        state: dict[str, Any] = {"groups": groups}
        with ph("release"):
            if state != self._state:
                self.store.write_held_state(state)
                before = {f for g in self._state["groups"] for f in g["files"]}
                if any(self.store.layout.held_lines_dir(f) for f in before):
                    self.store.drop_held_lines({f for g in groups for f in g["files"]})
            if decision.ends != self.ends:
                self._write_ends(decision.ends)
        lines = None
        if decision.held_lines:
            with ph("held"):
                seen = F.coalesce("first_seen", F.lit(now).cast("timestamp")).alias("first_seen")
                lines = _compact(held.select("line", seen, "file")).localCheckpoint(eager=True)
        self.lines, self.ends, self.reloaded = lines, decision.ends, False
        self._state = state

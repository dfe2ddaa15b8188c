"""A batch's TOAST placeholders filled with the value of the row's newest earlier version
(toast.py's rule), waiting where that version is a change not applied yet, and quarantining what
has no value anywhere."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.pipeline.silver import envelope, toast
from lakehouse.pipeline.silver.outcome import Ctx, TableOutcome, quarantine_rows
from lakehouse.pipeline.silver.position import after_sql
from lakehouse.pipeline.silver.rows import METADATA, raw_lines
from lakehouse.pipeline.silver.store import Store

log = logging.getLogger("lakehouse.silver")
#: fill passes at most: a chain of key changes in one batch (A→B→C) fills one link per pass
MAX_TOAST_PASSES = 8


class ToastFill:
    def __init__(self, store: Store, transaction_topic: str, tombstoned: Callable[[str], bool]) -> None:
        self.store = store
        self.transaction_topic = transaction_topic
        #: whether a table has tombstones (the batch processor's driver state)
        self.tombstoned = tombstoned

    def fill(
        self,
        table: str,
        *,
        good: DataFrame,
        silver: T.StructType,
        keys: list[str],
        events: DataFrame,
        ctx: Ctx,
        out: TableOutcome,
    ) -> tuple[DataFrame, int]:
        """TOAST placeholders → the value of the row's newest earlier version (toast.py). A fill that
        depends on a change not applied yet waits with it: held back with its transaction, or
        quarantined beside it. What has no value anywhere is quarantined."""
        source_cols = [f.name for f in silver.fields if f.name not in METADATA.fieldNames()]
        involved = good.select(*keys).distinct()
        old = good.where("_op = 'd'").select(*keys)
        current = self.store.current(table, only=involved.unionByName(old).distinct())
        # read once: the wait, each fill pass and the outranked check use these rows, and with
        # merge-on-read they are a query over the base and the log, planned and run at every use
        current = current.localCheckpoint(eager=True)
        good = self._wait_for_unapplied(table, good, current, keys, events=events, ctx=ctx, out=out)
        # a chain of key changes in one batch (A→B→C) fills one link per pass
        left = -1
        for _ in range(MAX_TOAST_PASSES):
            good = toast.fill(good, current, keys, [c for c in source_cols if c not in keys])
            good = good.localCheckpoint(eager=True)
            before, left = left, int(good.agg(F.sum(F.size("_unavail"))).collect()[0][0] or 0)
            if left in (0, before):
                break
        missing = good.where(F.size("_unavail") > 0)
        if left:
            # a re-sent event (Debezium replays from its last committed offset after a crash)
            # that silver has moved past needs no value: the MERGE would skip it anyway
            missing = missing.join(self._outranked(table, missing, current, keys), "_rid", "left_anti")
        n = missing.count()
        if n:
            reason = F.concat(
                F.lit("toast: no stored value for unchanged column(s) "), F.array_join("_unavail", ", ")
            )
            out.quarantine.append(
                quarantine_rows(
                    raw_lines(missing, reason, events), F.col("_reason"), ctx.now, ctx.batch_id
                ).localCheckpoint()
            )
        return good.where(F.size("_unavail") == 0), n

    def _unapplied(self, table: str, ctx: Ctx, refused: list[DataFrame]) -> DataFrame | None:
        """Changes of the table not applied by this batch that a fill may depend on — the lines of
        transactions held back, lines this batch refuses (`refused`: quarantine rows), and
        quarantined lines (unless this batch replays them) — as `(_vkey, _vc, _vl)` with the
        Kafka key's text. None when there are none."""
        frames = []
        if ctx.held is not None:
            frames.append(ctx.held.where(F.col("table") == table))
        replaying = ctx.replay is not None and ctx.replay.table in (None, table)
        quarantined = [*refused]
        if not replaying and self.store.exists(self.store.layout.quarantine):
            quarantined.append(self.store.quarantined(table))
        if quarantined:
            raw = reduce(DataFrame.unionByName, quarantined).select(
                F.col("raw").alias("line"),
                F.lit(None).cast("timestamp").alias("first_seen"),
                F.lit(True).alias("replayed"),
            )
            parsed = envelope.parse(raw, self.transaction_topic)
            frames.append(parsed.where(F.col("reason").isNull() & (F.col("kind") == "data")))
        if not frames:
            return None
        versions = reduce(
            DataFrame.unionByName,
            [
                f.select(
                    F.col("key_json").alias("_vkey"),
                    F.col("commit_lsn").alias("_vc"),
                    F.col("lsn").alias("_vl"),
                )
                for f in frames
            ],
        ).localCheckpoint(eager=True)
        return versions if versions.limit(1).count() else None

    def _wait_for_unapplied(
        self,
        table: str,
        good: DataFrame,
        current: DataFrame,
        keys: list[str],
        *,
        events: DataFrame,
        ctx: Ctx,
        out: TableOutcome,
    ) -> DataFrame:
        """Placeholder events whose newest earlier version is a change not applied yet cannot be
        filled now: an event of a transaction waits with it (its transaction is held back too), any
        other goes to quarantine beside it (replay applies both in position order). What waits is
        itself not applied: a later placeholder of the same row waits for it in turn."""
        unapplied = self._unapplied(table, ctx, out.quarantine)
        if unapplied is None:
            return good
        typed = F.struct(*[F.col(k) for k in keys])
        known_versions = good.select(
            typed.alias("_vkey"), F.col("_commit_lsn").alias("_vc"), F.col("_lsn").alias("_vl")
        ).unionByName(
            current.select(
                typed.alias("_vkey"), F.col("_commit_lsn").alias("_vc"), F.col("_lsn").alias("_vl")
            )
        )
        known = toast.newest_before(good, known_versions, keys).withColumnRenamed("_vpos", "_known")
        known = known.localCheckpoint(eager=True)
        pending = unapplied.select(F.struct(F.col("_vkey").alias("_kkey")).alias("_vkey"), "_vc", "_vl")
        txids: set[int] = set()
        waits = good.limit(0).select("_rid")
        for _ in range(MAX_TOAST_PASSES):
            waiting = toast.newest_before(good, pending, ["_kkey"])
            blocked = waiting.join(known, "_rid", "left").where(
                F.col("_known").isNull() | (F.col("_vpos") > F.col("_known"))
            )
            hit = good.join(blocked.select("_rid"), "_rid", "left_semi")
            if txids:
                hit = hit.unionByName(good.where(F.col("txid").isin(sorted(txids))))
            hit = hit.dropDuplicates(["_rid"]).localCheckpoint(eager=True)
            found = hit.count()
            if found == waits.count():
                break
            waits = hit.select("_rid")
            txids |= {
                int(r["txid"])
                for r in hit.where(F.col("txid").isNotNull()).select("txid").distinct().collect()
            }
            pending = pending.unionByName(
                hit.select(
                    F.struct(F.col("_kkey")).alias("_vkey"),
                    F.col("_commit_lsn").alias("_vc"),
                    F.col("_lsn").alias("_vl"),
                )
            )
        if not waits.limit(1).count():
            return good
        out.deferred |= txids
        out.waiting = waits.count()
        lone = good.join(waits, "_rid", "left_semi").where(F.col("txid").isNull())
        if lone.limit(1).count():
            reason = F.lit("toast: waits for an earlier change of its row that is not applied yet")
            out.quarantine.append(
                quarantine_rows(
                    raw_lines(lone, reason, events), F.col("_reason"), ctx.now, ctx.batch_id
                ).localCheckpoint()
            )
            log.warning("%s: placeholder events quarantined beside an earlier change not applied", table)
        if txids:
            log.info(
                "%s: %d transaction(s) held back behind an earlier change not applied", table, len(txids)
            )
        return good.join(waits, "_rid", "left_anti")

    def _outranked(self, table: str, events: DataFrame, current: DataFrame, keys: list[str]) -> DataFrame:
        """`_rid`s of events silver is already past: its row for the key is at the event's
        position or later, or the key was deleted after it (position.py orders both)."""
        same_key = reduce(lambda a, b: a & b, [F.col(f"e.`{k}`") == F.col(f"s.`{k}`") for k in keys])
        by_row = events.alias("e").join(
            current.alias("s"), same_key & ~F.expr(after_sql("e", "s")), "left_semi"
        )
        out = by_row.select("_rid")
        if self.tombstoned(table):
            by_delete = events.alias("e").join(
                self.store.tombstones(table).alias("t"),
                (F.col("e._key") == F.col("t._key")) & F.expr(after_sql("t", "e")),
                "left_semi",
            )
            out = out.unionByName(by_delete.select("_rid"))
        return out.distinct()

"""One micro-batch: bronze lines → quarantine / held back / MERGEd into silver (foreachBatch body)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from . import envelope, toast, transactions
from .contract import decide
from .debezium import UnsupportedField, column_spec, key_columns, row_fields
from .rows import METADATA, decode, key_json, latest_per_key, newer, project
from .store import QUARANTINE_SCHEMA, TOMBSTONE_SCHEMA, Layout, Store

log = logging.getLogger("lakehouse.silver")
MAX_TOAST_PASSES = 8


@dataclass(frozen=True)
class Rules:
    transaction_topic: str
    transaction_timeout: timedelta = timedelta(minutes=5)
    end_ttl: timedelta = timedelta(minutes=30)
    #: `schema.table.column` → "text" (spark_streaming/silver.json `column.overrides`)
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Replay:
    """Quarantined events to apply again: those of one source table, or all when `table` is None."""

    table: str | None


@dataclass
class BatchResult:
    batch_id: int
    lines: int = 0
    applied: Counter[str] = field(default_factory=Counter)  # events applied per table
    quarantined: Counter[str] = field(default_factory=Counter)  # per reason kind
    schema_rejections: Counter[str] = field(default_factory=Counter)  # per table
    schema_changes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, kind)
    pending: int = 0
    replayed: int = 0  # quarantined lines applied again (`lakehouse quarantine replay`)
    timed_out_groups: int = 0
    truncates: int = 0
    tables: list[str] = field(default_factory=list)
    max_source_ts: datetime | None = None


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].split(" ", 1)[0] if reason else "unknown"


def _quarantine_rows(df: DataFrame, reason: Column, now: datetime, batch_id: int) -> DataFrame:
    return df.select(
        F.col("table").alias("source_table"),
        "topic",
        "partition",
        "offset",
        reason.alias("reason"),
        F.col("line").alias("raw"),
        F.lit(now).cast("timestamp").alias("quarantined_at"),
        F.lit(batch_id).cast("long").alias("batch_id"),
    )


class BatchProcessor:
    def __init__(self, spark: SparkSession, layout: Layout, rules: Rules) -> None:
        self.spark = spark
        self.store = Store(spark, layout)
        self.rules = rules
        self._schemas: dict[str, tuple[T.StructType | None, list[str]]] = {}
        self._pending_empty = False

    def _schema(self, table: str, refresh: bool = False) -> tuple[T.StructType | None, list[str]]:
        if refresh or table not in self._schemas or self._schemas[table][0] is None:
            self._schemas[table] = self.store.schema(table)
        return self._schemas[table]

    def process(
        self, lines: DataFrame, batch_id: int, now: datetime | None = None, replay: Replay | None = None
    ) -> BatchResult:
        """Apply one micro-batch of bronze `lines(value)`, with the quarantined lines of `replay`
        (`lakehouse quarantine replay`): the quarantine rows they came from are removed once the
        batch is applied; those still refused are quarantined again by this batch."""
        now = now or datetime.now(UTC)
        result = BatchResult(batch_id)
        ts = F.lit(now).cast("timestamp")
        if self._pending_empty:  # nothing was held back last batch: skip reading the state table
            pending = self.spark.createDataFrame([], transactions.PENDING_SCHEMA)
        else:
            pending = self.store.pending().cache()
        no = F.lit(False).alias("replayed")
        new = lines.select(F.col("value").alias("line"), ts.alias("first_seen"), no)
        held_lines = pending.where("kind = 'data'").select("line", "first_seen", no)
        inputs = new.unionByName(held_lines)
        if replay is not None:
            again = self.store.quarantined(replay.table).select(
                F.col("raw").alias("line"), ts.alias("first_seen"), F.lit(True).alias("replayed")
            )
            inputs = inputs.unionByName(again)
        parsed = envelope.parse(inputs, self.rules.transaction_topic).cache()
        quarantine: list[DataFrame] = []
        try:
            first = F.col("first_seen") == ts
            stats = parsed.agg(
                F.count_if(first & ~F.col("replayed")).alias("lines"),
                F.count_if(F.col("replayed")).alias("replayed"),
                F.count_if(F.col("reason").isNotNull()).alias("bad"),
            ).collect()[0]
            result.lines = int(stats["lines"])
            result.replayed = int(stats["replayed"])
            if stats["bad"]:
                quarantine.append(
                    _quarantine_rows(
                        parsed.where(F.col("reason").isNotNull()), F.col("reason"), now, batch_id
                    )
                )
            pending_ends = pending.where("kind = 'end'").select(
                "txid", "collection", "expected", "first_seen"
            )
            split = transactions.split(
                parsed, pending_ends, now, self.rules.transaction_timeout, self.rules.end_ttl
            )
            ready = split.ready.dropDuplicates(["topic", "partition", "offset"]).cache()
            new_pending = split.pending.localCheckpoint(eager=True)
            held = new_pending.agg(
                F.count("*").alias("all"), F.count_if(F.col("kind") == "data").alias("data")
            ).collect()[0]
            result.pending = int(held["data"])
            result.timed_out_groups = (
                split.groups.where("timed_out").count() if held["all"] or stats["lines"] else 0
            )
            try:
                per_table = (
                    ready.groupBy("table").agg(F.max("source_ts").alias("ts")).orderBy("table").collect()
                )
                for row in per_table:
                    table = row["table"]
                    quarantine += self._apply_table(
                        table, ready.where(F.col("table") == table), now, batch_id, result
                    )
                result.max_source_ts = max((r["ts"] for r in per_table if r["ts"] is not None), default=None)
                if quarantine:
                    bad = reduce(DataFrame.unionByName, quarantine).localCheckpoint(eager=True)
                    for q in bad.groupBy("reason").count().collect():
                        result.quarantined[_reason_kind(q["reason"])] += q["count"]
                    if result.quarantined:
                        self.store.ensure(self.store.layout.quarantine, QUARANTINE_SCHEMA)
                        self.store.append_once(
                            bad, self.store.layout.quarantine, "silver-quarantine", batch_id
                        )
                if replay is not None:
                    self.store.clear_quarantine(replay.table, batch_id)
                empty = held["all"] == 0
                if not (empty and self._pending_empty):
                    self.store.overwrite_once(
                        new_pending, self.store.layout.pending, "silver-pending", batch_id
                    )
                self._pending_empty = empty
            finally:
                ready.unpersist()
        finally:
            parsed.unpersist()
            pending.unpersist()
        return result

    # ---- one table
    def _versions(
        self, events: DataFrame
    ) -> tuple[list[tuple[str, dict[str, Any], dict[str, Any] | None]], tuple[int, int] | None]:
        """The table's distinct schema versions, and the position of its latest TRUNCATE (one job)."""
        info = events.select(
            F.when(F.col("op") == "t", F.lit("t")).otherwise(F.sha2("value_schema", 256)).alias("v"),
            "value_schema",
            "key_schema",
            "commit_lsn",
            "lsn",
        )
        w = Window.partitionBy("v").orderBy(F.col("commit_lsn").desc(), F.col("lsn").desc())
        rows = info.withColumn("_n", F.row_number().over(w)).where("_n = 1").collect()
        out = []
        truncate_at = None
        for r in rows:
            if r["v"] == "t":
                truncate_at = (int(r["commit_lsn"]), int(r["lsn"]))
                continue
            key = json.loads(r["key_schema"]) if r["key_schema"] else None
            out.append((r["v"], json.loads(r["value_schema"]), key))
        return out, truncate_at

    def _apply_table(
        self, table: str, events: DataFrame, now: datetime, batch_id: int, result: BatchResult
    ) -> list[DataFrame]:
        quarantine: list[DataFrame] = []
        silver, silver_keys = self._schema(table)
        decoded: list[tuple[DataFrame, list[str]]] = []
        versioned = events.withColumn("_v", F.sha2("value_schema", 256))
        versions, truncate_pos = self._versions(events)
        for version, value_schema, key_schema in versions:
            mine = versioned.where(F.col("_v") == version)
            try:
                specs = [
                    column_spec(f, self.rules.overrides.get(f"{table}.{f.get('field')}"))
                    for f in row_fields(value_schema)
                ]
                keys = key_columns(key_schema or {})
            except UnsupportedField as exc:
                quarantine.append(_quarantine_rows(mine, F.lit(f"schema: {exc}"), now, batch_id))
                result.schema_rejections[table] += 1
                continue
            decision = decide(silver, specs, keys, silver_keys, table)
            if not decision.ok:
                reason = "schema: " + "; ".join(decision.rejected)
                log.warning("%s: events quarantined, %s", table, reason)
                quarantine.append(
                    _quarantine_rows(mine.where(F.col("op") != "t"), F.lit(reason), now, batch_id)
                )
                result.schema_rejections[table] += 1
                continue
            if silver is None:
                self.store.create(table, specs, keys)
                result.schema_changes[(table, "create")] += 1
                log.info("%s: created silver table %s", table, self.store.layout.table(table))
            elif decision.add:
                self.store.add_columns(table, decision.add)
                result.schema_changes[(table, "add_columns")] += 1
                log.info("%s: added column(s) %s", table, ", ".join(s.name for s in decision.add))
            if decision.widen:
                self.store.widen(table, decision.widen)
                result.schema_changes[(table, "widen")] += 1
                log.info("%s: widened %s", table, ", ".join(n for n, _ in decision.widen))
            if decision.to_text:
                self.store.to_text(table, decision.to_text)
                result.schema_changes[(table, "to_text")] += 1
                log.info("%s: column(s) %s now stored as text", table, ", ".join(decision.to_text))
            if silver is None or decision.add or decision.widen or decision.to_text:
                silver, silver_keys = self._schema(table, refresh=True)
            decoded.append((decode(mine.where(F.col("op") != "t"), specs, keys), keys))
        truncate_at = self._truncate(table, truncate_pos, now)
        if truncate_at is not None:
            result.truncates += 1
        if silver is None or not decoded:
            return quarantine
        ingested = F.lit(now).cast("timestamp")
        rows = reduce(DataFrame.unionByName, [project(d, silver, ingested) for d, _ in decoded])
        if truncate_at is not None:
            rows = rows.where(
                (F.col("_commit_lsn") > truncate_at[0])
                | ((F.col("_commit_lsn") == truncate_at[0]) & (F.col("_lsn") > truncate_at[1]))
            )
        rows = rows.cache()
        try:
            counts = rows.agg(
                F.count("*").alias("all"),
                F.count_if(F.size("_errors") > 0).alias("bad"),
                F.count_if((F.size("_errors") == 0) & (F.size("_unavail") > 0)).alias("toast"),
            ).collect()[0]
            if counts["bad"]:
                errors = rows.where(F.size("_errors") > 0)
                quarantine.append(
                    _quarantine_rows(errors, F.array_join("_errors", "; "), now, batch_id).localCheckpoint()
                )
            good = rows.where(F.size("_errors") == 0)
            keys = silver_keys
            source_cols = [f.name for f in silver.fields if f.name not in METADATA.fieldNames()]
            toast_missing = 0
            if counts["toast"]:
                involved = good.select(*keys).distinct()
                old = good.where("_op = 'd'").select(*keys)
                current = (
                    self.store.table(table)
                    .toDF()
                    .join(involved.unionByName(old).distinct(), keys, "left_semi")
                )
                # a chain of key changes in one batch (A→B→C) fills one link per pass
                for _ in range(MAX_TOAST_PASSES):
                    good = toast.fill(good, current, keys, [c for c in source_cols if c not in keys])
                    good = good.localCheckpoint(eager=True)
                    if not good.where(F.size("_unavail") > 0).limit(1).count():
                        break
                missing = good.where(F.size("_unavail") > 0)
                toast_missing = missing.count()
                quarantine.append(
                    _quarantine_rows(
                        missing,
                        F.concat(
                            F.lit("toast: no stored value for unchanged column(s) "),
                            F.array_join("_unavail", ", "),
                        ),
                        now,
                        batch_id,
                    ).localCheckpoint()
                )
                good = good.where(F.size("_unavail") == 0)
            latest = latest_per_key(good, keys).localCheckpoint(eager=True)
            result.applied[table] += int(counts["all"] - counts["bad"]) - toast_missing
            self._merge(table, latest, silver, keys, now)
            result.tables.append(table)
        finally:
            rows.unpersist()
        return quarantine

    def _truncate(self, table: str, pos: tuple[int, int] | None, now: datetime) -> tuple[int, int] | None:
        """TRUNCATE: delete every silver row older than it, leaving tombstones. Returns its position."""
        if pos is None or not self.store.exists(self.store.layout.table(table)):
            return pos
        target = self.store.table(table)
        _, keys = self.store.schema(table)
        older = f"(_commit_lsn < {pos[0]} OR (_commit_lsn = {pos[0]} AND _lsn < {pos[1]}))"
        gone = (
            target.toDF()
            .where(older)
            .select(
                F.lit(table).alias("table"),
                key_json(keys).alias("_key"),
                F.lit(pos[0]).cast("long").alias("_commit_lsn"),
                F.lit(pos[1]).cast("long").alias("_lsn"),
                F.lit(now).cast("timestamp").alias("deleted_at"),
            )
        )
        self._tombstone(gone.localCheckpoint(eager=True))
        target.delete(older)
        log.info("%s: truncated at %s", table, pos)
        return pos

    def _tombstone(self, rows: DataFrame) -> None:
        """Upsert delete markers (newer wins); a newer insert/update removes the marker."""
        self.store.ensure(self.store.layout.tombstones, TOMBSTONE_SCHEMA)
        from delta.tables import DeltaTable

        t = DeltaTable.forPath(self.spark, self.store.layout.tombstones)
        (
            t.alias("t")
            .merge(rows.alias("s"), "t.table = s.table AND t._key = s._key")
            .whenMatchedUpdateAll(condition=newer("s", "t"))
            .whenNotMatchedInsertAll()
            .execute()
        )

    def _merge(
        self, table: str, latest: DataFrame, silver: T.StructType, keys: list[str], now: datetime
    ) -> None:
        store = self.store
        tombs = store.read(store.layout.tombstones, TOMBSTONE_SCHEMA).where(F.col("table") == table)
        # a delete we already applied outranks any *older* event for the key (replays cannot
        # resurrect). Not an event at the tombstone's own position: that is the delete itself,
        # replayed after a crash between the tombstone commit and the MERGE below — it must apply.
        alive = latest.alias("e").join(
            tombs.alias("t"),
            (F.col("e._key") == F.col("t._key")) & F.expr(newer("t", "e")),
            "left_anti",
        )
        alive = alive.localCheckpoint(eager=True)
        deletes = alive.where("_op = 'd'").select(
            F.lit(table).alias("table"),
            "_key",
            "_commit_lsn",
            "_lsn",
            F.lit(now).cast("timestamp").alias("deleted_at"),
        )
        if not deletes.isEmpty():
            self._tombstone(deletes)
        cols = [f.name for f in silver.fields]
        on = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in keys)
        values: dict[str, str | Column] = {_q(c): f"s.{_q(c)}" for c in cols}
        (
            store.table(table)
            .alias("t")
            .merge(alive.select(*cols).alias("s"), on)
            .whenMatchedDelete(condition=f"s._op = 'd' AND {newer('s', 't')}")
            .whenMatchedUpdate(condition=f"s._op <> 'd' AND {newer('s', 't')}", set=values)
            .whenNotMatchedInsert(condition="s._op <> 'd'", values=values)
            .execute()
        )


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"

"""One micro-batch: bronze lines → quarantine / held back / into silver (foreachBatch body): appended
to each table's change log (merge-on-read), or MERGEd into the table (merge-on-write).

What a batch costs (docs/design.md, "The lean batch"):
1. one pass parses the lines into slim rows (the Connect schema text becomes a `schema_id`) and
   summarises them per (transaction, table) — a few rows, collected to the driver;
2. the driver decides which transactions are complete (transactions.decide) and resolves each
   new schema id once;
3. per touched table — concurrently, each in its own scheduler pool — one pass decodes and counts
   the table's events and one MERGE applies the latest event per key (an append when the table was
   created by this batch); merge-on-read appends them to the table's change log instead, and its
   deletes' tombstones are the compactor's to write (compaction.py). Untouched tables cost nothing.
State — held-back transactions (held.py), which tables have tombstones, schemas — lives in driver
memory, is loaded once at start and written only when it changes. Elsewhere: the summary
(summary.py), transactions (transactions.py), decoding (rows.py, debezium.py), TOAST fills
(toast_fill.py), the writes (store.py), what a batch reports (outcome.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.pipeline.silver import envelope
from lakehouse.pipeline.silver.compaction import TableLocks
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.contract import Decision as SchemaDecision
from lakehouse.pipeline.silver.contract import decide
from lakehouse.pipeline.silver.debezium import (
    ColumnSpec,
    UnsupportedField,
    column_spec,
    key_columns,
    row_fields,
)
from lakehouse.pipeline.silver.expectation_checks import (
    ExpectationFailed,
    Tally,
    added,
    analyse,
    expect,
    read_tallies,
    tallies,
)
from lakehouse.pipeline.silver.expectations import Expectations, Rule
from lakehouse.pipeline.silver.faults import Faults
from lakehouse.pipeline.silver.held import Held
from lakehouse.pipeline.silver.outcome import (
    BatchResult,
    Ctx,
    Replay,
    TableOutcome,
    quarantine_rows,
    reason_kind,
)
from lakehouse.pipeline.silver.phases import Phases
from lakehouse.pipeline.silver.position import Point, after_point, after_sql, point, position
from lakehouse.pipeline.silver.rows import METADATA, decode, key_json, latest_per_key, project, raw_lines
from lakehouse.pipeline.silver.store import Layout, Store, table_properties, tombstone_rows
from lakehouse.pipeline.silver.summary import Summary, TableWork, group_key, later, newer, summarise
from lakehouse.pipeline.silver.toast_fill import ToastFill
from lakehouse.pipeline.silver.transactions import Decision, Group
from lakehouse.pipeline.silver.transactions import decide as decide_transactions

log = logging.getLogger("lakehouse.silver")
#: a row that had TOASTed values to fill when the rules first ran (they are checked after the fill)
TOASTED = "_toasted"
#: tables merged at once (each in its own FAIR scheduler pool)
TABLE_WORKERS = 4


@dataclass(frozen=True)
class Rules:
    transaction_topic: str
    transaction_timeout: timedelta = timedelta(minutes=5)
    end_ttl: timedelta = timedelta(minutes=30)
    #: `schema.table.column` → "text" (spark_streaming/silver.json `column.overrides`)
    overrides: Mapping[str, str] = field(default_factory=dict)
    #: silver tables written with Delta deletion vectors (silver.json `deletion.vectors`)
    deletion_vectors: bool = False
    #: data-quality rules on silver rows (spark_streaming/expectations.yml)
    expectations: Expectations | None = None
    #: batches append to each table's change log instead of MERGEing (silver.json `write`)
    merge_on_read: bool = False

    @classmethod
    def from_config(
        cls, cfg: SilverConfig, topic_prefix: str, expectations: Expectations | None = None
    ) -> Rules:
        """The job's rules: silver.json's knobs, transactions from `<topic_prefix>.transaction`,
        and the expectations, if any."""
        return cls(
            f"{topic_prefix}.transaction",
            cfg.transaction_timeout,
            cfg.end_ttl,
            cfg.column_overrides,
            cfg.deletion_vectors,
            expectations,
            cfg.merge_on_read,
        )

    def expectations_of(self, table: str) -> tuple[Rule, ...]:
        return self.expectations.of(table) if self.expectations is not None else ()


class BatchProcessor:
    def __init__(
        self, spark: SparkSession, layout: Layout, rules: Rules, faults: Faults | None = None
    ) -> None:
        self.spark = spark
        self.store = Store(spark, layout, table_properties(rules.deletion_vectors), rules.merge_on_read)
        #: held by what writes a table's base and log together (schema changes, cuts) and by the
        #: compactor's folds (compaction.py)
        self.locks = TableLocks()
        self.rules = rules
        self.faults = faults or Faults()
        self._schemas: dict[str, tuple[T.StructType | None, list[str]]] = {}  # silver, per table
        self._versions: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}  # schema_id →
        self._loaded = False
        self.held = Held(spark, self.store, rules.transaction_topic)
        self.toast = ToastFill(self.store, rules.transaction_topic, lambda table: table in self._tombstoned)
        self._tombstoned: set[str] = set()
        #: (table, silver schema) pairs whose expectations Spark's analyser accepted
        self._analysed: set[tuple[str, str]] = set()
        #: per tombstoned table, the newest tombstone's position (absent: not known, so check)
        self._newest_tombstone: dict[str, Point] = {}
        #: per table, the blocking snapshot whose reads silver has already made replace the table
        self._snapshots: dict[str, Point] = {}
        #: per table, its latest cut (TRUNCATE or snapshot): every event at or before it is dropped
        self._cuts: dict[str, Point] = {}

    # ---- driver state
    def _load_state(self) -> None:
        """Once per run: held-back transactions and the tables that have tombstones."""
        if self._loaded:
            return
        self.held.load()
        self._newest_tombstone, self._cuts = self.store.newest_tombstones()
        self._tombstoned = set(self._newest_tombstone)
        self._loaded = True

    def _schema(self, table: str, refresh: bool = False) -> tuple[T.StructType | None, list[str]]:
        if refresh or table not in self._schemas or self._schemas[table][0] is None:
            self._schemas[table] = self.store.schema(table)
        return self._schemas[table]

    # ---- the batch
    def process(
        self, lines: DataFrame, batch_id: int, now: datetime | None = None, replay: Replay | None = None
    ) -> BatchResult:
        """Apply one micro-batch of bronze `lines(value)`, with the quarantined lines of `replay`
        (`lakehouse quarantine replay`): the quarantine rows they came from are removed once the
        batch is applied; those still refused are quarantined again by this batch."""
        now = now or datetime.now(UTC)
        result = BatchResult(batch_id)
        ph = Phases()
        result.phases = ph.seconds
        with ph("state"):
            self._load_state()
        # a line first seen in this batch has no `first_seen` yet (NULL, read as `now`): the clock
        # stays out of the parse and the summary, whose generated code Spark then compiles once
        # per run instead of once per batch (a timestamp literal is inlined into the code)
        unseen = F.lit(None).cast("timestamp")
        no = F.lit(False).alias("replayed")
        # each line keeps the file it was read from: a held line is read again from there after a
        # restart ("" for lines of an in-memory batch: those are stored when they are held)
        inputs = lines.select(
            F.col("value").alias("line"), unseen.alias("first_seen"), no, F.input_file_name().alias("file")
        )
        if self.held.lines is not None:
            inputs = inputs.unionByName(self.held.lines.select("line", "first_seen", no, "file"))
        if replay is not None:
            quarantined = self.store.quarantined(replay.table)
            rekey = self._keys_now(quarantined)
            again = quarantined.select(
                F.col("raw").alias("line"),
                unseen.alias("first_seen"),
                F.lit(True).alias("replayed"),
                F.lit("").alias("file"),
            )
            inputs = inputs.unionByName(again)
        parsed = envelope.parse(inputs, self.rules.transaction_topic, rekey if replay is not None else None)
        # the schema text stays only on events whose schema id the driver has not seen yet (the
        # first batch of a run, a DDL change): the summary picks it up once per id
        known = F.col("schema_id").isin(sorted(self._versions)) if self._versions else F.lit(False)
        parsed = parsed.withColumns({c: F.when(~known, F.col(c)) for c in ("value_schema", "key_schema")})
        if self.held.reloaded:  # after a restart, held lines can also be in the re-run batch
            # (a line that did not parse has no id: each one stays, none is a duplicate of another)
            placed = F.col("topic").isNotNull()
            parsed = (
                parsed.where(placed)
                .dropDuplicates(["topic", "partition", "offset"])
                .unionByName(parsed.where(~placed))
            )
        parsed = parsed.cache()
        try:
            with ph("summary"):
                summary = summarise(parsed, now)
            result.lines, result.replayed, result.files = summary.lines, summary.replayed, summary.files
            groups = [Group(t, tb, g[0], g[1], g[2]) for (t, tb), g in summary.groups.items()]
            decision = decide_transactions(
                groups, self.held.ends + summary.ends, now, self.rules.transaction_timeout, self.rules.end_ttl
            )
            result.pending, result.timed_out_groups = decision.held_lines, decision.timed_out
            work: dict[str, TableWork] = {}
            for (table, txid), w in summary.slices.items():
                if txid is not None and (txid, table) in decision.held:
                    continue
                if txid is not None and txid in decision.commits and w.truncate is not None:
                    w.truncate = (decision.commits[txid], w.truncate[1])
                t = work.setdefault(table, TableWork())
                t.schema_ids |= w.schema_ids
                t.events += w.events
                t.deletes += w.deletes
                t.truncate = later(t.truncate, w.truncate)
                t.snapshot = later(t.snapshot, w.snapshot)
                t.newest = newer(t.newest, w.newest)
            data_ok = (F.col("kind") == "data") & F.col("reason").isNull()
            is_held = F.lit(False)
            if decision.held:
                held_keys = sorted(f"{txid}:{table}" for txid, table in decision.held)
                is_held = F.col("txid").isNotNull() & group_key().isin(held_keys)
            ready = self._with_commits(parsed.where(data_ok & ~is_held), decision, summary)
            for schema_id, (value_schema, key_schema) in summary.schemas.items():
                self._versions.setdefault(
                    schema_id, (json.loads(value_schema), json.loads(key_schema) if key_schema else None)
                )
            held = (
                self._with_commits(parsed.where(data_ok & is_held), decision, summary)
                if decision.held
                else None
            )
            ctx = Ctx(batch_id, now, ph, held, replay)
            outcomes = self._apply_tables(work, ready, ctx)
            for table, o in outcomes.items():
                for txid in sorted(o.deferred):
                    decision.hold_again((txid, table), summary.groups[(txid, table)][1])
            if decision.held:
                held_keys = sorted(f"{txid}:{table}" for txid, table in decision.held)
                is_held = F.col("txid").isNotNull() & group_key().isin(held_keys)
            result.pending = decision.held_lines
            quarantine: list[DataFrame] = []
            if summary.bad:
                quarantine.append(
                    quarantine_rows(parsed.where(F.col("reason").isNotNull()), F.col("reason"), now, batch_id)
                )
            for table in sorted(outcomes):
                o = outcomes[table]
                quarantine += o.quarantine
                if o.applied:
                    result.applied[table] += o.applied
                result.schema_rejections[table] += o.rejections
                for kind, n in o.changes.items():
                    result.schema_changes[(table, kind)] += n
                result.truncates += int(o.truncated)
                if o.written:
                    result.tables.append(table)
                if o.appended:
                    result.appended.append(table)
                if o.logged:
                    result.logged[table] = o.logged
                if o.tombstone_checked:
                    result.tombstone_checks.append(table)
                if o.expectations:
                    result.expectations[table] = o.expectations
            result.schema_rejections = +result.schema_rejections
            newest = None
            for w in work.values():
                newest = newer(newest, w.newest)
            result.max_source_ts, result.max_source_kafka_ts = newest or (None, None)
            if quarantine:
                with ph("quarantine"):
                    self._quarantine(quarantine, batch_id, result)
                self.faults.reach("after-quarantine", work=bool(result.quarantined))
            if replay is not None:
                self.store.clear_quarantine(replay.table, batch_id)
            self.held.keep(
                parsed.where(data_ok & is_held), decision, summary, batch_id=batch_id, now=now, ph=ph
            )
            self.faults.reach(
                "after-pending", work=bool(result.applied or result.quarantined or result.truncates)
            )
        finally:
            parsed.unpersist()
        return result

    def _keys_now(self, quarantined: DataFrame) -> dict[str, list[str]]:
        """Per table with events quarantined for lacking a key, the primary key silver's table has
        now (rule 10's remedy); a table silver has not created yet stays refused."""
        keyless = quarantined.where(F.col("reason") == envelope.MISSING_KEY).select("source_table").distinct()
        return {t: k for r in keyless.collect() if (k := self._schema(t := r["source_table"])[1])}

    def _with_commits(self, ready: DataFrame, decision: Decision, summary: Summary) -> DataFrame:
        """Each released event's commit position becomes its transaction's real commit LSN, from
        the END record (docs/cdc-semantics.md, "Ordering"), looked up in a map of the batch's
        transactions. The map is one SQL literal, constant-folded into a single value: no Spark
        job per table to broadcast a lookup table (built by a Python worker), and generated code
        that does not change from batch to batch."""
        txids = sorted({t for _, t in summary.slices if t is not None and t in decision.commits})
        if not txids:
            return ready
        commits = F.expr("map(" + ", ".join(f"{int(t)}L, {int(decision.commits[t])}L" for t in txids) + ")")
        end_commit = F.try_element_at(commits, F.col("txid"))
        return ready.withColumn("commit_lsn", F.coalesce(end_commit, "commit_lsn"))

    def _apply_tables(
        self, work: dict[str, TableWork], ready: DataFrame, ctx: Ctx
    ) -> dict[str, TableOutcome]:
        tables = sorted(work)
        if len(tables) <= 1:
            return {t: self._apply_table(t, work[t], ready, ctx) for t in tables}

        def one(table: str) -> TableOutcome:
            # its own FAIR pool: the tables of a batch share the cores instead of queueing
            self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", "silver-" + table)
            try:
                return self._apply_table(table, work[table], ready, ctx)
            finally:
                self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]

        with ThreadPoolExecutor(max_workers=min(TABLE_WORKERS, len(tables))) as pool:
            futures = {t: pool.submit(one, t) for t in tables}
            return {t: f.result() for t, f in futures.items()}

    def _quarantine(self, frames: list[DataFrame], batch_id: int, result: BatchResult) -> None:
        bad = reduce(DataFrame.unionByName, frames).localCheckpoint(eager=True)
        for q in bad.groupBy("reason").count().collect():
            result.quarantined[reason_kind(q["reason"])] += q["count"]
        if result.quarantined:
            self.store.add_quarantine(bad, batch_id)

    # ---- one table
    def _apply_table(self, table: str, work: TableWork, ready: DataFrame, ctx: Ctx) -> TableOutcome:
        out = TableOutcome()
        now, batch_id, ph = ctx.now, ctx.batch_id, ctx.ph
        with ph("schema"):
            decoded, silver, created = self._decode_versions(table, work, ready, ctx=ctx, out=out)
        with ph("truncate"):
            snapshot_cut = self._snapshot_cut(table, work.snapshot)
            cut = later(work.truncate, snapshot_cut)
            if cut is not None:
                # a table this batch created holds nothing to cut yet (the batch's own older
                # events are left out below), but the cut is recorded all the same; a TRUNCATE
                # counts as one
                self._truncate(table, cut, now, batch_id)
                out.truncated = not (created and cut == snapshot_cut)
        cut = self._cuts.get(table)
        if silver is None or not decoded:
            return out
        silver_keys = self._schema(table)[1]
        ingested = F.lit(now).cast("timestamp")
        events = ready.where(F.col("table") == table)  # where a quarantined row's line is found again
        rows = reduce(DataFrame.unionByName, [project(d, silver, ingested) for d in decoded])
        if cut is not None:
            rows = rows.where(after_point(*cut))
        rules = self._rules_of(table, silver)
        source_cols = [f.name for f in silver.fields if f.name not in METADATA.fieldNames()]
        if rules:  # before the count below: a `drop` failure is counted and quarantined as bad
            rows = expect(rows, rules)
        rows = rows.cache()
        try:
            with ph("decode"):
                counts = rows.agg(
                    F.count("*").alias("all"),
                    F.count_if(F.size("_errors") > 0).alias("bad"),
                    F.count_if((F.size("_errors") == 0) & (F.size("_unavail") > 0)).alias("toast"),
                    F.count_if(F.col("_op").isin("u", "d")).alias("changes"),
                    F.min(position()).alias("oldest"),
                    F.max(F.when(F.col("_op") == "d", position())).alias("newest_delete"),
                    *tallies(rules, source_cols),
                ).collect()[0]
            if rules:
                out.expectations = read_tallies(rules, counts)
                self._stop_on_fail(table, out.expectations)
            if counts["bad"]:
                errors = raw_lines(rows.where(F.size("_errors") > 0), F.array_join("_errors", "; "), events)
                out.quarantine.append(
                    quarantine_rows(errors, F.col("_reason"), now, batch_id).localCheckpoint()
                )
            good = rows.where(F.size("_errors") == 0)
            toast_missing = 0
            if counts["toast"]:
                with ph("toast"):
                    if rules:
                        good = good.withColumn(TOASTED, F.size("_unavail") > 0)
                    good, toast_missing = self.toast.fill(
                        table, good=good, silver=silver, keys=silver_keys, events=events, ctx=ctx, out=out
                    )
                    if rules:
                        good = self._expect_filled(
                            table, good, rules=rules, columns=source_cols, events=events, ctx=ctx, out=out
                        )
            latest = latest_per_key(good, silver_keys)
            if self._may_be_outranked(table, point(counts["oldest"])):
                # a delete already applied outranks any *older* event for the key (replays cannot
                # resurrect). Not an event at the tombstone's own position: that is the delete
                # itself, re-run after a crash between the tombstone commit and the MERGE.
                tombs = self.store.tombstones(table)
                latest = latest.alias("e").join(
                    tombs.alias("t"),
                    (F.col("e._key") == F.col("t._key")) & F.expr(after_sql("t", "e")),
                    "left_anti",
                )
                out.tombstone_checked = True
            if work.deletes:
                # merge-on-read commits no tombstone here: a delete's log entry is its tombstone
                # until the compactor folds it and writes one (store.tombstones)
                if not self.rules.merge_on_read:
                    with ph("tombstones"):
                        latest = latest.localCheckpoint(eager=True)
                        deletes = latest.where("_op = 'd'")
                        self.store.add_tombstones(tombstone_rows(deletes, table, F.col("_key"), F.lit(now)))
                    self.faults.reach("after-tombstones", work=counts["all"] > counts["bad"])
                self._tombstoned.add(table)
                # every delete of the batch, so at least as new as the tombstones just added
                self._tombstone_at(table, point(counts["newest_delete"]))
            columns = [f.name for f in silver.fields]
            if self.rules.merge_on_read:
                with ph("log"):
                    self.store.append_log(table, latest, columns)
                out.logged = int(counts["all"] - counts["bad"])
            else:
                with ph("merge"):
                    # only creates and snapshot reads (a bulk load, a snapshot): if the table holds
                    # none of their keys, the MERGE would insert them all — append instead. A re-run
                    # batch finds its keys stored and MERGEs, where the position guard skips them.
                    # (the probe reads the cached events, a superset of `latest`'s keys)
                    inserts = not counts["changes"]
                    if created or (inserts and not self.store.holds_any(table, rows, silver_keys)):
                        self.store.append(table, latest, columns)
                        out.appended = True
                    else:
                        self.store.merge(table, latest, columns, silver_keys)
            out.applied = (
                int(counts["all"] - counts["bad"]) - toast_missing - out.dropped_after_fill - out.waiting
            )
            out.written = True
            self.faults.reach("after-merge", work=out.applied > 0)
        finally:
            rows.unpersist()
        return out

    def check_expectations(self) -> None:
        """At the job's start: Spark's analyser on the rules of every table silver already has, so
        a bad rule stops the start (and `up` names it) instead of the first batch that meets it.
        A table silver does not have yet is checked when its first events create it."""
        for table in sorted(self.rules.expectations.tables if self.rules.expectations else ()):
            silver, _ = self._schema(table)
            if silver is not None:
                self._rules_of(table, silver)

    def _rules_of(self, table: str, silver: T.StructType) -> tuple[Rule, ...]:
        """The table's expectations, analysed by Spark against its silver schema once per schema
        (a bad rule raises ConfigError naming the file, rule and problem: the job stops)."""
        rules = self.rules.expectations_of(table)
        if not rules or self.rules.expectations is None:
            return ()
        seen = (table, silver.simpleString())
        if seen not in self._analysed:
            analyse(self.spark, rules, silver, self.rules.expectations.path)
            self._analysed.add(seen)
        return rules

    def _stop_on_fail(self, table: str, results: list[Tally]) -> None:
        path = str(self.rules.expectations.path) if self.rules.expectations is not None else ""
        for t in results:
            if t.rule.action == "fail" and t.failed:
                raise ExpectationFailed.of(table, t, path)

    def _expect_filled(
        self,
        table: str,
        good: DataFrame,
        *,
        rules: tuple[Rule, ...],
        columns: list[str],
        events: DataFrame,
        ctx: Ctx,
        out: TableOutcome,
    ) -> DataFrame:
        """The rules on rows whose TOASTed values were just filled (their placeholders were not
        their values): counted with the first pass, a `drop` failure quarantined from here."""
        filled = F.col(TOASTED) & (F.size("_unavail") == 0)
        good = expect(good, rules, only=filled).localCheckpoint(eager=True)
        counts = good.agg(
            F.count_if(filled & (F.size("_errors") > 0)).alias("dropped"), *tallies(rules, columns, filled)
        ).collect()[0]
        out.expectations = added(out.expectations, read_tallies(rules, counts))
        self._stop_on_fail(table, out.expectations)
        if counts["dropped"]:
            out.dropped_after_fill = int(counts["dropped"])
            dropped = good.where(F.size("_errors") > 0)
            out.quarantine.append(
                quarantine_rows(
                    raw_lines(dropped, F.array_join("_errors", "; "), events),
                    F.col("_reason"),
                    ctx.now,
                    ctx.batch_id,
                ).localCheckpoint()
            )
        return good.where(F.size("_errors") == 0)

    def _snapshot_cut(self, table: str, snapshot: Point | None) -> Point | None:
        """A blocking snapshot's reads replace the table: rows older than the snapshot that it does
        not read again are rows deleted at the source while nothing streamed (a lost replication
        slot, a connector whose offsets were reset). The cut is just before the snapshot's
        position: TRUNCATE semantics (older rows go, leaving tombstones) with the reads themselves
        kept. Once per snapshot and table. With two snapshots in one batch (a rebuild from bronze
        after `lakehouse resnapshot`), the later one replaces everything before it, the earlier
        snapshot's reads included; a table created by this batch still loses the batch's own events
        older than the snapshot (a rebuild replays the changes before a lost slot, then the new
        snapshot that left some of their rows out)."""
        if snapshot is None or self._snapshots.get(table) == snapshot:
            return None
        self._snapshots[table] = snapshot
        log.info("%s: a snapshot at %s replaces the rows older than it", table, snapshot)
        return (snapshot[0], snapshot[1] - 1)

    def _may_be_outranked(self, table: str, oldest: Point | None) -> bool:
        """Can a tombstone outrank one of these events? Only one newer than the oldest of them; a
        table without tombstones, or whose events all follow its newest tombstone, needs no check."""
        if table not in self._tombstoned:
            return False
        newest = self._newest_tombstone.get(table)
        return newest is None or oldest is None or oldest <= newest

    def _tombstone_at(self, table: str, pos: Point | None) -> None:
        """Tombstones were added up to `pos` (None: none were, the batch's deletes all failed)."""
        if pos is not None:
            self._newest_tombstone[table] = max(self._newest_tombstone.get(table, pos), pos)

    def _decode_versions(
        self, table: str, work: TableWork, ready: DataFrame, *, ctx: Ctx, out: TableOutcome
    ) -> tuple[list[DataFrame], T.StructType | None, bool]:
        """Per schema version of the table's events: check the contract, evolve silver, decode."""
        now, batch_id = ctx.now, ctx.batch_id
        silver, silver_keys = self._schema(table)
        created = False
        events = ready.where(F.col("table") == table)
        decoded: list[DataFrame] = []
        for schema_id in sorted(work.schema_ids):
            value_schema, key_schema = self._versions[schema_id]
            if key_schema is None:
                # Debezium sends a TRUNCATE without a key (and so with a schema id of its own): it
                # has no row to decode and is applied from the summary. (Other keyless events, a
                # table without a primary key, were quarantined by the parse and are not here.)
                continue
            mine = events.where(F.col("schema_id") == schema_id)
            try:
                specs = [
                    column_spec(f, self.rules.overrides.get(f"{table}.{f.get('field')}"))
                    for f in row_fields(value_schema)
                ]
                keys = key_columns(key_schema or {})
            except UnsupportedField as exc:
                out.quarantine.append(quarantine_rows(mine, F.lit(f"schema: {exc}"), now, batch_id))
                out.rejections += 1
                continue
            decision = decide(silver, specs, keys, silver_keys, table)
            if not decision.ok:
                reason = "schema: " + "; ".join(decision.rejected)
                log.warning("%s: events quarantined, %s", table, reason)
                out.quarantine.append(
                    quarantine_rows(mine.where(F.col("op") != "t"), F.lit(reason), now, batch_id)
                )
                out.rejections += 1
                continue
            if silver is None or decision.add or decision.widen or decision.to_text:
                # only a schema change waits for the table's lock: a fold holds it for its whole
                # MERGE, and a batch that changes nothing must not wait for that
                with self.locks.held(table):  # a schema change writes the base and its log
                    self._change_schema(table, silver, decision=decision, specs=specs, keys=keys, out=out)
                    created = created or silver is None
                silver, silver_keys = self._schema(table, refresh=True)
            decoded.append(decode(mine.where(F.col("op") != "t"), specs, keys))
        return decoded, silver, created

    def _change_schema(
        self,
        table: str,
        silver: T.StructType | None,
        *,
        decision: SchemaDecision,
        specs: list[ColumnSpec],
        keys: list[str],
        out: TableOutcome,
    ) -> None:
        """Create the table, or evolve it as `decision` says (under the table's lock)."""
        if silver is None:
            self.store.create(table, specs, keys)
            out.changes["create"] += 1
            log.info("%s: created silver table %s", table, self.store.layout.table(table))
        elif decision.add:
            self.store.add_columns(table, decision.add)
            out.changes["add_columns"] += 1
            log.info("%s: added column(s) %s", table, ", ".join(s.name for s in decision.add))
        if decision.widen:
            self.store.widen(table, decision.widen)
            out.changes["widen"] += 1
            log.info("%s: widened %s", table, ", ".join(n for n, _ in decision.widen))
        if decision.to_text:
            self.store.to_text(table, decision.to_text)
            out.changes["to_text"] += 1
            log.info("%s: column(s) %s now stored as text", table, ", ".join(decision.to_text))

    def _truncate(self, table: str, pos: tuple[int, int], now: datetime, batch_id: int) -> None:
        """A cut (TRUNCATE, or the rows a snapshot replaces): delete every silver row older than it,
        leaving tombstones, and record the cut itself — a tombstone without a key — so that an
        event at or before it is dropped whatever its key, held back, replayed or late, whether or
        not silver ever held that key."""
        with self.locks.held(table):  # a cut writes the base and its log
            self._cut(table, pos, now)
        log.info("%s: cut at %s", table, pos)

    def _cut(self, table: str, pos: tuple[int, int], now: datetime) -> None:
        silver, keys = self._schema(table)
        # every key the cut removes gets a tombstone at the cut's position
        self.store.add_cut(table, pos, key_json(keys, silver or T.StructType()), now)
        self._cuts[table] = max(self._cuts.get(table, pos), pos)
        self._tombstoned.add(table)
        self._tombstone_at(table, pos)
        self.faults.reach("after-cut", work=True)  # a cut is work: a TRUNCATE, a snapshot's reads
        self.store.delete_older(table, pos)

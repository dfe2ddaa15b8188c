"""The streaming query: bronze objects, then the Kafka topics (sources.py) → foreachBatch(BatchProcessor) →
silver, with metrics."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from delta.tables import DeltaTable
from prometheus_client import Counter, Gauge, Histogram
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from lakehouse.config.layout import as_trino
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.bronze.format import GLOB
from lakehouse.pipeline.silver.batch import BatchProcessor, BatchResult, Rules
from lakehouse.pipeline.silver.compaction import Compactor
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.expectation_log import ExpectationLog
from lakehouse.pipeline.silver.expectations import Expectations
from lakehouse.pipeline.silver.faults import Faults
from lakehouse.pipeline.silver.kafka_lines import as_bronze_lines
from lakehouse.pipeline.silver.maintenance import Maintenance
from lakehouse.pipeline.silver.phases import CompileCounter, JobCounter, Phases
from lakehouse.pipeline.silver.replay import Replays
from lakehouse.pipeline.silver.session import use_checkpoint_manager_for
from lakehouse.pipeline.silver.sources import (
    BRONZE,
    KAFKA,
    Epoch,
    Epochs,
    batch_ids,
    before,
    covered_column,
    gaps,
    kafka_partitions,
    object_maxima,
    raised,
    starting_offsets,
)
from lakehouse.pipeline.silver.store import (
    EXPECTATION_SCHEMA,
    QUARANTINE_SCHEMA,
    SOURCE_PROPERTY,
    Layout,
    hadoop_path,
    read_text,
    write_text,
)

log = logging.getLogger("lakehouse.silver")

READY = Gauge("lakehouse_silver_ready", "1 once the streaming query is active and has run a trigger")
STREAMING = Gauge(
    "lakehouse_silver_streaming",
    "1 from the first streaming query's start until the job stops, through the hand-over between a "
    "bronze catch-up and the topics (its first batch may still run)",
)
BATCHES = Counter("lakehouse_silver_batches_total", "micro-batches committed")
LINES = Counter("lakehouse_silver_bronze_lines_total", "bronze lines read")
APPLIED = Counter("lakehouse_silver_events_applied_total", "CDC events applied to silver", ["table"])
QUARANTINED = Counter("lakehouse_silver_quarantined_total", "events sent to quarantine", ["kind"])
REJECTED = Counter(
    "lakehouse_silver_schema_rejections_total", "schema versions that broke the contract", ["table"]
)
TIMEOUTS = Counter(
    "lakehouse_silver_transaction_timeouts_total", "transactions applied without their END record"
)
TRUNCATES = Counter("lakehouse_silver_truncates_total", "TRUNCATEs applied")
PENDING = Gauge("lakehouse_silver_pending_events", "events held back until their transaction is complete")
EXPECT_CHECKED = Counter(
    "lakehouse_expectation_checked_total",
    "silver rows an expectation was evaluated on (spark_streaming/expectations.yml)",
    ["table", "rule", "action"],
)
EXPECT_WARN_RATIO = Gauge(
    "lakehouse_expectation_warn_ratio",
    "a warn rule's alert threshold: the share of failing rows over 15 minutes (expectations.yml)",
    ["table", "rule"],
)
EXPECT_FAILED = Counter(
    "lakehouse_expectation_failed_total",
    "silver rows that failed an expectation (warn: kept, drop: quarantined, fail: the stream stopped)",
    ["table", "rule", "action"],
)
DURATION = Gauge("lakehouse_silver_batch_duration_seconds", "wall time of the last micro-batch")
BATCH_SECONDS = Histogram(
    "lakehouse_silver_batch_seconds",
    "wall time of micro-batches",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120),
)
PHASE_SECONDS = Counter(
    "lakehouse_silver_batch_phase_seconds_total",
    "seconds spent per phase of the micro-batches (tables run concurrently, so phases can overlap)",
    ["phase"],
)
STREAM_SECONDS = Counter(
    "lakehouse_silver_stream_phase_seconds_total",
    "seconds per phase of Spark's micro-batch loop around the batch itself: listing bronze "
    "(latestOffset), planning, the offset and commit logs of the checkpoint (walCommit, commitOffsets)",
    ["phase"],
)
FOLDS = Counter("lakehouse_silver_folds_total", "change-log folds into the base (merge-on-read)")
FOLD_FAILURES = Counter(
    "lakehouse_silver_fold_failures_total", "change-log folds that failed (retried at the next round)"
)
BASE_LAG = Gauge(
    "lakehouse_silver_base_lag_seconds",
    "merge-on-read: how long the oldest change not yet folded into the table's base has waited",
    ["table"],
)
SPARK_JOBS = Counter("lakehouse_silver_spark_jobs_total", "Spark jobs run by micro-batches")
LAST_COMMIT = Gauge("lakehouse_silver_last_commit_timestamp_seconds", "when the last micro-batch committed")
FRESHNESS = Gauge(
    "lakehouse_silver_source_lag_seconds", "commit time of the newest applied change → its silver commit"
)
KAFKA_LAG = Gauge(
    "lakehouse_silver_source_to_kafka_seconds",
    "commit time of the newest applied change → its Kafka record's timestamp (the same change as "
    "lakehouse_silver_source_lag_seconds)",
)
VERSION = Gauge("lakehouse_silver_table_version", "Delta version of the silver table", ["table"])
ROWS = Gauge("lakehouse_silver_table_rows", "rows in the silver table", ["table"])
FILES = Gauge("lakehouse_silver_table_files", "data files in the silver table's current version", ["table"])
SCHEMA_CHANGES = Counter(
    "lakehouse_silver_schema_changes_total",
    "silver tables created or evolved (columns added/widened)",
    ["table", "kind"],
)
INPUT_ROWS = Gauge("lakehouse_silver_batch_input_rows", "bronze lines in the last micro-batch")
INPUT_RATE = Gauge("lakehouse_silver_input_rows_per_second", "bronze lines arriving per second (last batch)")
BEHIND = Gauge(
    "lakehouse_silver_kafka_records_behind",
    "records in Kafka after what silver's last batch read, summed over partitions (the Kafka source's "
    "offsets behind latest; 0 while silver reads bronze)",
)
PROCESSED_RATE = Gauge(
    "lakehouse_silver_processed_rows_per_second", "bronze lines processed per second (last batch)"
)


# Delta version / row count per table are refreshed at most this often (they cost a few reads).
STATUS_EVERY_S = 60.0


class CheckpointError(LakehouseError):
    pass


#: `reset-silver` writes this (under the silver root) before it deletes anything and removes it last
#: (commands.reset_silver): while it is there, silver and its checkpoints are partly deleted
RESET_MARKER = "_state/reset-in-progress"
REBUILD = "`lakehouse reset-silver --yes`"


def reset_marker(layout: Layout) -> str:
    return f"{layout.root}/{RESET_MARKER}"


def guard_checkpoint(spark: SparkSession, epoch: Epoch, layout: Layout) -> None:
    """Never restart from scratch, nor resume over deleted silver, silently: each is an error with
    a fix, naming the path.

    - A `reset-silver` that did not finish left its marker: whatever it had deleted so far, the job
      refuses until the reset is run again to its end.
    - Silver written by an earlier run but no checkpoint: the stream would start over.
    - A checkpoint that has committed batches (or the epoch state `_state/source.json`, saved only
      after the job's start created its quarantine), but silver's tables missing: the stream would
      resume past events silver no longer holds. "Missing": the quarantine table, which every start
      creates before its first batch, or any table the job listed in `_state/tables.json` (its
      `_delta_log` is gone). A cheap check (a few object lookups), no table is loaded.
    """
    marker, marker_fs = hadoop_path(spark, reset_marker(layout))
    if marker_fs.exists(marker):
        raise CheckpointError(
            f"`lakehouse reset-silver` was interrupted ({reset_marker(layout)} is still there): silver "
            f"and its checkpoints are partly deleted. Run {REBUILD} again to finish it, then start."
        )
    p, fs = hadoop_path(spark, epoch.checkpoint + "/offsets")
    has_checkpoint = bool(fs.exists(p))
    if epoch.source == KAFKA:
        # a kafka epoch that has not run a batch yet starts at its hand-over point
        missing = epoch.ran and not has_checkpoint
    else:
        root, root_fs = hadoop_path(spark, layout.root)
        # anything under the silver root (a table, the quarantine, transaction state) was written
        # by an earlier run
        missing = bool(root_fs.exists(root)) and len(root_fs.listStatus(root)) > 0 and not has_checkpoint
    if missing:
        raise CheckpointError(
            f"the streaming checkpoint {epoch.checkpoint} is missing but silver ({layout.root}) was "
            "written by an earlier run. Restore the checkpoint, or rebuild silver from bronze with "
            f"{REBUILD} and start again."
        )
    gone = missing_tables(spark, epoch, layout)
    if gone:
        raise CheckpointError(
            f"the streaming checkpoint {epoch.checkpoint} records applied batches but silver "
            f"({layout.root}) no longer has {', '.join(gone[:3])}{' …' if len(gone) > 3 else ''} "
            "(deleted, or an older `reset-silver` was interrupted): resuming would skip what they "
            f"held. Rebuild silver from bronze with {REBUILD} and start again."
        )


def missing_tables(spark: SparkSession, epoch: Epoch, layout: Layout) -> list[str]:
    """Silver tables an earlier run wrote that are gone, described; [] on a first start (no batch
    committed, no source state)."""
    state, state_fs = hadoop_path(spark, layout.source_state)
    if not batch_ids(spark, epoch.checkpoint, "commits") and not state_fs.exists(state):
        return []  # a first start: nothing was applied
    expected = {"the quarantine": layout.quarantine}
    try:
        listed = json.loads(read_text(spark, f"{layout.root}/_state/tables.json") or '{"tables": []}')
        expected |= {t["source"]: layout.table(t["source"]) for t in listed["tables"]}
    except (ValueError, KeyError, TypeError):  # a status object of another shape proves nothing
        pass
    out = []
    for name, path in expected.items():
        log_dir, log_fs = hadoop_path(spark, path + "/_delta_log")
        if not log_fs.exists(log_dir):
            out.append(f"{name} ({path})")
    return out


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


def observe(result: BatchResult, seconds: float, jobs: int = 0) -> None:
    BATCHES.inc()
    BATCH_SECONDS.observe(seconds)
    SPARK_JOBS.inc(jobs)
    for phase, s in result.phases.items():
        PHASE_SECONDS.labels(phase).inc(s)
    LINES.inc(result.lines)
    for table, n in result.applied.items():
        APPLIED.labels(table).inc(n)
    for kind, n in result.quarantined.items():
        QUARANTINED.labels(kind).inc(n)
    for table, n in result.schema_rejections.items():
        REJECTED.labels(table).inc(n)
    for (table, kind), n in result.schema_changes.items():
        SCHEMA_CHANGES.labels(table, kind).inc(n)
    for table, results in result.expectations.items():
        for t in results:
            EXPECT_CHECKED.labels(table, t.rule.name, t.rule.action).inc(t.checked)
            EXPECT_FAILED.labels(table, t.rule.name, t.rule.action).inc(t.failed)
    INPUT_ROWS.set(result.lines)
    TIMEOUTS.inc(result.timed_out_groups)
    TRUNCATES.inc(result.truncates)
    PENDING.set(result.pending)
    DURATION.set(seconds)
    LAST_COMMIT.set(time.time())
    if result.max_source_ts is not None and result.applied:
        ts = result.max_source_ts
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        FRESHNESS.set(max(0.0, time.time() - ts.timestamp()))
        if result.max_source_kafka_ts is not None:
            # the record's time is Kafka's clock (the broker or the producer), the commit time
            # Postgres's: on one machine the same clock
            KAFKA_LAG.set(max(0.0, result.max_source_kafka_ts.timestamp() - ts.timestamp()))


def export_rules(expectations: Expectations | None) -> None:
    """Every rule's counters from zero (a rate needs the series before its first failure), and
    each warn rule's threshold for LakehouseExpectationFailing."""
    for r in expectations.rules if expectations is not None else ():
        EXPECT_CHECKED.labels(r.table, r.name, r.action)
        EXPECT_FAILED.labels(r.table, r.name, r.action)
        if r.action == "warn":
            EXPECT_WARN_RATIO.labels(r.table, r.name).set(r.warn_ratio)


def records_behind(progress: dict[str, Any]) -> float:
    """Records the Kafka source has not read yet, summed over partitions, from a progress report as
    Spark writes it (`progress.json`: the min/avg/max per partition); 0 for the file source."""
    total = 0.0
    for source in progress.get("sources") or []:
        avg = (source.get("metrics") or {}).get("avgOffsetsBehindLatest")
        end = source.get("endOffset")
        if avg is not None and isinstance(end, dict):
            total += float(avg) * sum(len(ps) for ps in end.values() if isinstance(ps, dict))
    return total


#: Spark's own steps of a micro-batch (StreamingQueryProgress.durationMs); addBatch is the batch
#: itself, timed by phase in the `batch N:` line
LOOP_PHASES = ("latestOffset", "getBatch", "queryPlanning", "walCommit", "commitOffsets")


def stream_overhead(duration_ms: dict[str, int], batch_id: int) -> None:
    """Count and log what a micro-batch cost outside foreachBatch."""
    parts = {k: duration_ms.get(k, 0) / 1000 for k in LOOP_PHASES}
    for phase, s in parts.items():
        STREAM_SECONDS.labels(phase).inc(s)
    total = duration_ms.get("triggerExecution", 0) / 1000
    outside = total - duration_ms.get("addBatch", 0) / 1000
    log.info(
        "stream %d: %.2fs, %.2fs of it outside the batch (%s)",
        batch_id,
        total,
        outside,
        " ".join(f"{k} {v:.2f}" for k, v in parts.items()),
    )


#: how often a query is started again in-process after `_KafkaMetricsBug` before it counts as failed
RESTARTS_AFTER_SPARK_BUG = 3


#: the bug's message (the query's exception names only this, not where it was thrown)
NPE_IN_KAFKA_METRICS = (
    'Cannot invoke "scala.collection.IterableOps.map(scala.Function1)" because the return value of '
    '"scala.Option.get()" is null'
)


#: set by the process's stop signal (`lakehouse down`): the stream stops after its current
#: trigger's wait and the job returns, instead of being unwound from inside a call into Spark
STOP = threading.Event()
_STREAMING = threading.Event()


def request_stop() -> None:
    """The stop signal's handler: a running stream stops at its next check (within a second);
    before the stream runs (the session, the tables' properties) the job is unwound at once."""
    STOP.set()
    if not _STREAMING.is_set():
        raise SystemExit(0)


class Stopped(Exception):
    """The stream was stopped on request (STOP): the job ends without starting another epoch."""


class _KafkaMetricsBug(LakehouseError):
    """Spark 4.1's Kafka source reports progress after a batch re-run at start (one the checkpoint
    planned but had not committed) with no latest offsets known, and throws a NullPointerException
    (SPARK-55271). The batch itself ran and was committed, so the query can simply start again."""

    @staticmethod
    def matches(text: str) -> bool:
        return NPE_IN_KAFKA_METRICS in text


@dataclass(frozen=True)
class KafkaSource:
    """The live source: the topics bronze is landed from (the sink's `topics.regex`)."""

    bootstrap: str
    pattern: str
    max_records: int


class Stream:
    """Runs the epochs' streaming queries (silver/sources.py) through one BatchProcessor."""

    def __init__(
        self,
        spark: SparkSession,
        *,
        layout: Layout,
        processor: BatchProcessor,
        maintenance: Maintenance,
        status: StatusWriter,
        cfg: SilverConfig,
        faults: Faults,
        epochs: Epochs,
        compactor: Compactor | None = None,
    ) -> None:
        self.spark, self.processor, self.maintenance, self.status = spark, processor, maintenance, status
        self.compactor = compactor
        self._folds = self._fold_failures = 0
        self.cfg, self.faults, self.epochs = cfg, faults, epochs
        self.replays = Replays(spark, layout)
        self.jobs = JobCounter(spark)
        self.compilations = CompileCounter(spark)

    def each(self, epoch: Epoch, lines: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        number = epoch.base + batch_id
        if epoch.skip:  # objects a kafka epoch before this one applied
            lines = lines.where(~covered_column(F.input_file_name(), epoch.skip))
        request = self.replays.poll()
        replay = self.replays.replay(request) if request else None
        result = self.processor.process(lines, number, replay=replay)
        if request is not None:
            self.replays.done(request, self.processor.store, result.replayed)
            log.info(
                "replayed %d quarantined event(s) of %s", result.replayed, request.table or "every table"
            )
        if epoch.source == BRONZE and result.files:
            epoch.applied = raised(epoch.applied, object_maxima(result.files))
            self.epochs.save(epoch)
        elif epoch.source == KAFKA and not epoch.ran:
            epoch.ran = True
            self.epochs.save(epoch)
        self.maintenance.touched(result.tables)
        if self.compactor is not None:
            self._compaction(result)
        self.status.results.add(number, datetime.now(UTC), result.expectations)
        self.maintenance.maybe_run(datetime.now(UTC))
        self.status.touch(result.tables)
        self.faults.reach("before-commit")
        seconds = time.monotonic() - started
        n_jobs = self.jobs.take()
        observe(result, seconds, n_jobs)
        log.info(
            "batch %d: %d lines, applied %s, quarantined %s, pending %d (%.2fs, %d Spark jobs, %d code "
            "compilations: %s)",
            number,
            result.lines,
            dict(result.applied),
            dict(result.quarantined),
            result.pending,
            seconds,
            n_jobs,
            self.compilations.take(),
            " ".join(f"{k} {v:.2f}" for k, v in result.phases.items()),
        )

    def _compaction(self, result: BatchResult) -> None:
        """Tell the compactor what this batch appended; export what it has done since."""
        assert self.compactor is not None
        now = datetime.now(UTC)
        for table, n in result.logged.items():
            self.compactor.appended(table, n, now)
        folds, failures = self.compactor.folds, self.compactor.failures
        FOLDS.inc(folds - self._folds)
        FOLD_FAILURES.inc(failures - self._fold_failures)
        self._folds, self._fold_failures = folds, failures
        behind = self.compactor.behind(now)
        for table in result.tables:
            BASE_LAG.labels(table).set(behind.get(table, 0.0))

    def bronze(self, epoch: Epoch, bronze_dirs: str, until_caught_up: bool) -> None:
        """The bronze objects: everything there is now (`until_caught_up`, then return), or for good."""
        reader = (
            self.spark.readStream.format("text")
            # bounded by bytes, not files: a bulk load writes few, large bronze files, and one
            # unbounded batch of them would not fit the driver's memory
            .option("maxBytesPerTrigger", self.cfg.max_bytes_per_trigger)
            # the glob names partition *folders* and the filter picks the files: a glob matching
            # every file would make Spark list them with a distributed job (one task per file)
            .option("pathGlobFilter", GLOB)
            .load(bronze_dirs)
        )

        def each(df: DataFrame, batch_id: int) -> None:
            self.each(epoch, df.select("value"), batch_id)

        trigger: dict[str, Any] = (
            {"availableNow": True} if until_caught_up else {"processingTime": self.cfg.trigger}
        )
        self._run(reader, each, epoch, trigger, bronze_dirs)

    def kafka(self, epoch: Epoch, source: KafkaSource, partitions: dict[str, list[int]]) -> None:
        """The topics, from the epoch's checkpoint (or its hand-over point), for good."""
        start = starting_offsets(epoch.applied, partitions)
        reader = (
            self.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", source.bootstrap)
            .option("subscribePattern", source.pattern)
            # used only by a new checkpoint: a query resumes where its checkpoint says
            .option("startingOffsets", json.dumps(start))
            # a record Kafka no longer holds stops the stream: the next start reads it from bronze
            .option("failOnDataLoss", "true")
            .option("maxOffsetsPerTrigger", self.cfg.max_records_per_trigger)
            .load()
        )

        def each(df: DataFrame, batch_id: int) -> None:
            self.each(epoch, as_bronze_lines(df), batch_id)

        if not epoch.ran:
            log.info("source: kafka from %s", json.dumps(start, sort_keys=True))
        for attempt in itertools.count(1):
            try:
                self._run(reader, each, epoch, {"processingTime": self.cfg.trigger}, source.pattern)
                return
            except _KafkaMetricsBug:
                if attempt > RESTARTS_AFTER_SPARK_BUG:
                    raise
                # the batch ran and was committed; only the progress report after it failed
                log.warning(
                    "the Kafka source's progress report failed after a re-run batch (Spark bug "
                    "SPARK-55271, fixed after 4.1.3); starting the query again (%d)",
                    attempt,
                )

    def _run(self, reader: DataFrame, each: Any, epoch: Epoch, trigger: dict[str, Any], what: str) -> None:
        use_checkpoint_manager_for(reader.sparkSession, epoch.checkpoint)
        query = (
            reader.writeStream.foreachBatch(each)
            .option("checkpointLocation", epoch.checkpoint)
            .trigger(**trigger)
            .queryName("silver")
            .start()
        )
        log.info(
            "silver: %s → silver (epoch %d, checkpoint %s, %s)", what, epoch.n, epoch.checkpoint, trigger
        )
        _STREAMING.set()
        STREAMING.set(1)  # cleared by `run` when the job's stream ends, not between its epochs
        try:
            self._follow(query)
        finally:
            _STREAMING.clear()
        error = query.exception()
        if error is not None:
            text = str(error)
            if epoch.source == KAFKA and _KafkaMetricsBug.matches(text):
                raise _KafkaMetricsBug(text)
            raise stream_error(text, epoch.checkpoint)

    def _follow(self, query: StreamingQuery) -> None:
        """Wait on the query, exporting its progress, until it ends or the job is asked to stop."""
        seen = None  # the last progress report counted, by its trigger's start time: a trigger
        # that found no data reports under the id of the batch still to come, so ids repeat
        while query.isActive:
            if STOP.is_set():
                query.stop()
                raise Stopped()
            progress = query.lastProgress
            if progress is not None:
                READY.set(1)
                if progress.get("timestamp") != seen:
                    seen = progress.get("timestamp")
                    stream_overhead(progress.get("durationMs") or {}, int(progress.get("batchId", -1)))
                INPUT_RATE.set(float(progress.get("inputRowsPerSecond") or 0.0))
                BEHIND.set(records_behind(json.loads(progress.json)))
                PROCESSED_RATE.set(float(progress.get("processedRowsPerSecond") or 0.0))
            try:
                query.awaitTermination(1)
            except StreamingQueryException:
                return  # the query failed: the caller raises its exception


def run(
    spark: SparkSession,
    bronze_dirs: str,
    checkpoint: str,
    layout: Layout,
    *,
    rules: Rules,
    cfg: SilverConfig,
    kafka: KafkaSource | None = None,
    faults: Faults | None = None,
) -> None:
    """Silver's stream, for good: bronze until caught up, then the topics (`kafka`); or only bronze
    (`kafka` None: `source` "bronze" in silver.json)."""
    ph = Phases()
    epochs = Epochs(spark, layout, checkpoint)
    with ph("checkpoint"):
        epoch = epochs.current()
        guard_checkpoint(spark, epoch, layout)
    faults = faults or Faults()
    export_rules(rules.expectations)
    processor = BatchProcessor(spark, layout, rules, faults)
    compactor = (
        Compactor(processor.store, processor.locks, cfg.compaction_age, cfg.compaction_rows, faults)
        if cfg.merge_on_read
        else None
    )
    maintenance = Maintenance(spark, layout, cfg, datetime.now(UTC), compactor)
    status = StatusWriter(spark, layout, maintenance, ExpectationLog(spark, processor.store))
    with ph("quarantine"):  # exist from the start: dashboards and Trino see 0 rows, not no table
        processor.store.ensure(layout.quarantine, QUARANTINE_SCHEMA)
        processor.store.ensure(layout.expectation_results, EXPECTATION_SCHEMA)
    with ph("properties"):
        for path in processor.store.ensure_properties(maintenance.table_paths()):
            log.info("table properties (change data feed, deletion vectors) set on %s", path)
    with ph("expectations"):
        processor.check_expectations()
    logged = maintenance.logged_tables()
    for table in logged:  # a schema change the last run died in the middle of
        if mended := processor.store.align_log(table):
            log.warning(
                "%s: the change log lacked the base's column(s) or type(s) of %s: mended",
                table,
                ", ".join(mended),
            )
    if compactor is not None:
        compactor.recover(logged)
        compactor.start()
    elif logged:
        with ph("logs"):
            drop_logs(processor, logged)
    status.start()
    log.info("started (%s)", " ".join(f"{k} {v:.2f}s" for k, v in ph.seconds.items()))
    stream = Stream(
        spark,
        layout=layout,
        processor=processor,
        maintenance=maintenance,
        status=status,
        cfg=cfg,
        faults=faults,
        epochs=epochs,
        compactor=compactor,
    )
    try:
        if kafka is None:
            if epoch.source == KAFKA:
                epoch = epochs.begin(epoch, BRONZE, before(epochs.needed(epoch)))
            stream.bronze(epoch, bronze_dirs, until_caught_up=False)
            return
        if epoch.source == KAFKA:
            earliest = kafka_partitions(kafka.bootstrap, kafka.pattern)
            needed = epochs.needed(epoch)
            lost = gaps(needed, earliest)
            if not lost:
                stream.kafka(epoch, kafka, {t: sorted(ps) for t, ps in earliest.items()})
                return
            log.warning(
                "source: Kafka no longer holds what silver needs next (%s); reading it from bronze",
                "; ".join(lost),
            )
            epoch = epochs.begin(epoch, BRONZE, before(needed))
        stream.bronze(epoch, bronze_dirs, until_caught_up=True)
        epoch = epochs.begin(epoch, KAFKA)
        partitions = kafka_partitions(kafka.bootstrap, kafka.pattern)
        stream.kafka(epoch, kafka, {t: sorted(ps) for t, ps in partitions.items()})
    except Stopped:
        log.info("stopped on request")
    finally:
        STREAMING.set(0)
        status.stop()
        if compactor is not None:
            compactor.stop()


def drop_logs(processor: BatchProcessor, tables: list[str]) -> None:
    """Back to merge-on-write from merge-on-read: fold every change log into its table one last
    time, then delete the logs (catalog-sync then serves the tables themselves again)."""
    compactor = Compactor(processor.store, processor.locks, timedelta(0), 1)
    for table in tables:
        compactor.fold(table)
        path, fs = hadoop_path(processor.spark, processor.store.layout.log(table))
        fs.delete(path, True)
        log.info("%s: change log folded and removed (write is merge-on-write)", table)


def stream_error(text: str, checkpoint: str) -> LakehouseError:
    """Name why the stream stopped. Only a failure to read the checkpoint's own files is reported as
    a checkpoint problem (its fix, `reset-silver`, deletes silver): every streaming error's text
    mentions the checkpoint location and offsets in its query dump, so those words alone prove
    nothing."""
    head = text.split("=== Streaming Query ===", 1)[0]
    if "FOREACH_BATCH_USER_FUNCTION_ERROR" in head:
        last = [ln for ln in head.splitlines() if ln.strip() and not ln.startswith((" ", "\t"))]
        cause = next(
            (ln for ln in reversed(last) if "Error" in ln or "Exception" in ln), last[-1] if last else ""
        )
        return LakehouseError(
            f"a micro-batch failed ({cause.strip()[:300]}); nothing was committed for it, and the "
            "restarted job re-runs it. If it fails again the same way, the traceback in "
            "`lakehouse logs silver` shows where."
        )
    first = head.strip().splitlines()[0][:300] if head.strip() else text[:300]
    if checkpoint in head and any(k in head for k in ("/offsets/", "/commits/", "/metadata", "/sources/")):
        return CheckpointError(
            f"the streaming checkpoint {checkpoint} cannot be read ({first}). Restore it from a "
            "backup if you have one; otherwise `lakehouse reset-silver` rebuilds silver from bronze."
        )
    return LakehouseError(f"silver stream stopped: {first}")

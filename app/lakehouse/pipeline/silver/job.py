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

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.bronze.format import GLOB
from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.checkpoint_guard import CheckpointError, guard_checkpoint
from lakehouse.pipeline.silver.compaction import Compactor
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.expectation_log import ExpectationLog
from lakehouse.pipeline.silver.faults import Faults
from lakehouse.pipeline.silver.kafka_lines import as_bronze_lines
from lakehouse.pipeline.silver.maintenance import Maintenance
from lakehouse.pipeline.silver.metrics import (
    BASE_LAG,
    BEHIND,
    FOLD_FAILURES,
    FOLDS,
    INPUT_RATE,
    PROCESSED_RATE,
    READY,
    STREAMING,
    export_rules,
    observe,
    records_behind,
    stream_overhead,
)
from lakehouse.pipeline.silver.outcome import BatchResult
from lakehouse.pipeline.silver.phases import CompileCounter, JobCounter, Phases
from lakehouse.pipeline.silver.replay import Replays
from lakehouse.pipeline.silver.session import use_checkpoint_manager_for
from lakehouse.pipeline.silver.sources import (
    BRONZE,
    KAFKA,
    Epoch,
    Epochs,
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
    Layout,
    delete_object,
    hadoop_path,
)
from lakehouse.pipeline.silver.table_status import StatusWriter

log = logging.getLogger("lakehouse.silver")

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
        Compactor(
            processor.store,
            processor.locks,
            cfg.compaction_age,
            cfg.compaction_rows,
            faults,
            ages=cfg.compaction_table_age,
            share=cfg.compaction_share,
        )
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
        if compactor is not None and processor.store.partition_log(table):
            log.info("%s: the change log is partitioned by _seq now (an older version's log)", table)
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
        delete_object(processor.spark, processor.store.layout.folded(table))
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

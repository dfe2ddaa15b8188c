"""The silver job's Prometheus metrics, and what sets them from a micro-batch's result and the
stream's progress."""

from __future__ import annotations

import logging
import time
from datetime import UTC
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from lakehouse.pipeline.silver.expectations import Expectations
    from lakehouse.pipeline.silver.outcome import BatchResult

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

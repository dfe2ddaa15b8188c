"""What a micro-batch hands around and reports: its identity and clock (Ctx), each table's
outcome, the batch's result, and the quarantine rows it writes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.expectation_checks import Tally
from lakehouse.pipeline.silver.phases import Phases


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
    #: tables whose events were appended, not MERGEd: a new table, or inserts of keys it lacked
    appended: list[str] = field(default_factory=list)
    #: merge-on-read: per table, the events whose latest per key went to its change log
    logged: dict[str, int] = field(default_factory=dict)
    #: tables whose events were checked against their tombstones (not needed when every event is
    #: newer than the table's newest tombstone, the live stream's case)
    tombstone_checks: list[str] = field(default_factory=list)
    max_source_ts: datetime | None = None
    #: the Kafka record time of that newest change (None for lines without one)
    max_source_kafka_ts: datetime | None = None
    #: the files the batch's lines were read from (bronze objects, held lines' files)
    files: set[str] = field(default_factory=set)
    #: per table, each expectation's rows checked and failed in this batch
    expectations: dict[str, list[Tally]] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (phases.py)


@dataclass
class TableOutcome:
    quarantine: list[DataFrame] = field(default_factory=list)
    applied: int = 0
    rejections: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    truncated: bool = False
    written: bool = False
    appended: bool = False
    #: events whose latest per key went to the table's change log (merge-on-read)
    logged: int = 0
    tombstone_checked: bool = False
    expectations: list[Tally] = field(default_factory=list)
    #: rows a `drop` rule refused once their TOASTed values were filled (not in the decode count)
    dropped_after_fill: int = 0
    #: transactions held back by this table's work: a TOAST fill waits for an earlier change of
    #: its row that is held back
    deferred: set[int] = field(default_factory=set)
    #: events not applied because they wait for an earlier change (held back or quarantined)
    waiting: int = 0


@dataclass(frozen=True)
class Ctx:
    """One batch's identity and clock, passed to each table's work."""

    batch_id: int
    now: datetime
    ph: Phases
    #: lines of the transactions held back by this batch (versions a TOAST fill may wait for)
    held: DataFrame | None = None
    replay: Replay | None = None


def reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].split(" ", 1)[0] if reason else "unknown"


def quarantine_rows(df: DataFrame, reason: Column, now: datetime, batch_id: int) -> DataFrame:
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

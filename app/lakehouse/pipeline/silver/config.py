"""spark_streaming/silver.json: the silver job's own knobs (strict: unknown or missing keys fail)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from lakehouse.errors import ConfigError

_KEYS = {
    "source": str,
    "trigger.interval": str,
    "max.bytes.per.trigger": int,
    "max.records.per.trigger": int,
    "transaction.wait.timeout.s": int,
    "transaction.end.ttl.s": int,
    "tombstone.retention.h": int,
    "optimize.interval.s": int,
    "vacuum.interval.s": int,
    "vacuum.retention.h": int,
    "deletion.vectors": bool,
    "column.overrides": dict,
    "write": str,
    "compaction.age.s": int,
    "compaction.rows": int,
    "compaction.table.age.s": dict,
    "compaction.share.pct": int,
}
#: what the live stream reads (silver/sources.py): the topics, or only the bronze objects
SOURCES = ("kafka", "bronze")
#: how a batch writes a table (docs/design.md): MERGE into the table, or append to its change log
#: (merge-on-read: the compactor folds the log into the table off the freshness path, live.py)
WRITES = ("merge-on-write", "merge-on-read")
#: what a column override may ask for: `text` stores the value's exact text (a string column)
OVERRIDES = ("text",)


@dataclass(frozen=True)
class SilverConfig:
    source: str
    trigger: str
    #: bronze objects per micro-batch, by size
    max_bytes_per_trigger: int
    #: Kafka records per micro-batch
    max_records_per_trigger: int
    transaction_timeout: timedelta
    end_ttl: timedelta
    tombstone_retention: timedelta
    optimize_every: timedelta
    vacuum_every: timedelta
    vacuum_retention_h: int
    #: Delta deletion vectors on silver tables (store.table_properties)
    deletion_vectors: bool
    #: `schema.table.column` → how silver stores it instead of the mapping (docs/cdc-semantics.md)
    column_overrides: dict[str, str]
    #: batches append to each table's change log; the compactor folds it into the table
    merge_on_read: bool = False
    #: a log is folded once its oldest unfolded entry is this old ...
    compaction_age: timedelta = timedelta(seconds=60)
    #: ... or once it holds this many unfolded entries
    compaction_rows: int = 200_000
    #: `schema.table` → its own `compaction_age` (a table read only through the live view)
    compaction_table_age: dict[str, timedelta] = field(default_factory=dict)
    #: the most of the time folds may take (the compactor rests after each one)
    compaction_share: float = 0.25

    @classmethod
    def load(cls, path: Path) -> SilverConfig:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        unknown = sorted(set(raw) - set(_KEYS))
        missing = sorted(set(_KEYS) - set(raw))
        if unknown or missing:
            raise ConfigError(f"{path}: unknown {unknown} / missing {missing}")
        for key, kind in _KEYS.items():
            value = raw[key]
            # JSON true/false are ints to Python: a flag must be a bool, a number must not be one
            wrong = isinstance(value, bool) != (kind is bool) or not isinstance(value, kind)
            if wrong or (kind is int and value < 0):
                what = {int: "a non-negative integer", str: "a string", dict: "a JSON object"}.get(kind)
                raise ConfigError(f"{path}: {key} must be {what or 'true or false'}")
        for column, how in raw["column.overrides"].items():
            if not re.fullmatch(r"[^.\s]+\.[^.\s]+\.[^.\s]+", column) or how not in OVERRIDES:
                raise ConfigError(
                    f"{path}: column.overrides: {column!r}: {how!r} — expected "
                    f'"schema.table.column": one of {", ".join(OVERRIDES)}'
                )
        if raw["source"] not in SOURCES:
            raise ConfigError(f"{path}: source must be one of {', '.join(SOURCES)}, not {raw['source']!r}")
        if raw["write"] not in WRITES:
            raise ConfigError(f"{path}: write must be one of {', '.join(WRITES)}, not {raw['write']!r}")
        for table, age in raw["compaction.table.age.s"].items():
            if (
                not re.fullmatch(r"[^.\s]+\.[^.\s]+", table)
                or isinstance(age, bool)
                or not isinstance(age, int)
            ):
                raise ConfigError(
                    f"{path}: compaction.table.age.s: {table!r}: {age!r} — expected "
                    '"schema.table": seconds (an integer)'
                )
        if not 1 <= raw["compaction.share.pct"] <= 100:
            raise ConfigError(f"{path}: compaction.share.pct must be between 1 and 100")
        if raw["compaction.rows"] < 1:
            raise ConfigError(f"{path}: compaction.rows must be at least 1")
        if raw["max.records.per.trigger"] < 1:
            raise ConfigError(f"{path}: max.records.per.trigger must be at least 1")
        if not re.fullmatch(r"\d+ (second|seconds|minute|minutes)", raw["trigger.interval"]):
            raise ConfigError(f"{path}: trigger.interval must look like '1 second' or '2 minutes'")
        if raw["max.bytes.per.trigger"] < 1 << 20:
            raise ConfigError(f"{path}: max.bytes.per.trigger must be at least 1 MiB (one bronze file)")
        if raw["vacuum.retention.h"] < 168:
            raise ConfigError(f"{path}: vacuum.retention.h below 168 can break readers and time travel")
        return cls(
            source=raw["source"],
            trigger=raw["trigger.interval"],
            max_bytes_per_trigger=raw["max.bytes.per.trigger"],
            max_records_per_trigger=raw["max.records.per.trigger"],
            transaction_timeout=timedelta(seconds=raw["transaction.wait.timeout.s"]),
            end_ttl=timedelta(seconds=raw["transaction.end.ttl.s"]),
            tombstone_retention=timedelta(hours=raw["tombstone.retention.h"]),
            optimize_every=timedelta(seconds=raw["optimize.interval.s"]),
            vacuum_every=timedelta(seconds=raw["vacuum.interval.s"]),
            vacuum_retention_h=raw["vacuum.retention.h"],
            deletion_vectors=raw["deletion.vectors"],
            column_overrides=dict(raw["column.overrides"]),
            merge_on_read=raw["write"] == "merge-on-read",
            compaction_age=timedelta(seconds=raw["compaction.age.s"]),
            compaction_rows=raw["compaction.rows"],
            compaction_table_age={t: timedelta(seconds=a) for t, a in raw["compaction.table.age.s"].items()},
            compaction_share=raw["compaction.share.pct"] / 100,
        )

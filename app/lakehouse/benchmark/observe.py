"""Watchers that note, on this process's clock, when each benchmark marker reaches a point.

The marker is one source row (`bench_marker`, id 1) whose `seq` the benchmark bumps every
half second; marker k has passed a point once that point shows seq >= k.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from ..bronze.reader import read_records
from ..query.client import QueryError, Trino

MARKER_TABLE = "bench_marker"


@dataclass(frozen=True)
class Target:
    """Where the benchmark reads the marker back through Trino: the Trino schema of the table, the
    SQL of its `seq`, and the user allowed to read it."""

    schema: str
    seq_sql: str
    user: str

    @property
    def table(self) -> str:
        return f'{self.schema}."{MARKER_TABLE}"'


#: silver's typed table, read as an analyst would
SILVER = Target("silver", "seq", "analyst")
#: the floor job's table (benchmark/floor.py): the row is Debezium's `after` JSON text
FLOOR = Target("floor", "CAST(json_extract_scalar(row, '$.seq') AS bigint)", "admin")


@dataclass
class Seen:
    """marker seq → first time (time.time()) it was observed at one point."""

    at: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def upto(self, seq: int, now: float) -> None:
        """Markers are cumulative: seeing seq k means every marker up to k has arrived."""
        with self._lock:
            if self.at and seq <= max(self.at):
                return
            low = max(self.at, default=0) + 1
            for k in range(low, seq + 1):
                self.at.setdefault(k, now)

    def snapshot(self) -> dict[int, float]:
        with self._lock:
            return dict(self.at)


class Watcher(threading.Thread):
    """Calls `poll()` until stopped; `poll` returns the highest seq it saw (or None)."""

    def __init__(self, name: str, poll: Callable[[], int | None], every_s: float) -> None:
        super().__init__(name=f"watch-{name}", daemon=True)
        self.seen = Seen()
        self.poll, self.every_s = poll, every_s
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                seq = self.poll()
            except Exception:  # a point restarting mid-run: count it, keep watching
                self.errors += 1
                seq = None
            if seq is not None:
                self.seen.upto(seq, time.time())
            self.stop.wait(self.every_s)


def _seq_of(value: Any) -> int | None:
    payload = value.get("payload", value) if isinstance(value, dict) else None
    after = payload.get("after") if isinstance(payload, dict) else None
    return int(after["seq"]) if isinstance(after, dict) and "seq" in after else None


def kafka_poll(bootstrap: str, topic: str) -> Callable[[], int | None]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lakehouse-bench-{time.time_ns()}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])

    def poll() -> int | None:
        best = None
        for msg in consumer.consume(num_messages=500, timeout=0.2):
            value = msg.value()
            if msg.error() is None and value:
                seq = _seq_of(json.loads(value))
                best = seq if best is None or (seq is not None and seq > best) else best
        return best

    return poll


def bronze_poll(client: Any, bucket: str, prefix: str) -> Callable[[], int | None]:
    read: set[str] = set()

    def poll() -> int | None:
        best = None
        for obj in client.list_objects(bucket, prefix=prefix, recursive=True):
            if obj.object_name in read:
                continue
            records = read_records(client, bucket, obj.object_name)
            read.add(obj.object_name)
            for rec in records:
                seq = _seq_of(rec.get("value"))
                if seq is not None and (best is None or seq > best):
                    best = seq
        return best

    return poll


def trino_poll(trino: Trino, target: Target = SILVER) -> Callable[[], int | None]:
    def poll() -> int | None:
        try:
            value = trino.scalar(f"SELECT max({target.seq_sql}) FROM {target.table}")
        except QueryError:  # not registered yet
            return None
        return None if value is None else int(value)

    return poll


def silver_commits(trino: Trino, target: Target = SILVER) -> dict[int, float]:
    """marker seq → time of the Delta commit that first held it (from the table history)."""
    versions = trino.query(
        f'SELECT version, to_unixtime(timestamp) FROM {target.schema}."{MARKER_TABLE}$history" '
        "ORDER BY version"
    ).rows
    seen = Seen()
    for version, ts in versions:
        try:
            seq = trino.scalar(
                f"SELECT max({target.seq_sql}) FROM {target.table} FOR VERSION AS OF {version}"
            )
        except QueryError:
            continue
        if seq is not None:
            seen.upto(int(seq), float(ts))
    return seen.snapshot()


def silver_counters(url: str) -> dict[str, float]:
    """The silver job's batch counters from its /metrics: batches, seconds, Spark jobs, and
    `phase:<name>` seconds (empty when the job does not answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    names = {
        "lakehouse_silver_batches_total": "batches",
        "lakehouse_silver_batch_seconds_sum": "seconds",
        "lakehouse_silver_spark_jobs_total": "jobs",
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                out[names[sample.name]] = sample.value
            elif sample.name == "lakehouse_silver_batch_phase_seconds_total":
                out["phase:" + sample.labels["phase"]] = sample.value
    return out

"""Watchers that note, on this process's clock, when each benchmark marker reaches a point.

The marker is one source row (`bench_marker`, id 1) whose `seq` the benchmark bumps every
half second; marker k has passed a point once that point shows seq >= k.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.config.names import SILVER_LOG
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.bronze.reader import read_records

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
#: silver with merge-on-read: the change log that silver's live view reads, where commits land
SILVER_LOGGED = Target(SILVER_LOG, "seq", "admin")
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
    # every partition of the marker's topic (scale-out mode has several; a key stays on one)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in sorted(partitions) or [0]])

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


#: after the marker table's log shows a new commit, Trino is asked until its answer changes, at
#: most this long (its snapshot of a table follows a commit within a second, docs/benchmarks.md)
CHASE_S = 30.0
#: and at least this often in any case, so a commit the log watch missed is still seen
SLOW_POLL_S = 5.0


def committed_in(admin: Trino, target: Target) -> Target:
    """Where the marker's commits land: its table, or with merge-on-read the change log silver's
    live view reads (`silver.<t>` is then a view, with no history or location of its own)."""
    if target != SILVER:
        return target
    try:
        admin.query(f"SELECT 1 FROM {SILVER_LOGGED.table} LIMIT 0")
    except QueryError:
        return target
    return SILVER_LOGGED


def table_folder(trino: Trino, target: Target) -> tuple[str, str]:
    """(bucket, folder) of the marker table, from where Trino has it registered."""
    ddl = str(trino.scalar(f"SHOW CREATE TABLE {target.table}"))
    found = re.search(r"location = 's3a?://([^/']+)/([^']+)'", ddl)
    if found is None:
        raise LakehouseError(f"Trino gives no object-store location for {target.table}:\n{ddl}")
    return found.group(1), found.group(2).rstrip("/")


def delta_head(client: Any, bucket: str, folder: str) -> Callable[[], int]:
    """The newest commit version of the Delta table in `folder`: its log is listed once, then each
    call asks only whether the next commit file exists (a HEAD, where a listing would read
    thousands of names)."""
    from minio.error import S3Error

    log_dir = f"{folder}/_delta_log/"
    versions = [
        int(name[len(log_dir) : len(log_dir) + 20])
        for name in (o.object_name for o in client.list_objects(bucket, prefix=log_dir))
        if name.endswith(".json") and name[len(log_dir) : len(log_dir) + 20].isdigit()
    ]
    newest = [max(versions, default=-1)]

    def head() -> int:
        while True:
            try:
                client.stat_object(bucket, f"{log_dir}{newest[0] + 1:020d}.json")
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return newest[0]
                raise
            newest[0] += 1

    return head


def on_commit(
    poll: Callable[[], int | None],
    newest: Callable[[], int],
    *,
    chase_s: float = CHASE_S,
    slow_s: float = SLOW_POLL_S,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], int | None]:
    """`poll` (a Trino query) only when it can have news: from the moment the table's log shows a
    new commit until the answer changes (or `chase_s` later), and every `slow_s` otherwise.

    Asking Trino four times a second cost it half a core of this 2-core machine (docs/benchmarks.md,
    eighteenth round), taken from the silver job being measured; a HEAD on the next commit file costs
    MinIO almost nothing, and the moment a marker is seen stays as precise as the poll interval.
    """
    state = {"version": newest(), "chase_until": 0.0, "asked": -float("inf")}
    last: list[int | None] = [None]

    def gated() -> int | None:
        now = clock()
        version = newest()
        if version != state["version"]:
            state["version"], state["chase_until"] = version, now + chase_s
        if now >= state["chase_until"] and now - state["asked"] < slow_s:
            return last[0]
        state["asked"] = now
        seq = poll()
        if seq is not None and seq != last[0]:
            if last[0] is not None:
                state["chase_until"] = 0.0  # this commit is visible; wait for the next one
            last[0] = seq
        return seq

    return gated


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

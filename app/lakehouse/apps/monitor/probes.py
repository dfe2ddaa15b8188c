"""One function per outside system: each reads its state and returns plain values (no metrics)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lakehouse.clients.trino_client import Trino
from lakehouse.config.names import CATALOG, SILVER
from lakehouse.config.run_state import read_state, supervised
from lakehouse.pipeline.query.inventory import epoch_seconds

#: every state Kafka Connect reports for a connector or task (each becomes a 0/1 series)
CONNECT_STATES = ("UNASSIGNED", "RUNNING", "PAUSED", "STOPPED", "FAILED", "RESTARTING")


@dataclass(frozen=True)
class Slot:
    name: str
    active: bool
    retained_wal_bytes: float
    confirmed_flush_lag_bytes: float
    #: pg_replication_slots.wal_status: reserved, extended, unreserved, or lost (WAL it needed is
    #: gone: max_slot_wal_keep_size was passed and the slot was invalidated)
    wal_status: str = "reserved"
    #: WAL that can still be written before the slot is at risk (None: no max_slot_wal_keep_size)
    safe_wal_bytes: float | None = None

    @property
    def lost(self) -> bool:
        return self.wal_status == "lost"


SLOTS_SQL = """
    SELECT slot_name, active,
           coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8,
           coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::float8,
           coalesce(wal_status, ''), safe_wal_size::float8
    FROM pg_replication_slots ORDER BY slot_name"""


def slots(conn: Any) -> list[Slot]:
    """Every replication slot: WAL the source keeps for it, how far its consumer has confirmed,
    and whether Postgres has invalidated it."""
    return [
        Slot(str(n), bool(a), float(r), float(c), str(w), None if safe is None else float(safe))
        for n, a, r, c, w, safe in conn.execute(SLOTS_SQL).fetchall()
    ]


def slots_of(dsn: str) -> list[Slot]:
    """`slots` over a connection of its own (empty when the source cannot be reached)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return slots(conn)
    except psycopg.Error:
        return []


def lost_slot_message(slot: str) -> str:
    """What `status` says about an invalidated slot: the cause is certain (Postgres reports it), so
    the recovery it names — a fresh snapshot — is the right one."""
    return (
        f"replication slot {slot!r} was invalidated: Postgres removed WAL it still needed "
        "(the source wrote more than max_slot_wal_keep_size while the connector was behind or down). "
        "The changes since cannot be streamed; recover with a fresh snapshot: "
        '`lakehouse resnapshot --yes` (docs/reliability.md, "A lost replication slot")'
    )


def restarts(run_dir: Path) -> dict[str, int]:
    """Service → times its supervisor restarted it (the native stack's supervisors' state files)."""
    out = {}
    for service, path in supervised(run_dir).items():
        state = read_state(path)
        if state is not None:
            out[service] = int(state.get("restarts", 0))
    return out


@dataclass(frozen=True)
class ConnectorState:
    name: str
    state: str
    tasks: dict[int, str]


def connectors(http: httpx.Client, connect_url: str) -> list[ConnectorState]:
    body = http.get(f"{connect_url}/connectors", params={"expand": "status"}, timeout=5).raise_for_status()
    out = []
    for name, info in sorted(body.json().items()):
        status = info.get("status", {})
        tasks = {int(t["id"]): str(t["state"]) for t in status.get("tasks", [])}
        out.append(ConnectorState(name, str(status.get("connector", {}).get("state", "UNASSIGNED")), tasks))
    return out


def consumer_lag(consumer: Any, topics_regex: str) -> dict[tuple[str, int], int]:
    """(topic, partition) → records of the matching topics the consumer's group has not committed.

    `consumer` is a Consumer configured with the group's id that never subscribes (it neither
    joins the group nor commits). Not the AdminClient's list_consumer_group_offsets: librdkafka's
    admin coordinator requests abort the whole process (`eonce->refcnt > 0` assertion, librdkafka
    issue 4605) when the broker drops the connection mid-request — as a Kafka restart does."""
    from confluent_kafka import TopicPartition

    pattern = re.compile(topics_regex)
    topics = consumer.list_topics(timeout=5).topics
    partitions = [
        TopicPartition(name, p)
        for name, meta in sorted(topics.items())
        if pattern.match(name)
        for p in sorted(meta.partitions)
    ]
    if not partitions:
        return {}
    out = {}
    for tp in consumer.committed(partitions, timeout=10):
        _, end = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
        done = tp.offset if tp.offset >= 0 else 0  # no commit yet: everything is pending
        out[(tp.topic, tp.partition)] = max(0, end - done)
    return out


@dataclass(frozen=True)
class Freshness:
    table: str
    rows: int
    newest_source_ts: float | None  # epoch seconds of the newest source commit in silver


def freshness(trino: Trino, tables: list[str]) -> list[Freshness]:
    """Per silver table: rows and the source commit time of its newest row, read through Trino."""
    if not tables:
        return []
    sql = "\nUNION ALL\n".join(
        f"SELECT '{t}', count(*), max(_source_ts) FROM {CATALOG}.{SILVER}.\"{t}\"" for t in tables
    )
    return [Freshness(str(t), int(n), epoch_seconds(ts)) for t, n, ts in trino.query(sql).rows]


def trino_up(http: httpx.Client, info_url: str) -> bool:
    try:
        body = http.get(info_url, timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return False
    return body.get("starting") is False

"""The monitor's latest readings as Prometheus metric families, rendered at scrape time.

Readings are replaced whole after each poll, so a scrape never sees a half-updated set, and
series of connectors or tables that disappeared vanish with them. Freshness is computed at
scrape time from the newest source commit, so it keeps growing while nothing arrives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lakehouse.apps.monitor.probes import CONNECT_STATES, ConnectorState, Freshness, Slot
from lakehouse.pipeline.query.checks import CrossResult
from lakehouse.pipeline.query.inventory import Blocked

PROBES = ("postgres", "connect", "kafka", "trino")


@dataclass
class Readings:
    slots: list[Slot] = field(default_factory=list)
    connectors: list[ConnectorState] = field(default_factory=list)
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    freshness: list[Freshness] = field(default_factory=list)
    quarantine_rows: int | None = None
    #: source tables with events waiting in quarantine (none: no series)
    quarantined_by_table: list[Blocked] = field(default_factory=list)
    trino_up: bool = False
    #: probe → whether its last attempt succeeded
    probe_ok: dict[str, bool] = field(default_factory=dict)
    polled_at: float | None = None
    #: service → times its supervisor restarted it since `up` (native stack only)
    restarts: dict[str, int] = field(default_factory=dict)
    #: the last run of each cross-table expectation
    cross: list[CrossResult] = field(default_factory=list)


def families(r: Readings, errors: dict[str, int], now: float) -> Iterator[Metric]:
    g = GaugeMetricFamily
    retained = g(
        "lakehouse_postgres_slot_retained_wal_bytes", "WAL the source keeps for the slot", labels=["slot"]
    )
    flush_lag = g(
        "lakehouse_postgres_slot_confirmed_flush_lag_bytes",
        "WAL between the source's current position and what the slot's consumer confirmed",
        labels=["slot"],
    )
    active = g("lakehouse_postgres_slot_active", "1 while a consumer streams from the slot", labels=["slot"])
    lost = g(
        "lakehouse_postgres_slot_lost",
        "1 once Postgres has invalidated the slot (wal_status 'lost': WAL it needed was removed)",
        labels=["slot"],
    )
    safe = g(
        "lakehouse_postgres_slot_safe_wal_bytes",
        "WAL the source can still write before the slot is at risk of invalidation",
        labels=["slot"],
    )
    for s in r.slots:
        retained.add_metric([s.name], s.retained_wal_bytes)
        flush_lag.add_metric([s.name], s.confirmed_flush_lag_bytes)
        active.add_metric([s.name], 1.0 if s.active else 0.0)
        lost.add_metric([s.name], 1.0 if s.lost else 0.0)
        if s.safe_wal_bytes is not None:
            safe.add_metric([s.name], s.safe_wal_bytes)
    yield from (retained, flush_lag, active, lost, safe)

    conn = g(
        "lakehouse_connect_connector_state",
        "1 for the connector's current state",
        labels=["connector", "state"],
    )
    task = g(
        "lakehouse_connect_task_state",
        "1 for the task's current state",
        labels=["connector", "task", "state"],
    )
    for c in r.connectors:
        for state in CONNECT_STATES:
            conn.add_metric([c.name, state], 1.0 if c.state == state else 0.0)
        for tid, tstate in sorted(c.tasks.items()):
            for state in CONNECT_STATES:
                task.add_metric([c.name, str(tid), state], 1.0 if tstate == state else 0.0)
    yield from (conn, task)

    lag = g(
        "lakehouse_bronze_consumer_lag_records",
        "records in Kafka the bronze sink has not committed to object storage yet",
        labels=["topic"],
    )
    per_topic: dict[str, int] = {}
    for (topic, _), n in r.lag.items():
        per_topic[topic] = per_topic.get(topic, 0) + n
    for topic, n in sorted(per_topic.items()):
        lag.add_metric([topic], float(n))
    yield lag

    newest = g(
        "lakehouse_silver_newest_source_timestamp_seconds",
        "source commit time of the newest row in the silver table",
        labels=["table"],
    )
    fresh = g(
        "lakehouse_silver_freshness_seconds",
        "now minus the source commit time of the newest row in the silver table",
        labels=["table"],
    )
    rows = g("lakehouse_silver_rows", "rows in the silver table, read through Trino", labels=["table"])
    for f in r.freshness:
        rows.add_metric([f.table], float(f.rows))
        if f.newest_source_ts is not None:
            newest.add_metric([f.table], f.newest_source_ts)
            fresh.add_metric([f.table], max(0.0, now - f.newest_source_ts))
    yield from (newest, fresh, rows)

    if r.quarantine_rows is not None:
        q = g("lakehouse_quarantine_rows", "rows in the quarantine table (events silver refused)")
        q.add_metric([], float(r.quarantine_rows))
        yield q

    blocked = g(
        "lakehouse_silver_table_quarantined_events",
        "events of the source table silver refused that wait in quarantine (its silver copy lags for them)",
        labels=["table"],
    )
    for b in r.quarantined_by_table:
        blocked.add_metric([b.source_table], float(b.events))
    yield blocked

    failing = g(
        "lakehouse_expectation_cross_failing_rows",
        "rows a cross-table expectation found breaking it at its last run (spark_streaming/expectations.yml)",
        labels=["table", "rule"],
    )
    ran = g(
        "lakehouse_expectation_cross_last_run_failed",
        "1 if the query of the cross-table expectation failed at its last run, 0 if it answered",
        labels=["table", "rule"],
    )
    ran_at = g(
        "lakehouse_expectation_cross_last_run_timestamp_seconds",
        "when the cross-table expectation last ran",
        labels=["table", "rule"],
    )
    for x in r.cross:
        labels = [x.rule.table, x.rule.name]
        ran.add_metric(labels, 1.0 if x.failing is None else 0.0)
        if x.failing is not None:
            failing.add_metric(labels, float(x.failing))
        if x.at is not None:
            ran_at.add_metric(labels, x.at)
    yield from (failing, ran, ran_at)

    restarted = CounterMetricFamily(
        "lakehouse_service_restarts",
        "times the supervisor restarted the service after it died, since `lakehouse up`",
        labels=["service"],
    )
    for service, n in sorted(r.restarts.items()):
        restarted.add_metric([service], float(n))
    yield restarted

    up = g("lakehouse_trino_up", "1 while Trino answers and is not starting")
    up.add_metric([], 1.0 if r.trino_up else 0.0)
    yield up

    ok = g("lakehouse_monitor_probe_success", "1 if the probe's last attempt succeeded", labels=["probe"])
    for probe in PROBES:
        ok.add_metric([probe], 1.0 if r.probe_ok.get(probe) else 0.0)
    yield ok
    failed = CounterMetricFamily(
        "lakehouse_monitor_probe_errors", "probe attempts that failed", labels=["probe"]
    )
    for probe in PROBES:
        failed.add_metric([probe], float(errors.get(probe, 0)))
    yield failed

    if r.polled_at is not None:
        polled = g("lakehouse_monitor_last_poll_timestamp_seconds", "when the last poll completed")
        polled.add_metric([], r.polled_at)
        yield polled
    ready = g("lakehouse_monitor_ready", "1 once a first poll has completed")
    ready.add_metric([], 0.0 if r.polled_at is None else 1.0)
    yield ready


class ReadingsCollector(Collector):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._readings = Readings()
        self._errors: dict[str, int] = {}
        self._clock = clock

    def publish(self, readings: Readings) -> None:
        with self._lock:
            self._readings = readings
            for probe, ok in readings.probe_ok.items():
                if not ok:
                    self._errors[probe] = self._errors.get(probe, 0) + 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            r, errors = self._readings, dict(self._errors)
        return families(r, errors, self._clock())

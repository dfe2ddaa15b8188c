"""`python -m lakehouse.apps.monitor`: poll the pipeline's outside state, serve it on /metrics."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import httpx
import psycopg
from confluent_kafka import Consumer
from prometheus_client import REGISTRY, start_http_server

from lakehouse import daemon
from lakehouse.apps.monitor import probes
from lakehouse.apps.monitor.exporter import Readings, ReadingsCollector
from lakehouse.clients import admin_client
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.bronze.connector import SinkSettings
from lakehouse.pipeline.query import checks, inventory
from lakehouse.pipeline.silver.expectations import CrossRule, Expectations, in_force

log = logging.getLogger("lakehouse.monitor")


def trino_due(read_at: float | None, now: float, interval_s: float) -> bool:
    """Whether a poll asks Trino: the first time, after a failure, or `interval_s` after the last
    answer. Freshness is exported as an age at scrape time, so a kept reading only ever overstates
    it, by at most the interval."""
    return read_at is None or now - read_at >= interval_s


class Poller:
    """One pass reads every system; a failing probe keeps its previous readings and is flagged."""

    def __init__(self, s: Settings, sec: Secrets) -> None:
        self.s = s
        self.dsn = f"postgresql://{s.app_role}:{sec.pg_app_password}@{s.addr('postgres')}:{s.postgres_port}/{s.source_db}"
        self.http = httpx.Client(trust_env=False)
        sink = SinkSettings.of(s)
        self.topics = sink.topics_regex
        # reads the group's committed offsets; never subscribes, so never joins the group
        self.kafka = Consumer(
            {
                "bootstrap.servers": s.kafka_bootstrap,
                "group.id": sink.group_id,
                "enable.auto.commit": False,
                "socket.timeout.ms": 5000,
            }
        )
        self.trino = admin_client(s, sec)
        self.last = Readings()
        #: when Trino last answered all of its probes (monotonic); None: not yet, or it failed since
        self.trino_read_at: float | None = None
        #: the cross-table expectations, reloaded when their file changes; rule → last run (monotonic)
        self.cross: tuple[CrossRule, ...] = ()
        self.cross_file: tuple[str, float] | None = None
        self.cross_run_at: dict[str, float] = {}

    def cross_rules(self) -> tuple[CrossRule, ...]:
        """The cross-table rules of the file silver runs with; a file `up` would refuse (it was
        edited since) keeps the rules read before, and says so in the log."""
        path = in_force(self.s)
        try:
            stamp = (str(path), path.stat().st_mtime)
        except OSError:
            return self.cross
        if stamp != self.cross_file:
            self.cross_file = stamp
            try:
                self.cross = Expectations.load(path, schema=self.s.source_schema).cross
            except LakehouseError as exc:
                log.warning("cross-table expectations not reloaded: %s", exc)
            names = {r.name for r in self.cross}
            self.cross_run_at = {k: v for k, v in self.cross_run_at.items() if k in names}
        return self.cross

    def check_cross(self, r: Readings) -> None:
        """Run the cross-table rules that are due; the others keep their last result."""
        rules = self.cross_rules()
        kept = {c.rule.name: c for c in r.cross if c.rule in rules}
        for rule in rules:
            now = time.monotonic()
            if checks.due(self.cross_run_at.get(rule.name), now, rule):
                self.cross_run_at[rule.name] = now
                result = checks.run(self.trino, rule, sample=False)
                if result.error:
                    log.warning("cross-table rule %s failed to run: %s", rule.name, result.error)
                kept[rule.name] = replace(result, at=time.time())
        r.cross = [kept[rule.name] for rule in rules if rule.name in kept]

    def poll(self) -> Readings:
        r = replace(self.last, probe_ok={})
        try:
            with psycopg.connect(self.dsn, connect_timeout=5) as conn:
                r.slots = probes.slots(conn)
            r.probe_ok["postgres"] = True
        except psycopg.Error as exc:
            self._failed(r, "postgres", exc)
        try:
            r.connectors = probes.connectors(self.http, self.s.connect_url)
            r.probe_ok["connect"] = True
        except httpx.HTTPError as exc:
            self._failed(r, "connect", exc)
        try:
            r.lag = probes.consumer_lag(self.kafka, self.topics)
            r.probe_ok["kafka"] = True
        except Exception as exc:  # confluent-kafka raises KafkaException and future timeouts
            self._failed(r, "kafka", exc)
        r.trino_up = probes.trino_up(
            self.http, f"http://{self.s.addr('trino')}:{self.s.trino_http_port}/v1/info"
        )
        if not r.trino_up:
            r.probe_ok["trino"] = False
            self.trino_read_at = None
        elif trino_due(self.trino_read_at, time.monotonic(), self.s.monitor_trino_interval_s):
            try:
                listed = inventory.registered(self.trino)
                r.freshness = probes.freshness(self.trino, listed.silver)
                r.quarantine_rows, r.quarantined_by_table = (
                    inventory.quarantine(self.trino) if listed.quarantine else (None, [])
                )
                r.probe_ok["trino"] = True
                self.trino_read_at = time.monotonic()
                self.check_cross(r)
            except LakehouseError as exc:
                self._failed(r, "trino", exc)
                self.trino_read_at = None
        else:  # read less often than the rest: the readings of the last read stand
            r.probe_ok["trino"] = True
        r.restarts = probes.restarts(self.s.run)
        r.polled_at = time.time()
        self.last = r
        return r

    @staticmethod
    def _failed(r: Readings, probe: str, exc: BaseException) -> None:
        r.probe_ok[probe] = False
        log.warning(
            "%s probe failed: %s", probe, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        )


def setup(s: Settings, sec: Secrets) -> Callable[[], None]:
    poller = Poller(s, sec)

    def serve() -> None:
        collector = ReadingsCollector()
        REGISTRY.register(collector)
        start_http_server(s.monitor_metrics_port, addr=s.addr("monitor"))
        log.info(
            "monitor: serving http://%s:%d/metrics, polling every %.0fs",
            s.addr("monitor"),
            s.monitor_metrics_port,
            s.monitor_interval_s,
        )
        while True:
            started = time.monotonic()
            collector.publish(poller.poll())
            time.sleep(max(0.5, s.monitor_interval_s - (time.monotonic() - started)))

    return serve


def main() -> int:
    return daemon.run("monitor", setup)


if __name__ == "__main__":
    sys.exit(main())

"""The native stack: services in dependency order, connector registration, env and status."""

from __future__ import annotations

import shutil
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from lakehouse.apps.jobs.spec import load_jobs
from lakehouse.apps.monitor import probes
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.render import load_connector, render_file
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings, load_settings
from lakehouse.config.versions import Versions
from lakehouse.errors import ServiceError, UsageError
from lakehouse.launcher import connectors
from lakehouse.launcher.services.base import Context, Service
from lakehouse.launcher.services.catalog_sync import CatalogSyncService
from lakehouse.launcher.services.connect import Connect
from lakehouse.launcher.services.kafka import Kafka
from lakehouse.launcher.services.metastore import MetastoreService
from lakehouse.launcher.services.minio import Minio
from lakehouse.launcher.services.monitor import MonitorService
from lakehouse.launcher.services.postgres import PUBLICATION, SLOT, Postgres
from lakehouse.launcher.services.prometheus import AlertmanagerService, PrometheusService
from lakehouse.launcher.services.scheduler import SchedulerService
from lakehouse.launcher.services.silver import SilverService
from lakehouse.launcher.services.spark import SparkMasterService, SparkWorkerService
from lakehouse.launcher.services.superset import SupersetService
from lakehouse.launcher.services.trino import TrinoService, TrinoWorkerService
from lakehouse.launcher.services.web import WebService
from lakehouse.launcher.status import ConnectorStatus, StackStatus
from lakehouse.pipeline.bronze.connector import SINK_CONNECTOR, sink_values
from lakehouse.pipeline.silver.expectations import Expectations

console = Console(stderr=True)

SOURCE_CONNECTOR = Path("debezium") / "postgres-source.json"

#: in the state dir while the stack runs in scale-out mode: `up --scale-out` writes it, `down` of
#: the whole stack removes it, every command in between reads it
SCALE_OUT_MARK = "scale-out"


def in_mode(s: Settings, scale_out: bool = False) -> Settings:
    """The settings with scale-out on if asked, set (LAKEHOUSE_SCALE_OUT), or kept from `up --scale-out`."""
    if scale_out or (not s.scale_out and (s.home / SCALE_OUT_MARK).exists()):
        return s.model_copy(update={"scale_out": True})
    return s


class Stack:
    def __init__(self, settings: Settings | None = None, scale_out: bool = False) -> None:
        s = in_mode(settings or load_settings(), scale_out)
        self.ctx = Context(s, Secrets.load_or_create(s.home), Versions.load(s.root / "versions.env"))
        self.s = s
        #: when each service (and the source connector) was ready in the last `up`, time.time()
        self.ready_at: dict[str, float] = {}
        self.postgres = Postgres(self.ctx)
        self.minio = Minio(self.ctx)
        self.kafka = Kafka(self.ctx)
        self.connect = Connect(self.ctx)
        self.spark_master = SparkMasterService(self.ctx)
        self.spark_worker = SparkWorkerService(self.ctx)
        self.silver = SilverService(self.ctx)
        self.metastore = MetastoreService(self.ctx)
        self.trino = TrinoService(self.ctx)
        self.trino_worker = TrinoWorkerService(self.ctx)
        self.catalog = CatalogSyncService(self.ctx)
        self.monitor = MonitorService(self.ctx)
        self.scheduler = SchedulerService(self.ctx)
        self.alertmanager = AlertmanagerService(self.ctx)
        self.prometheus = PrometheusService(self.ctx)
        self.superset = SupersetService(self.ctx)
        self.web = WebService(self.ctx)

    @property
    def services(self) -> list[Service]:
        """Start order; stop order is the reverse. Scale-out adds the Spark cluster before silver
        and a Trino worker after the coordinator."""
        cluster: list[Service] = [self.spark_master, self.spark_worker] if self.s.scale_out else []
        workers: list[Service] = [self.trino_worker] if self.s.scale_out else []
        return [
            self.postgres, self.minio, self.kafka, self.connect, *cluster, self.silver,
            self.metastore, self.trino, *workers, self.catalog, self.monitor, self.scheduler,
            self.alertmanager, self.prometheus, self.superset, self.web,
        ]  # fmt: skip

    def connector_values(self) -> dict[str, object]:
        return {
            "pg_host": self.s.addr("postgres"),
            "pg_port": self.s.postgres_port,
            "cdc_role": self.s.cdc_role,
            "database": self.s.source_db,
            "schema": self.s.source_schema,
            "topic_prefix": self.s.topic_prefix,
            "publication": PUBLICATION,
            "slot": SLOT,
            "connect_secrets_file": self.connect.secrets_file,
            # Debezium keys each row's events by its primary key: Kafka's default partitioner keeps
            # a key on one partition, so per-key order holds with any number of them
            "partitions": self.s.topic_partitions,
        }

    def preflight(self) -> None:
        """Render every config once so a malformed file or unknown key fails before anything starts."""
        root = self.s.root
        for path, values in self.connectors():
            load_connector(root / path, values)
        for service in self.services:
            for rel, values in service.templates().items():
                render_file(root / rel, values)
        Expectations.load(self.s.expectations, schema=self.s.source_schema)
        load_jobs(self.s.jobs_folder)

    def up(self, only: Collection[str] | None = None) -> None:
        """Check every config, fetch missing artifacts, then start services in order (`only`: just
        the services named, e.g. a test that needs the data path and no dashboards)."""
        from lakehouse.launcher.artifacts import install

        self.preflight()
        install(self.s, self.ctx.versions)
        if self.s.scale_out:
            if not (self.s.home / SCALE_OUT_MARK).exists() and self.silver.pid() is not None:
                raise UsageError(
                    "the stack runs in single-process mode: `lakehouse down`, then `lakehouse up "
                    "--scale-out` (data is kept)"
                )
            self.s.home.mkdir(parents=True, exist_ok=True)
            (self.s.home / SCALE_OUT_MARK).write_text("lakehouse up --scale-out; `lakehouse down` ends it\n")
        launched: list[tuple[Service, float]] = []  # spawned, waited for after the others
        for service in self.services:
            if only is not None and service.name not in only:
                continue
            started = time.monotonic()
            if service.overlaps and service.launch():
                launched.append((service, started))
                continue
            with console.status(f"starting {service.name} …"):
                self._started(service, service.start(), started)
            if service is self.connect:
                with console.status("registering the connectors: Debezium source, bronze S3 sink …"):
                    names = self.register_connectors()
                self.ready_at["connector"] = time.time()
                for name in names:
                    console.print(f"[green]✓[/] {'connector':<12} {name} RUNNING")
        for service, started in launched:
            with console.status(f"waiting for {service.name} …"):
                self._started(service, service.wait_ready(), started)

    def _started(self, service: Service, outcome: str, since: float) -> None:
        took = f" in {time.monotonic() - since:.0f}s" if outcome == "started" else ""
        self.ready_at[service.name] = time.time()
        console.print(f"[green]✓[/] {service.name:<12} {outcome}{took}")

    def connectors(self) -> list[tuple[Path, dict[str, object]]]:
        """The reviewed connector files and their placeholder values: the Debezium source
        (Postgres → Kafka) and the bronze sink (Kafka → MinIO, the project's S3 sink connector)."""
        return [(SOURCE_CONNECTOR, self.connector_values()), (SINK_CONNECTOR, sink_values(self.s))]

    def register_connectors(self) -> list[str]:
        """Create or update every connector and wait until each and its tasks run."""
        names = [
            connectors.register(self.s.connect_url, self.s.root / path, values)
            for path, values in self.connectors()
        ]
        for name in names:
            connectors.wait_running(self.s.connect_url, name, self.s.ready_timeout_s)
        return names

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        names = ", ".join(s.name for s in self.services)
        raise UsageError(f"no service named {name!r} (services: {names})")

    def down(self, wipe: bool = False, only: tuple[str, ...] = ()) -> list[str]:
        chosen = {self.service(name).name for name in only}
        stopped = [
            svc.name for svc in reversed(self.services) if (not only or svc.name in chosen) and svc.stop()
        ]
        if not only:
            (self.s.home / SCALE_OUT_MARK).unlink(missing_ok=True)
        if wipe:
            home = self.s.home
            if home.exists():
                shutil.rmtree(home)
        return stopped

    def source_connector_name(self) -> str:
        name, _ = load_connector(self.s.root / SOURCE_CONNECTOR, self.connector_values())
        return name

    def status(self) -> StackStatus:
        services = {svc.name: svc.status() for svc in self.services}
        found: dict[str, ConnectorStatus] = {}
        for path, values in self.connectors():
            each, _ = load_connector(self.s.root / path, values)
            if services["connect"].ready:
                st = connectors.status(self.s.connect_url, each)
                found[each] = (
                    ConnectorStatus("UNREGISTERED")
                    if st is None
                    else ConnectorStatus(st["connector"]["state"], [t["state"] for t in st["tasks"]])
                )
            else:
                found[each] = ConnectorStatus("UNKNOWN (connect not running)")
        name = self.source_connector_name()
        if services["postgres"].ready:
            slot = next((x for x in probes.slots_of(self.postgres.app_dsn) if x.name == SLOT), None)
            if slot is not None and slot.lost:
                found[name] = replace(found[name], error=probes.lost_slot_message(slot.name))
        return StackStatus(services, found)

    def resnapshot(self, say: Any = print) -> None:
        """A fresh snapshot of every captured table, for a replication slot Postgres invalidated:
        stop the source connector, drop its slot, forget its offsets, resume it. Debezium then
        snapshots as on its first start and creates the slot again; silver lets each table's
        snapshot replace what it held (docs/cdc-semantics.md, rule 6), so rows deleted while
        nothing streamed go too."""
        import psycopg

        name, url = self.source_connector_name(), self.s.connect_url
        say(f"stopping connector {name}")
        connectors.stop(url, name)
        with psycopg.connect(self.postgres.superuser_dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while True:  # the task's replication connection lets go of the slot when it ends
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", [SLOT]
                ).fetchone()
                if row is None or not row[0]:
                    break
                if time.monotonic() > deadline:
                    raise ServiceError(f"replication slot {SLOT} still in use 60 s after {name} stopped")
                time.sleep(0.5)
            if row is not None:
                say(f"dropping replication slot {SLOT}")
                conn.execute("SELECT pg_drop_replication_slot(%s)", [SLOT])
        say(f"resetting the offsets of {name}")
        connectors.reset_offsets(url, name)
        say(f"resuming {name}: Debezium takes a new snapshot and creates the slot again")
        connectors.resume(url, name)
        connectors.wait_running(url, name, 120)

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints.of(self.s, self.ctx.secrets)

    def env(self) -> dict[str, Any]:
        return self.endpoints.as_json()

    def log_path(self, service: str) -> Path:
        for svc in self.services:
            if svc.name == service:
                return svc.files.logfile
        names = ", ".join(svc.name for svc in self.services)
        raise UsageError(f"unknown service '{service}' (one of: {names})")

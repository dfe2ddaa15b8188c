"""Prometheus and Alertmanager: Debian's packages, run on the repo's prometheus/ and alertmanager/.

Both read the committed config files as they are. Prometheus finds its scrape targets by file
service discovery in `targets/` beside its config file, so the native launcher runs it from a
folder holding links to prometheus.yml and rules/ plus target files written from settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import httpx

from lakehouse.config.settings import Settings
from lakehouse.errors import ServiceError
from lakehouse.launcher.services.base import Service

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")
ALERTMANAGER_BIN = Path("/usr/bin/prometheus-alertmanager")


def scrape_targets(s: Settings) -> dict[str, int]:
    """Scrape job (as named in prometheus/prometheus.yml) → port on the stack's host."""
    return {
        "silver": s.silver_metrics_port,
        "catalog-sync": s.catalog_sync_metrics_port,
        "monitor": s.monitor_metrics_port,
        "scheduler": s.scheduler_metrics_port,
        "kafka": s.kafka_jmx_port,
        "connect": s.connect_jmx_port,
        "minio": s.minio_port,
        "prometheus": s.prometheus_port,
        "alertmanager": s.alertmanager_port,
    }


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _need(binary: Path, package: str) -> str:
    if not binary.exists():
        raise ServiceError(f"{binary} not found — run `lakehouse install` (installs Debian's {package})")
    return str(binary)


class PrometheusService(Service):
    name = "prometheus"
    port_fields: ClassVar[tuple[str, ...]] = ("prometheus_port",)

    @property
    def etc(self) -> Path:
        return self.data_dir / "etc"

    def prepare(self) -> None:
        repo = self.s.root / "prometheus"
        if self.etc.exists():
            shutil.rmtree(self.etc)
        (self.etc / "targets").mkdir(parents=True)
        (self.etc / "prometheus.yml").symlink_to(repo / "prometheus.yml")
        (self.etc / "rules").symlink_to(repo / "rules", target_is_directory=True)
        for job, port in scrape_targets(self.s).items():
            body = [{"targets": [f"{self.s.addr(job)}:{port}"]}]
            (self.etc / "targets" / f"{job}.json").write_text(json.dumps(body, indent=2) + "\n")

    def argv(self) -> list[str]:
        return [
            _need(PROMETHEUS_BIN, "prometheus"),
            f"--config.file={self.etc / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.data_dir / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address={self.host}:{self.s.prometheus_port}",
            "--web.enable-lifecycle",
        ]

    def ready(self) -> bool:
        return _ready(f"{self.s.prometheus_url}/-/ready")

    def fix_hint(self, log: str) -> str:
        if "error loading config" in log.lower() or "parsing yaml" in log.lower():
            return (
                "prometheus/prometheus.yml or a rule file is invalid: `promtool check config` names the line"
            )
        return "`lakehouse logs prometheus` shows the server's log"

    def details(self) -> dict[str, Any]:
        return {"url": self.s.prometheus_url}


class AlertmanagerService(Service):
    name = "alertmanager"
    port_fields: ClassVar[tuple[str, ...]] = ("alertmanager_port",)

    def argv(self) -> list[str]:
        return [
            _need(ALERTMANAGER_BIN, "prometheus-alertmanager"),
            f"--config.file={self.s.root / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.s.alertmanager_port}",
            "--cluster.listen-address=",  # a single instance: no gossip port
        ]

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def ready(self) -> bool:
        return _ready(f"{self.s.alertmanager_url}/-/ready")

    def fix_hint(self, log: str) -> str:
        return (
            "`lakehouse logs alertmanager` shows the log; "
            "`amtool check-config alertmanager/alertmanager.yml` checks the file"
        )

    def details(self) -> dict[str, Any]:
        return {"url": self.s.alertmanager_url}

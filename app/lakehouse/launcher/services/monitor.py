"""The pipeline monitor (python -m lakehouse.apps.monitor): slot, connectors, bronze lag, freshness."""

from __future__ import annotations

import sys
from typing import ClassVar

from lakehouse.launcher.services.metrics import MetricsReadyService


class MonitorService(MetricsReadyService):
    name = "monitor"
    port_fields: ClassVar[tuple[str, ...]] = ("monitor_metrics_port",)
    ready_line = "lakehouse_monitor_ready 1.0"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.apps.monitor"]

    def fix_hint(self, log: str) -> str:
        return "`lakehouse logs monitor` names the probe that fails (postgres, connect, kafka or trino)"

"""The bronze sink process (python -m lakehouse.bronze); ready when its metrics say it polls."""

from __future__ import annotations

import sys
from typing import ClassVar

from .metrics import MetricsReadyService


class BronzeSinkService(MetricsReadyService):
    name = "bronze-sink"
    port_fields: ClassVar[tuple[str, ...]] = ("bronze_sink_metrics_port",)
    ready_line = "lakehouse_bronze_sink_ready 1.0"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.bronze"]

"""The bronze sink process (python -m lakehouse.bronze); ready when its metrics say it polls."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import httpx

from .base import Service


class BronzeSinkService(Service):
    name = "bronze-sink"
    port_fields: ClassVar[tuple[str, ...]] = ("bronze_sink_metrics_port",)

    @property
    def metrics_url(self) -> str:
        return f"http://{self.s.host}:{self.s.bronze_sink_metrics_port}/metrics"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.bronze"]

    def ready(self) -> bool:
        try:
            text = httpx.get(self.metrics_url, timeout=2).text
        except httpx.HTTPError:
            return False
        return "lakehouse_bronze_sink_ready 1.0" in text

    def details(self) -> dict[str, Any]:
        return {"metrics": self.metrics_url}

"""Our own Python processes (bronze sink, silver job): ready when their /metrics says so."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from .base import Service


class MetricsReadyService(Service):
    ready_line: ClassVar[str]  # the exposition line that means ready, e.g. `lakehouse_x_ready 1.0`

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{getattr(self.s, self.port_fields[0])}/metrics"

    def ready(self) -> bool:
        try:
            text = httpx.get(self.metrics_url, timeout=2).text
        except httpx.HTTPError:
            return False
        return self.ready_line in text.splitlines()

    def details(self) -> dict[str, Any]:
        return {"metrics": self.metrics_url}

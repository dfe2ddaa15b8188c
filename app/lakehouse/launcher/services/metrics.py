"""Our own Python processes (the silver job, catalog sync): ready when their /metrics says so."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from lakehouse.launcher.services.base import Service


class MetricsReadyService(Service):
    ready_line: ClassVar[str]  # the exposition line that means ready, e.g. `lakehouse_x_ready 1.0`

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{getattr(self.s, self.port_fields[0])}/metrics"

    def metric_line(self, line: str) -> bool:
        """Whether /metrics answers with this exposition line."""
        try:
            text = httpx.get(self.metrics_url, timeout=2).text
        except httpx.HTTPError:
            return False
        return line in text.splitlines()

    def ready(self) -> bool:
        return self.metric_line(self.ready_line)

    def details(self) -> dict[str, Any]:
        return {"metrics": self.metrics_url}

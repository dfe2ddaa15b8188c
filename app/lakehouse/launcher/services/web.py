"""The demo web page (python -m lakehouse.apps.web): ready when /healthz answers."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import httpx

from lakehouse.launcher.services.base import Service


class WebService(Service):
    name = "web"
    port_fields: ClassVar[tuple[str, ...]] = ("web_port",)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.apps.web"]

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.s.web_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def fix_hint(self, log: str) -> str:
        return "`lakehouse logs web` shows the page server's log"

    def details(self) -> dict[str, Any]:
        return {"url": self.s.web_url}

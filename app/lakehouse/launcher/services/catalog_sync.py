"""The catalog sync (python -m lakehouse.pipeline.query): registers silver tables in Trino, keeps views."""

from __future__ import annotations

import sys
from typing import ClassVar

from lakehouse.launcher.services.metrics import MetricsReadyService


class CatalogSyncService(MetricsReadyService):
    name = "catalog-sync"
    port_fields: ClassVar[tuple[str, ...]] = ("catalog_sync_metrics_port",)
    ready_line = "lakehouse_catalog_ready 1.0"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.pipeline.query"]

    def fix_hint(self, log: str) -> str:
        return "it needs Trino and MinIO up; `lakehouse logs catalog-sync` shows each failed pass"

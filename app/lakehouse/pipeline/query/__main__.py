"""`python -m lakehouse.pipeline.query`: the catalog sync loop (registers silver in Trino, keeps views)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, start_http_server

from lakehouse import clients, daemon
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.query.catalog import CatalogSync
from lakehouse.pipeline.query.views import load_views

READY = Gauge("lakehouse_catalog_ready", "1 once the schemas exist and a sync pass has completed")
TABLES = Gauge("lakehouse_catalog_tables", "Delta tables registered in Trino", ["schema"])
PENDING = Gauge("lakehouse_catalog_pending_views", "analytics views waiting for their tables")
REGISTRATIONS = Counter("lakehouse_catalog_registrations_total", "tables registered in Trino")
ERRORS = Counter("lakehouse_catalog_sync_errors_total", "sync passes that failed (retried)")
LAST = Gauge("lakehouse_catalog_last_sync_timestamp_seconds", "when the last sync pass completed")


def setup(s: Settings, sec: Secrets) -> Callable[[], None]:
    views = load_views(s.root / "trino" / "views")
    ep = Endpoints.of(s, sec)
    sync = CatalogSync(
        clients.trino(ep, admin=True), clients.object_store(ep), s.bucket, s.source_schema, views
    )

    def serve() -> None:
        log = logging.getLogger("lakehouse.catalog")
        start_http_server(s.catalog_sync_metrics_port, addr=s.addr("catalog-sync"))
        booted = False
        while True:
            try:
                if not booted:
                    sync.bootstrap()
                    booted = True
                report = sync.run_once()
                REGISTRATIONS.inc(len(report.registered))
                for schema in {k[0] for k in sync.registered} | {"silver", "ops"}:
                    TABLES.labels(schema).set(sum(1 for k in sync.registered if k[0] == schema))
                PENDING.set(len(report.pending_views))
                LAST.set_to_current_time()
                READY.set(1)
            except LakehouseError as exc:  # Trino restarting, object store busy: log and retry
                ERRORS.inc()
                log.warning("sync pass failed, retrying: %s", exc)
            except Exception as exc:  # the loop must outlive any one bad pass
                ERRORS.inc()
                log.exception("sync pass failed, retrying: %s", exc)
            time.sleep(s.catalog_sync_interval_s)

    return serve


def main() -> int:
    return daemon.run("catalog-sync", setup)


if __name__ == "__main__":
    sys.exit(main())

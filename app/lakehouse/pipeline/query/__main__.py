"""`python -m lakehouse.pipeline.query`: the catalog sync loop (registers silver in Trino, keeps views)."""

from __future__ import annotations

import logging
import signal
import sys
import time
from types import FrameType

from prometheus_client import Counter, Gauge, start_http_server

from lakehouse import clients
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import load_settings
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.query.catalog import CatalogSync
from lakehouse.pipeline.query.views import load_views

READY = Gauge("lakehouse_catalog_ready", "1 once the schemas exist and a sync pass has completed")
TABLES = Gauge("lakehouse_catalog_tables", "Delta tables registered in Trino", ["schema"])
PENDING = Gauge("lakehouse_catalog_pending_views", "analytics views waiting for their tables")
REGISTRATIONS = Counter("lakehouse_catalog_registrations_total", "tables registered in Trino")
ERRORS = Counter("lakehouse_catalog_sync_errors_total", "sync passes that failed (retried)")
LAST = Gauge("lakehouse_catalog_last_sync_timestamp_seconds", "when the last sync pass completed")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("lakehouse.catalog")
    try:
        s = load_settings()
        sec = Secrets.load_or_create(s.home)
        views = load_views(s.root / "trino" / "views")
    except LakehouseError as exc:
        print(f"catalog-sync: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    start_http_server(s.catalog_sync_metrics_port, addr=s.addr("catalog-sync"))
    ep = Endpoints.of(s, sec)
    sync = CatalogSync(
        clients.trino(ep, admin=True), clients.object_store(ep), s.bucket, s.source_schema, views
    )
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


if __name__ == "__main__":
    sys.exit(main())

"""`python -m lakehouse.web`: the demo page (uvicorn), started by `lakehouse up`."""

from __future__ import annotations

import sys

import uvicorn

from ..errors import LakehouseError
from ..query.connect import analyst_client
from ..query.names import SILVER
from ..secrets import Secrets
from ..settings import load_settings
from .app import Backend, create_app


def main() -> int:
    try:
        s = load_settings()
        sec = Secrets.load_or_create(s.home)
        from ..stack import Stack

        dsn = Stack(s).postgres.app_dsn
    except LakehouseError as exc:
        print(f"web: {exc}", file=sys.stderr)
        return 2
    from dataclasses import replace

    from ..superset_api import DASHBOARD_SLUG

    trino = replace(analyst_client(s, sec), schema=SILVER)
    links = {
        "Trino UI": f"{s.trino_url}/ui/",
        "MinIO console": f"http://{s.addr('minio')}:{s.minio_console_port}",
        "silver metrics": f"http://{s.addr('silver')}:{s.silver_metrics_port}/metrics",
        "Superset: Movies live": f"{s.superset_url}/superset/dashboard/{DASHBOARD_SLUG}/",
        "Prometheus alerts": f"{s.prometheus_url}/alerts",
        "Alertmanager": s.alertmanager_url,
    }
    from ..monitor.trace import Tracer

    tracer = Tracer.reading(s, sec, dsn, trino)
    from .pulse import Pulse

    backend = Backend(dsn, s.source_schema, trino, links, tracer=tracer, pulse=Pulse(s.prometheus_url))
    uvicorn.run(create_app(backend), host=s.addr("web"), port=s.web_port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

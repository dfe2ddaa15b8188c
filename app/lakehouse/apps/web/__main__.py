"""`python -m lakehouse.apps.web`: the demo page (uvicorn), started by `lakehouse up`."""

from __future__ import annotations

import sys

import uvicorn

from lakehouse import clients
from lakehouse.apps.web.app import Backend, create_app
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import load_settings
from lakehouse.errors import LakehouseError


def main() -> int:
    try:
        s = load_settings()
        ep = Endpoints.of(s, Secrets.load_or_create(s.home))
    except LakehouseError as exc:
        print(f"web: {exc}", file=sys.stderr)
        return 2
    from lakehouse.apps.monitor.trace import Tracer
    from lakehouse.apps.web.pulse import Pulse

    links = {
        "Trino UI": f"{ep.trino.url}/ui/",
        "MinIO console": ep.object_store.console,
        "silver metrics": f"http://{s.addr('silver')}:{s.silver_metrics_port}/metrics",
        "Superset: Movies live": ep.superset.dashboard,
        "Prometheus alerts": f"{ep.prometheus.url}/alerts",
        "Alertmanager": ep.alertmanager.url,
    }
    trino = clients.trino(ep, schema=ep.trino.silver_schema)
    tracer = Tracer.reading(ep)
    backend = Backend(
        ep.source.dsn, ep.source.schemas[0], trino, links, tracer=tracer, pulse=Pulse(ep.prometheus.url)
    )
    uvicorn.run(create_app(backend), host=s.addr("web"), port=s.web_port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

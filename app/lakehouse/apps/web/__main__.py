"""`python -m lakehouse.apps.web`: the demo page (uvicorn), started by `lakehouse up`."""

from __future__ import annotations

import sys
from collections.abc import Callable

import uvicorn

from lakehouse import clients, daemon
from lakehouse.apps.web.app import Backend, create_app
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings


def setup(s: Settings, sec: Secrets) -> Callable[[], None]:
    from lakehouse.apps.monitor.trace import Tracer
    from lakehouse.apps.web.pulse import Pulse

    ep = Endpoints.of(s, sec)
    links = {
        "Trino UI": f"{ep.trino.url}/ui/",
        "MinIO console": ep.object_store.console,
        "silver metrics": f"http://{s.addr('silver')}:{s.silver_metrics_port}/metrics",
        "Superset: Movies live": ep.superset.dashboard,
        "Prometheus alerts": f"{ep.prometheus.url}/alerts",
        "Alertmanager": ep.alertmanager.url,
    }
    trino = clients.trino(ep, schema=ep.trino.silver_schema)
    backend = Backend(
        ep.source.dsn,
        ep.source.schemas[0],
        trino,
        links,
        tracer=Tracer.reading(ep),
        pulse=Pulse(ep.prometheus.url),
    )
    app = create_app(backend)
    return lambda: uvicorn.run(app, host=s.addr("web"), port=s.web_port, log_level="info", access_log=False)


def main() -> int:
    return daemon.run("web", setup)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m lakehouse.apps.jobs`: the job scheduler service (lakehouse.apps.jobs.scheduler)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from lakehouse import daemon
from lakehouse.apps.jobs.runs import RunLog
from lakehouse.apps.jobs.scheduler import serve
from lakehouse.apps.jobs.tables import ensure_outputs
from lakehouse.clients import admin_client
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings


def setup(s: Settings, sec: Secrets) -> Callable[[], None]:
    trino = admin_client(s, sec)
    runs = RunLog(trino, s.bucket)
    return lambda: serve(s, runs, lambda: ensure_outputs(trino, s.bucket))


def main() -> int:
    return daemon.run("scheduler", setup)


if __name__ == "__main__":
    sys.exit(main())

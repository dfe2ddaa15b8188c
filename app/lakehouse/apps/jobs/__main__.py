"""`python -m lakehouse.apps.jobs`: the job scheduler service (lakehouse.apps.jobs.scheduler)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from lakehouse.apps.jobs.runs import RunLog
from lakehouse.apps.jobs.scheduler import serve
from lakehouse.apps.jobs.tables import ensure_outputs
from lakehouse.clients import admin_client
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import load_settings
from lakehouse.errors import LakehouseError


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        s = load_settings()
        trino = admin_client(s, Secrets.load_or_create(s.home))
        runs = RunLog(trino, s.bucket)
    except LakehouseError as exc:
        print(f"scheduler: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    serve(s, runs, lambda: ensure_outputs(trino, s.bucket))
    return 0


if __name__ == "__main__":
    sys.exit(main())

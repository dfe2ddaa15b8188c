"""`python -m lakehouse.jobs`: the job scheduler service (lakehouse.jobs.scheduler)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from ..clients import admin_client
from ..errors import LakehouseError
from ..secrets import Secrets
from ..settings import load_settings
from .runs import RunLog
from .scheduler import serve
from .tables import ensure_outputs


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

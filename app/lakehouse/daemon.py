"""How the stack's own long-running Python processes start and stop (catalog-sync, the monitor,
the job scheduler, the page): logging, the settings and secrets, the launcher's stop signal, and
the exit codes — 2 with one line why when it cannot start, 0 when stopped."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType

from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings, load_settings
from lakehouse.errors import LakehouseError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _leave(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(name: str, setup: Callable[[Settings, Secrets], Callable[[], None]]) -> int:
    """`setup` reads what the process needs and returns its serving loop; a LakehouseError from
    it (a missing file, a bad setting) ends the process with code 2 and the error on stderr.
    SIGTERM (`lakehouse down`, `docker stop`) ends the loop with code 0."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        s = load_settings()
        serve = setup(s, Secrets.load_or_create(s.home))
    except LakehouseError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _leave)
    serve()
    return 0

"""Waiting for something to become true, with a deadline: one loop for every part that polls."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    probe: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    still_running: Callable[[], bool] | None = None,
) -> bool:
    """Poll `probe` until true; False on timeout or as soon as the process has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        if still_running is not None and not still_running():
            return probe()
        time.sleep(interval)
    return False

"""Entry points of the jobs the unit tests run through the real runner (a child process each)."""

from __future__ import annotations

import time
from typing import Any


def ok(ctx: Any) -> dict[str, float]:
    return {"rows": float(ctx.params.get("rows", 3)), "seen_run": float(bool(ctx.run_id))}


def broken(ctx: Any) -> dict[str, float]:
    raise ValueError("a planned failure\nits last line names it")


def slow(ctx: Any) -> dict[str, float]:
    time.sleep(float(ctx.params.get("sleep_s", 60)))
    return {}

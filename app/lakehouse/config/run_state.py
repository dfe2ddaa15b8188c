"""The supervisors' state files in the run dir: each supervised service's restarts and last exit.
The launcher's supervisors write them; `status` and the monitor read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_SUFFIX = ".state.json"


def supervised(run_dir: Path) -> dict[str, Path]:
    """Service name → its supervisor's state file, for every service started under one here."""
    return {p.name.removesuffix(STATE_SUFFIX): p for p in sorted(run_dir.glob(f"*{STATE_SUFFIX}"))}


def read_state(path: Path) -> dict[str, Any] | None:
    """A supervisor's state file, None if there is none (an unsupervised or never-started service)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data

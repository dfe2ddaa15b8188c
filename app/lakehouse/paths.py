"""Where the repository's service configs live (shared by both launchers)."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout holding the service folders; LAKEHOUSE_ROOT overrides for installed copies."""
    override = os.environ.get("LAKEHOUSE_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[2]

"""Where things are on this machine: the checkout with the service configs (shared by both
launchers), the MovieLens sample beside it."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout holding the service folders; LAKEHOUSE_ROOT overrides for installed copies."""
    override = os.environ.get("LAKEHOUSE_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[3]


def movielens_sample() -> Path:
    """The MovieLens sample beside the checkout (`../shared/data/movielens-small`)."""
    return (repo_root().parent / "shared" / "data" / "movielens-small").resolve()

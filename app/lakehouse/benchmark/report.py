"""Where a benchmark's results go: its JSON document and its figures, the same way for every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, doc: Any) -> None:
    """The result document at `path` (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))


def save(fig: Any, path: Path) -> None:
    """A finished matplotlib figure as a PNG at `path`, then released."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

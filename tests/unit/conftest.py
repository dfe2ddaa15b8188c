from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see default settings, whatever the shell or an integration session exported."""
    for key in list(os.environ):
        if key.startswith("LAKEHOUSE_") and key != "LAKEHOUSE_ROOT":
            monkeypatch.delenv(key)

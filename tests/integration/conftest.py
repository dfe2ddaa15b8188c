"""One real native stack per test session, on its own state dir and ports, torn down in finally."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.settings import PORT_FIELDS, Settings, env_name, load_settings
from lakehouse.stack import Stack

# Test ports sit 1000 above the defaults so a developer's own `make up` stack keeps running.
PORT_OFFSET = 1000


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # Not pytest's tmp_path: that is private to root (0700) and Postgres runs as `postgres`.
    home = Path(tempfile.mkdtemp(prefix="lakehouse-test-"))
    home.chmod(0o755)
    defaults = Settings()
    saved = dict(os.environ)
    os.environ[env_name("home")] = str(home)
    for field in PORT_FIELDS:
        os.environ[env_name(field)] = str(getattr(defaults, field) + PORT_OFFSET)
    stack = Stack(load_settings())
    try:
        stack.up()
        yield stack
    finally:
        try:
            stack.down(wipe=True)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            os.environ.clear()
            os.environ.update(saved)

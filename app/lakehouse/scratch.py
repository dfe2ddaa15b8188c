"""A throw-away native stack: its own state dir and ports (defaults + an offset), wiped afterwards.

Used by the integration tests and by `lakehouse bench snapshot`, so neither touches the stack a
user runs with `make up`. The settings go through the environment, because the services that
are Python processes (bronze sink, silver job, catalog sync, page) read them from there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .settings import PORT_FIELDS, Settings, env_name, load_settings
from .stack import Stack


@contextmanager
def scratch_stack(port_offset: int, prefix: str = "lakehouse-scratch-") -> Iterator[Stack]:
    # Not a 0700 temp dir: Postgres runs as the `postgres` user and must enter it.
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    defaults = Settings()
    saved = dict(os.environ)
    os.environ[env_name("home")] = str(home)
    for field in PORT_FIELDS:
        os.environ[env_name(field)] = str(getattr(defaults, field) + port_offset)
    stack = Stack(load_settings())
    try:
        yield stack
    finally:
        try:
            stack.down(wipe=True)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            os.environ.clear()
            os.environ.update(saved)

"""A throw-away native stack: its own state dir and ports (defaults + an offset), wiped afterwards.

Used by the integration tests and by `lakehouse bench snapshot`, so neither touches the stack a
user runs with `make up`. Its services' logs are kept in `artifacts/logs/<prefix>/`. The settings
go through the environment, because the services that are Python processes (the silver job,
catalog sync, page) read them from there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakehouse.config.settings import PORT_FIELDS, Settings, env_name, load_settings
from lakehouse.launcher.stack import Stack


@contextmanager
def scratch_stack(
    port_offset: int, prefix: str = "lakehouse-scratch-", scale_out: bool = False
) -> Iterator[Stack]:
    # Not a 0700 temp dir: Postgres runs as the `postgres` user and must enter it.
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    defaults = Settings()
    saved = dict(os.environ)
    os.environ[env_name("home")] = str(home)
    for field in PORT_FIELDS:
        os.environ[env_name(field)] = str(getattr(defaults, field) + port_offset)
    if scale_out:
        os.environ[env_name("scale_out")] = "true"
    stack = Stack(load_settings())
    try:
        yield stack
    finally:
        # the services' logs outlive the stack (`down` wipes them), for whoever looks into a failure
        kept = stack.s.root / "artifacts" / "logs" / prefix.strip("-")
        shutil.rmtree(kept, ignore_errors=True)
        with contextlib.suppress(OSError):  # never in the way of stopping the stack
            shutil.copytree(home / "logs", kept, ignore_dangling_symlinks=True)
        try:
            stack.down(wipe=True)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            os.environ.clear()
            os.environ.update(saved)

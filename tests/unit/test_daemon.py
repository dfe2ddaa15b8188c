"""One runner for the stack's daemons: a setup that cannot start exits 2 with one line; the
launcher's SIGTERM ends the serving loop with 0."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lakehouse import daemon
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings, env_name
from lakehouse.errors import ConfigError


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_name("home"), str(tmp_path))


def test_a_setup_that_cannot_start_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def setup(s: Settings, sec: Secrets) -> None:
        raise ConfigError("trino/views/x.sql: not a view")

    assert daemon.run("catalog-sync", setup) == 2  # type: ignore[arg-type]
    assert capsys.readouterr().err == "catalog-sync: trino/views/x.sql: not a view\n"


def test_sigterm_ends_the_serving_loop_with_0() -> None:
    seen: list[str] = []
    before = signal.getsignal(signal.SIGTERM)

    def setup(s: Settings, sec: Secrets) -> object:
        seen.append(str(s.home))

        def serve() -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal unwinds this
            seen.append("not stopped")

        return serve

    try:
        with pytest.raises(SystemExit) as stopped:
            daemon.run("monitor", setup)  # type: ignore[arg-type]
        assert stopped.value.code == 0 and seen == [os.environ[env_name("home")]]
    finally:
        signal.signal(signal.SIGTERM, before)

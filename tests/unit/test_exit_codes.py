"""Documented exit codes, through the installed `lakehouse` executable as a subprocess (what
scripts and cron jobs see): 0 ok, 1 failure/not healthy, 2 usage or configuration error.

Run against an empty home on ports nothing listens on, so "the stack is down" is certain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config.settings import PORT_FIELDS, Settings, env_name

EXE = Path(sys.executable).with_name("lakehouse")
OFFSET = 3000  # neither the dev stack (0) nor the integration stack (+1000)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    e[env_name("home")] = str(tmp_path_factory.mktemp("home"))
    defaults = Settings()
    for f in PORT_FIELDS:
        e[env_name(f)] = str(getattr(defaults, f) + OFFSET)
    e[env_name("ready_timeout_s")] = "3"
    return e


def lakehouse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert EXE.exists(), f"{EXE} is not installed (make setup)"
    return subprocess.run(
        [str(EXE), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-option"],
        ["no-such-command"],
        ["bench", "--rate", "0"],
        ["bench", "--warmup", "-5"],
        ["generate", "--rate", "-5"],
        ["logs", "no-such-service"],
        ["sql"],  # the statement is required
        ["verify", "--wait", "-1"],
        ["quarantine", "replay", "--wait", "abc"],
        ["compact", "--wait", "0"],
        ["compact", "--table", "not a table"],
        ["bench", "batch", "--lines", "0"],
        ["bench", "batch", "--from", "/no/such/folder"],
        ["bench", "batch", "--from", "/"],  # a folder without bronze files
    ],
)
def test_usage_errors_exit_2_with_one_line(env: dict[str, str], args: list[str]) -> None:
    r = lakehouse(env, *args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_an_unknown_setting_exits_2_before_anything_starts(env: dict[str, str]) -> None:
    r = lakehouse({**env, "LAKEHOUSE_NO_SUCH_SETTING": "1"}, "status")
    assert r.returncode == 2
    assert "unknown setting LAKEHOUSE_NO_SUCH_SETTING" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["status"],  # every service stopped: not healthy
        ["ready", "minio"],
        ["verify"],  # needs Postgres, MinIO and Spark: cannot prove anything → failure
        ["tables"],
        ["quarantine", "list"],
        ["compact"],  # the silver job's mailbox is in the object store, which is down
    ],
)
def test_with_the_stack_down_commands_fail_with_exit_1(env: dict[str, str], args: list[str]) -> None:
    r = lakehouse(env, *args)
    assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_help_exits_0(env: dict[str, str]) -> None:
    r = lakehouse(env, "--help")
    assert r.returncode == 0
    assert "verify" in r.stdout

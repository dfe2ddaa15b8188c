import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from lakehouse.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["bogus"], "No such command 'bogus'"), (["status", "--bogus"], "No such option '--bogus'")],
)
def test_bad_arguments_get_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1


def test_unknown_setting_fails_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_NOPE", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "env", "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2  # a configuration error, like a usage error
    assert proc.stderr.strip() == (
        "lakehouse: error: unknown setting LAKEHOUSE_NOPE (see .env.example for the list)"
    )


def test_logs_of_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "nosuch"]) == 2
    assert "unknown service 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["generate", "--mix", "bogus=1"], 2, "--mix: expected KIND=WEIGHT"),
        (["generate", "--rate", "0"], 2, "Invalid value for '--rate'"),
        (["sql", "  ;  "], 2, "empty SQL statement"),
        (["sql", "SELECT 1", "--format", "xml"], 2, "Invalid value for '--format'"),
        (["load-movielens", "--path", "/nonexistent/movielens"], 1, "MovieLens folder not found"),
        (["quarantine", "replay", "--wait", "0"], 2, "Invalid value for '--wait'"),
        (["quarantine", "list", "--table", "no such;table"], 2, "--table 'no such;table': expected"),
        (["quarantine", "bogus"], 2, "No such command 'bogus'"),
        (["bench", "--floor-write", "append"], 2, "--floor-write is for the floor jobs: add --floor"),
        (["bench", "--floor", "--floor-write", "upsert"], 2, "Invalid value for '--floor-write'"),
    ],
)
def test_bad_input_to_the_new_commands_is_one_line(
    argv: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["serve", "nosuch"], 2, "no service named 'nosuch'"),
        (["ready", "nosuch"], 2, "no service named 'nosuch'"),
        (["compose", "init", "kafka"], 2, "Invalid value for '{postgres|minio|connectors}'"),
        (["compose", "config"], 2, "this step runs inside docker compose"),
        (["serve", "kafka"], 2, "this step runs inside docker compose"),
        (["install", "--only", "kafak"], 2, "unknown install step kafak"),
    ],
)
def test_bad_input_to_the_compose_commands_is_one_line(
    argv: list[str],
    code: int,
    needle: str,
    *,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    assert main(argv) == code
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1


def test_ready_says_not_ready_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_MINIO_PORT", "1")  # nothing listens there
    assert main(["ready", "minio"]) == 1
    assert capsys.readouterr().out == "minio not ready\n"


def test_a_command_that_signals_failure_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify` with a difference must exit 1: click returns (not raises) the code in main()."""
    from lakehouse.pipeline.silver import commands
    from lakehouse.pipeline.silver.verify import TableDiff

    monkeypatch.setattr("lakehouse.cli.data.open_stack", lambda: SimpleNamespace(s=None, endpoints=None))
    monkeypatch.setattr(commands, "verify", lambda s, ep, only, wait_s: [TableDiff("s.t", 1, 1, different=1)])
    assert main(["verify"]) == 1
    monkeypatch.setattr(commands, "verify", lambda s, ep, only, wait_s: [TableDiff("s.t", 1, 1)])
    assert main(["verify"]) == 0

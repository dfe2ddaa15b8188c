import subprocess
import sys

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
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "lakehouse: error: unknown setting LAKEHOUSE_NOPE (see .env.example for the list)"
    )


def test_logs_of_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "nosuch"]) == 1
    assert "unknown service 'nosuch'" in capsys.readouterr().err

"""The integration tier's choice of stack (tests/integration/target.py): a `LAKEHOUSE_TEST_ENV`
file is checked against this environment's settings, and a stack that is not up is refused
by name, before any test runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import PORT_FIELDS, Settings, env_name, load_settings
from lakehouse.errors import LakehouseError
from tests.integration.target import ENV_VAR, differences, existing

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A stack's settings on ports where nothing listens."""
    monkeypatch.setenv(env_name("home"), str(tmp_path / "home"))
    for field in PORT_FIELDS:
        monkeypatch.setenv(env_name(field), str(getattr(Settings(), field) + 3100))
    return load_settings()


def _env_json(s: Settings, path: Path) -> Path:
    path.write_text(json.dumps(Endpoints.of(s, Secrets.load_or_create(s.home)).as_json()))
    return path


def test_differences_name_the_keys_not_the_values() -> None:
    a = {"trino": {"url": "https://x:1", "password": "p1"}, "kafka": {"bootstrap": "k:1"}}
    b = {"trino": {"url": "https://x:2", "password": "p2"}, "kafka": {"bootstrap": "k:1"}}
    assert differences(a, b) == ["trino.password", "trino.url"]
    assert differences(a, a) == []


def test_a_file_that_is_not_env_json_is_refused(tmp_path: Path, settings: Settings) -> None:
    bad = tmp_path / "env.json"
    bad.write_text('{"source": {}}')
    with pytest.raises(LakehouseError, match="not the output of `lakehouse env --json`"):
        existing(bad)
    with pytest.raises(LakehouseError, match="not the output"):
        existing(tmp_path / "missing.json")


def test_another_stacks_file_is_refused_with_the_parts_that_differ(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _env_json(settings, tmp_path / "env.json")
    monkeypatch.setenv(env_name("trino_https_port"), str(settings.trino_https_port + 1))
    with pytest.raises(LakehouseError, match=r"another stack .*differ in trino\.url\)"):
        existing(other)


def test_a_stack_that_is_not_up_is_refused_naming_its_services(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = _env_json(settings, tmp_path / "env.json")
    monkeypatch.setenv(ENV_VAR, str(same))  # as the tier runs: the variable is not a setting
    with pytest.raises(LakehouseError, match=r"is not up: postgres, .*kafka.* not ready"):
        existing(same)

import json
from pathlib import Path

import pytest

from lakehouse.config.paths import repo_root
from lakehouse.config.render import load_connector, render_text
from lakehouse.config.settings import load_settings
from lakehouse.errors import ConfigError
from lakehouse.launcher.stack import Stack


def test_placeholders_filled_and_connect_references_kept() -> None:
    out = render_text("a={{ x }} b=${file:/p:k}", {"x": 5}, "f")
    assert out == "a=5 b=${file:/p:k}"


def test_unknown_placeholder_names_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"conf.properties: unknown setting 'nope'"):
        render_text("port={{nope}}", {}, "conf.properties")


def test_malformed_connector_json_names_file_and_position(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{"name": "x",\n "config": {"a": }}')
    with pytest.raises(ConfigError, match=r"c.json:2:\d+: malformed JSON"):
        load_connector(f, {})


def test_connector_values_must_be_strings(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": "x", "config": {"connector.class": "C", "tasks.max": 1}}))
    with pytest.raises(ConfigError, match=r"config key 'tasks\.max' must be a string"):
        load_connector(f, {})


def test_connector_unknown_placeholder_names_key(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": "x", "config": {"connector.class": "C", "a": "{{bogus}}"}}))
    with pytest.raises(ConfigError, match=r"config key 'a': unknown setting 'bogus'"):
        load_connector(f, {})


def test_debezium_connector_renders_with_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    stack = Stack(load_settings())
    stack.preflight()  # every template of every service renders
    name, cfg = load_connector(repo_root() / "debezium" / "postgres-source.json", stack.connector_values())
    assert name == "lakehouse-postgres-source"
    assert cfg["plugin.name"] == "pgoutput"
    assert cfg["provide.transaction.metadata"] == "true"
    assert int(cfg["heartbeat.interval.ms"]) > 0
    assert cfg["database.user"] == "lakehouse_cdc"
    # the password is a FileConfigProvider reference, never the secret itself
    assert cfg["database.password"].startswith("${file:")
    assert stack.ctx.secrets.pg_cdc_password not in json.dumps(cfg)

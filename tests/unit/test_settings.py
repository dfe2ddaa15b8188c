from pathlib import Path

import pytest

from lakehouse.config.paths import repo_root
from lakehouse.config.secrets import KEYS, Secrets
from lakehouse.config.settings import PORT_FIELDS, Settings, load_settings
from lakehouse.config.versions import Versions, parse_env_file
from lakehouse.errors import ConfigError


def test_defaults_are_loopback_and_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.host == "127.0.0.1"
    assert s.kafka_bootstrap == f"127.0.0.1:{s.kafka_port}"
    assert s.bronze_uri == "s3://lakehouse/bronze"


def test_unknown_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_KAFKA_PROT", "1")
    with pytest.raises(ConfigError, match="LAKEHOUSE_KAFKA_PROT"):
        load_settings()


def test_invalid_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_CONNECT_PORT", "99999")
    with pytest.raises(ConfigError, match="LAKEHOUSE_CONNECT_PORT"):
        load_settings()


def test_clashing_ports_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_MINIO_PORT", "29092")
    with pytest.raises(ConfigError, match="LAKEHOUSE_KAFKA_PORT and LAKEHOUSE_MINIO_PORT"):
        load_settings()


def test_versions_file_is_pinned_and_complete() -> None:
    v = Versions.load()
    assert v.kafka.count(".") == 2
    assert v.debezium.endswith(".Final")
    assert v.minio.startswith("v0.0.0-")


def test_versions_file_rejects_unpinned(tmp_path: Path) -> None:
    text = (repo_root() / "versions.env").read_text()
    f = tmp_path / "versions.env"
    f.write_text(text.replace("KAFKA_VERSION=4.3.1", "KAFKA_VERSION=latest"))
    with pytest.raises(ConfigError, match="KAFKA_VERSION=latest is not a pinned version"):
        Versions.load(f)
    f.write_text(text + "\nEXTRA_THING=1\n")
    with pytest.raises(ConfigError, match="unknown key EXTRA_THING"):
        Versions.load(f)


def test_env_file_syntax_error_has_line(tmp_path: Path) -> None:
    f = tmp_path / "x.env"
    f.write_text("A=1\nnot a pair\n")
    with pytest.raises(ConfigError, match=r"x.env:2"):
        parse_env_file(f)


def test_secrets_generated_once_private_and_stable(tmp_path: Path) -> None:
    first = Secrets.load_or_create(tmp_path)
    second = Secrets.load_or_create(tmp_path)
    assert first == second
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600
    assert len({first.pg_app_password, first.pg_cdc_password, first.minio_root_password}) == 3
    assert len(first.minio_root_password) >= 24


def test_damaged_secrets_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(f"{KEYS[0]}=x\n")
    with pytest.raises(ConfigError, match="missing PG_APP_PASSWORD"):
        Secrets.load_or_create(tmp_path)


def test_secrets_of_an_older_install_gain_the_new_credentials(tmp_path: Path) -> None:
    first = Secrets.load_or_create(tmp_path)
    path = tmp_path / "secrets.env"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines() if "TRINO" not in line))
    upgraded = Secrets.load_or_create(tmp_path)
    assert upgraded.pg_app_password == first.pg_app_password  # nothing that data depends on changes
    assert upgraded.trino_analyst_password and upgraded.trino_analyst_password != first.trino_analyst_password
    assert Secrets.load_or_create(tmp_path) == upgraded  # appended once, then stable


def test_env_example_documents_every_setting() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (repo_root() / ".env.example").read_text().splitlines()
        if line.startswith("LAKEHOUSE_")
    }
    from lakehouse.config.settings import Settings, env_name

    assert documented == {env_name(f) for f in Settings.model_fields}


def test_default_ports_do_not_collide_across_the_scratch_offsets() -> None:
    """The dev stack (+0), the integration tests (+1000) and `bench snapshot` (+2000) can run together."""
    defaults = Settings()
    sets = {off: {getattr(defaults, f) + off for f in PORT_FIELDS} for off in (0, 1000, 2000)}
    assert all(len(s) == len(PORT_FIELDS) for s in sets.values())
    assert not (sets[0] & sets[1000]) and not (sets[0] & sets[2000]) and not (sets[1000] & sets[2000])

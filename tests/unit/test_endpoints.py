"""`Endpoints`: what `lakehouse env --json` prints, read back as the same typed value; the clients
made from it reach the places and users the launcher configures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from lakehouse import clients
from lakehouse.config.endpoints import READER_USER, Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings
from lakehouse.launcher.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(Settings(home=tmp_path / "state"))


def test_the_env_json_reads_back_as_the_same_endpoints(stack: Stack, tmp_path: Path) -> None:
    env = tmp_path / "env.json"
    env.write_text(json.dumps(stack.env()))
    back = Endpoints.read(env)
    assert back == stack.endpoints
    assert back.source.dsn == stack.postgres.app_dsn and back.source.cdc_dsn == stack.postgres.cdc_dsn
    assert back.kafka.bootstrap == stack.s.kafka_bootstrap


def test_a_file_that_is_not_the_env_json_is_refused_naming_the_field(stack: Stack, tmp_path: Path) -> None:
    env = stack.env()
    del env["trino"]["admin_password"]
    env["object_store"]["region"] = "nowhere"
    bad = tmp_path / "env.json"
    bad.write_text(json.dumps(env))
    with pytest.raises(ValidationError) as err:
        Endpoints.read(bad)
    assert "trino.admin_password" in str(err.value) and "object_store.region" in str(err.value)


def test_clients_are_made_for_the_users_the_stack_configures(stack: Stack) -> None:
    ep, sec = stack.endpoints, Secrets.load_or_create(stack.s.home)
    analyst, admin = clients.trino(ep), clients.trino(ep, admin=True, schema="silver")
    assert (analyst.host, analyst.port) == (stack.s.addr("trino"), stack.s.trino_https_port)
    assert (analyst.user, analyst.password) == ("analyst", sec.trino_analyst_password)
    assert (admin.user, admin.password, admin.schema) == ("admin", sec.trino_admin_password, "silver")
    root, reader = clients.object_store(ep), clients.object_store(ep, reader=True)
    assert root._base_url.host == f"{stack.s.addr('minio')}:{stack.s.minio_port}"
    root_creds, reader_creds = root._provider.retrieve(), reader._provider.retrieve()  # type: ignore[union-attr]
    assert (root_creds.access_key, root_creds.secret_key) == (sec.minio_root_user, sec.minio_root_password)
    assert (reader_creds.access_key, reader_creds.secret_key) == (READER_USER, sec.minio_reader_password)

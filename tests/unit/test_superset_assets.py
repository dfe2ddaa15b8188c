"""Superset's YAML assets and lock, without a server: the UUID links hold, only the connection
is a template, it renders for this install, and the lock pins the version in versions.env."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from lakehouse.config.paths import repo_root
from lakehouse.config.render import render_file
from lakehouse.config.versions import Versions

ROOT = repo_root()
ASSETS = ROOT / "superset" / "assets"


def _load(folder: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ASSETS / folder).rglob("*.yaml"))]


def test_every_link_between_assets_resolves() -> None:
    (database,) = _load("databases")
    datasets, charts, (dashboard,) = _load("datasets"), _load("charts"), _load("dashboards")
    assert {d["database_uuid"] for d in datasets} == {database["uuid"]}
    dataset_ids = {d["uuid"] for d in datasets}
    assert all(c["dataset_uuid"] in dataset_ids for c in charts)
    for c in charts:  # the saved query (what GET /chart/<id>/data runs) uses the chart's dataset
        assert json.loads(c["query_context"])["datasource"]["id"] == c["dataset_uuid"], c["slice_name"]
    placed = {
        node["meta"]["uuid"]: node["meta"]
        for node in dashboard["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    }
    assert set(placed) == {c["uuid"] for c in charts}
    assert all(isinstance(meta.get("chartId"), int) for meta in placed.values())  # else import skips it
    assert dashboard["slug"] == "movies-live" and dashboard["dashboard_title"] == "Movies live"
    assert dashboard["metadata"]["refresh_frequency"] == 10
    uuids = [a["uuid"] for a in [database, dashboard, *datasets, *charts]]
    assert len(uuids) == len(set(uuids))


def test_no_chart_renders_source_data_as_html() -> None:
    """Titles and tags are whatever the source holds: a table chart shows `<script>…` or `<b>` as
    the text it is (Superset's table chart renders cells as sanitised HTML when allowed)."""
    tables = [c for c in _load("charts") if c["viz_type"] == "table"]
    assert tables, "no table chart to check"
    for c in tables:
        saved = json.loads(c["query_context"])["form_data"]
        assert c["params"].get("allow_render_html") is False, c["slice_name"]
        assert saved.get("allow_render_html") is False, c["slice_name"]


def test_only_the_connection_is_a_template_and_datasets_are_trino_sql() -> None:
    for path in ASSETS.rglob("*.yaml"):
        templated = "{{" in path.read_text()
        assert templated == (path.parent.name == "databases"), path
    for d in _load("datasets"):
        assert d["source_db_engine"] == "trino" and d["schema"] and d["sql"]
        assert re.search(r"\blakehouse\.(silver|analytics|ml)\.", d["sql"]), d["table_name"]


def test_the_connection_renders_for_this_install(tmp_path: Path) -> None:
    values = {
        "trino_user": "analyst",
        "trino_password": "p%40ss",
        "trino_host": "127.0.0.1",
        "trino_port": 28443,
        "trino_ca_cert": "/state/trino/tls/cert.pem",
    }
    (path,) = (ASSETS / "databases").glob("*.yaml")
    db = yaml.safe_load(render_file(path, values))
    uri = urlsplit(db["sqlalchemy_uri"])
    assert (uri.scheme, uri.username, uri.password, uri.hostname, uri.port, uri.path) == (
        "trino", "analyst", "p%40ss", "127.0.0.1", 28443, "/lakehouse",
    )  # fmt: skip
    connect_args = db["extra"]["engine_params"]["connect_args"]
    assert connect_args == {"http_scheme": "https", "verify": "/state/trino/tls/cert.pem"}


def test_the_lock_pins_the_superset_version_and_its_known_needs() -> None:
    lock = (ROOT / "superset" / "requirements.txt").read_text().lower()
    pins = dict(
        line.split("==", 1) for line in lock.splitlines() if "==" in line and not line.startswith("#")
    )
    pins = {k.replace("_", "-"): v for k, v in pins.items()}
    assert pins["apache-superset"] == Versions.load().superset
    major, minor = (int(x) for x in pins["flask-caching"].split(".")[:2])
    assert (major, minor) < (2, 5)  # 2.5 breaks app creation in 6.1.0
    assert {"rich", "cachetools", "trino", "gunicorn"} <= set(pins)
    assert all(re.fullmatch(r"[0-9][0-9a-z.+!-]*", v) for v in pins.values())


def test_superset_connection_errors_are_reduced_to_the_drivers_words() -> None:
    from lakehouse.apps.superset_api import one_line

    wrapped = (
        "(builtins.NoneType) None\n[SQL: error 401: b'Access Denied: Invalid credentials']\n"
        "(Background on this error at: https://sqlalche.me/e/14/dbapi)"
    )
    assert one_line(wrapped) == "error 401: b'Access Denied: Invalid credentials'"
    assert (
        one_line("Max retries exceeded\n  (Caused by refused)") == "Max retries exceeded (Caused by refused)"
    )

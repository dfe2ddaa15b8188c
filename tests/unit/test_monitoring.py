"""Monitoring without a running stack: the monitor's metric families and probes, Prometheus and
Alertmanager config (promtool/amtool), every rule's firing and resolving case, metric names."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from lakehouse.apps.monitor import probes
from lakehouse.apps.monitor.exporter import Readings, ReadingsCollector
from lakehouse.apps.monitor.probes import ConnectorState, Freshness, Slot
from lakehouse.clients.trino_client import Result, Trino
from lakehouse.config.paths import repo_root
from lakehouse.config.settings import Settings
from lakehouse.launcher.services.prometheus import PROMTOOL_BIN, scrape_targets
from lakehouse.pipeline.query import inventory
from lakehouse.pipeline.query.inventory import Blocked, Registered

ROOT = repo_root()
PROM = ROOT / "prometheus"


def _scrape(readings: Readings, now: float = 1_000.0) -> dict[str, float]:
    collector = ReadingsCollector(clock=lambda: now)
    collector.publish(readings)
    registry = CollectorRegistry()
    registry.register(collector)
    return _series(registry)


def _series(registry: CollectorRegistry) -> dict[str, float]:
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_readings_become_lakehouse_series_with_one_state_set_per_connector_and_task() -> None:
    r = Readings(
        slots=[
            Slot("lakehouse_slot", True, 4096.0, 128.0, "reserved", 4e9),
            Slot("old_slot", False, 0.0, 0.0, "lost", None),
        ],
        connectors=[ConnectorState("src", "RUNNING", {0: "FAILED"})],
        lag={("cdc.movielens.ratings", 0): 7, ("cdc.movielens.ratings", 1): 3, ("cdc.movielens.tags", 0): 0},
        freshness=[Freshness("ratings", 10, 940.0), Freshness("links", 0, None)],
        quarantine_rows=2,
        trino_up=True,
        probe_ok={"postgres": True, "connect": True, "kafka": False, "trino": True},
        polled_at=990.0,
        restarts={"silver": 2, "kafka": 0},
    )
    m = _scrape(r)
    assert m['lakehouse_service_restarts_total{service="silver"}'] == 2.0
    assert m['lakehouse_service_restarts_total{service="kafka"}'] == 0.0
    assert m['lakehouse_postgres_slot_retained_wal_bytes{slot="lakehouse_slot"}'] == 4096.0
    assert m['lakehouse_postgres_slot_confirmed_flush_lag_bytes{slot="lakehouse_slot"}'] == 128.0
    assert m['lakehouse_postgres_slot_active{slot="lakehouse_slot"}'] == 1.0
    assert m['lakehouse_postgres_slot_lost{slot="lakehouse_slot"}'] == 0.0
    assert m['lakehouse_postgres_slot_lost{slot="old_slot"}'] == 1.0
    assert m['lakehouse_postgres_slot_safe_wal_bytes{slot="lakehouse_slot"}'] == 4e9
    assert 'lakehouse_postgres_slot_safe_wal_bytes{slot="old_slot"}' not in m  # Postgres gives none
    assert m['lakehouse_connect_connector_state{connector="src",state="RUNNING"}'] == 1.0
    assert m['lakehouse_connect_connector_state{connector="src",state="FAILED"}'] == 0.0
    assert m['lakehouse_connect_task_state{connector="src",state="FAILED",task="0"}'] == 1.0
    assert m['lakehouse_bronze_consumer_lag_records{topic="cdc.movielens.ratings"}'] == 10.0
    assert m['lakehouse_bronze_consumer_lag_records{topic="cdc.movielens.tags"}'] == 0.0
    # freshness is computed at scrape time from the newest source commit
    assert m['lakehouse_silver_freshness_seconds{table="ratings"}'] == 60.0
    assert m['lakehouse_silver_newest_source_timestamp_seconds{table="ratings"}'] == 940.0
    assert 'lakehouse_silver_freshness_seconds{table="links"}' not in m  # empty table: no age
    assert m['lakehouse_silver_rows{table="links"}'] == 0.0
    assert m["lakehouse_quarantine_rows"] == 2.0
    assert m["lakehouse_trino_up"] == 1.0
    assert m['lakehouse_monitor_probe_success{probe="kafka"}'] == 0.0
    assert m['lakehouse_monitor_probe_errors_total{probe="kafka"}'] == 1.0
    assert m["lakehouse_monitor_ready"] == 1.0
    assert all(name.startswith("lakehouse_") for name in m)


def test_restarts_are_read_from_each_supervisors_state_file(tmp_path: Path) -> None:
    from lakehouse.launcher.procs import ProcFiles

    for name, state in {"silver": '{"restarts": 3, "pid": 7}', "kafka": '{"restarts": 0}'}.items():
        ProcFiles(tmp_path / f"{name}.pid", tmp_path / "x.log").statefile.write_text(state)
    (tmp_path / "trino.pid").write_text("1\n")  # a pid file is not a supervisor's state
    ProcFiles(tmp_path / "web.pid", tmp_path / "x.log").statefile.write_text("{half-written")
    assert probes.restarts(tmp_path) == {"kafka": 0, "silver": 3}


def test_before_the_first_poll_the_monitor_is_not_ready_and_publishes_no_readings() -> None:
    m = _scrape(Readings())
    assert m["lakehouse_monitor_ready"] == 0.0
    assert not any(k.startswith("lakehouse_silver_") for k in m)


def test_each_table_with_events_in_quarantine_gets_a_series_that_goes_once_replayed() -> None:
    blocked = [
        Blocked("movielens.movies", 3, "schema: year does not fit int", 900.0),
        Blocked("movielens.tags", 1, "contract: tag is null", 950.0),
    ]
    collector = ReadingsCollector(clock=lambda: 1_000.0)
    registry = CollectorRegistry()
    registry.register(collector)
    collector.publish(Readings(quarantined_by_table=blocked, quarantine_rows=5, polled_at=990.0))
    m = _series(registry)
    assert m['lakehouse_silver_table_quarantined_events{table="movielens.movies"}'] == 3.0
    assert m['lakehouse_silver_table_quarantined_events{table="movielens.tags"}'] == 1.0
    # movies replayed: the next poll's readings replace the old ones whole, its series vanishes
    collector.publish(Readings(quarantined_by_table=blocked[1:], quarantine_rows=1, polled_at=1_000.0))
    m = _series(registry)
    assert 'lakehouse_silver_table_quarantined_events{table="movielens.movies"}' not in m
    assert m['lakehouse_silver_table_quarantined_events{table="movielens.tags"}'] == 1.0
    collector.publish(Readings(quarantine_rows=0, polled_at=1_010.0))
    assert not any(k.startswith("lakehouse_silver_table_quarantined_events") for k in _series(registry))


class FakeTrino:
    """Answers the information_schema query with `listed` and any other query with `rows`."""

    def __init__(self, listed: list[list[Any]], rows: list[list[Any]]) -> None:
        self.listed = listed
        self.rows = rows
        self.sql: list[str] = []

    def query(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        self.sql.append(sql)
        if "information_schema.tables" in sql:
            return Result(["table_schema", "table_name"], self.listed)
        return Result(["source_table", "_col1", "_col2", "_col3"], self.rows)


def test_quarantine_probe_counts_all_rows_and_per_table_count_latest_reason_and_oldest_event() -> None:
    oldest = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    fake = FakeTrino(
        [],
        [
            ["movielens.movies", 3, "schema: year does not fit int", oldest],
            ["movielens.tags", 1, "contract: tag is null", datetime(2024, 5, 1, 12, 30)],  # naive = UTC
            [None, 2, "parse: not JSON", oldest],  # unparseable lines belong to no table
        ],
    )
    rows, blocked = inventory.quarantine(cast(Trino, fake))
    assert rows == 6
    assert blocked == [
        Blocked("movielens.movies", 3, "schema: year does not fit int", oldest.timestamp()),
        Blocked("movielens.tags", 1, "contract: tag is null", oldest.timestamp() + 1800),
    ]
    sql = " ".join(fake.sql[-1].split())
    assert "FROM lakehouse.ops.quarantine" in sql
    assert "max_by(reason, quarantined_at)" in sql and "min(quarantined_at)" in sql
    assert "GROUP BY source_table" in sql


def test_one_listing_names_the_silver_tables_and_whether_the_quarantine_is_registered() -> None:
    fake = FakeTrino([["silver", "movielens.movies"], ["silver", "movielens.ratings"]], [])
    assert inventory.registered(cast(Trino, fake)) == Registered(
        ["movielens.movies", "movielens.ratings"], False
    )
    fake = FakeTrino([["silver", "movielens.movies"], ["ops", "quarantine"]], [])
    assert inventory.registered(cast(Trino, fake)) == Registered(["movielens.movies"], True)
    # merge-on-read: silver.ratings is the live view over silver_base.ratings
    fake = FakeTrino([["silver", "ratings"], ["silver_base", "ratings"]], [])
    assert inventory.registered(cast(Trino, fake)) == Registered(["ratings"], False, ("ratings",))
    sql = " ".join(fake.sql[-1].split())
    assert "table_schema IN ('silver', 'silver_base')" in sql
    assert "table_schema = 'ops' AND table_name = 'quarantine'" in sql


def _poller(monkeypatch: pytest.MonkeyPatch, listed: Registered, blocked: list[Blocked]) -> Readings:
    return _new_poller(monkeypatch, listed, blocked).poll()


def _new_poller(monkeypatch: pytest.MonkeyPatch, listed: Registered, blocked: list[Blocked]) -> Any:
    import psycopg

    from lakehouse.apps.monitor.__main__ import Poller

    def no_postgres(*args: Any, **kwargs: Any) -> Any:
        raise psycopg.OperationalError("refused")

    monkeypatch.setattr(psycopg, "connect", no_postgres)
    monkeypatch.setattr(probes, "connectors", lambda http, url: [])
    monkeypatch.setattr(probes, "consumer_lag", lambda consumer, topics: {})
    monkeypatch.setattr(probes, "trino_up", lambda http, url: True)
    monkeypatch.setattr(inventory, "registered", lambda trino: listed)
    monkeypatch.setattr(probes, "freshness", lambda trino, tables: [])
    monkeypatch.setattr(inventory, "quarantine", lambda trino: (3, blocked))
    poller = Poller.__new__(Poller)  # no clients: every probe is replaced above
    poller.s, poller.dsn, poller.http, poller.kafka = Settings(), "postgresql://x", None, None
    poller.topics, poller.trino, poller.last = "^cdc\\..+", None, Readings()
    poller.trino_read_at = None
    poller.cross, poller.cross_file, poller.cross_run_at = (), None, {}
    monkeypatch.setattr(type(poller), "cross_rules", lambda self: self.cross)
    return poller


def test_the_trino_probe_of_a_poll_reads_the_quarantine_per_table(monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = [Blocked("movielens.movies", 3, "schema: year does not fit int", 900.0)]
    r = _poller(monkeypatch, Registered([], True), blocked)
    assert r.quarantined_by_table == blocked and r.quarantine_rows == 3 and r.probe_ok["trino"]
    assert r.probe_ok["postgres"] is False
    # before the quarantine table is registered there is nothing to count, and it is not asked
    r = _poller(monkeypatch, Registered([], False), blocked)
    assert r.quarantined_by_table == [] and r.quarantine_rows is None and r.probe_ok["trino"]


def test_trino_is_asked_every_trino_interval_and_again_at_once_after_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each of the monitor's Trino reads costs Trino about a CPU second: it reads them on its own,
    longer interval, keeping the last readings between; a failed read is retried on the next poll."""
    from lakehouse.apps.monitor.__main__ import trino_due
    from lakehouse.apps.monitor.probes import Freshness
    from lakehouse.errors import LakehouseError

    assert trino_due(None, 5.0, 30.0) and trino_due(0.0, 30.0, 30.0) and not trino_due(0.0, 29.0, 30.0)
    poller = _new_poller(monkeypatch, Registered(["movielens.movies"], True), [])
    asked: list[list[str]] = []
    answer: list[Any] = [[Freshness("movielens.movies", 7, 100.0)]]

    def freshness(trino: Any, tables: list[str]) -> Any:
        asked.append(tables)
        if isinstance(answer[0], Exception):
            raise answer[0]
        return answer[0]

    monkeypatch.setattr(probes, "freshness", freshness)
    first = poller.poll()
    assert len(asked) == 1 and first.freshness[0].rows == 7 and first.probe_ok["trino"]
    answer[0] = [Freshness("movielens.movies", 8, 110.0)]
    second = poller.poll()  # within the interval: not asked, the last readings stand
    assert len(asked) == 1 and second.freshness == first.freshness and second.probe_ok["trino"]
    poller.trino_read_at -= poller.s.monitor_trino_interval_s
    assert poller.poll().freshness[0].rows == 8 and len(asked) == 2
    poller.trino_read_at -= poller.s.monitor_trino_interval_s
    answer[0] = LakehouseError("Trino: query failed")
    failed = poller.poll()
    assert len(asked) == 3 and failed.probe_ok["trino"] is False and failed.freshness[0].rows == 8
    answer[0] = [Freshness("movielens.movies", 9, 120.0)]
    assert poller.poll().freshness[0].rows == 9 and len(asked) == 4  # retried at once


def test_cross_table_rules_run_every_every_s_and_their_results_become_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakehouse.pipeline.query import checks
    from lakehouse.pipeline.query.checks import CrossResult
    from lakehouse.pipeline.silver.expectations import CrossRule

    poller = _new_poller(monkeypatch, Registered(["ratings"], True), [])
    ok = CrossRule("movielens.ratings", "rating_movie_exists", "SELECT 1", 300.0)
    broken = CrossRule("movielens.tags", "tag_movie_exists", "SELECT nope", 60.0)
    poller.cross = (ok, broken)
    ran: list[str] = []
    found = {ok.name: 2}

    def run(trino: Any, rule: CrossRule, *, sample: bool = True) -> CrossResult:
        ran.append(rule.name)
        if rule is broken:
            return CrossResult(rule, None, error="Trino: column 'nope' cannot be resolved")
        return CrossResult(rule, found[rule.name])

    monkeypatch.setattr(checks, "run", run)
    r = poller.poll()
    assert ran == [ok.name, broken.name]
    series = _scrape(r)
    labels = '{rule="rating_movie_exists",table="movielens.ratings"}'
    assert series[f"lakehouse_expectation_cross_failing_rows{labels}"] == 2.0
    assert series[f"lakehouse_expectation_cross_last_run_failed{labels}"] == 0.0
    tags = '{rule="tag_movie_exists",table="movielens.tags"}'
    assert series[f"lakehouse_expectation_cross_last_run_failed{tags}"] == 1.0
    assert f"lakehouse_expectation_cross_failing_rows{tags}" not in series

    found[ok.name] = 0
    poller.trino_read_at = None  # Trino is read again, but neither rule is due: results stand
    assert _scrape(poller.poll())[f"lakehouse_expectation_cross_failing_rows{labels}"] == 2.0
    assert len(ran) == 2
    poller.cross_run_at[broken.name] -= 60.0
    poller.trino_read_at = None
    poller.poll()
    assert ran[2:] == [broken.name]  # its own every_s; the other waits for its 300 s
    poller.cross_run_at[ok.name] -= 300.0
    poller.trino_read_at = None
    assert _scrape(poller.poll())[f"lakehouse_expectation_cross_failing_rows{labels}"] == 0.0


def test_the_monitor_reloads_cross_table_rules_when_their_file_changes(tmp_path: Path) -> None:
    from lakehouse.apps.monitor.__main__ import Poller

    rules = tmp_path / "expectations.yml"
    cross = (
        "cross_table:\n  - name: {}\n    table: movielens.ratings\n"
        "    rows: SELECT * FROM {{{{silver}}}}.ratings\n"
    )
    rules.write_text(cross.format("first"))
    poller = Poller.__new__(Poller)
    poller.s = Settings(home=tmp_path / "home", expectations_file=rules)
    poller.cross, poller.cross_file, poller.cross_run_at = (), None, {}
    assert [r.name for r in poller.cross_rules()] == ["first"]
    rules.write_text(cross.format("second"))
    os.utime(rules, (1.0, 1.0))
    assert [r.name for r in poller.cross_rules()] == ["second"]
    rules.write_text("cross_table: [nonsense]\n")  # refused: the rules read before stay
    os.utime(rules, (2.0, 2.0))
    assert [r.name for r in poller.cross_rules()] == ["second"]


def test_connect_probe_reads_connector_and_task_states() -> None:
    body = {
        "src": {"status": {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "FAILED"}]}},
        "idle": {"status": {"connector": {"state": "PAUSED"}, "tasks": []}},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/connectors" and request.url.params["expand"] == "status"
        return httpx.Response(200, json=body)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        got = probes.connectors(http, "http://connect:8083")
    assert got == [ConnectorState("idle", "PAUSED", {}), ConnectorState("src", "RUNNING", {0: "FAILED"})]


def test_trino_probe_is_down_while_starting_or_unreachable() -> None:
    answers = iter(
        [httpx.Response(200, json={"starting": True}), httpx.Response(200, json={"starting": False})]
    )
    with httpx.Client(transport=httpx.MockTransport(lambda r: next(answers))) as http:
        assert probes.trino_up(http, "http://t/v1/info") is False
        assert probes.trino_up(http, "http://t/v1/info") is True

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        assert probes.trino_up(http, "http://t/v1/info") is False


def _promtool() -> str:
    if not PROMTOOL_BIN.exists():
        pytest.fail(f"{PROMTOOL_BIN} missing — `make test` installs Debian's prometheus (lakehouse install)")
    return str(PROMTOOL_BIN)


def test_promtool_checks_the_config_the_launcher_builds(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "targets").mkdir(parents=True)
    (etc / "prometheus.yml").symlink_to(PROM / "prometheus.yml")
    (etc / "rules").symlink_to(PROM / "rules")
    for job, port in scrape_targets(Settings()).items():
        (etc / "targets" / f"{job}.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"]}]))
    run = subprocess.run(
        [_promtool(), "check", "config", str(etc / "prometheus.yml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    groups = yaml.safe_load((PROM / "rules" / "lakehouse.yml").read_text())["groups"]
    rules = sum(len(g["rules"]) for g in groups)
    assert f"{rules} rules found" in run.stdout


def test_every_scrape_job_has_a_target_file_from_the_launcher() -> None:
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    files = {job["job_name"]: job["file_sd_configs"][0]["files"] for job in cfg["scrape_configs"]}
    assert set(files) == set(scrape_targets(Settings()))
    assert all(f == [f"targets/{job}.json"] for job, f in files.items())


def test_promtool_rule_tests_fire_and_resolve_every_alert() -> None:
    rules = yaml.safe_load((PROM / "rules" / "lakehouse.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROM / "tests" / "lakehouse.test.yml").read_text())
    fired: set[str] = set()
    resolved: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else resolved).add(check["alertname"])
    assert alerts == fired == resolved, "every alert needs a firing and a resolving case"
    run = subprocess.run(
        [_promtool(), "test", "rules", str(PROM / "tests" / "lakehouse.test.yml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_rule_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The rule tests can fail: the same tests against a rule file with one threshold changed."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    text = (PROM / "rules" / "lakehouse.yml").read_text()
    (tmp_path / "rules" / "lakehouse.yml").write_text(text.replace("> 1073741824", "> 4294967296"))
    shutil.copy(PROM / "tests" / "lakehouse.test.yml", tmp_path / "tests")
    run = subprocess.run(
        [_promtool(), "test", "rules", str(tmp_path / "tests" / "lakehouse.test.yml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "LakehouseReplicationSlotWalHigh" in run.stdout + run.stderr


def test_alert_rules_only_use_metrics_something_exports() -> None:
    exported = set()
    for path in (ROOT / "app" / "lakehouse").rglob("*.py"):
        exported |= set(re.findall(r'"(lakehouse_[a-z_]+)"', path.read_text()))
    rules = (PROM / "rules" / "lakehouse.yml").read_text()
    used = set(re.findall(r"\b(lakehouse_[a-z_]+)\b", rules)) - {"lakehouse_slot", "lakehouse_status"}
    missing = {m for m in used if m not in exported and m.removesuffix("_total") not in exported}
    assert not missing, f"rules use metrics nothing exports: {missing}"


def test_alertmanager_config_is_valid() -> None:
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    if not Path(amtool).exists():
        cfg = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
        names = {r["name"] for r in cfg["receivers"]}
        assert cfg["route"]["receiver"] in names
        assert all(r.get("receiver", cfg["route"]["receiver"]) in names for r in cfg["route"]["routes"])
        return
    run = subprocess.run(
        [amtool, "check-config", str(ROOT / "alertmanager" / "alertmanager.yml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr

"""Grafana provisioning as files: datasources, the "Pipeline health" dashboard, alert rules.

There is no native Grafana server here (see grafana/README.md), so these tests check the files
against what Grafana needs: datasource references resolve, every panel's PromQL names metrics
the stack exports, and each Grafana alert rule is the twin of a Prometheus rule.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from lakehouse.config.paths import repo_root

ROOT = repo_root()
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pipeline-health.json"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _exported_metrics() -> set[str]:
    """Metric names our Python code registers, plus the JMX exporter's rule outputs."""
    names: set[str] = set()
    for path in (ROOT / "app" / "lakehouse").rglob("*.py"):
        for name in re.findall(r'"(lakehouse_[a-z_]+)"', path.read_text()):
            names |= {name, name + "_total", name.removesuffix("_total")}
    for rules in (ROOT / "kafka" / "jmx-exporter.yml", ROOT / "connect" / "jmx-exporter.yml"):
        for rule in _yaml(rules)["rules"]:
            names.add(rule["name"].lower())  # templates with $1.. are matched as patterns below
    return names


def _scraped_exporters() -> set[str]:
    """Jobs of third-party exporters Prometheus scrapes (their metrics carry the job's prefix).

    Their names cannot be read from our files; tests/integration/test_monitoring.py checks the
    panels' MinIO metrics on the live stack.
    """
    doc = _yaml(ROOT / "prometheus" / "prometheus.yml")
    return {job["job_name"] for job in doc["scrape_configs"]} & {"minio"}


def _matches(metric: str, exported: set[str]) -> bool:
    for name in exported:
        if "$" in name:
            pattern = "^" + re.sub(r"\\\$\d", "[a-z0-9_]+", re.escape(name)) + "$"
            if re.match(pattern, metric):
                return True
        elif metric == name:
            return True
    return False


PROMQL_WORDS = {
    "sum", "max", "min", "avg", "by", "rate", "increase", "time", "bool", "on", "or", "and",
    "unless", "delta", "count", "without", "clamp_min",
}  # fmt: skip


def _metrics_in(expr: str) -> set[str]:
    no_labels = re.sub(r"\{[^}]*\}", "", expr)
    no_labels = re.sub(r"\[[^\]]*\]", "", no_labels)
    no_labels = re.sub(r"by \([^)]*\)", "", no_labels)
    words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", no_labels))
    return {w for w in words if w not in PROMQL_WORDS and "_" in w}


def test_datasources_are_prometheus_and_alertmanager_from_the_environment() -> None:
    doc = _yaml(GRAFANA / "provisioning" / "datasources" / "lakehouse.yml")
    by_uid = {d["uid"]: d for d in doc["datasources"]}
    assert by_uid["lakehouse-prometheus"]["type"] == "prometheus"
    assert by_uid["lakehouse-prometheus"]["url"] == "${PROMETHEUS_URL}"
    assert by_uid["lakehouse-alertmanager"]["type"] == "alertmanager"
    assert by_uid["lakehouse-alertmanager"]["url"] == "${ALERTMANAGER_URL}"
    assert sum(1 for d in doc["datasources"] if d.get("isDefault")) == 1


def test_dashboard_provider_points_at_the_dashboards_folder() -> None:
    doc = _yaml(GRAFANA / "provisioning" / "dashboards" / "lakehouse.yml")
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "${GRAFANA_DASHBOARDS_DIR}"
    assert list((GRAFANA / "dashboards").glob("*.json")) == [DASHBOARD]


def test_pipeline_health_panels_cover_the_issue_and_use_the_provisioned_datasource() -> None:
    dash = _dashboard()
    assert dash["uid"] == "lakehouse-pipeline-health" and dash["title"] == "Pipeline health"
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in ("freshness", "per hop", "slot wal", "connector", "batches", "quarantine"):
        assert topic in titles, topic
    for p in panels:
        if p["type"] == "alertlist":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "lakehouse-prometheus"}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "lakehouse-prometheus"


def test_panels_do_not_overlap_on_the_24_column_grid() -> None:
    taken: set[tuple[int, int]] = set()
    for p in _dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (cells & taken), f"{p['title']} overlaps another panel"
        taken |= cells


def test_every_panel_query_names_metrics_the_stack_exports() -> None:
    exported = _exported_metrics()
    exporters = _scraped_exporters()
    for p in _dashboard()["panels"]:
        for t in p.get("targets", []):
            for metric in _metrics_in(t["expr"]):
                if metric.split("_", 1)[0] in exporters:
                    continue
                assert _matches(metric, exported), f"panel {p['title']!r}: nothing exports {metric}"


def test_grafana_alert_rules_are_twins_of_the_prometheus_rules() -> None:
    prom = {
        r["alert"]: r
        for g in _yaml(ROOT / "prometheus" / "rules" / "lakehouse.yml")["groups"]
        for r in g["rules"]
    }
    (group,) = _yaml(GRAFANA / "provisioning" / "alerting" / "lakehouse.yml")["groups"]
    graf = {r["title"]: r for r in group["rules"]}
    assert set(graf) == set(prom)
    uids = [r["uid"] for r in group["rules"]]
    assert len(uids) == len(set(uids)) and all(len(u) <= 40 for u in uids)
    for name, rule in graf.items():
        p = prom[name]
        data = {d["refId"]: d for d in rule["data"]}
        assert data["A"]["datasourceUid"] == "lakehouse-prometheus"
        assert data["A"]["model"]["expr"] == p["expr"], name
        assert rule["condition"] == "C" and data["C"]["model"]["expression"] == "B"
        assert data["B"]["model"]["expression"] == "A"
        assert rule["for"] == p.get("for", "0s"), name
        assert rule["labels"] == p["labels"], name
        assert {k: v for k, v in rule["annotations"].items() if not k.startswith("__")} == p["annotations"]
        assert rule["annotations"]["__dashboardUid__"] == _dashboard()["uid"]


def _firing_values(expr: str) -> list[float]:
    """Values the PromQL returns while it fires, from each comparison with a number in it (a
    series passes `x > N` with a value above N, `x == N` with N)."""
    out = []
    for op, n in re.findall(r"(==|>=|>)\s*([0-9.]+)\b", expr):
        out.append(float(n) + (1 if op == ">" else 0))
    return out


def _accepts(evaluator: dict[str, Any], value: float) -> bool:
    kind, params = evaluator["type"], evaluator["params"]
    return {
        "gt": lambda: value > params[0],
        "lt": lambda: value < params[0],
        "outside_range": lambda: value < params[0] or value > params[1],
        "within_range": lambda: params[0] < value < params[1],
    }[kind]()


def test_grafana_twins_fire_on_the_values_their_query_returns_while_firing() -> None:
    """A Grafana threshold of `> 0` never fires on `up == 0`: its series' value is 0."""
    (group,) = _yaml(GRAFANA / "provisioning" / "alerting" / "lakehouse.yml")["groups"]
    checked = 0
    for rule in group["rules"]:
        data = {d["refId"]: d for d in rule["data"]}
        (condition,) = data["C"]["model"]["conditions"]
        for value in _firing_values(data["A"]["model"]["expr"]):
            assert _accepts(condition["evaluator"], value), (rule["title"], value)
            checked += 1
    assert checked >= len(group["rules"]) - 1  # every rule but the ratio-over-ratio one has a number

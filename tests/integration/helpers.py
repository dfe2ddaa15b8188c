"""Small helpers for integration tests: bronze events of given keys, Trino rows, the source."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from lakehouse.clients import analyst_client
from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.reader import BronzeEvent, read_topic
from lakehouse.pipeline.silver.config import SilverConfig


def topic(stack: Stack, table: str) -> str:
    return f"{stack.s.topic_prefix}.{stack.s.source_schema}.{table}"


def topic_events(stack: Stack, topic_name: str) -> list[BronzeEvent]:
    return list(read_topic(stack.minio.client(), stack.s.bucket, "bronze", topic_name))


def bronze_events(stack: Stack, table: str) -> list[BronzeEvent]:
    return topic_events(stack, topic(stack, table))


def wait_for(
    stack: Stack,
    table: str,
    match: Callable[[BronzeEvent], bool],
    count: int,
    timeout: float = 90,
) -> list[BronzeEvent]:
    """Wait until at least `count` matching events are in bronze; return all matching events."""
    deadline = time.monotonic() + timeout
    found: list[BronzeEvent] = []
    while time.monotonic() < deadline:
        found = [e for e in bronze_events(stack, table) if match(e)]
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{len(found)}/{count} events for {table} after {timeout}s: {found}")


def sink_metric(stack: Stack, name: str, connector: str = "lakehouse-bronze-sink") -> float:
    """A sink task metric of `connector`, summed over its tasks, from Connect's JMX exporter."""
    text = httpx.get(stack.connect.details()["metrics"], timeout=10).text
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") and f'connector="{connector}"' in line:
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    assert seen, f"Connect exports no {name} for {connector}"
    return total


def key_is(**fields: object) -> Callable[[BronzeEvent], bool]:
    def match(e: BronzeEvent) -> bool:
        payload = e.key.get("payload") if isinstance(e.key, dict) else None
        return isinstance(payload, dict) and all(payload.get(k) == v for k, v in fields.items())

    return match


# bounded waits: one change crosses Kafka, the bronze sink, a Spark micro-batch and Trino
VISIBLE_S = 120
BULK_S = 600


def analyst(stack: Stack) -> Trino:
    return analyst_client(stack.s, stack.ctx.secrets)


def wait_rows(trino: Trino, statement: str, expected: list[list[Any]], timeout: float = VISIBLE_S) -> None:
    deadline = time.monotonic() + timeout
    rows: list[list[Any]] | str = []
    while time.monotonic() < deadline:
        try:
            rows = trino.query(statement).rows
        except QueryError as exc:  # the table may not be registered yet
            rows = str(exc)
        if rows == expected:
            return
        time.sleep(1)
    raise AssertionError(f"{statement}: {rows!r} != {expected!r} after {timeout}s")


def delta_schema(trino: Trino, table: str) -> str:
    """The Trino schema of a silver table's Delta table: `silver`, or with merge-on-read
    `silver_base` (`silver.<table>` is then the live view over it and its change log)."""
    found = trino.query(
        "SELECT count(*) FROM lakehouse.information_schema.tables "
        f"WHERE table_schema = 'silver_base' AND table_name = '{table}'"
    ).rows
    return "silver_base" if found and found[0][0] else "silver"


def fold(stack: Stack, table: str) -> None:
    """With merge-on-read, fold the table's change log into its base now (`lakehouse compact`)
    rather than waiting for the compactor's age; nothing to do with merge-on-write."""
    if not silver_config(stack).merge_on_read:
        return
    out = lakehouse("compact", "--table", table, "--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert [f["table"] for f in answer["folded"]] == [f"{stack.s.source_schema}.{table}"], answer


def silver_config(stack: Stack) -> SilverConfig:
    """The running silver job's settings (the copy of spark_streaming/silver.json `up` made)."""
    return SilverConfig.load(stack.s.state("silver") / "silver.json")


def source(stack: Stack) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(stack.postgres.app_dsn, autocommit=True)


def headless_chrome(width: int = 1280, height: int = 1500) -> Any:
    """Debian's headless chromium through its own chromedriver (nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=DriverService("/usr/bin/chromedriver"))


def active_alerts(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Alerts of this name that Alertmanager holds as active."""
    r = httpx.get(
        f"{stack.s.alertmanager_url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=10
    )
    r.raise_for_status()
    return [a for a in r.json() if a["status"]["state"] == "active"]


def prom(stack: Stack, path: str, **params: Any) -> Any:
    """The `data` of a Prometheus HTTP API answer, e.g. prom(stack, "/api/v1/query", query=…)."""
    r = httpx.get(f"{stack.s.prometheus_url}{path}", params=params, timeout=10)
    r.raise_for_status()
    return r.json()["data"]


def lakehouse(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI as a user runs it (exit codes included), against the session's stack."""
    exe = Path(sys.executable).parent / "lakehouse"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False, timeout=900)


#: the schemas the catalog sync and silver keep tables in (the analyst sees all of them)
CATALOG_SCHEMAS = ("silver", "silver_base", "silver_log", "analytics", "ml")

_SPARK_PROBE = """
import json, sys
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import load_settings
from lakehouse.pipeline.silver.commands import spark_for

s = load_settings()
with spark_for(s, Endpoints.of(s, Secrets.load_or_create(s.home)), "catalog-probe", catalog=True) as spark:
    out = [[r.asDict() for r in spark.sql(q).collect()] for q in json.load(sys.stdin)]
print(json.dumps(out, default=str))
"""


def spark_sql(*statements: str) -> list[list[dict[str, Any]]]:
    """Each statement's rows from one Spark session on the stack's catalog (the Hive metastore),
    in a process of its own: `lakehouse spark-sql`'s session, several statements for one start."""
    proc = subprocess.run(
        [sys.executable, "-c", _SPARK_PROBE],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer: list[list[dict[str, Any]]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer


def catalog_tables(stack: Stack) -> dict[str, list[str]]:
    """Trino's tables and views per schema of the catalog, sorted."""
    trino = analyst(stack)
    return {
        schema: sorted(r[0] for r in trino.query(f"SHOW TABLES FROM {schema}").rows)
        for schema in CATALOG_SCHEMAS
    }


def assert_one_catalog(stack: Stack, attempts: int = 3) -> None:
    """Spark lists the tables Trino lists, schema by schema: both read them from the metastore.
    A table the catalog sync registers between the two listings (silver made it meanwhile) is
    listed by one and not yet by the other: compared again then, up to `attempts` times."""
    for attempt in range(attempts):
        before = catalog_tables(stack)
        shown = spark_sql(*(f"SHOW TABLES IN {schema}" for schema in CATALOG_SCHEMAS))
        spark = {
            s: sorted(r["tableName"] for r in rows) for s, rows in zip(CATALOG_SCHEMAS, shown, strict=True)
        }
        if spark == before or spark == catalog_tables(stack):
            return
        if attempt == attempts - 1:
            assert spark == before, f"Spark lists {spark}, Trino {before}"

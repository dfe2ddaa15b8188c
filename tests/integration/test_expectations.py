"""Expectations on the real stack (issue 19): the session's stack runs the shipped rules plus a
rule of each action on a table of its own (conftest.PROBE_RULES). Rows that break them go where
the action says, silver's counters and `ops.expectation_results` agree, the warn rule's alert
turns on in Prometheus, a `fail` rule stops the stream until the rule is changed, and the
monitor's cross-table rule counts the rows breaking it (and says when its query fails)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from lakehouse.clients import admin_client
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.commands import verify
from lakehouse.polling import wait_until

from .helpers import lakehouse, prom, source, wait_rows
from .session_setup import PROBE, PROBE_CROSS, probe_rules
from .target import lacks

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SILVER_ROWS = f"SELECT id, v FROM lakehouse.silver.{PROBE} ORDER BY id"


def _counters(stack: Stack, table: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for kind in ("checked", "failed"):
        query = f'lakehouse_expectation_{kind}_total{{table="{table}"}}'
        for r in prom(stack, "/api/v1/query", query=query)["result"]:
            out[(r["metric"]["rule"], kind)] = float(r["value"][1])
    return out


def _cross(stack: Stack, metric: str) -> float | None:
    """The monitor's series of the probe's cross-table rule (None: not exported)."""
    query = f'lakehouse_expectation_cross_{metric}{{rule="{PROBE_CROSS["name"]}"}}'
    result = prom(stack, "/api/v1/query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def _alert(stack: Stack, table: str, rule: str) -> list[dict[str, Any]]:
    return [
        a
        for a in prom(stack, "/api/v1/alerts")["alerts"]
        if a["labels"].get("alertname") == "LakehouseExpectationFailing"
        and a["labels"].get("table") == table
        and a["labels"].get("rule") == rule
    ]


@pytest.mark.long  # 3+ minutes: a failing rule stops silver, which restarts cold
@pytest.mark.timeout(1500)
def test_warn_keeps_drop_quarantines_fail_stops_and_counters_and_results_agree(
    stack: Stack, spark: SparkSession
) -> None:
    lacks(stack, "probe_rules")
    table = f"{stack.s.source_schema}.{PROBE}"
    # the cross-table rule's query names a table silver has not created yet: it fails, and says so
    assert wait_until(lambda: _cross(stack, "last_run_failed") == 1.0, timeout=180, interval=5)
    with source(stack) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 5), (2, -1), (3, 13)")
    admin = admin_client(stack.s, stack.ctx.secrets)

    # warn (v_not_negative) keeps row 2 in silver; drop (v_not_13) keeps row 3 out, in quarantine
    wait_rows(admin, SILVER_ROWS, [[1, 5], [2, -1]], timeout=300)
    # (the batch appends its quarantine rows after the tables' writes)
    wait_rows(
        admin,
        f"SELECT reason FROM lakehouse.ops.quarantine WHERE source_table = '{table}'",
        [["expectation: v_not_13"]],
        timeout=120,
    )

    expected = {
        ("v_not_negative", "checked"): 3.0,
        ("v_not_negative", "failed"): 1.0,
        ("v_not_13", "checked"): 3.0,
        ("v_not_13", "failed"): 1.0,
        ("v_below_1000", "checked"): 3.0,
        ("v_below_1000", "failed"): 0.0,
    }
    seen: dict[tuple[str, str], float] = {}

    def counted() -> bool:
        seen.update(_counters(stack, table))
        return seen == expected

    assert wait_until(counted, timeout=120, interval=3), seen
    # the status thread writes the results once a minute; then they agree with the counters
    wait_rows(
        admin,
        "SELECT rule, action, sum(passed) + sum(failed), sum(failed) FROM lakehouse.ops.expectation_results "
        f"WHERE source_table = '{table}' GROUP BY rule, action ORDER BY rule",
        [["v_below_1000", "fail", 3, 0], ["v_not_13", "drop", 3, 1], ["v_not_negative", "warn", 3, 1]],
        timeout=240,
    )
    report = {(e["table"], e["rule"]): e for e in json.loads(lakehouse("expectations", "--json").stdout)}
    dropped = report[(table, "v_not_13")]
    assert (dropped["checked"], dropped["failed"], dropped["action"]) == (3, 1, "drop")
    assert json.loads(dropped["last_failing_row"]) == {"id": 3, "v": 13}
    assert (table, "v_not_negative") in report and ("movielens.ratings", "rating_in_half_steps") in report

    # one row in three fails the warn rule, over its warn_ratio of 0.1: the alert turns on
    assert wait_until(lambda: bool(_alert(stack, table, "v_not_negative")), timeout=180, interval=5)
    assert _alert(stack, table, "v_not_negative")[0]["state"] in {"pending", "firing"}
    assert not _alert(stack, table, "v_not_13")  # a drop rule's failures are the quarantine's alert

    # fail: the batch stops before writing, the job says which rule, and nothing of it lands
    log_start = stack.silver.files.logfile.stat().st_size
    with source(stack) as conn:
        conn.execute(f"INSERT INTO {table} VALUES (4, 5000)")
    message = "expectation 'v_below_1000' (action fail) failed on 1 of 1 row(s)"

    def stopped() -> bool:
        with stack.silver.files.logfile.open() as f:
            f.seek(log_start)
            return message in f.read()

    assert wait_until(stopped, timeout=300, interval=3)
    time.sleep(5)
    assert admin.query(SILVER_ROWS).rows == [[1, 5], [2, -1]]

    # the fix is the rule: without it, restarted silver applies the row
    stack.s.expectations.write_text(probe_rules(stack.s.root, with_fail=False))
    assert lakehouse("down", "silver").returncode == 0
    stack.up()
    wait_rows(admin, SILVER_ROWS, [[1, 5], [2, -1], [4, 5000]], timeout=300)

    # cross-table: every probe id is a row of the preexisting table (ids 1..500); 9999 is not
    assert wait_until(lambda: _cross(stack, "failing_rows") == 0.0, timeout=180, interval=5)
    assert _cross(stack, "last_run_failed") == 0.0
    with source(stack) as conn:
        conn.execute(f"INSERT INTO {table} VALUES (9999, 7)")
    wait_rows(admin, SILVER_ROWS, [[1, 5], [2, -1], [4, 5000], [9999, 7]], timeout=300)
    assert wait_until(lambda: _cross(stack, "failing_rows") == 1.0, timeout=180, interval=5)
    report = {(e["table"], e["rule"]): e for e in json.loads(lakehouse("expectations", "--json").stdout)}
    cross = report[(table, PROBE_CROSS["name"])]
    assert (cross["action"], cross["failing"], cross["error"]) == ("cross_table", 1, None)
    sample = json.loads(cross["last_failing_row"])  # the silver row: its columns and silver's own
    assert (sample["id"], sample["v"]) == (9999, 7) and "_source_ts" in sample

    # the source without the dropped row and the orphan: the table verifies clean for the tests after
    with source(stack) as conn:
        conn.execute(f"DELETE FROM {table} WHERE id IN (3, 9999)")
    (diff,) = verify(stack.s, stack.endpoints, [PROBE], wait_s=240, spark=spark)
    assert diff.clean, diff.as_dict()
    assert wait_until(lambda: _cross(stack, "failing_rows") == 0.0, timeout=180, interval=5)

"""Metrics on the real stack: Prometheus scrapes every lakehouse_ series and the JMX exporters, and
every Grafana panel's query has data. (The stalled-stream alert firing in Alertmanager while the
Spark job is stopped, and resolving when it is back, is checked in test_silver's crash test, during
the outage it causes anyway.)"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from lakehouse.config.paths import repo_root
from lakehouse.launcher.stack import Stack

from .helpers import prom

#: what the issue asks Prometheus to have, by name (event-driven counters appear with events)
REQUIRED = {
    "lakehouse_silver_freshness_seconds",  # per table
    "lakehouse_silver_source_lag_seconds",  # end-to-end lag of the newest change
    "lakehouse_postgres_slot_retained_wal_bytes",
    "lakehouse_postgres_slot_confirmed_flush_lag_bytes",
    "lakehouse_connect_connector_state",
    "lakehouse_connect_task_state",
    "lakehouse_bronze_consumer_lag_records",  # the S3 (bronze) sink's consumer lag
    "lakehouse_service_restarts_total",  # per supervised service
    "lakehouse_silver_batch_duration_seconds",
    "lakehouse_silver_batch_input_rows",
    "lakehouse_silver_processed_rows_per_second",
    "lakehouse_silver_kafka_records_behind",
    "lakehouse_silver_last_commit_timestamp_seconds",
    "lakehouse_quarantine_rows",
    "lakehouse_silver_schema_changes_total",
    "lakehouse_silver_table_version",
    "lakehouse_silver_table_files",
    "lakehouse_trino_up",
    # data-quality expectations (spark_streaming/expectations.yml), from zero at silver's start
    "lakehouse_expectation_checked_total",
    "lakehouse_expectation_cross_last_run_failed",  # the monitor, once Trino answered
    "lakehouse_expectation_failed_total",
    "lakehouse_expectation_warn_ratio",
    # JMX exporter javaagent in Connect (Debezium) and the broker
    "debezium_postgres_streaming_behind_source_seconds",
    "debezium_postgres_streaming_queueremainingcapacity",
    "kafka_connect_source_task_source_record_write_total",
    "kafka_server_brokertopicmetrics_messagesinpersec_total",
    # MinIO's own exporter: S3 requests served and the space left
    "minio_s3_requests_total",
    "minio_cluster_capacity_usable_free_bytes",
}
#: panel queries allowed to be empty on a healthy stack: they chart events that may not happen
EVENT_DRIVEN = (
    "lakehouse_silver_quarantined_total",
    "lakehouse_silver_schema_changes_total",
    "lakehouse_silver_table_quarantined_events",  # only while a table has refused events
)


def _wait(what: str, check: Any, timeout: float, every: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} (waited {timeout:.0f}s)"
        time.sleep(every)


def _touch_the_source(stack: Stack) -> None:
    """A rating and a movie, so silver has tables and batches to measure."""
    import psycopg

    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO movielens.movies VALUES (9600001, 'Monitoring Test (2026)', 'Drama') "
            "ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO movielens.ratings VALUES (9601, 9600001, 4.5, now()) "
            "ON CONFLICT (user_id, movie_id) DO UPDATE SET rating = EXCLUDED.rating, rated_at = now()"
        )


def test_prometheus_scrapes_every_target_and_has_every_required_series(stack: Stack) -> None:
    _touch_the_source(stack)

    def all_up() -> bool:
        targets = prom(stack, "/api/v1/targets")["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)

    _wait("every scrape target up", all_up, 120)
    names = set()

    def complete() -> bool:
        names.clear()
        names.update(prom(stack, "/api/v1/label/__name__/values"))
        return names >= REQUIRED

    try:
        _wait("the required series", complete, 240)
    except AssertionError:
        pytest.fail(f"missing from Prometheus: {sorted(REQUIRED - names)}")
    fresh = prom(
        stack, "/api/v1/query", query='lakehouse_silver_freshness_seconds{table="pipeline_heartbeat"}'
    )
    # the heartbeat row makes end-to-end freshness meaningful on an idle source: well under a minute
    assert fresh["result"] and float(fresh["result"][0]["value"][1]) < 120


def test_every_grafana_panel_query_has_data(stack: Stack) -> None:
    dashboard = json.loads((repo_root() / "grafana" / "dashboards" / "pipeline-health.json").read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) > 20
    empty: list[str] = []

    def all_answer() -> bool:
        empty.clear()
        for title, expr in queries:
            if any(m in expr for m in EVENT_DRIVEN):
                continue
            if not prom(stack, "/api/v1/query", query=expr)["result"]:
                empty.append(f"{title}: {expr}")
        return not empty

    try:
        _wait("every panel query answers", all_answer, 180, every=5)
    except AssertionError:
        pytest.fail("panel queries without data:\n" + "\n".join(empty))


PROBE_SLOT = "lakehouse_test_probe_slot"
MiB = 1024 * 1024


@pytest.mark.timeout(600)
def test_an_invalidated_replication_slot_is_measured_and_alerts(stack: Stack) -> None:
    """Postgres invalidates a slot that holds more WAL than max_slot_wal_keep_size: the monitor's
    gauge turns 1 and LakehouseReplicationSlotLost fires. A slot of the test's own is invalidated
    (the connector's keeps streaming): the source writes ~120 MB of WAL, a table outside the captured
    schema, while the probe slot never confirms; the cap is then lowered to 64 MB for one
    checkpoint, once the connector's slot holds less than 16 MB."""
    import psycopg

    from lakehouse.apps.monitor.probes import slots
    from lakehouse.launcher.services.postgres import SLOT

    from .helpers import active_alerts

    def status(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        return {s.name: s for s in slots(conn)}

    with psycopg.connect(stack.postgres.superuser_dsn, autocommit=True) as su:
        try:
            su.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (PROBE_SLOT,))
            su.execute(
                "CREATE TABLE public.wal_filler AS "
                "SELECT g, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 120000) g"
            )
            su.execute("SELECT pg_switch_wal()")
            assert status(su)[PROBE_SLOT].retained_wal_bytes > 100 * MiB
            _wait(
                "the connector's slot confirming past the filler",
                lambda: status(su)[SLOT].retained_wal_bytes < 16 * MiB,
                180,
            )
            su.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '64MB'")
            su.execute("SELECT pg_reload_conf()")
            # past the cap a slot is 'unreserved' until a checkpoint removes its WAL segments, then
            # 'lost'; one checkpoint may not yet remove them (seen in CI), so switch and checkpoint
            # until it does

            def invalidated() -> bool:
                su.execute("SELECT pg_switch_wal()")
                su.execute("CHECKPOINT")
                return bool(status(su)[PROBE_SLOT].lost)

            _wait("the probe slot invalidated by a checkpoint", invalidated, 60)
            now = status(su)
            assert now[PROBE_SLOT].lost, now[PROBE_SLOT]
            assert not now[SLOT].lost, now[SLOT]
        finally:
            su.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            su.execute("SELECT pg_reload_conf()")
            su.execute("DROP TABLE IF EXISTS public.wal_filler")

        def gauge() -> bool:
            got = prom(stack, "/api/v1/query", query=f'lakehouse_postgres_slot_lost{{slot="{PROBE_SLOT}"}}')
            return bool(got["result"]) and got["result"][0]["value"][1] == "1"

        try:
            _wait("lakehouse_postgres_slot_lost for the probe slot", gauge, 90)
            fired = _wait(
                "LakehouseReplicationSlotLost in Alertmanager",
                lambda: [
                    a
                    for a in active_alerts(stack, "LakehouseReplicationSlotLost")
                    if a["labels"].get("slot") == PROBE_SLOT
                ],
                120,
            )
            assert fired[0]["labels"]["severity"] == "critical"
            # the connector's own slot is untouched and reported as such
            healthy = prom(stack, "/api/v1/query", query=f'lakehouse_postgres_slot_lost{{slot="{SLOT}"}}')
            assert healthy["result"][0]["value"][1] == "0"
        finally:
            su.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                (PROBE_SLOT,),
            )

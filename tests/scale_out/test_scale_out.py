"""Scale-out mode on the real stack: silver submitted to a Spark standalone cluster, a Trino
worker doing the work, partitioned topics read by several sink tasks — and a random workload
over two tables, with transactions across both, converging exactly in silver."""

from __future__ import annotations

import random
import threading
from typing import Any

import psycopg

from lakehouse.chaos.workload import Load, Workload, ddl, row
from lakehouse.clients import analyst_client
from lakehouse.launcher import connectors
from lakehouse.launcher.services.spark import SILVER_APP, master_state
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.commands import verify
from lakehouse.pipeline.silver.sources import kafka_partitions

from ..integration.helpers import wait_rows

TABLES = ("scaled_a", "scaled_b")
#: keys of the cross-table transactions (the random workloads count up from 1)
CROSS_IDS = 10_000_000


def test_silver_runs_on_the_spark_cluster(cluster: Stack) -> None:
    env = cluster.env()["spark"]
    assert env["master"] == cluster.s.spark_cluster_url and env["master"].startswith("spark://")
    state = master_state(env["ui"])
    assert state is not None and state["status"] == "ALIVE"
    alive = [w for w in state["workers"] if w["state"] == "ALIVE"]
    assert len(alive) == 1 and alive[0]["cores"] == cluster.s.spark_worker_cores
    apps = {a["name"]: a for a in state["activeapps"]}
    assert apps[SILVER_APP]["state"] == "RUNNING"
    assert apps[SILVER_APP]["cores"] > 0  # executors were granted on the worker
    services = cluster.status().services
    for name in ("spark-master", "spark-worker", "silver", "trino", "trino-worker"):
        assert services[name].ready, (name, services[name])
    assert services["silver"].details["master"] == cluster.s.spark_cluster_url


def test_trino_has_a_worker_and_the_coordinator_schedules_none_on_itself(cluster: Stack) -> None:
    trino = analyst_client(cluster.s, cluster.ctx.secrets)
    nodes = trino.query("SELECT coordinator, state FROM system.runtime.nodes").rows
    assert sorted(map(tuple, nodes)) == [(False, "active"), (True, "active")]
    # the coordinator schedules no work on itself, so reading silver takes the worker
    wait_rows(trino, "SELECT count(*) FROM silver.pipeline_heartbeat", [[1]], timeout=180)


def _cross_table(dsn: str, tables: list[str], rounds: int, seed: int) -> None:
    """Transactions that insert a row into each table in one commit (keys of their own)."""
    rng = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        for i in range(rounds):
            for table in tables:
                values = row(rng, CROSS_IDS + i)
                conn.execute(f"INSERT INTO {table} VALUES ({','.join(['%s'] * len(values))})", values)
            conn.commit()


def test_a_random_workload_over_partitioned_topics_converges(cluster: Stack) -> None:
    s = cluster.s
    dsn = cluster.postgres.app_dsn
    works = [Workload(f"{s.source_schema}.{t}", seed=i, first_id=1) for i, t in enumerate(TABLES)]
    with psycopg.connect(dsn) as conn:
        for work in works:
            conn.execute(ddl(work.table))
        conn.commit()
    loads = [Load(dsn, work, rate=15) for work in works]
    for load in loads:
        load.start()
    crossing = threading.Thread(target=_cross_table, args=(dsn, [w.table for w in works], 40, 7))
    crossing.start()
    crossing.join(timeout=120)
    threading.Event().wait(45)
    for load in loads:
        load.stop()
    assert all(w.changes > 300 for w in works), [w.changes for w in works]

    # every data topic has the configured partitions, and the bronze sink one task per partition
    topics: dict[str, Any] = kafka_partitions(s.kafka_bootstrap, rf"^{s.topic_prefix}\.{s.source_schema}\..+")
    for t in TABLES:
        assert len(topics[f"{s.topic_prefix}.{s.source_schema}.{t}"]) == s.topic_partitions == 3
    sink = connectors.status(s.connect_url, "lakehouse-bronze-sink")
    assert sink is not None and [t["state"] for t in sink["tasks"]] == ["RUNNING"] * 3

    diffs = verify(cluster.s, cluster.endpoints, list(TABLES), wait_s=420)
    assert all(d.clean for d in diffs), [d.as_dict() for d in diffs]
    # and Trino, whose worker reads silver, sees what the source holds
    trino = analyst_client(s, cluster.ctx.secrets)
    with psycopg.connect(dsn) as conn:
        for t in TABLES:
            want = conn.execute(f"SELECT count(*) FROM {s.source_schema}.{t}").fetchone()
            assert trino.query(f"SELECT count(*) FROM silver.{t}").rows == [[want[0] if want else None]]

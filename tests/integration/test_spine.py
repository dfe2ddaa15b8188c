"""The spine, end to end on real services: Postgres → Debezium → Kafka → bronze in MinIO."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from lakehouse.launcher import connectors
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.connector import SinkSettings
from lakehouse.polling import wait_until

from .helpers import bronze_events, key_is, topic, topic_events, wait_for


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args], capture_output=True, text=True, check=False
    )


def app(stack: Stack) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(stack.postgres.app_dsn, autocommit=True)


def sink_retries(stack: Stack) -> int:
    """Failed S3 calls the bronze sink connector has logged in Connect's log (each one is retried
    after a back-off, the records kept buffered)."""
    return stack.connect.files.logfile.read_text(errors="replace").count("S3 call failed")


def test_env_and_status_describe_the_running_stack(stack: Stack) -> None:
    env = json.loads(cli("env", "--json").stdout)
    assert env["source"]["schemas"] == ["movielens"]
    assert env["kafka"]["bootstrap"] == stack.s.kafka_bootstrap
    assert env["object_store"]["bronze"] == "s3://lakehouse/bronze"
    with psycopg.connect(env["source"]["dsn"]) as conn:
        assert conn.execute("select current_user").fetchone() == ("lakehouse_app",)
    proc = cli("status", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    st = json.loads(proc.stdout)
    assert {s["state"] for s in st["services"].values()} == {"ready"}
    assert st["connectors"]["lakehouse-postgres-source"] == {
        "state": "RUNNING",
        "tasks": ["RUNNING"],
    }
    # bronze is landed by Kafka Connect, beside the source: no Python bronze process
    assert st["connectors"]["lakehouse-bronze-sink"] == {"state": "RUNNING", "tasks": ["RUNNING"]}
    assert "bronze-sink" not in st["services"]


def test_cdc_role_is_not_superuser_and_only_reads(stack: Stack) -> None:
    with psycopg.connect(stack.postgres.cdc_dsn) as conn:
        row = conn.execute(
            "select rolsuper, rolreplication from pg_roles where rolname = current_user"
        ).fetchone()
        assert row == (False, True)
        conn.execute("select count(*) from movielens.movies")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into movielens.movies values (1, 'x', 'y')")


def test_insert_update_delete_arrive_in_commit_order(stack: Stack) -> None:
    mid = 9_100_001
    with app(stack) as conn:
        conn.execute("insert into movielens.movies values (%s, 'Alpha', 'Drama')", [mid])
        conn.execute("update movielens.movies set title = 'Beta' where movie_id = %s", [mid])
        conn.execute("delete from movielens.movies where movie_id = %s", [mid])
    events = wait_for(stack, "movies", key_is(movie_id=mid), 3)
    assert [e.op for e in events] == ["c", "u", "d"]
    create, update, delete = (e.payload for e in events)
    assert create["before"] is None
    assert create["after"] == {"movie_id": mid, "title": "Alpha", "genres": "Drama"}
    assert update["after"]["title"] == "Beta"
    assert delete["after"] is None
    assert delete["before"]["movie_id"] == mid
    lsns = [e.lsn for e in events]
    assert all(isinstance(x, int) for x in lsns)
    assert lsns == sorted(lsns) and len(set(lsns)) == 3
    # the envelope keeps its schema so types need no inference downstream
    assert events[0].value["schema"]["name"] == f"{topic(stack, 'movies')}.Envelope"
    # and the transaction topic brackets each of the three transactions: a BEGIN whose id is the
    # events' `transaction.id` (txid:LSN at BEGIN) and an END of the same txid (its LSN part is the
    # commit's) naming the table and its one event — what silver's transaction rule relies on
    ids = [e.payload["transaction"]["id"] for e in events]
    txids = [str(e.payload["source"]["txId"]) for e in events]
    assert len(set(ids)) == 3 and [i.split(":")[0] for i in ids] == txids
    deadline = time.monotonic() + 90
    while True:
        tx = [e.payload for e in topic_events(stack, f"{stack.s.topic_prefix}.transaction")]
        begins = {p["id"] for p in tx if p.get("status") == "BEGIN"}
        ends = {p["id"].split(":")[0]: p for p in tx if p.get("status") == "END"}
        if (set(ids) <= begins and set(txids) <= set(ends)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(ids) <= begins
    for t in txids:
        assert ends[t]["event_count"] == 1
        assert ends[t]["data_collections"] == [{"data_collection": "movielens.movies", "event_count": 1}]


def test_table_created_after_start_is_captured(stack: Stack) -> None:
    with app(stack) as conn:
        conn.execute(
            "create table if not exists movielens.watchlist ("
            " user_id integer, movie_id integer, added_at timestamptz default now(),"
            " primary key (user_id, movie_id))"
        )
        conn.execute("insert into movielens.watchlist (user_id, movie_id) values (7, 1)")
    events = wait_for(stack, "watchlist", key_is(user_id=7, movie_id=1), 1)
    assert events[0].op == "c"


def test_write_failure_does_not_advance_offset_or_lose_events(stack: Stack) -> None:
    mid = 9_100_002
    group = SinkSettings.of(stack.s).group_id
    tp = TopicPartition(topic(stack, "movies"), 0)

    def committed() -> int:
        admin = AdminClient({"bootstrap.servers": stack.s.kafka_bootstrap})
        fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [tp])])[group]
        return int(fut.result().topic_partitions[0].offset)

    before = committed()
    retries_before = sink_retries(stack)
    stack.minio.stop()
    try:
        with app(stack) as conn:
            conn.execute("insert into movielens.movies values (%s, 'Outage', 'Drama')", [mid])
        consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": "t-watermarks"})
        try:  # the change is in Kafka: only bronze is missing it
            assert wait_until(lambda: consumer.get_watermark_offsets(tp, timeout=5)[1] > before, timeout=30)
        finally:
            consumer.close()
        assert wait_until(lambda: sink_retries(stack) >= retries_before + 2, timeout=60), "never retried"
        assert committed() == before, "offset advanced although nothing was stored"
        st = connectors.status(stack.s.connect_url, "lakehouse-bronze-sink") or {}
        assert [t["state"] for t in st.get("tasks", [])] == ["RUNNING"], "storage errors must be retried"
    finally:
        stack.minio.start()
    events = wait_for(stack, "movies", key_is(movie_id=mid), 1)
    assert len(events) == 1
    assert committed() > before


def test_changes_while_down_arrive_exactly_once(stack: Stack) -> None:
    mid = 9_100_003
    with app(stack) as conn:
        conn.execute("insert into movielens.movies values (%s, 'Before', 'Drama')", [mid])
    wait_for(stack, "movies", key_is(movie_id=mid), 1)
    snapshot_reads = sum(1 for e in bronze_events(stack, "movies") if e.op == "r")

    # the change path down, downstream first (silver, Trino and the rest keep running: restarting
    # them proves nothing here and costs minutes)
    cdc = ["connect", "kafka", "postgres"]
    stopped = [svc.name for svc in reversed(stack.services) if svc.name in cdc and svc.stop()]
    assert stopped == cdc
    assert all(stack.service(name).pid() is None for name in cdc)
    stack.postgres.start()  # only the source: change rows while the pipeline is down
    with app(stack) as conn:
        conn.execute("update movielens.movies set title = 'While down' where movie_id = %s", [mid])
        conn.execute("insert into movielens.movies values (%s, 'New while down', 'Drama')", [mid + 1])
    stack.up()

    updates = wait_for(stack, "movies", key_is(movie_id=mid), 2)
    inserted = wait_for(stack, "movies", key_is(movie_id=mid + 1), 1)
    # a change made after the restart comes after any re-sent event in the topic's one
    # partition: once it is in bronze, every duplicate that would arrive has arrived
    with app(stack) as conn:
        conn.execute("insert into movielens.movies values (%s, 'After restart', 'Drama')", [mid + 2])
    wait_for(stack, "movies", key_is(movie_id=mid + 2), 1)
    updates = [e for e in bronze_events(stack, "movies") if key_is(movie_id=mid)(e)]
    inserted = [e for e in bronze_events(stack, "movies") if key_is(movie_id=mid + 1)(e)]
    assert [e.op for e in updates] == ["c", "u"]
    assert updates[1].payload["after"]["title"] == "While down"
    assert [e.op for e in inserted] == ["c"]
    assert sum(1 for e in bronze_events(stack, "movies") if e.op == "r") == snapshot_reads

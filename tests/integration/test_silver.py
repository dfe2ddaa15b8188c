"""Silver against the real stack: a randomized DML workload, a crash of the Spark job, a replay."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from lakehouse.chaos import workload as hard_types
from lakehouse.config.paths import repo_root
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.commands import verify
from lakehouse.pipeline.silver.store import Layout, written_by_another
from lakehouse.polling import wait_until

from .helpers import (
    active_alerts,
    assert_one_catalog,
    catalog_tables,
    key_is,
    lakehouse,
    prom,
    wait_for,
)
from .session_setup import PREEXISTING, PREEXISTING_ROWS
from .target import lacks

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STALLED = "LakehouseStreamStalled"


def workload(dsn: str, seed: int, changes: int, start_id: int) -> int:
    """Inserts, partial updates (TOASTed body unchanged), PK changes, deletes, multi-row transactions."""
    return hard_types.run(dsn, "movielens.workload", seed, changes, start_id)


def _assert_clean(
    stack: Stack, spark: SparkSession, tables: list[str] | None, wait_s: float = 240
) -> dict[str, Any]:
    """Silver equals the source for these tables (None: every captured table), waiting while
    silver catches up; the diffs by source table. Tests name their own tables unless the point is
    all of silver: the others belong to other tests."""
    diffs = {d.source: d for d in verify(stack.s, stack.endpoints, tables, wait_s=wait_s, spark=spark)}
    bad = [d.as_dict() for d in diffs.values() if not d.clean]
    assert not bad, bad
    return diffs


def _workload_with_ddl(dsn: str, table: str, scratch: str) -> int:
    """Random changes to `table`, an added column there, and `scratch` emptied by TRUNCATE then
    written again; the next unused id of `table`."""
    next_id = hard_types.run(dsn, f"movielens.{table}", 1, 600, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE movielens.{table} ADD COLUMN note text")
        conn.execute(f"UPDATE movielens.{table} SET note = 'n' || id WHERE id % 7 = 0")
        conn.execute(f"CREATE TABLE IF NOT EXISTS movielens.{scratch} (id int PRIMARY KEY, v text)")
        conn.execute(f"INSERT INTO movielens.{scratch} SELECT g, 'x' FROM generate_series(1, 50) g")
        conn.execute(f"TRUNCATE movielens.{scratch}")
        conn.execute(f"INSERT INTO movielens.{scratch} VALUES (1000, 'after truncate')")
    return hard_types.run(dsn, f"movielens.{table}", 2, 300, next_id)


def test_a_silver_job_killed_mid_load_is_restarted_and_catches_up(stack: Stack, spark: SparkSession) -> None:
    dsn = stack.postgres.app_dsn
    next_id = _workload_with_ddl(dsn, "workload", "scratch")
    assert _assert_clean(stack, spark, ["workload"])["movielens.workload"].source_rows > 50
    # while the job runs, reset-silver refuses
    refused = lakehouse("reset-silver", "--yes")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "silver job is running" in refused.stderr

    # kill -9 the Spark job in the middle of more changes: its supervisor starts it again, and
    # the restarted job re-runs the batch it died in
    seen = stack.silver.restarts()
    pid, before = stack.silver.pid(), seen.restarts if seen else 0
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: stack.silver.pid() not in (None, pid), timeout=30), "silver was not restarted"
    workload(dsn, seed=3, changes=300, start_id=next_id)
    # a bound, not a speed: on two busy cores the restart alone (a new Spark, the checks at start,
    # the batch it died in, again) takes minutes
    diffs = _assert_clean(stack, spark, ["workload", "scratch"], wait_s=600)
    assert diffs["movielens.scratch"].silver_rows == 1
    restarted = stack.silver.restarts()
    assert restarted is not None and restarted.restarts == before + 1, restarted
    assert restarted.last_exit is not None and restarted.last_exit.reason == "killed by SIGKILL", restarted
    shown = lakehouse("status")
    assert f"restarted {before + 1} times (last: killed by SIGKILL" in shown.stdout, shown.stdout
    # ... counted where alerts can see it (the monitor exports every supervisor's count)
    counted = f'lakehouse_service_restarts_total{{service="silver"}} == {before + 1}'
    assert wait_until(lambda: bool(prom(stack, "/api/v1/query", query=counted)["result"]), timeout=60)


@pytest.mark.long  # 5-8 minutes: the alert's `for: 1m`, a cold restart, a replay of all of bronze
@pytest.mark.early  # it rebuilds every table from bronze: before the MovieLens load
def test_a_stopped_silver_alerts_then_reset_silver_rebuilds_every_table_from_bronze(
    stack: Stack, spark: SparkSession
) -> None:
    lacks(stack, "preexisting")
    dsn = stack.postgres.app_dsn
    next_id = _workload_with_ddl(dsn, "rebuilt", "rebuilt_scratch")
    _assert_clean(stack, spark, ["rebuilt", "rebuilt_scratch"])
    assert not active_alerts(stack, STALLED), "the stream was already stalled"

    # a job that is stopped stays stopped, and the outage fires the stalled-stream alert (rule:
    # `for: 1m` after the first failed scrape of the job's metrics, evaluated every 5 s, sent at once)
    down = lakehouse("down", "silver")
    assert down.returncode == 0 and down.stdout.strip() == "stopped: silver", down.stdout + down.stderr
    stopped_at = time.monotonic()
    # ... and stopped cleanly: the stream stopped between calls into Spark, then the session
    ended = [ln for ln in stack.silver.files.logfile.read_text().splitlines() if "supervisor: stopped" in ln]
    assert ended and ended[-1].endswith("stopped (exited with code 0)"), ended[-1:]
    hard_types.run(dsn, "movielens.rebuilt", 5, 300, next_id)
    assert stack.silver.pid() is None and stack.silver.supervisor() is None
    assert wait_until(lambda: bool(active_alerts(stack, STALLED)), timeout=240), f"no {STALLED} alert"
    assert stack.silver.pid() is None, "a stopped service was restarted"
    alert = active_alerts(stack, STALLED)[0]
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == "silver"
    seen = repo_root() / "artifacts" / "alerts" / "stream-stalled.txt"
    seen.parent.mkdir(parents=True, exist_ok=True)
    fired_after = time.monotonic() - stopped_at
    seen.write_text(
        f"{STALLED} reached Alertmanager {fired_after:.0f}s after the silver job was stopped\n"
        + json.dumps(alert["labels"], sort_keys=True)
        + "\n"
    )

    # the user's rebuild, as documented: reset-silver (it wants --yes), then `up`. The stream
    # replays all of bronze — every test's tables so far, over as many batches as that takes
    assert lakehouse("reset-silver").returncode == 2
    reset = lakehouse("reset-silver", "--yes")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert int(reset.stdout.split()[1]) > 0, reset.stdout  # "deleted N objects; ..."
    stack.up()
    restarted_at = time.monotonic()
    diffs = _assert_clean(stack, spark, None, wait_s=900)
    # the tables of this test, and the one Debezium's initial snapshot read (op = r)
    assert {"movielens.rebuilt", "movielens.rebuilt_scratch", f"movielens.{PREEXISTING}"} <= set(diffs)
    assert diffs["movielens.rebuilt_scratch"].silver_rows == 1
    # the catalog is consistent again: the rebuilt tables are registered, and Spark and Trino
    # list the same tables from the metastore
    assert wait_until(
        lambda: {"rebuilt", "rebuilt_scratch"} <= set(catalog_tables(stack)["silver"]), timeout=120
    )
    assert_one_catalog(stack)
    # ... and the alert resolves once the job is back
    assert wait_until(lambda: not active_alerts(stack, STALLED), timeout=240), f"{STALLED} still active"
    with open(seen, "a") as out:
        out.write(f"resolved {time.monotonic() - restarted_at:.0f}s after the job was started again\n")


def test_tables_json_lists_every_captured_table(stack: Stack) -> None:
    from lakehouse.pipeline.silver.commands import tables

    lacks(stack, "preexisting")
    name = f"movielens.{PREEXISTING}"  # a table the session's stack captures from its start
    assert wait_until(
        lambda: any(t.rows for t in tables(stack.s, stack.endpoints) if t.source == name), timeout=120
    )
    out = {t.source: t for t in tables(stack.s, stack.endpoints)}
    assert out[name].location == f"s3://{stack.s.bucket}/silver/movielens/{PREEXISTING}"
    assert out[name].version is not None and out[name].version >= 1


@pytest.mark.timeout(300)
def test_poison_record_in_kafka_is_quarantined_and_stream_continues(
    stack: Stack, spark: SparkSession
) -> None:
    """A record that is not JSON, written to a captured table's topic (silver's live source): it
    lands in quarantine once, with its bytes and a reason, and the changes after it still apply."""
    import base64

    from confluent_kafka import Producer

    workload(stack.postgres.app_dsn, seed=4, changes=10, start_id=7_000_000)  # the table, with rows
    bad = b"{not json at all"
    producer = Producer({"bootstrap.servers": stack.s.kafka_bootstrap})
    producer.produce(f"{stack.s.topic_prefix}.movielens.workload", value=bad)
    assert producer.flush(30) == 0, "the poison record was not delivered"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE movielens.workload SET votes = -1 WHERE id = (SELECT min(id) FROM movielens.workload)"
        )
    _assert_clean(stack, spark, ["workload"])

    # a batch commits its quarantine after its tables: the update can be visible a moment before
    # the poison record's quarantine row when both land in one batch
    def quarantined() -> list[str]:
        path = Layout.of(stack.s.storage).quarantine
        if not written_by_another(spark, path):
            return []
        q = spark.read.format("delta").load(path)
        rows = q.where(q.raw.contains(base64.b64encode(bad).decode())).collect()
        return [r["reason"] for r in rows]

    assert wait_until(lambda: bool(quarantined()), timeout=60)
    assert quarantined() == ["unparseable: record value is not JSON"]


def test_rows_present_before_the_connector_started_arrive_as_snapshot_reads(
    stack: Stack, spark: SparkSession
) -> None:
    lacks(stack, "preexisting")
    events = wait_for(stack, PREEXISTING, lambda e: e.op == "r", PREEXISTING_ROWS, timeout=120)
    # every row read, as often as the others: once per snapshot (the resnapshot test, which runs
    # before this one, took a second)
    reads = Counter(e.key["payload"]["id"] for e in events)
    assert set(reads) == set(range(1, PREEXISTING_ROWS + 1)), sorted(reads)[:10]
    assert len(set(reads.values())) == 1, reads.most_common(3)
    assert all(e.payload["source"]["snapshot"] != "false" for e in events)
    # a change after the snapshot streams on top of it
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE movielens.{PREEXISTING} SET label = 'streamed' WHERE id = 1")
        conn.execute(f"DELETE FROM movielens.{PREEXISTING} WHERE id = 2")
    (diff,) = verify(stack.s, stack.endpoints, PREEXISTING, wait_s=240, spark=spark)
    assert diff.clean, diff.as_dict()
    assert (diff.source_rows, diff.silver_rows) == (PREEXISTING_ROWS - 1, PREEXISTING_ROWS - 1)


def test_two_writers_with_interleaved_transactions_end_equal(stack: Stack, spark: SparkSession) -> None:
    """Two connections whose transactions overlap: A begins first (its changes have the lower
    LSNs) and commits after B; A's transactions span two tables; B sometimes deletes a key and
    inserts it again in one transaction."""
    dsn = stack.postgres.app_dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE movielens.ledger (id int PRIMARY KEY, v int, who text)")
        conn.execute("CREATE TABLE movielens.ledger_log (seq int PRIMARY KEY, id int, delta int)")
        conn.execute("INSERT INTO movielens.ledger SELECT g, 0, 'seed' FROM generate_series(1, 40) g")
    rng = random.Random(11)
    seq = 0
    with psycopg.connect(dsn) as a, psycopg.connect(dsn) as b:
        for _ in range(40):
            odd = rng.sample(range(1, 41, 2), 3)
            even = rng.sample(range(2, 41, 2), 3)
            for i in odd:  # A: rows and a log line per row, left open
                seq += 1
                a.execute("UPDATE movielens.ledger SET v = v + 1, who = 'a' WHERE id = %s", (i,))
                a.execute("INSERT INTO movielens.ledger_log VALUES (%s, %s, 1)", (seq, i))
            b.execute("UPDATE movielens.ledger SET v = v - 1, who = 'b' WHERE id = ANY(%s)", (even,))
            if rng.random() < 0.3:
                b.execute("DELETE FROM movielens.ledger WHERE id = %s", (even[0],))
                b.execute("INSERT INTO movielens.ledger VALUES (%s, 100, 'b again')", (even[0],))
            b.commit()  # B commits first although A began first
            a.commit()
    diffs = _assert_clean(stack, spark, ["ledger", "ledger_log"])
    assert diffs["movielens.ledger"].silver_rows == 40
    assert diffs["movielens.ledger_log"].silver_rows == seq == 120


@pytest.mark.long  # 3 minutes: silver stopped, Kafka's log deleted, bronze's replay
@pytest.mark.timeout(900)
def test_kafka_lost_what_silver_needs_bronze_fills_it_then_kafka_takes_over_exactly(
    stack: Stack, spark: SparkSession
) -> None:
    """Silver reads the topics live. Stopped, it misses changes that Kafka then deletes (as
    retention would); started again it finds the gap, applies those changes from bronze, and hands
    over to Kafka right after the last offset bronze had: silver equals the source, nothing
    quarantined, and the new epoch starts at an object boundary of bronze."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    from lakehouse.pipeline.bronze.format import object_range
    from lakehouse.pipeline.silver.sources import Epoch
    from lakehouse.pipeline.silver.store import read_text

    state_path = Layout.of(stack.s.storage).source_state

    def state() -> Epoch:
        text = read_text(spark, state_path)
        assert text is not None, "no source state"
        return Epoch.from_json(text)

    dsn = stack.postgres.app_dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE movielens.handover (id int PRIMARY KEY, v int, body text)")
    name = f"{stack.s.topic_prefix}.movielens.handover"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO movielens.handover SELECT g, 0, 'x' FROM generate_series(1, 20) g")
    _assert_clean(stack, spark, ["handover"])
    live = state()
    assert live.source == "kafka", live

    assert lakehouse("down", "silver").returncode == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(1, 21):
            conn.execute("UPDATE movielens.handover SET v = v + %s WHERE id = %s", (i, i))
        conn.execute("DELETE FROM movielens.handover WHERE id <= 5")
        conn.execute("INSERT INTO movielens.handover SELECT g, 1, 'y' FROM generate_series(21, 30) g")
    # bronze holds every change of the table (its last one, and so all before it in the partition) ...
    wait_for(stack, "handover", key_is(id=30), 1, timeout=120)
    # `lakehouse trace` finds the change held up and names where: in Kafka and bronze, not in silver
    traced = lakehouse("trace", "handover", "30", "--timeout", "5", "--json")
    assert traced.returncode == 1, traced.stdout + traced.stderr
    assert "not visible in Trino after 5s: stuck before silver" in traced.stderr, traced.stderr
    hops = {h["hop"]: h for h in json.loads(traced.stdout)["hops"]}
    assert hops["kafka"]["topic"] == name and hops["bronze"]["at"] is not None
    assert hops["silver"]["at"] is None and hops["trino"]["at"] is None
    # ... and Kafka forgets them: its log of the topic starts after the last one
    admin = AdminClient({"bootstrap.servers": stack.s.kafka_bootstrap})
    from confluent_kafka import Consumer

    probe = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": "lakehouse-test-handover"})
    _, high = probe.get_watermark_offsets(TopicPartition(name, 0), timeout=10)
    for fut in admin.delete_records([TopicPartition(name, 0, high)]).values():
        fut.result(timeout=30)
    low, _ = probe.get_watermark_offsets(TopicPartition(name, 0), timeout=10)
    probe.close()
    assert low == high > 0

    stack.up()
    with psycopg.connect(dsn, autocommit=True) as conn:  # and changes after the hand-over
        conn.execute("UPDATE movielens.handover SET v = -1, body = 'after' WHERE id % 3 = 0")
    diffs = _assert_clean(stack, spark, ["handover"])
    assert diffs["movielens.handover"].silver_rows == 25

    now = state()
    assert (now.source, now.n) == ("kafka", live.n + 2), now  # bronze filled the gap, then Kafka again
    log = stack.silver.files.logfile.read_text()
    assert f"Kafka no longer holds what silver needs next ({name}[0]" in log
    # the hand-over point is the end of a bronze object: Kafka starts right after it
    ends = {
        r[3]
        for o in stack.minio.client().list_objects(stack.s.bucket, prefix=f"bronze/{name}/", recursive=True)
        if (r := object_range(o.object_name or "")) is not None
    }
    assert now.applied[name][0] in ends, (now.applied[name], sorted(ends))
    assert now.applied[name][0] >= high - 1
    q = spark.read.format("delta").load(Layout.of(stack.s.storage).quarantine)
    assert q.where(q.source_table == "movielens.handover").count() == 0

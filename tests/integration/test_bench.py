"""Smoke run of `lakehouse bench` on the real stack: a few seconds at a low rate, every hop seen."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import psycopg

from lakehouse.benchmark.compare import clear_side, floor_job, side_catalog, start_side_job, stop_side_job
from lakehouse.benchmark.run import run
from lakehouse.benchmark.stats import SCHEMA
from lakehouse.launcher.stack import Stack

from .helpers import silver_config


def test_bench_smoke_follows_markers_through_every_hop(stack: Stack, tmp_path: Path) -> None:
    # the generator needs at least one movie to work with
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO movielens.movies VALUES (9600001, 'Bench Smoke (2026)', 'Drama') "
            "ON CONFLICT DO NOTHING"
        )
    result = run(stack, rate=20, duration_s=10, out_dir=tmp_path)
    jsonschema.validate(result, SCHEMA)
    assert json.loads((tmp_path / "bench.json").read_text()) == result
    assert result["markers"]["written"] >= 15
    assert result["markers"]["visible"] == result["markers"]["written"]
    assert result["freshness_s"]["n"] == result["markers"]["written"]
    assert result["changes"] == 200 and result["achieved_rate"] > 0
    # silver reads Kafka: the path skips bronze, which is measured beside it
    path = ["commit_to_kafka", "kafka_to_silver_commit", "silver_commit_to_trino"]
    assert list(result["hops_s"]) == [*path, "kafka_to_bronze"]
    for hop in result["hops_s"]:  # every hop was observed for every marker
        assert result["hops_s"][hop]["n"] == result["markers"]["written"], hop
    assert result["bottleneck"] in path
    assert {"silver", "trino", "kafka"} <= set(result["footprint"]["rss_mib"])
    # CPU per service over the run: silver merged the markers, Postgres took the load's commits
    cpu = result["footprint"]["cpu_s"]
    assert cpu["silver"] > 0 and cpu["postgres"] > 0
    assert sum(cpu.values()) <= result["machine"]["cpus"] * result["footprint"]["cpu_window_s"] * 1.05
    # the markers reached silver, so at least one micro-batch ran during the run and was counted
    batches = result["silver_batches"]
    assert batches["batches"] >= 1 and batches["spark_jobs_per_batch"] > 0
    # ... and wrote them: appended to the tables' change logs (merge-on-read) or merged
    write = "log" if silver_config(stack).merge_on_read else "merge"
    assert batches["phase_seconds_per_batch"][write] > 0
    for png in ("freshness.png", "cdf.png", "hops.png"):
        assert (tmp_path / png).stat().st_size > 10_000


def test_floor_job_stops_on_the_launchers_signal(stack: Stack, tmp_path: Path) -> None:
    """`bench --floor` ends its floor job with SIGTERM; the job must exit, not hang in `spark.stop()`
    (it did when the signal unwound it from inside a call into Spark, and a Ctrl-C of the benchmark
    then left it running beside a stopped silver)."""
    log = tmp_path / "floor.log"
    job = floor_job()
    sync = side_catalog(stack, job)
    proc = start_side_job(stack, job, log)
    try:
        deadline = time.monotonic() + 240
        while "floor job running" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        assert "floor job running" in log.read_text(), log.read_text()[-3000:]
        assert stop_side_job(proc, timeout_s=90) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        clear_side(stack, sync, job)

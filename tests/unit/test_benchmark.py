"""The benchmark's arithmetic: percentiles, per-hop attribution, bounded lag, the JSON schema."""

from __future__ import annotations

import copy
import os

import jsonschema
import pytest

from lakehouse.benchmark.observe import Seen, on_commit
from lakehouse.benchmark.stats import (
    HOPS,
    SCHEMA,
    batch_breakdown,
    bottleneck,
    freshness,
    hops,
    lag_bounded,
    percentile,
    summary,
)
from lakehouse.errors import UsageError


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    assert summary([])["p50"] is None and summary([])["n"] == 0
    s = summary([1.0, 2.0, 3.0, 10.0])
    assert (s["n"], s["p50"], s["max"], s["mean"]) == (4, 2.0, 10.0, 4.0)


def test_each_hop_gets_the_time_between_its_two_points() -> None:
    seen = {
        "commit": {1: 100.0, 2: 100.5, 3: 101.0},
        "kafka": {1: 100.2, 2: 100.6, 3: 101.1},
        "bronze": {1: 101.0, 2: 101.0, 3: 102.0},
        "silver_commit": {1: 110.0, 2: 110.0},  # marker 3 not committed to silver yet
        "trino": {1: 110.3, 2: 110.3},
    }
    per_hop = hops(seen)  # silver reading bronze
    assert list(per_hop) == [
        "commit_to_kafka",
        "kafka_to_bronze",
        "bronze_to_silver_commit",
        "silver_commit_to_trino",
    ]
    assert per_hop["commit_to_kafka"] == pytest.approx([0.2, 0.1, 0.1])
    assert per_hop["kafka_to_bronze"] == pytest.approx([0.8, 0.4, 0.9])
    assert per_hop["bronze_to_silver_commit"] == pytest.approx([9.0, 9.0])
    assert per_hop["silver_commit_to_trino"] == pytest.approx([0.3, 0.3])
    # the hops of a marker add up to its freshness
    assert [round(v, 6) for _, v in freshness(seen)] == [10.3, 9.8]
    assert sum(per_hop[h][0] for h in per_hop) == pytest.approx(freshness(seen)[0][1])
    assert bottleneck(per_hop) == "bronze_to_silver_commit"
    # silver reading Kafka: bronze is beside the path, still measured, never the bottleneck
    from_kafka = hops(seen, "kafka")
    path = ["commit_to_kafka", "kafka_to_silver_commit", "silver_commit_to_trino"]
    assert list(from_kafka) == [*path, "kafka_to_bronze"]
    assert from_kafka["kafka_to_silver_commit"] == pytest.approx([9.8, 9.4])
    assert sum(from_kafka[h][0] for h in path) == pytest.approx(freshness(seen)[0][1])
    slow_bronze = {**seen, "bronze": {1: 200.0, 2: 200.0, 3: 200.0}}
    assert bottleneck(hops(slow_bronze, "kafka"), "kafka") == "kafka_to_silver_commit"
    assert set(HOPS) == {*per_hop, *from_kafka}
    # a clock step never shows as a negative hop
    assert hops({"commit": {1: 5.0}, "kafka": {1: 4.9}})["commit_to_kafka"] == [0.0]


def test_seen_is_cumulative() -> None:
    s = Seen()
    s.upto(3, 10.0)
    s.upto(2, 11.0)  # older news changes nothing
    s.upto(5, 12.0)
    assert s.snapshot() == {1: 10.0, 2: 10.0, 3: 10.0, 4: 12.0, 5: 12.0}


def test_trino_is_asked_after_a_commit_until_it_shows_it_and_seldom_otherwise() -> None:
    now, version, shown, asked = [0.0], [7], [10], []

    def poll() -> int | None:
        asked.append(now[0])
        return shown[0]

    watch = on_commit(poll, lambda: version[0], chase_s=30.0, slow_s=5.0, clock=lambda: now[0])

    def tick(until: float) -> None:
        while now[0] < until:
            watch()
            now[0] += 0.25

    tick(4.0)  # nothing committed: the first answer, then nothing until the slow poll is due
    assert asked == [0.0]
    tick(6.0)
    assert asked == [0.0, 5.0]
    version[0] = 8  # a commit: Trino is asked at every tick until its answer changes
    tick(7.0)
    assert asked[2:] == [6.0, 6.25, 6.5, 6.75]
    shown[0] = 11
    tick(8.0)
    assert asked[6:] == [7.0]  # the new seq seen: back to the slow poll
    assert watch() == 11
    version[0] = 9  # a commit that never shows (OPTIMIZE): chased for chase_s, not forever
    tick(60.0)
    assert [t for t in asked if 8.0 <= t <= 38.0] == [8.0 + 0.25 * i for i in range(120)]
    assert [t for t in asked if t > 38.0] == [42.75, 47.75, 52.75, 57.75]


def test_lag_is_bounded_unless_it_keeps_growing() -> None:
    steady = [(float(t), 15.0 + (t % 3)) for t in range(40)]
    growing = [(float(t), 5.0 + 2 * t) for t in range(40)]
    assert lag_bounded(steady)
    assert not lag_bounded(growing)
    assert not lag_bounded(steady[:5])  # too few markers to say


def test_a_result_document_matches_the_schema() -> None:
    s = summary([1.0, 2.0])
    doc = {
        "freshness_s": s,
        "freshness_samples_s": [1.0, 2.0],
        "target": "silver",
        "achieved_rate": 99.5,
        "target_rate": 100.0,
        "duration_s": 60.0,
        "markers": {"written": 120, "visible": 120},
        "hops_s": {h: s for h in HOPS},
        "bottleneck": "bronze_to_silver_commit",
        "lag_bounded": True,
        "footprint": {"rss_mib": {"trino": 700.0}, "total_rss_mib": 700.0},
        "files": {"ratings": [[0.0, 12], [10.0, 13]]},
        "machine": {"cpus": 2, "memory_gib": 23.5},
    }
    jsonschema.validate(doc, SCHEMA)
    broken = copy.deepcopy(doc)
    del broken["hops_s"]["commit_to_kafka"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    unknown = copy.deepcopy(doc)
    unknown["hops_s"]["kafka_to_trino"] = s
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unknown, SCHEMA)


def test_batch_breakdown_is_per_batch_over_the_run() -> None:
    before = {"batches": 10, "seconds": 50.0, "jobs": 240, "phase:merge": 40.0, "phase:summary": 5.0}
    after = {"batches": 14, "seconds": 70.0, "jobs": 340, "phase:merge": 56.0, "phase:summary": 7.0}
    assert batch_breakdown(before, after) == {
        "batches": 4,
        "seconds_per_batch": 5.0,
        "spark_jobs_per_batch": 25.0,
        "phase_seconds_per_batch": {"merge": 4.0, "summary": 0.5},
    }
    # the job did not answer: nothing per batch rather than a division by zero
    assert batch_breakdown({}, {})["seconds_per_batch"] is None


def test_silver_is_reported_as_a_multiple_of_the_floor() -> None:
    from lakehouse.benchmark.compare import comparison

    def result(p50: float, p95: float, bounded: bool) -> dict[str, object]:
        s = summary([p50] * 50 + [p95] * 50)
        s["p50"], s["p95"] = p50, p95
        markers = {"written": 100, "visible": 100 if bounded else 60}
        return {"freshness_s": s, "achieved_rate": 990.0, "lag_bounded": bounded, "markers": markers}

    c = comparison(
        result(12.0, 30.0, False), {"merge": result(24.0, 40.0, True), "append": result(3.0, 6.0, True)}
    )
    assert c["freshness_ratio"]["append"]["p50"] == 4.0
    assert c["freshness_ratio"]["append"]["p95"] == 5.0
    assert c["freshness_ratio"]["merge"]["p50"] == 0.5
    assert c["freshness_ratio"]["merge"]["p95"] == 0.75
    assert (c["silver"]["lag_bounded"], c["floors"]["append"]["lag_bounded"]) == (False, True)
    assert c["silver"]["markers"] == {"written": 100, "visible": 60}
    nothing = result(1.0, 1.0, True)
    nothing["freshness_s"] = summary([])  # no marker seen: no ratio, rather than a division error
    assert comparison(nothing, {"append": result(3.0, 6.0, True)})["freshness_ratio"]["append"]["p50"] is None


def test_cpu_time_counts_the_process_and_its_children() -> None:
    import subprocess
    import sys
    import time

    from lakehouse.benchmark.footprint import tree_cpu_s

    me = os.getpid()
    before = tree_cpu_s(me)
    end = time.process_time() + 0.4
    while time.process_time() < end:  # burn 0.4 s of CPU in this process
        pass
    mine = tree_cpu_s(me) - before
    assert 0.3 <= mine <= 2.0
    busy = (
        "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        deadline = time.time() + 20
        while tree_cpu_s(child.pid) < 0.5 and time.time() < deadline:
            time.sleep(0.1)
        theirs = tree_cpu_s(child.pid)
        assert theirs >= 0.5
        # read after the child's: the child's CPU counts for its parent (0.02 s for rounding)
        assert tree_cpu_s(me) - before >= mine + theirs - 0.02
    finally:
        child.kill()
        child.wait()
    # once it has exited and been waited for, it still counts (a closed connection's backend)
    assert tree_cpu_s(me) - before >= mine + theirs - 0.02


def test_bench_batch_cuts_bronze_into_batches_of_whole_lines() -> None:
    from tools.bench.batch import chunks

    lines = [f'{{"offset": {i}}}\n' for i in range(7)] + ["\n"]  # a blank line is not an event
    got = list(chunks(lines, 3))
    assert [len(b) for b in got] == [3, 3, 1]
    assert got[0][0] == '{"offset": 0}' and got[-1] == ['{"offset": 6}']
    with pytest.raises(UsageError):
        list(chunks(lines, 0))


def test_the_kafka_run_of_bench_source_takes_as_many_records_per_trigger_as_a_file_batch_holds() -> None:
    from tools.bench.source import per_trigger

    # 311,000 records in 1,189 MiB of bronze: a 128 MiB file batch holds ~33,500 of them
    assert per_trigger(311_183, 1189 * 2**20, 128 * 2**20) == 33_500
    assert per_trigger(10, 10**9, 1) == 1  # never zero
    with pytest.raises(UsageError, match="nothing to read"):
        per_trigger(0, 10**9, 2**20)


def test_bench_merge_names_each_delta_job_and_reads_conf_pairs() -> None:
    from tools.bench.merge import kind, parse_conf

    from lakehouse.errors import UsageError

    assert kind(
        "Delta: merge - MERGE operation - scanning files for matches: Compute snapshot for version: 7"
    ) == ("snapshot")
    assert kind("merge - MERGE operation - scanning files for matches") == "find touched files"
    assert kind("Delta: merge: Writing modified data - MERGE operation - Rewriting 2 files") == "rewrite"
    assert kind("something else") == "other"
    assert parse_conf(["a.b=1", " c = x=y "]) == {"a.b": "1", "c": "x=y"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_conf(["no-equals"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_conf(["=1"])


def test_bench_merge_shape_refuses_what_it_cannot_measure() -> None:
    from tools.bench.merge import Shape

    from lakehouse.errors import UsageError

    Shape().check()
    with pytest.raises(UsageError, match="cannot exceed"):
        Shape(rows=2, size=3).check()
    with pytest.raises(UsageError, match="warm-up"):
        Shape(merges=3, warmup=3).check()

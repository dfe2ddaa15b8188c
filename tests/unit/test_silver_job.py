"""The silver job's driver-side rules: transaction hold-back, crash points, failure messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.config.settings import Settings, load_settings
from lakehouse.errors import ConfigError
from lakehouse.launcher.services.silver import SilverService
from lakehouse.pipeline.silver.checkpoint_guard import CheckpointError
from lakehouse.pipeline.silver.faults import POINTS, Faults
from lakehouse.pipeline.silver.job import stream_error
from lakehouse.pipeline.silver.transactions import End, Group, decide

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TIMEOUT, TTL = timedelta(minutes=5), timedelta(minutes=30)
CKPT = "s3a://lakehouse/_checkpoints/silver"


def group(txid: int, events: int, age_s: float = 0, table: str = "s.t") -> Group:
    return Group(txid, table, events, events, NOW - timedelta(seconds=age_s))


def test_a_complete_transaction_is_released_and_its_end_forgotten() -> None:
    d = decide([group(1, 2)], [End(1, "s.t", 2, NOW)], NOW, TIMEOUT, TTL)
    assert (d.held, d.timed_out, d.ends) == (set(), 0, [])


def test_an_incomplete_transaction_is_held_with_its_end() -> None:
    end = End(1, "s.t", 3, NOW)
    d = decide([group(1, 2)], [end], NOW, TIMEOUT, TTL)
    assert d.held == {(1, "s.t")}
    assert d.held_lines == 2
    assert d.ends == [end]


def test_without_its_end_a_transaction_waits_then_times_out() -> None:
    assert decide([group(1, 2, age_s=60)], [], NOW, TIMEOUT, TTL).held == {(1, "s.t")}
    late = decide([group(1, 2, age_s=301)], [], NOW, TIMEOUT, TTL)
    assert (late.held, late.timed_out) == (set(), 1)


def test_an_end_before_its_events_waits_until_its_ttl() -> None:
    fresh = End(2, "s.t", 1, NOW - timedelta(minutes=10))
    stale = End(3, "s.t", 1, NOW - timedelta(minutes=31))
    empty = End(4, "s.t", 0, NOW)  # no events for this table: nothing to wait for
    assert decide([], [fresh, stale, empty], NOW, TIMEOUT, TTL).ends == [fresh]


def test_ends_seen_twice_are_merged_per_table() -> None:
    ends = [End(1, "s.t", 2, NOW), End(1, "s.t", 3, NOW - timedelta(seconds=5)), End(1, "s.u", 1, NOW)]
    d = decide([group(1, 2), group(1, 1, table="s.u")], ends, NOW, TIMEOUT, TTL)
    assert d.held == {(1, "s.t")}  # needs 3 events for s.t; s.u is complete
    assert d.ends == [End(1, "s.t", 3, NOW - timedelta(seconds=5))]


def test_a_crash_point_with_a_marker_fires_once_until_the_marker_is_deleted(tmp_path: Path) -> None:
    crashed: list[str] = []
    marker = tmp_path / "silver" / "crash-fired"
    faults = Faults("after-merge", action=crashed.append, fired=marker)
    faults.reach("after-tombstones")  # not the configured point
    assert crashed == [] and not marker.exists()
    faults.reach("after-merge")
    assert crashed == ["after-merge"] and marker.read_text() == "after-merge"
    faults.reach("after-merge")  # the restarted job re-runs the batch instead of crashing again
    assert crashed == ["after-merge"]
    marker.unlink()
    faults.reach("after-merge")
    assert crashed == ["after-merge", "after-merge"]
    # without a marker (the in-process tests) it fires every time
    always = Faults("before-commit", action=crashed.append)
    always.reach("before-commit")
    always.reach("before-commit")
    assert crashed[-2:] == ["before-commit", "before-commit"]


BATCH_FAILURE = (
    "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in foreach "
    "batch sink. Reason: An exception was raised by the Python Proxy. Return Message: Traceback:\n"
    '  File "batch.py", line 217, in process\n'
    "TypeError: can't compare offset-naive and offset-aware datetimes\n"
    "=== Streaming Query ===\n"
    "Current Committed Offsets: {FileStreamSource: 25}\n"
    f"WriteToMicroBatchDataSourceV1 ForeachBatchSink, [checkpointLocation={CKPT}]\n"
)


def test_a_failed_batch_is_not_called_a_checkpoint_problem() -> None:
    """Every streaming error dumps the query with its checkpoint location and offsets: those words
    must not send a user to `reset-silver`, which deletes silver."""
    err = stream_error(BATCH_FAILURE, CKPT)
    assert not isinstance(err, CheckpointError)
    assert "TypeError: can't compare" in str(err)
    assert "reset-silver" not in str(err)
    hint = SilverService.fix_hint(None, BATCH_FAILURE + f"\nERROR lakehouse.silver {err}")  # type: ignore[arg-type]
    assert "reset-silver" not in hint


def test_a_job_still_catching_up_is_not_given_a_fix() -> None:
    """`up` waits a bounded time for silver's first batch; a replay can take longer. That job is
    slow, not broken: the advice must not send the user anywhere, least of all to `reset-silver`."""
    svc = SilverService.__new__(SilverService)
    log = "INFO lakehouse.silver batch 0: 30000 lines, applied {...}, quarantined {}, pending 0 (95.1s)"
    svc.pid = lambda: 4242  # type: ignore[method-assign]
    hint = svc.fix_hint(log)
    assert hint.startswith("nothing to fix") and "reset-silver" not in hint
    svc.pid = lambda: None  # type: ignore[method-assign]
    assert not svc.fix_hint(log).startswith("nothing to fix")  # it died: that is not catching up


def test_a_running_stream_that_misses_one_probe_is_still_found_streaming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A catch-up outlasts `up`'s wait; the job then says it streams. A probe that lands while the
    job is busy, or between the bronze catch-up and the topics, must not fail `up` on its own."""
    from lakehouse.errors import ServiceError
    from lakehouse.launcher.services import silver
    from lakehouse.launcher.services.metrics import MetricsReadyService

    def not_ready(self: MetricsReadyService) -> str:
        raise ServiceError("silver did not become ready.")

    monkeypatch.setattr(MetricsReadyService, "wait_ready", not_ready)
    monkeypatch.setattr(silver, "STREAMING_PROBE_S", 5.0)
    svc = SilverService.__new__(SilverService)
    svc.pid = lambda: 4242  # type: ignore[method-assign]
    answers = iter([False, False, True])
    asked: list[str] = []

    def metric_line(line: str) -> bool:
        asked.append(line)
        return next(answers)

    svc.metric_line = metric_line  # type: ignore[method-assign]
    assert svc.wait_ready().startswith("streaming")
    assert asked == [svc.streaming_line] * 3

    svc.metric_line = lambda line: False  # type: ignore[method-assign]
    with pytest.raises(ServiceError, match="did not become ready"):  # never streaming: the wait fails
        svc.wait_ready()
    svc.metric_line = lambda line: True  # type: ignore[method-assign]
    svc.pid = lambda: None  # type: ignore[method-assign]
    with pytest.raises(ServiceError):  # a dead job is not streaming, whatever was last exported
        svc.wait_ready()


def test_an_unreadable_checkpoint_file_is_a_checkpoint_problem() -> None:
    text = f"java.io.FileNotFoundException: {CKPT}/offsets/25 (No such file)\n=== Streaming Query ===\n"
    err = stream_error(text, CKPT)
    assert isinstance(err, CheckpointError)
    assert "reset-silver" in str(err)
    assert "reset-silver" in SilverService.fix_hint(None, f"ERROR lakehouse.silver {err}")  # type: ignore[arg-type]


def test_the_crash_hook_is_off_when_empty_strict_otherwise_and_not_a_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fired = tmp_path / "crash-fired"
    monkeypatch.setenv("LAKEHOUSE_SILVER_CRASH_AT", "")
    assert Faults.from_env(fired).crash_at is None
    for point in POINTS:
        monkeypatch.setenv("LAKEHOUSE_SILVER_CRASH_AT", point)
        assert Faults.from_env(fired).crash_at == point
        load_settings()  # the hook is no setting, and no unknown one either
    monkeypatch.setenv("LAKEHOUSE_SILVER_CRASH_AT", "after-lunch")
    with pytest.raises(
        ConfigError, match=r"LAKEHOUSE_SILVER_CRASH_AT='after-lunch': not a crash point; one of after-cut"
    ):
        Faults.from_env(fired)
    assert "silver_crash_at" not in Settings.model_fields


def test_the_loop_around_a_batch_is_counted_per_phase_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    from lakehouse.pipeline.silver.metrics import STREAM_SECONDS, stream_overhead

    def counted(phase: str) -> float:
        return float(STREAM_SECONDS.labels(phase)._value.get())

    before = {p: counted(p) for p in ("latestOffset", "walCommit", "commitOffsets")}
    caplog.set_level("INFO", logger="lakehouse.silver")
    stream_overhead(
        {
            "triggerExecution": 5000,
            "addBatch": 4200,
            "latestOffset": 300,
            "walCommit": 100,
            "commitOffsets": 80,
        },
        7,
    )
    assert counted("latestOffset") - before["latestOffset"] == pytest.approx(0.3)
    assert counted("walCommit") - before["walCommit"] == pytest.approx(0.1)
    assert counted("commitOffsets") - before["commitOffsets"] == pytest.approx(0.08)
    assert "stream 7: 5.00s, 0.80s of it outside the batch" in caplog.text


def test_only_the_kafka_sources_progress_report_bug_restarts_the_query_in_process() -> None:
    from lakehouse.pipeline.silver.job import _KafkaMetricsBug

    seen = (
        '[STREAM_FAILED] Query [id = 1] terminated with exception: Cannot invoke "scala.collection.'
        'IterableOps.map(scala.Function1)" because the return value of "scala.Option.get()" is null\n'
        "JVM stacktrace:\njava.lang.NullPointerException: ...\n\tat org.apache.spark.sql.kafka010."
        "KafkaMicroBatchStream$.metrics(KafkaMicroBatchStream.scala:520)"
    )
    assert _KafkaMetricsBug.matches(seen)
    assert not _KafkaMetricsBug.matches(
        "[STREAM_FAILED] java.lang.NullPointerException at org.apache.spark.Foo"
    )
    assert not _KafkaMetricsBug.matches("FOREACH_BATCH_USER_FUNCTION_ERROR: Java heap space")


def test_records_behind_sums_the_kafka_sources_partitions() -> None:
    from lakehouse.pipeline.silver.metrics import records_behind

    kafka = {
        "description": "KafkaV2[SubscribePattern[^cdc\\..+]]",
        "endOffset": {"cdc.a": {"0": 10, "1": 4}, "cdc.transaction": {"0": 7}},
        "metrics": {
            "avgOffsetsBehindLatest": "2.0",
            "maxOffsetsBehindLatest": "5",
            "minOffsetsBehindLatest": "0",
        },
    }
    assert records_behind({"sources": [kafka]}) == 6.0
    files = {"description": "FileStreamSource[s3a://lakehouse/bronze/…]", "endOffset": {"logOffset": 3}}
    assert records_behind({"sources": [files]}) == 0.0
    assert records_behind({}) == 0.0


def test_an_expectation_that_stops_silver_is_named_and_reset_is_never_advised() -> None:
    """A `fail` rule's stop and a rule Spark refuses both point at the rule, never at a reset."""
    from lakehouse.pipeline.silver.expectation_checks import ExpectationFailed, Tally
    from lakehouse.pipeline.silver.expectations import Rule

    rule = Rule("movielens.ratings", "positive_user", "user_id > 0", "fail", 0.01)
    failed = ExpectationFailed.of("movielens.ratings", Tally(rule, 40, 1, '{"user_id":-3}'), "rules.yml")
    assert "'positive_user' (action fail) failed on 1 of 40" in str(failed) and "user_id" in str(failed)
    text = f"{BATCH_FAILURE}\nERROR lakehouse.silver a micro-batch failed (ExpectationFailed: {failed})"
    hint = SilverService.fix_hint(None, text)  # type: ignore[arg-type]
    assert "`fail` expectation" in hint and "reset-silver" not in hint
    refused = (
        "ERROR lakehouse.silver /src/spark_streaming/expectations.yml: movielens.ratings (r): not a boolean"
    )
    hint = SilverService.fix_hint(None, refused)  # type: ignore[arg-type]
    assert hint.startswith("fix the rule") and "reset-silver" not in hint

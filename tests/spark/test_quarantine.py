"""A table blocked by a type change, fixed with a column override, brought back by replay."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.outcome import Replay
from lakehouse.pipeline.silver.store import Layout

from .events import MOVIES, TXN_TOPIC, event, field
from .test_semantics import MOVIE, movie, quarantine, rows, run


def test_type_change_blocks_then_override_and_replay_bring_it_back(
    spark: SparkSession, silver: BatchProcessor, tmp_path: Path
) -> None:
    votes_int = [*MOVIES, field("votes", "int32", "INT4")]
    votes_text = [*MOVIES, field("votes", "string", "TEXT")]
    run(silver, event("c", movie(1, "a", votes=7), 10, fields=votes_int), batch_id=0)
    # ALTER COLUMN votes TYPE text upstream: the next events do not fit silver's int
    result = run(
        silver,
        event("u", movie(1, "a", votes="seven"), 20, fields=votes_text),
        event("c", movie(2, "b", votes="many"), 30, fields=votes_text),
        batch_id=1,
    )
    assert result.schema_rejections[MOVIE] == 1
    reasons = {q["reason"] for q in quarantine(spark, silver)}
    assert len(reasons) == 1
    (reason,) = reasons
    assert "column votes: string does not fit silver's int" in reason
    assert '"column.overrides"' in reason  # the message names the fix
    assert rows(silver)[1]["votes"] == 7 and 2 not in rows(silver)

    # the fix: an override to text, then a replay (same silver, a restarted job)
    fixed = BatchProcessor(spark, silver.store.layout, Rules(TXN_TOPIC, overrides={f"{MOVIE}.votes": "text"}))
    empty = spark.createDataFrame([], "value string")
    result = fixed.process(empty, 2, replay=Replay(MOVIE))
    assert result.replayed == 2
    assert sum(result.quarantined.values()) == 0
    assert {k: r["votes"] for k, r in rows(silver).items()} == {1: "seven", 2: "many"}
    assert quarantine(spark, silver) == []
    # idempotent: a second replay finds nothing and changes nothing
    version = spark.sql(f"DESCRIBE HISTORY delta.`{silver.store.layout.table(MOVIE)}`").count()
    again = fixed.process(empty, 3, replay=Replay(MOVIE))
    assert again.replayed == 0
    assert spark.sql(f"DESCRIBE HISTORY delta.`{silver.store.layout.table(MOVIE)}`").count() == version
    # table properties survive the rewrite (primary key, change feed)
    assert fixed.store.schema(MOVIE)[1] == ["movie_id"]


def test_replay_keeps_what_is_still_refused(spark: SparkSession, tmp_path: Path) -> None:
    silver = BatchProcessor(spark, Layout(str(tmp_path / "s")), Rules(TXN_TOPIC))
    votes_int = [*MOVIES, field("votes", "int32", "INT4")]
    votes_text = [*MOVIES, field("votes", "string", "TEXT")]
    run(silver, event("c", movie(1, "a", votes=7), 10, fields=votes_int), batch_id=0)
    run(silver, event("u", movie(1, "a", votes="x"), 20, fields=votes_text), batch_id=1)
    empty = spark.createDataFrame([], "value string")
    result = silver.process(empty, 2, replay=Replay(MOVIE))  # no fix: refused again, kept once
    assert result.replayed == 1
    assert [q["batch_id"] for q in quarantine(spark, silver)] == [2]
    assert rows(silver)[1]["votes"] == 7

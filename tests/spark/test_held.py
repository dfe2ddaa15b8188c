"""Held-back transactions across a restart: the lines stay where they were read from (bronze), the
state names those files, and a new processor reads them again; an older version's state (whole
lines in a Delta table) is migrated once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.outcome import BatchResult
from lakehouse.pipeline.silver.store import Layout

from .events import TXN_TOPIC, end, event

MOVIE = "movielens.movies"


def movie(i: int, title: str) -> dict[str, Any]:
    return {"movie_id": i, "title": title, "budget": None, "released": None}


def from_file(p: BatchProcessor, folder: Path, name: str, lines: list[str], batch_id: int) -> BatchResult:
    """One batch read from a bronze-like file, as the stream reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(x + "\n" for x in lines))
    return p.process(p.spark.read.text(str(folder / name)), batch_id)


def titles(spark: SparkSession, layout: Layout) -> dict[int, str]:
    df = spark.read.format("delta").load(layout.table(MOVIE))
    return {r["movie_id"]: r["title"] for r in df.collect()}


def held_state(layout: Layout) -> dict[str, Any]:
    return json.loads(Path(layout.held).read_text())


def test_held_lines_are_named_by_their_bronze_file_and_read_again_after_a_restart(
    spark: SparkSession, tmp_path: Path
) -> None:
    layout, rules = Layout(str(tmp_path / "silver")), Rules(transaction_topic=TXN_TOPIC)
    bronze = tmp_path / "bronze"
    first = BatchProcessor(spark, layout, rules)
    r0 = from_file(
        first,
        bronze,
        "a.jsonl",
        [event("c", movie(1, "alone"), 10), event("c", movie(2, "in txn"), 20, txid=7, dco=1)],
        0,
    )
    assert r0.pending == 1
    assert titles(spark, layout) == {1: "alone"}
    state = held_state(layout)
    assert [(g["txid"], g["table"]) for g in state["groups"]] == [(7, MOVIE)]
    (files,) = [g["files"] for g in state["groups"]]
    assert len(files) == 1 and files[0].endswith("/bronze/a.jsonl")  # named, not copied
    assert not Path(layout.held_lines).exists()

    restarted = BatchProcessor(spark, layout, rules)  # driver state from storage only
    r1 = from_file(
        restarted,
        bronze,
        "b.jsonl",
        [event("c", movie(3, "in txn"), 21, txid=7, dco=2), end(7, {MOVIE: 2})],
        1,
    )
    assert (r1.pending, r1.timed_out_groups) == (0, 0)
    assert titles(spark, layout) == {1: "alone", 2: "in txn", 3: "in txn"}
    assert held_state(layout) == {"groups": []}


def test_held_lines_of_an_in_memory_batch_are_stored_until_released(
    silver: BatchProcessor, spark: SparkSession
) -> None:
    layout = silver.store.layout
    line = event("c", movie(2, "in txn"), 20, txid=7, dco=1)
    assert silver.process(spark.createDataFrame([(line,)], "value string"), 0).pending == 1
    (files,) = [g["files"] for g in held_state(layout)["groups"]]
    assert [layout.held_lines_dir(f) for f in files] == ["batch-0"]

    restarted = BatchProcessor(spark, layout, silver.rules)
    rest = [event("c", movie(3, "in txn"), 21, txid=7, dco=2), end(7, {MOVIE: 2})]
    assert restarted.process(spark.createDataFrame([(x,) for x in rest], "value string"), 1).pending == 0
    assert titles(spark, layout) == {2: "in txn", 3: "in txn"}
    assert held_state(layout) == {"groups": []}
    assert not any(Path(layout.held_lines).iterdir())  # the stored copy went with its release


def test_an_older_versions_held_lines_are_migrated_and_applied(
    silver: BatchProcessor, spark: SparkSession
) -> None:
    layout = silver.store.layout
    older = spark.createDataFrame(
        [("data", event("c", movie(2, "in txn"), 20, txid=7, dco=1), 7, MOVIE, None, datetime.now(UTC))],
        "kind string, line string, txid long, collection string, expected long, first_seen timestamp",
    )
    older.write.format("delta").save(layout.pending)

    rest = [event("c", movie(3, "in txn"), 21, txid=7, dco=2), end(7, {MOVIE: 2})]
    r = silver.process(spark.createDataFrame([(x,) for x in rest], "value string"), 0)
    assert (r.pending, r.timed_out_groups) == (0, 0)
    assert titles(spark, layout) == {2: "in txn", 3: "in txn"}
    assert not Path(layout.pending).exists()
    assert held_state(layout) == {"groups": []}

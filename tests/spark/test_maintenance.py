"""OPTIMIZE compacts a table written by many micro-batches; VACUUM and tombstone expiry run on schedule."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.maintenance import Maintenance
from lakehouse.pipeline.silver.outcome import Replay
from lakehouse.pipeline.silver.store import DELETION_VECTORS_PROPERTY, Store, table_properties

from .events import event, movie_row

REPO_CONFIG = "spark_streaming/silver.json"


def test_optimize_and_vacuum_on_schedule(silver: BatchProcessor) -> None:
    from lakehouse.config.paths import repo_root

    cfg = SilverConfig.load(repo_root() / REPO_CONFIG)
    cfg = dataclasses.replace(cfg, tombstone_retention=timedelta(seconds=0))
    start = datetime.now(UTC)
    m = Maintenance(silver.spark, silver.store.layout, cfg, start)
    for i in range(4):
        silver.process(
            silver.spark.createDataFrame([(event("c", movie_row(i, "t"), 10 + i),)], "value string"), i
        )
    silver.process(silver.spark.createDataFrame([(event("d", {"movie_id": 0}, 50),)], "value string"), 4)
    m.touched(["movielens.movies"])
    path = silver.store.layout.table("movielens.movies")

    def files() -> int:
        return int(DeltaTable.forPath(silver.spark, path).detail().collect()[0]["numFiles"])

    before = files()
    assert before > 1
    m.maybe_run(start + timedelta(seconds=1))  # not due yet
    assert m.runs == {"optimize": 0, "vacuum": 0}
    m.maybe_run(start + cfg.vacuum_every + timedelta(seconds=1))
    assert m.runs["optimize"] == 1
    assert m.runs["vacuum"] == 1
    assert files() == 1
    assert silver.spark.read.format("delta").load(path).count() == 3  # compaction changes no rows
    tombstones = silver.spark.read.format("delta").load(silver.store.layout.tombstones)
    assert tombstones.count() == 0  # expired (retention 0 in this test)


def test_table_properties_are_set_on_older_tables_once(silver: BatchProcessor) -> None:
    """A table an older version wrote without change data feed / deletion vectors gets them at the
    next start; the start after that skips the check (it loads every table's state)."""
    spark, store = silver.spark, silver.store
    old = store.layout.table("movielens.old")
    spark.createDataFrame([(1, "a")], "id int, v string").write.format("delta").save(old)
    assert store.ensure_properties([old]) == [old]
    props = DeltaTable.forPath(spark, old).detail().collect()[0]["properties"]
    assert {k: props.get(k) for k in store.properties} == store.properties
    # a second old table now would not be looked at: the marker says every table was checked
    other = store.layout.table("movielens.other")
    spark.createDataFrame([(1,)], "id int").write.format("delta").save(other)
    assert store.ensure_properties([old, other]) == []
    # another `deletion.vectors` setting is a new set of properties: every table is checked again
    with_dv = Store(spark, store.layout, table_properties(True))
    assert with_dv.ensure_properties([old, other]) == [old, other]
    props = DeltaTable.forPath(spark, old).detail().collect()[0]["properties"]
    assert props[DELETION_VECTORS_PROPERTY] == "true"
    assert Store(spark, store.layout).ensure_properties([old]) == [old]  # and back (the default)
    props = DeltaTable.forPath(spark, old).detail().collect()[0]["properties"]
    assert props[DELETION_VECTORS_PROPERTY] == "false"


def test_tombstones_of_a_table_with_quarantined_events_outlive_their_retention(
    silver: BatchProcessor,
) -> None:
    """Issue 43: the quarantine never expires, tombstones do. An insert of K is quarantined, the
    delete of K applied; a replay 8 days later (retention 168 h) must not bring K back."""
    from lakehouse.config.paths import repo_root

    from .events import MOVIES, TXN_TOPIC, field

    spark, layout = silver.spark, silver.store.layout
    movie = "movielens.movies"
    votes_int = [*MOVIES, field("votes", "int32", "INT4")]
    votes_text = [*MOVIES, field("votes", "string", "TEXT")]

    def run(processor: BatchProcessor, line: str | None, batch_id: int, replay: Replay | None = None) -> None:
        df = spark.createDataFrame([(line,)] if line else [], "value string")
        processor.process(df, batch_id, replay=replay)

    def keys() -> set[int]:
        return {r["movie_id"] for r in spark.read.format("delta").load(layout.table(movie)).collect()}

    run(silver, event("c", {**movie_row(2, "b"), "votes": 1}, 10, fields=votes_int), 0)
    # votes became text upstream: the insert of K does not fit silver's int and is quarantined
    run(silver, event("c", {**movie_row(1, "k"), "votes": "many"}, 20, fields=votes_text), 1)
    quarantined = spark.read.format("delta").load(layout.quarantine)
    assert [r["source_table"] for r in quarantined.collect()] == [movie]
    # with the override in place, the delete of K is applied (and leaves its tombstone) ...
    fixed = Rules(TXN_TOPIC, overrides={f"{movie}.votes": "text"})
    run(
        BatchProcessor(spark, layout, fixed),
        event("d", {**movie_row(1, "k"), "votes": "many"}, 30, fields=votes_text),
        2,
    )
    assert keys() == {2}
    # ... and maintenance runs 8 days later, past the tombstones' retention
    cfg = SilverConfig.load(repo_root() / REPO_CONFIG)
    later = datetime.now(UTC) + timedelta(days=8)
    assert cfg.tombstone_retention < timedelta(days=8)
    Maintenance(spark, layout, cfg, later).vacuum(later)
    # the replay (a restarted job) drops the insert the delete outranks: K stays deleted
    run(BatchProcessor(spark, layout, fixed), None, 3, replay=Replay(movie))
    assert keys() == {2}
    assert spark.read.format("delta").load(layout.tombstones).where(F.col("table") == movie).count() == 1
    assert spark.read.format("delta").load(layout.quarantine).count() == 0
    # the quarantine is empty now: the tombstones expire as usual
    Maintenance(spark, layout, cfg, later).vacuum(later)
    assert spark.read.format("delta").load(layout.tombstones).count() == 0

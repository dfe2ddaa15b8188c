"""OPTIMIZE compacts a table written by many micro-batches; VACUUM and tombstone expiry run on schedule."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from delta.tables import DeltaTable

from lakehouse.silver.batch import BatchProcessor
from lakehouse.silver.config import SilverConfig
from lakehouse.silver.maintenance import Maintenance
from lakehouse.silver.store import DELETION_VECTORS_PROPERTY, Store, table_properties

from .events import event, movie_row

REPO_CONFIG = "spark_streaming/silver.json"


def test_optimize_and_vacuum_on_schedule(silver: BatchProcessor) -> None:
    from lakehouse.paths import repo_root

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

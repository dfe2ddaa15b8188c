"""Merge-on-read's live rule (silver/live.py) on real Delta tables: a base and a log, each case a
key whose newest version is somewhere else."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.live import SEQ, live_sql
from lakehouse.pipeline.silver.live_rows import read
from lakehouse.pipeline.silver.store import KEY_PROPERTY, Layout, Store

pytestmark = pytest.mark.spark

SOURCE = "movielens.live_probe"
BASE_COLUMNS = "id INT, title STRING, _op STRING, _commit_lsn BIGINT, _lsn BIGINT"


def tables(spark: SparkSession, root: Path, base: list[tuple], log: list[tuple] | None) -> Layout:
    """The base (`id, title, op, commit, lsn`) and, unless None, the log (the same + batch)."""
    layout = Layout(str(root))
    spark.createDataFrame(base, BASE_COLUMNS).write.format("delta").save(layout.table(SOURCE))
    spark.sql(f"ALTER TABLE delta.`{layout.table(SOURCE)}` SET TBLPROPERTIES ('{KEY_PROPERTY}' = 'id')")
    if log is not None:
        df = spark.createDataFrame(log, f"{BASE_COLUMNS}, {SEQ} BIGINT")
        df.write.format("delta").save(layout.log(SOURCE))
    return layout


def live(spark: SparkSession, layout: Layout) -> dict[int, str]:
    return {r["id"]: r["title"] for r in read(spark, layout, SOURCE).collect()}


def test_each_key_shows_its_newest_version_whether_in_the_base_or_the_log(
    spark: SparkSession, tmp_path: Path
) -> None:
    base = [
        (1, "base only", "c", 10, 1),
        (2, "updated in the log", "c", 10, 2),
        (3, "deleted in the log", "c", 10, 3),
        (4, "newer than a late log entry", "u", 30, 1),
        (5, "at the same position as a replayed entry", "u", 20, 5),
    ]
    log = [
        (2, "v1", "u", 20, 1, 1),
        (2, "v2", "u", 21, 1, 2),  # the newest of two entries
        (3, None, "d", 20, 2, 1),
        (4, "late", "u", 25, 1, 2),  # older than the base row: the base stays
        (5, "replayed", "u", 20, 5, 2),  # the very event the base holds: the base stays
        (6, "new in the log", "c", 22, 1, 2),
        (7, "created", "c", 22, 2, 1),
        (7, None, "d", 23, 1, 2),  # created then deleted, all in the log
        (8, "gone", "c", 22, 3, 1),
        (8, None, "d", 24, 1, 1),
        (8, "back", "c", 26, 1, 2),  # deleted, then created again
        # one event appended twice (a re-run batch; here told apart): the later append, as a fold
        # takes it (compaction.py), so the live row and the folded base agree in every column
        (9, "appended first", "c", 22, 4, 1),
        (9, "appended again", "c", 22, 4, 3),
    ]
    layout = tables(spark, tmp_path, base, log)
    assert live(spark, layout) == {
        1: "base only",
        2: "v2",
        4: "newer than a late log entry",
        5: "at the same position as a replayed entry",
        6: "new in the log",
        8: "back",
        9: "appended again",
    }


def test_the_live_rows_of_some_keys_are_those_keys_rows_of_the_whole_table(
    spark: SparkSession, tmp_path: Path
) -> None:
    """`Store.live(source, only=keys)` (the TOAST fill's read: a batch's keys) restricts the base
    and the log to the keys before the rule, so that it reads no other row of a large table; the
    rows are the same as the whole table's for those keys, wherever each key's newest version is."""
    base = [
        (1, "base only", "c", 10, 1),
        (2, "old", "c", 10, 2),
        (3, "deleted", "c", 10, 3),
        (4, "b4", "c", 10, 4),
    ]
    log = [
        (2, "new", "u", 20, 1, 1),
        (3, None, "d", 20, 2, 1),
        (5, "log only", "c", 20, 3, 1),
        (6, "not asked", "c", 20, 4, 1),
    ]
    layout = tables(spark, tmp_path, base, log)
    store = Store(spark, layout)
    only = spark.createDataFrame([(1,), (2,), (3,), (5,), (7,)], "id INT")
    got = {r["id"]: r["title"] for r in store.live(SOURCE, only=only).collect()}
    assert got == {1: "base only", 2: "new", 5: "log only"}
    # the scans of the base and of the log each meet the keys before the rule's join
    plan = store.live(SOURCE, only=only)._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count("LeftSemi") == 2, plan


def test_the_changes_within_one_transaction_are_ordered_by_their_own_lsn(
    spark: SparkSession, tmp_path: Path
) -> None:
    layout = tables(
        spark,
        tmp_path,
        [(1, "before", "c", 10, 1)],
        [(1, "second", "u", 20, 7, 1), (1, "first", "u", 20, 3, 1)],
    )
    assert live(spark, layout) == {1: "second"}


def test_without_a_log_the_base_is_the_table(spark: SparkSession, tmp_path: Path) -> None:
    layout = tables(spark, tmp_path, [(1, "a", "c", 10, 1), (2, "b", "r", 5, 1)], None)
    assert live(spark, layout) == {1: "a", 2: "b"}


def test_the_rule_quotes_names_for_each_engine_and_needs_a_key() -> None:
    cols = ["order", "_op", "_commit_lsn", "_lsn"]
    assert '"order"' in live_sql("b", "l", ["order"], cols, "trino")
    assert "`order`" in live_sql("b", "l", ["order"], cols, "spark")
    with pytest.raises(ValueError, match="primary key"):
        live_sql("b", "l", [], cols, "spark")
    with pytest.raises(ValueError, match="_lsn"):
        live_sql("b", "l", ["order"], cols[:3], "spark")

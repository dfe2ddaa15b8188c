"""`lakehouse verify`'s comparison can fail for every kind of difference it reports."""

from __future__ import annotations

import shutil
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.silver.store import written_by_another
from lakehouse.silver.verify import TableDiff, compare

SOURCE = [(1, "a", "10"), (2, "b", "20"), (3, "c", "30")]


def _diff(
    spark: SparkSession,
    source: list[tuple[object, ...]],
    silver: list[tuple[object, ...]],
    silver_schema: str = "id int, name string, n int",
) -> TableDiff:
    src = spark.createDataFrame(source, "id int, name string, n string")
    slv = spark.createDataFrame(silver, silver_schema)
    return compare(src, slv, ["id"], "s.t")


def test_equal_tables_are_clean(spark: SparkSession) -> None:
    d = _diff(spark, SOURCE, [(1, "a", 10), (2, "b", 20), (3, "c", 30)])
    assert d.clean, d.as_dict()


def test_each_kind_of_difference_is_caught(spark: SparkSession) -> None:
    d = _diff(spark, SOURCE, [(1, "a", 10), (2, "CHANGED", 20), (4, "d", 40)])
    assert (d.missing, d.extra, d.different) == (1, 1, 1)
    assert d.examples["missing"] == ["id=3"] and d.examples["extra"] == ["id=4"]
    assert d.examples["different"] == ["id=2"]
    assert not d.clean


def test_a_column_silver_lacks_is_a_difference(spark: SparkSession) -> None:
    d = _diff(spark, SOURCE, [(1, "a"), (2, "b"), (3, "c")], "id int, name string")
    assert d.missing_columns == ["n"]
    assert not d.clean


def test_a_value_that_does_not_convert_is_shown_not_compared_as_null(spark: SparkSession) -> None:
    # silver NULL, source 'x' (not an int): try_cast would make both NULL and call them equal
    d = _diff(spark, [(1, "a", "x")], [(1, "a", None)])
    assert d.unconvertible == 1
    assert d.examples["unconvertible"] == ["id=1 (n)"]
    assert not d.clean


def test_a_table_created_by_another_process_after_a_look_mid_creation_is_found(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The writer has made `_delta_log/` but not committed when this session first looks; the
    commit then lands from outside this session (here: files copied in)."""
    from delta.tables import DeltaTable

    elsewhere, target = tmp_path / "elsewhere", tmp_path / "t"
    (target / "_delta_log").mkdir(parents=True)
    assert not written_by_another(spark, str(target))
    assert not DeltaTable.isDeltaTable(spark, str(target))
    spark.createDataFrame([(1,)], "id int").write.format("delta").save(str(elsewhere))
    shutil.copytree(elsewhere, target, dirs_exist_ok=True)
    assert written_by_another(spark, str(target))
    assert spark.read.format("delta").load(str(target)).count() == 1

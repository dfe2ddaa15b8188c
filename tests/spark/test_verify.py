"""`lakehouse verify`'s comparison can fail for every kind of difference it reports."""

from __future__ import annotations

import shutil
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.store import written_by_another
from lakehouse.pipeline.silver.verify import TableDiff, compare

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


def _same_schema(
    spark: SparkSession,
    schema: str,
    source: list[tuple[object, ...]],
    silver: list[tuple[object, ...]],
    keys: tuple[str, ...] = ("id",),
) -> TableDiff:
    src, slv = spark.createDataFrame(source, schema), spark.createDataFrame(silver, schema)
    return compare(src, slv, list(keys), "s.t")


def test_nulls_in_different_columns_are_a_difference(spark: SparkSession) -> None:
    # a hash that skips NULLs sees ('x') in both rows
    d = _same_schema(spark, "id int, a string, b string", [(1, None, "x")], [(1, "x", None)])
    assert d.different == 1 and d.examples["different"] == ["id=1"], d.as_dict()
    assert not d.clean


def test_an_empty_array_is_not_a_null_array(spark: SparkSession) -> None:
    schema = "id int, xs array<int>, ys array<string>"
    d = _same_schema(
        spark, schema, [(1, [], ["a"]), (2, [1, None], [])], [(1, None, ["a"]), (2, [None, 1], [])]
    )
    assert d.different == 2, d.as_dict()
    assert not d.clean


def test_minus_zero_is_not_zero_but_nan_is_nan(spark: SparkSession) -> None:
    schema = "id int, d double, f float, ds array<double>"
    nan, inf = float("nan"), float("inf")
    same = [(1, -0.0, -0.0, [-0.0]), (2, nan, nan, [nan, None]), (3, -inf, inf, [0.0])]
    assert _same_schema(spark, schema, same, same).clean
    changed = [(1, 0.0, -0.0, [-0.0]), (2, nan, 0.0, [nan, None]), (3, -inf, inf, [-0.0])]
    d = _same_schema(spark, schema, same, changed)
    assert d.different == 3, d.as_dict()
    assert not d.clean


def test_a_key_silver_holds_twice_is_a_difference(spark: SparkSession) -> None:
    rows = [(1, "a"), (2, "b")]
    d = _same_schema(spark, "id int, name string", rows, [*rows, (1, "a")])
    assert (d.source_rows, d.silver_rows) == (2, 3)
    assert d.duplicates == 1 and d.examples["duplicates"] == ["id=1"], d.as_dict()
    assert (d.missing, d.extra, d.different) == (0, 0, 0)
    assert not d.clean


def test_different_row_counts_are_never_clean() -> None:
    assert not TableDiff("s.t", source_rows=2, silver_rows=3).clean
    assert TableDiff("s.t", source_rows=3, silver_rows=3).clean


def test_a_table_without_a_key_is_compared_as_a_multiset(spark: SparkSession) -> None:
    schema = "a int, b string"
    rows = [(1, "x"), (1, "x"), (2, None), (None, "y")]
    assert _same_schema(spark, schema, rows, list(reversed(rows)), keys=()).clean
    d = _same_schema(spark, schema, rows, [*rows, (2, None)], keys=())
    assert (d.missing, d.extra, d.different) == (0, 1, 0), d.as_dict()
    assert d.examples["extra"] == ["a=2, b=None"]
    assert not d.clean
    d = _same_schema(spark, schema, rows, [(1, "x"), (2, None), (None, "y"), (None, "y")], keys=())
    assert (d.missing, d.extra) == (1, 1), d.as_dict()
    assert d.examples["missing"] == ["a=1, b=x"] and d.examples["extra"] == ["a=None, b=y"]
    assert not d.clean

"""`python -m tools.bench merge` drives silver's own MERGE: the scratch table ends as the changes say."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from tools.bench.merge import DRIVER, SOURCE, Shape, breakdown, measure

from lakehouse.pipeline.silver.store import Layout

pytestmark = pytest.mark.spark


def expected(shape: Shape) -> dict[int, str]:
    """The table after the MERGEs, worked out in Python from the same change formulas."""
    table = {k: f"c0-{k}" for k in range(shape.rows)}
    for i in range(shape.merges):
        for j in range(shape.size):
            key = (j * 7_919 + i * 104_729) % shape.rows
            if j == shape.size - 2:
                table.pop(key, None)
            elif j == shape.size - 1:
                table[shape.rows + i] = f"c0-changed-{i}"
            else:
                table[key] = f"c0-changed-{i}"
    return table


def test_bench_merge_applies_updates_deletes_and_inserts_through_store_merge(
    spark: SparkSession, tmp_path: Path
) -> None:
    shape = Shape(rows=40, size=3, merges=4, warmup=1, width=2)
    records = measure(spark, shape, tmp_path / "silver", progress=lambda _: None)

    assert [r["merge"] for r in records] == [0, 1, 2, 3]
    assert [r["warmup"] for r in records] == [True, False, False, False]
    assert all(r["spark_jobs"] > 0 and r["seconds"] >= r["job_seconds"] > 0 for r in records)
    assert all(s["kind"] for r in records for s in r["jobs"])
    parts = breakdown(records)
    assert DRIVER in parts and len(parts) > 1

    stored = spark.read.format("delta").load(Layout(str(tmp_path / "silver")).table(SOURCE))
    assert {r["id"]: r["c0"] for r in stored.select("id", "c0").collect()} == expected(shape)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{Layout(str(tmp_path / 'silver')).table(SOURCE)}`")
    assert sorted(r["operation"] for r in history.collect()).count("MERGE") == shape.merges

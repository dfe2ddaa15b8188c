"""The silver rules on what the pinned Debezium really wrote (tests/capture_debezium.py), not on
crafted events: every type of the matrix, TOAST placeholders, a key change, deletes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.silver.batch import BatchProcessor, Rules
from lakehouse.silver.store import Layout

from .. import typematrix as tm

FIXTURES = Path(__file__).parent.parent / "fixtures" / "debezium"
TABLE = f"movielens.{tm.TABLE}"


def _lines() -> list[str]:
    return (FIXTURES / "type_matrix.jsonl").read_text().splitlines()


def _expected() -> dict[str, dict[str, str | None]]:
    rows: dict[str, dict[str, str | None]] = json.loads((FIXTURES / "type_matrix.expected.json").read_text())
    return rows


def silver_rendered(spark: SparkSession, path: str) -> dict[str, dict[str, Any]]:
    """id → column → the silver value rendered by the case's Spark expression."""
    df = spark.read.format("delta").load(path)
    exprs = [f"{tm.spark_expr(c)} AS {c.column}" for c in tm.CASES]
    return {str(r["id"]): r.asDict() for r in df.selectExpr("cast(id as string) AS id", *exprs).collect()}


def mismatches(expected: dict[str, dict[str, str | None]], got: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    if set(expected) != set(got):
        out.append(f"ids: source {sorted(expected)} silver {sorted(got)}")
    for key in sorted(set(expected) & set(got)):
        for case in tm.CASES:
            want, have = expected[key][case.column], got[key][case.column]
            if not tm.same(case.normalise, want, have):
                out.append(f"id {key} {case.column}: source {want!r:.80} silver {have!r:.80}")
    return out


def _processor(spark: SparkSession, tmp_path: Path) -> BatchProcessor:
    topic_prefix = json.loads(_lines()[0])["topic"].split(".")[0]
    return BatchProcessor(spark, Layout(str(tmp_path / "silver")), Rules(f"{topic_prefix}.transaction"))


def test_real_debezium_events_reach_silver_exactly(spark: SparkSession, tmp_path: Path) -> None:
    silver = _processor(spark, tmp_path)
    result = silver.process(spark.createDataFrame([(x,) for x in _lines()], "value string"), 0)
    assert sum(result.quarantined.values()) == 0
    assert result.pending == 0
    path = silver.store.layout.table(TABLE)
    assert mismatches(_expected(), silver_rendered(spark, path)) == []
    schema = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields}
    assert {c.column: schema[c.column] for c in tm.CASES} == {c.column: c.silver_type for c in tm.CASES}

    # the comparison can fail: one value changed behind the stream's back is found, and only it
    spark.sql(f"UPDATE delta.`{path}` SET c_double = -c_double WHERE id = 5")
    assert mismatches(_expected(), silver_rendered(spark, path)) == [
        f"id 5 c_double: source {_expected()['5']['c_double']!r} silver '-1.7976931348623157E308'"
    ]

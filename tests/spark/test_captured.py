"""The silver rules on what the pinned Debezium really wrote (tests/capture_debezium.py), not on
crafted events: every type of the matrix, TOAST placeholders, a key change, deletes."""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.store import Layout

from .. import typematrix as tm

FIXTURES = Path(__file__).parent.parent / "fixtures" / "debezium"
TABLE = f"movielens.{tm.TABLE}"


def _lines() -> list[str]:
    return (FIXTURES / "type_matrix.jsonl").read_text().splitlines()


def _expected() -> dict[str, dict[str, str | None]]:
    rows: dict[str, dict[str, str | None]] = json.loads((FIXTURES / "type_matrix.expected.json").read_text())
    return rows


def _processor(spark: SparkSession, tmp_path: Path) -> BatchProcessor:
    topic_prefix = json.loads(_lines()[0])["topic"].split(".")[0]
    return BatchProcessor(spark, Layout(str(tmp_path / "silver")), Rules(f"{topic_prefix}.transaction"))


def test_real_debezium_events_reach_silver_exactly(spark: SparkSession, tmp_path: Path) -> None:
    silver = _processor(spark, tmp_path)
    result = silver.process(spark.createDataFrame([(x,) for x in _lines()], "value string"), 0)
    assert sum(result.quarantined.values()) == 0
    assert result.pending == 0
    path = silver.store.layout.table(TABLE)
    assert tm.mismatches(_expected(), tm.silver_rendered(spark, path)) == []
    # the newest change's commit time and its Kafka record's time (the page's "pipeline now")
    data = [ln for ln in map(json.loads, _lines()) if (ln["value"] or {}).get("payload", {}).get("source")]
    newest = max(data, key=lambda ln: ln["value"]["payload"]["source"]["ts_us"])
    commit_us, kafka_ms = newest["value"]["payload"]["source"]["ts_us"], newest["timestamp"]
    assert result.max_source_ts is not None and result.max_source_kafka_ts is not None
    assert round(result.max_source_ts.timestamp() * 1e6) == commit_us
    assert round(result.max_source_kafka_ts.timestamp() * 1e3) == kafka_ms >= commit_us // 1000
    schema = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields}
    assert {c.column: schema[c.column] for c in tm.CASES} == {c.column: c.silver_type for c in tm.CASES}

    # the comparison can fail: one value changed behind the stream's back is found, and only it
    spark.sql(f"UPDATE delta.`{path}` SET c_double = -c_double WHERE id = 5")
    assert tm.mismatches(_expected(), tm.silver_rendered(spark, path)) == [
        f"id 5 c_double: source {_expected()['5']['c_double']!r} silver '-1.7976931348623157E308'"
    ]

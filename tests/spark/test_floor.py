"""The benchmark's floor job (lakehouse.benchmark.floor) on what the pinned Debezium really wrote:
the last event per key wins by Kafka offset, deletes remove the key, Kafka tombstones are skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.benchmark.floor import apply

from .. import typematrix as tm

FIXTURES = Path(__file__).parent.parent / "fixtures" / "debezium"


def _captured() -> list[dict[str, Any]]:
    """The type-matrix topic's records, with a Kafka tombstone after each delete as Debezium
    writes it; offsets renumbered so the tombstones fit in."""
    out: list[dict[str, Any]] = []
    for line in (FIXTURES / "type_matrix.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if not rec["topic"].endswith(f".{tm.TABLE}"):
            continue
        out.append({**rec, "offset": 2 * len(out)})
        if rec["value"]["payload"]["op"] == "d":
            out.append({**rec, "offset": 2 * len(out), "value": None})
    return out


def _kafka_rows(spark: SparkSession, records: list[dict[str, Any]]) -> DataFrame:
    """What Spark's Kafka source hands foreachBatch (the columns the floor reads)."""
    rows = [
        (
            r["topic"],
            json.dumps(r["key"]).encode(),
            None if r["value"] is None else json.dumps(r["value"]).encode(),
            0,
            r["offset"],
        )
        for r in records
    ]
    return spark.createDataFrame(rows, "topic string, key binary, value binary, partition int, offset long")


def _expected(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """key → the `after` of its last event, for keys whose last event is not a delete."""
    last: dict[str, dict[str, Any]] = {}
    for r in sorted((r for r in records if r["value"] is not None), key=lambda r: r["offset"]):
        last[json.dumps(r["key"]["payload"], separators=(",", ":"))] = r["value"]["payload"]
    return {k: e["after"] for k, e in last.items() if e["op"] != "d"}


def test_floor_keeps_the_last_event_per_key(spark: SparkSession, tmp_path: Path) -> None:
    records = _captured()
    assert any(r["value"] is None for r in records), "the fixture must hold a delete"
    root = str(tmp_path / "floor")
    half = len(records) // 2
    # each batch arrives in reverse: only the offset may decide which event is the last
    apply(spark, root, _kafka_rows(spark, records[:half][::-1]), 0)
    apply(spark, root, _kafka_rows(spark, records[half:][::-1]), 1)

    table = spark.read.format("delta").load(f"{root}/{tm.TABLE}")
    stored = {r.key: json.loads(r.row) for r in table.collect()}
    expected = _expected(records)
    assert sorted(stored) == sorted(expected)
    assert stored == expected
    # the final ids are those of the source after the capture
    ids = {str(json.loads(k)["id"]) for k in stored}
    assert ids == set(json.loads((FIXTURES / "type_matrix.expected.json").read_text()))


def test_the_append_floor_logs_each_batchs_last_event_per_key(spark: SparkSession, tmp_path: Path) -> None:
    """`--floor-write append`: no MERGE; each batch appends its last event per key with its op and
    offset, and the latest per key over the log (merge on read) is what the MERGE floor stores."""
    records = _captured()
    root = str(tmp_path / "floor")
    half = len(records) // 2
    batches = [records[:half], records[half:]]
    for i, batch in enumerate(batches):
        apply(spark, root, _kafka_rows(spark, batch[::-1]), i, write="append")

    log = spark.read.format("delta").load(f"{root}/{tm.TABLE}")
    # one row per key per batch: each batch's keys, deletes included (Kafka tombstones are not events)
    per_batch = [len({json.dumps(r["key"]["payload"]) for r in b if r["value"] is not None}) for b in batches]
    assert log.count() == sum(per_batch)
    assert log.where("op = 'd'").count() > 0
    last = log.groupBy("key").agg(F.max_by(F.struct("op", "row"), "offset").alias("e"))
    stored = {r.key: json.loads(r.e.row) for r in last.where("e.op != 'd'").collect()}
    assert stored == _expected(records)

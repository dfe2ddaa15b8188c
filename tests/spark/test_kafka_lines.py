"""Kafka records as bronze lines (silver/kafka_lines.py): the line the bronze sink connector writes
(connect/s3-sink, `LineEncoder`: a JSON key or value embedded as JSON, any other kept byte-exact in
`<name>_raw_b64`), and the batch reaching the same silver from them as from bronze, on events
Debezium really wrote."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.paths import repo_root
from lakehouse.pipeline.silver.kafka_lines import as_bronze_lines

from .. import typematrix as tm
from .test_captured import TABLE, _expected, _lines, _processor

pytestmark = pytest.mark.spark

#: records and the exact lines the sink writes for them; the sink's LineEncoderTest runs them too
SHARED_CASES = repo_root() / "connect/s3-sink/src/test/resources/local/lakehouse/s3/bronze-lines.json"

KAFKA_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(raw: bytes) -> Any:
    """`raw` as exactly one UTF-8 JSON value, or ValueError: strict UTF-8 (a byte order mark is
    no JSON), and no NaN or Infinity."""
    return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)


def _line(r: Record) -> dict[str, Any]:
    """What a bronze line holds for a record (connect/s3-sink/README.md): a JSON key or value
    embedded as JSON, any other null beside its bytes in base64 in `<name>_raw_b64`. The connector
    writes it so and silver's Kafka source makes the same line, so silver quarantines such a
    record whole from either source."""
    out: dict[str, Any] = {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp_ms,
    }
    for name, raw in (("key", r.key), ("value", r.value)):
        try:
            out[name] = None if raw is None else _json(raw)
        except ValueError:
            out[name] = None
            out[f"{name}_raw_b64"] = base64.b64encode(raw or b"").decode()
    return out


def _records(lines: list[str]) -> list[Record]:
    """The Kafka records behind captured bronze lines (key and value as Connect's JSON bytes)."""
    out = []
    for text in lines:
        line = json.loads(text)
        key, value = line["key"], line["value"]
        out.append(
            Record(
                line["topic"],
                line["partition"],
                line["offset"],
                line["timestamp"],
                None if key is None else json.dumps(key).encode(),
                None if value is None else json.dumps(value).encode(),
            )
        )
    return out


def _as_kafka_rows(spark: SparkSession, records: list[Record]) -> list[str]:
    rows = [
        (
            r.topic,
            r.partition,
            r.offset,
            None if r.timestamp_ms is None else datetime.fromtimestamp(r.timestamp_ms / 1000, UTC),
            r.key,
            r.value,
        )
        for r in records
    ]
    df = spark.createDataFrame(rows, KAFKA_SCHEMA)
    return [r["value"] for r in as_bronze_lines(df).collect()]


def test_a_kafka_record_becomes_the_line_bronze_writes(spark: SparkSession) -> None:
    records = [
        *_records(_lines()[:5]),
        Record("p.movielens.ratings", 2, 41, 1_700_000_000_123, b'{"id":7}', None),  # a Kafka tombstone
        Record(
            "p.movielens.ratings", 0, 42, 1_700_000_000_456, b"\x00\xffnot json", b'{"a": [1, "\\u00e9"]}'
        ),
        Record("p.movielens.ratings", 1, 43, None, None, b"{broken"),
    ]
    got = [json.loads(x) for x in _as_kafka_rows(spark, records)]
    assert got == [_line(r) for r in records]
    assert got[-2]["key_raw_b64"] == "AP9ub3QganNvbg=="  # byte-exact, not decoded


def test_kafka_records_become_the_lines_the_sink_writes_for_them(spark: SparkSession) -> None:
    def raw(b64: str | None) -> bytes | None:
        return None if b64 is None else base64.b64decode(b64)

    cases = json.loads(SHARED_CASES.read_text())["cases"]
    assert len(cases) >= 10
    records = [
        Record(
            c["topic"], c["partition"], c["offset"], c["timestamp"], raw(c["key_b64"]), raw(c["value_b64"])
        )
        for c in cases
    ]
    got = _as_kafka_rows(spark, records)
    for case, line in zip(cases, got, strict=True):
        assert json.loads(line) == json.loads(case["line"]), case["case"]
    assert [json.loads(x) for x in got] == [_line(r) for r in records]


def test_the_batch_reaches_the_same_silver_from_kafka_records(spark: SparkSession, tmp_path: Path) -> None:
    silver = _processor(spark, tmp_path)
    lines = _as_kafka_rows(spark, _records(_lines()))
    result = silver.process(spark.createDataFrame([(x,) for x in lines], "value string"), 0)
    assert sum(result.quarantined.values()) == 0
    assert result.pending == 0
    assert tm.mismatches(_expected(), tm.silver_rendered(spark, silver.store.layout.table(TABLE))) == []

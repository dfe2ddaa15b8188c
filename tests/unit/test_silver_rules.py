"""Pure parts of silver: type mapping, schema policy, job config, and version pins in step."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import types as T

from lakehouse.config.versions import Versions
from lakehouse.errors import ConfigError
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.contract import decide, widens
from lakehouse.pipeline.silver.debezium import UnsupportedField, column_spec, key_columns

from ..spark.events import field as f


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (f("a", "int16", "INT2"), T.ShortType()),
        # the names Kafka Connect's JsonConverter writes (tests/fixtures/debezium has the real events)
        (f("a", "float", "FLOAT4"), T.FloatType()),
        (f("a", "double", "FLOAT8"), T.DoubleType()),
        (f("a", "string", "MONEY"), T.DecimalType(19, 2)),
        (f("a", "string", "INTERVAL", logical="io.debezium.time.Interval"), T.StringType()),
        (f("a", "bytes", "BIT", logical="io.debezium.data.Bits", length="3"), T.StringType()),
        ({**f("a", "struct", "POINT"), "name": "io.debezium.data.geometry.Point"}, T.StringType()),
        (f("a", "int64", "INT8"), T.LongType()),
        (
            f(
                "a",
                "string",
                "NUMERIC",
                **{"__debezium.source.column.length": "38", "__debezium.source.column.scale": "10"},
            ),
            T.DecimalType(38, 10),
        ),
        (f("a", "string", "NUMERIC", **{"__debezium.source.column.length": "0"}), T.StringType()),
        (f("a", "string", "TIMESTAMPTZ", logical="io.debezium.time.ZonedTimestamp"), T.TimestampType()),
        (f("a", "int64", "TIMESTAMP", logical="io.debezium.time.MicroTimestamp"), T.TimestampNTZType()),
        (f("a", "int32", "DATE", logical="io.debezium.time.Date"), T.DateType()),
        (f("a", "int64", "TIME", logical="io.debezium.time.MicroTime"), T.StringType()),
        (f("a", "string", "JSONB", logical="io.debezium.data.Json"), T.StringType()),
        (f("a", "string", "UUID", logical="io.debezium.data.Uuid"), T.StringType()),
        (f("a", "bytes", "BYTEA"), T.BinaryType()),
        ({**f("a", "array", "_INT4"), "items": {"type": "int32"}}, T.ArrayType(T.IntegerType())),
    ],
)
def test_type_mapping_comes_from_the_event_schema(field: dict[str, object], expected: T.DataType) -> None:
    assert column_spec(field).spark_type == expected


def test_binary_decimals_are_refused_with_the_fix() -> None:
    with pytest.raises(UnsupportedField, match=r"decimal\.handling\.mode=string"):
        column_spec(f("a", "bytes", "NUMERIC", logical="org.apache.kafka.connect.data.Decimal"))


def test_lossy_connector_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(UnsupportedField, match=r"column a: .*interval\.handling\.mode=string"):
        column_spec(f("a", "int64", "INTERVAL", logical="io.debezium.time.MicroDuration"))


def test_an_unknown_connect_type_names_the_column_and_a_text_override_takes_it() -> None:
    odd = f("a", "float128", "WEIRD")
    with pytest.raises(UnsupportedField, match=r"column a: unknown Connect type 'float128'"):
        column_spec(odd)
    spec = column_spec(odd, "text")
    assert (spec.spark_type, spec.overridden) == (T.StringType(), True)


def test_a_text_override_rewrites_silver_instead_of_refusing() -> None:
    silver = T.StructType([T.StructField("id", T.IntegerType()), T.StructField("n", T.IntegerType())])
    plain = [column_spec(f("id", "int32", "INT4")), column_spec(f("n", "string", "TEXT"))]
    refused = decide(silver, plain, ["id"], ["id"], "s.t")
    assert '"column.overrides": {"s.t.n": "text"}' in refused.rejected[0]
    overridden = [plain[0], column_spec(f("n", "string", "TEXT"), "text")]
    d = decide(silver, overridden, ["id"], ["id"], "s.t")
    assert d.ok and d.to_text == ["n"]


def test_key_needs_a_struct() -> None:
    assert key_columns({"type": "struct", "fields": [{"field": "user_id"}, {"field": "movie_id"}]}) == [
        "user_id",
        "movie_id",
    ]
    with pytest.raises(UnsupportedField):
        key_columns({})


def test_widening_rules() -> None:
    assert widens(T.IntegerType(), T.LongType())
    assert widens(T.FloatType(), T.DoubleType())
    assert widens(T.DecimalType(10, 2), T.DecimalType(12, 2))
    assert widens(T.DateType(), T.TimestampNTZType())
    assert not widens(T.LongType(), T.IntegerType())
    assert not widens(T.DecimalType(10, 2), T.DecimalType(10, 4))  # fewer integer digits
    assert not widens(T.IntegerType(), T.StringType())


def test_contract_decisions() -> None:
    silver = T.StructType([T.StructField("id", T.IntegerType()), T.StructField("n", T.IntegerType())])
    specs = [
        column_spec(f("id", "int32", "INT4")),
        column_spec(f("n", "int64", "INT8")),
        column_spec(f("extra", "string", "TEXT")),
    ]
    d = decide(silver, specs, ["id"], ["id"])
    assert d.ok
    assert [s.name for s in d.add] == ["extra"]
    assert d.widen == [("n", T.LongType())]
    bad = decide(
        silver, [column_spec(f("id", "int32", "INT4")), column_spec(f("n", "string", "TEXT"))], ["id"], ["id"]
    )
    assert not bad.ok
    assert "column n" in bad.rejected[0]
    assert not decide(silver, specs, ["n"], ["id"]).ok  # primary key changed
    assert not decide(None, [column_spec(f("_op", "string", "TEXT"))], ["_op"], []).ok


def test_silver_config_is_strict(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    good = json.loads((repo / "spark_streaming" / "silver.json").read_text())
    cfg = SilverConfig.load(repo / "spark_streaming" / "silver.json")
    assert cfg.trigger == good["trigger.interval"]
    assert cfg.compaction_share == good["compaction.share.pct"] / 100
    # the heartbeat's and the benchmark's marker rows are read through the live view only: their
    # logs are folded rarely
    assert cfg.compaction_table_age == {
        "movielens.pipeline_heartbeat": timedelta(minutes=10),
        "movielens.bench_marker": timedelta(minutes=10),
    }
    for broken in (
        {**good, "surprise": 1},
        {**good, "vacuum.retention.h": 1},
        {**good, "trigger.interval": "soon"},
        {**good, "column.overrides": {"movies.title": "text"}},  # not schema.table.column
        {**good, "column.overrides": {"movielens.movies.title": "varchar"}},
        {**good, "column.overrides": []},
        {**good, "deletion.vectors": 1},  # a flag is true or false, not a number
        {**good, "tombstone.retention.h": True},  # and a number is not a flag
        {**good, "source": "files"},
        {**good, "max.records.per.trigger": 0},
        {**good, "compaction.table.age.s": {"pipeline_heartbeat": 600}},  # not schema.table
        {**good, "compaction.table.age.s": {"movielens.pipeline_heartbeat": "10 minutes"}},
        {**good, "compaction.share.pct": 0},
        {**good, "compaction.share.pct": 101},
    ):
        p = tmp_path / "silver.json"
        p.write_text(json.dumps(broken))
        with pytest.raises(ConfigError, match=r"silver\.json"):
            SilverConfig.load(p)


def test_the_jobs_rules_come_from_its_config() -> None:
    from lakehouse.pipeline.silver.batch import Rules

    cfg = SilverConfig.load(Path(__file__).resolve().parents[2] / "spark_streaming" / "silver.json")
    rules = Rules.from_config(cfg, "lakehouse")
    assert rules == Rules(
        transaction_topic="lakehouse.transaction",
        transaction_timeout=cfg.transaction_timeout,
        end_ttl=cfg.end_ttl,
        overrides=cfg.column_overrides,
        deletion_vectors=cfg.deletion_vectors,
        merge_on_read=True,  # the mode silver ships with
    )


def test_spark_pins_are_in_step() -> None:
    v = Versions.load()
    assert pyspark.__version__.startswith(v.spark_binary + ".")
    assert version("delta-spark") == v.delta
    jars = Path(pyspark.__file__).parent / "jars"
    assert (jars / f"hadoop-client-api-{v.hadoop}.jar").exists(), "HADOOP_VERSION must equal pyspark's Hadoop"

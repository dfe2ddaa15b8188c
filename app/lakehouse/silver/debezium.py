"""Debezium field schema → Spark type, and the expression that turns the JSON value into it.

Pure: no SparkSession needed. Types come from the schema carried in every event (Kafka Connect
type + Debezium logical name + the Postgres column type propagated by
`column.propagate.source.type`), never from JSON inference. The mapping is documented in
docs/cdc-semantics.md ("Type mapping").
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

UNAVAILABLE = "__debezium_unavailable_value"
UNAVAILABLE_B64 = base64.b64encode(UNAVAILABLE.encode()).decode()
_MAX_DECIMAL = 38

Convert = Callable[[Column], Column]


def _same(c: Column) -> Column:
    return c


def _try_cast(t: T.DataType) -> Convert:
    return lambda c: c.try_cast(t)


def _time_of_day(divisor: int) -> Convert:
    return lambda c: F.date_format(F.timestamp_micros(c * (1_000_000 // divisor)), "HH:mm:ss.SSSSSS")


@dataclass(frozen=True)
class ColumnSpec:
    """One source column: how it is read from the event JSON and what it becomes in silver."""

    name: str
    json_type: T.DataType  # what from_json reads
    spark_type: T.DataType  # what silver stores
    convert: Convert  # json value → silver value (NULL when it does not fit)
    source_type: str  # the Postgres type, for docs and column comments
    optional: bool = True

    def placeholder_check(self, raw: Column) -> Column:
        """True where the raw JSON text is Debezium's unchanged-TOAST placeholder."""
        if isinstance(self.json_type, T.ArrayType):
            return raw.contains(UNAVAILABLE)
        if self.json_type == T.BinaryType() or self.source_type == "BYTEA":
            return raw == F.lit(UNAVAILABLE_B64)
        return raw == F.lit(UNAVAILABLE)


_BASE: dict[str, T.DataType] = {
    "int8": T.ByteType(),
    "int16": T.ShortType(),
    "int32": T.IntegerType(),
    "int64": T.LongType(),
    "float32": T.FloatType(),
    "float64": T.DoubleType(),
    "boolean": T.BooleanType(),
    "string": T.StringType(),
}

_LOGICAL: dict[str, tuple[T.DataType, T.DataType, Convert]] = {
    # name: (json type, silver type, conversion)
    "io.debezium.time.Date": (
        T.IntegerType(),
        T.DateType(),
        lambda c: F.date_add(F.lit("1970-01-01").cast("date"), c),
    ),
    "io.debezium.time.Timestamp": (
        T.LongType(),
        T.TimestampNTZType(),
        lambda c: F.timestamp_millis(c).cast(T.TimestampNTZType()),
    ),
    "io.debezium.time.MicroTimestamp": (
        T.LongType(),
        T.TimestampNTZType(),
        lambda c: F.timestamp_micros(c).cast(T.TimestampNTZType()),
    ),
    "io.debezium.time.NanoTimestamp": (
        T.LongType(),
        T.TimestampNTZType(),
        lambda c: F.timestamp_micros(F.floor(c / 1000)).cast(T.TimestampNTZType()),
    ),
    "io.debezium.time.ZonedTimestamp": (T.StringType(), T.TimestampType(), _try_cast(T.TimestampType())),
    "io.debezium.time.Time": (T.IntegerType(), T.StringType(), _time_of_day(1000)),
    "io.debezium.time.MicroTime": (T.LongType(), T.StringType(), _time_of_day(1_000_000)),
    "io.debezium.time.NanoTime": (T.LongType(), T.StringType(), lambda c: _time_of_day(1_000_000)(c / 1000)),
    "io.debezium.time.ZonedTime": (T.StringType(), T.StringType(), _same),
    "io.debezium.time.MicroDuration": (T.LongType(), T.LongType(), _same),
    "io.debezium.data.Json": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Uuid": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Enum": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Xml": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Bits": (T.StringType(), T.BinaryType(), F.unbase64),
}


class UnsupportedField(ValueError):
    """A field whose schema we cannot map; events carrying it are quarantined."""


def _params(field: dict[str, Any]) -> dict[str, str]:
    params = field.get("parameters") or {}
    return {str(k): str(v) for k, v in params.items()}


def _numeric(field: dict[str, Any], params: dict[str, str]) -> tuple[T.DataType, T.DataType, Convert] | None:
    """NUMERIC/DECIMAL arrive as exact strings (decimal.handling.mode=string)."""
    pg = params.get("__debezium.source.column.type", "").upper()
    if pg not in {"NUMERIC", "DECIMAL"} or field.get("type") != "string":
        return None
    try:
        precision = int(params.get("__debezium.source.column.length", "0"))
        scale = int(params.get("__debezium.source.column.scale", "0"))
    except ValueError:
        return None
    if 0 < precision <= _MAX_DECIMAL and 0 <= scale <= precision:
        dt = T.DecimalType(precision, scale)
        return T.StringType(), dt, _try_cast(dt)
    # numeric without a precision (or wider than 38 digits): kept as its exact text
    return T.StringType(), T.StringType(), _same


def value_spec(field: dict[str, Any]) -> tuple[T.DataType, T.DataType, Convert]:
    """(json type, silver type, conversion) for one Connect field schema (recursive for arrays)."""
    params = _params(field)
    numeric = _numeric(field, params)
    if numeric is not None:
        return numeric
    logical = field.get("name")
    if isinstance(logical, str) and logical in _LOGICAL:
        return _LOGICAL[logical]
    kind = field.get("type")
    if kind == "bytes":
        if logical == "org.apache.kafka.connect.data.Decimal":
            raise UnsupportedField("binary Decimal: the connector must use decimal.handling.mode=string")
        return T.StringType(), T.BinaryType(), F.unbase64
    if kind == "array":
        items = field.get("items")
        if not isinstance(items, dict):
            raise UnsupportedField("array without an item schema")
        item_json, item_spark, item_convert = value_spec(items)
        if item_convert is _same:
            return T.ArrayType(item_json), T.ArrayType(item_spark), _same
        return T.ArrayType(item_json), T.ArrayType(item_spark), lambda c: F.transform(c, item_convert)
    if kind in ("struct", "map"):
        # geometry, ranges, …: kept as their JSON text
        return T.StringType(), T.StringType(), _same
    if isinstance(kind, str) and kind in _BASE:
        dt = _BASE[kind]
        return dt, dt, _same
    raise UnsupportedField(f"unknown Connect type {kind!r}")


def column_spec(field: dict[str, Any]) -> ColumnSpec:
    name = field.get("field")
    if not isinstance(name, str) or not name:
        raise UnsupportedField("field without a name")
    json_type, spark_type, convert = value_spec(field)
    source_type = _params(field).get("__debezium.source.column.type", str(field.get("type", "?"))).upper()
    return ColumnSpec(name, json_type, spark_type, convert, source_type, bool(field.get("optional", True)))


def row_fields(envelope_schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's fields, from the `after` (or `before`) struct of a Debezium value schema."""
    for part in envelope_schema.get("fields", []):
        if part.get("field") in ("after", "before") and part.get("type") == "struct":
            fields = part.get("fields")
            if isinstance(fields, list):
                return fields
    raise UnsupportedField("value schema has no before/after struct")


def key_columns(key_schema: dict[str, Any]) -> list[str]:
    """Primary-key column names, from the Kafka record key's schema."""
    fields = key_schema.get("fields")
    if key_schema.get("type") != "struct" or not isinstance(fields, list) or not fields:
        raise UnsupportedField("record key is not a struct of primary-key columns")
    return [str(f["field"]) for f in fields]

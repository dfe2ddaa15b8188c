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


def _time_of_day(per_second: int) -> Convert:
    """Time since midnight → `HH:MM:SS.ffffff`, by arithmetic: Postgres allows 24:00:00."""
    micros_per_unit = 1_000_000 // per_second

    def convert(c: Column) -> Column:
        us = c * micros_per_unit if micros_per_unit != 1 else c
        return F.when(
            c.isNotNull(),
            F.format_string(
                "%02d:%02d:%02d.%06d",
                F.floor(us / 3_600_000_000),
                F.floor(us / 60_000_000) % 60,
                F.floor(us / 1_000_000) % 60,
                us % 1_000_000,
            ),
        )

    return convert


@dataclass(frozen=True)
class ColumnSpec:
    """One source column: how it is read from the event JSON and what it becomes in silver."""

    name: str
    json_type: T.DataType  # what from_json reads
    spark_type: T.DataType  # what silver stores
    convert: Convert  # json value → silver value (NULL when it does not fit)
    source_type: str  # the Postgres type, for docs and column comments
    optional: bool = True
    overridden: bool = False  # stored as text by a `column.overrides` entry

    def placeholder_check(self, raw: Column) -> Column:
        """True where the raw JSON text is Debezium's unchanged-TOAST placeholder."""
        if isinstance(self.json_type, T.ArrayType):
            return raw.contains(UNAVAILABLE)
        if self.json_type == T.BinaryType() or self.source_type == "BYTEA":
            return raw == F.lit(UNAVAILABLE_B64)
        return raw == F.lit(UNAVAILABLE)


# Postgres ±infinity timestamptz: Debezium writes the text "infinity"/"-infinity". Silver stores
# the latest/earliest instants Trino can show for a `timestamp with time zone` (±2^51 ms; a value
# beyond them makes every Trino query of the column fail), which no plausible row holds
# (docs/cdc-semantics.md, "Type mapping"). timestamp ±infinity arrive as Long.MAX/MIN µs and are
# stored as they are (Trino shows them as years +294247 / -290308).
TZ_INFINITY_US = 2_251_799_813_685_247_000
TZ_MINUS_INFINITY_US = -2_251_799_813_685_248_000


def _zoned_timestamp(c: Column) -> Column:
    """ISO-8601 text in UTC (years may be negative: BC) → timestamp; ±infinity → the stand-ins."""
    return (
        F.when(c == "infinity", F.timestamp_micros(F.lit(TZ_INFINITY_US)))
        .when(c == "-infinity", F.timestamp_micros(F.lit(TZ_MINUS_INFINITY_US)))
        .otherwise(c.try_cast(T.TimestampType()))
    )


def _numeric_text(c: Column) -> Column:
    """Debezium's string form of a NUMERIC as Postgres prints it (its special values differ)."""
    return (
        F.when(c == "NAN", F.lit("NaN"))
        .when(c == "POSITIVE_INFINITY", F.lit("Infinity"))
        .when(c == "NEGATIVE_INFINITY", F.lit("-Infinity"))
        .otherwise(c)
    )


def _bits(length: int, fixed: bool) -> Convert:
    """io.debezium.data.Bits (bytes, least significant byte first) → the bit string `'0101'`.

    bit(n) is exact (n digits); varbit's own length is not in the event, so its leading zero bits
    are lost at the connector: the text is the value without them (documented as lossy)."""

    def convert(c: Column) -> Column:
        h = F.hex(F.unbase64(c))
        last = F.greatest(F.length(h) / 2 - 1, F.lit(0)).cast("int")
        per_byte = F.transform(
            F.sequence(F.lit(0), last),
            lambda i: F.lpad(F.conv(h.substr(i * 2 + 1, F.lit(2)), 16, 2), 8, "0"),
        )
        bits = F.when(F.length(h) == 0, F.lit("")).otherwise(F.array_join(F.reverse(per_byte), ""))
        if fixed:  # the last n bits, zero-padded to n (lpad alone would cut from the left)
            padded = F.lpad(bits, F.greatest(F.length(bits), F.lit(length)), "0")
            bits = F.substring(padded, -length, length)
        else:
            bits = F.regexp_replace(bits, "^0+", "")
        return F.when(c.isNotNull(), bits)

    return convert


_BASE: dict[str, T.DataType] = {
    "int8": T.ByteType(),
    "int16": T.ShortType(),
    "int32": T.IntegerType(),
    "int64": T.LongType(),
    # Kafka Connect's JsonConverter names FLOAT32/FLOAT64 `float`/`double` (NaN and ±Infinity
    # arrive as the JSON strings "NaN", "Infinity", "-Infinity", which from_json reads)
    "float": T.FloatType(),
    "double": T.DoubleType(),
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
    "io.debezium.time.ZonedTimestamp": (T.StringType(), T.TimestampType(), _zoned_timestamp),
    "io.debezium.time.Time": (T.IntegerType(), T.StringType(), _time_of_day(1000)),
    "io.debezium.time.MicroTime": (T.LongType(), T.StringType(), _time_of_day(1_000_000)),
    "io.debezium.time.NanoTime": (
        T.LongType(),
        T.StringType(),
        lambda c: _time_of_day(1_000_000)(F.floor(c / 1000)),
    ),
    "io.debezium.time.ZonedTime": (T.StringType(), T.StringType(), _same),
    # interval.handling.mode=string: ISO-8601 `P1Y2M3DT4H5M6.789S`, months and days kept apart
    "io.debezium.time.Interval": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Json": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Uuid": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Enum": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Xml": (T.StringType(), T.StringType(), _same),
    "io.debezium.data.Tsvector": (T.StringType(), T.StringType(), _same),
}


class UnsupportedField(ValueError):
    """A field whose schema we cannot map; events carrying it are quarantined."""


#: schemas that lose information before silver sees them: refused with the setting that fixes them
_LOSSY = {
    "io.debezium.time.MicroDuration": "interval.handling.mode=numeric approximates months as 30.4375 "
    "days: set interval.handling.mode=string in debezium/postgres-source.json",
    "org.apache.kafka.connect.data.Decimal": "binary Decimal: the connector must use "
    "decimal.handling.mode=string",
}


def _params(field: dict[str, Any]) -> dict[str, str]:
    params = field.get("parameters") or {}
    return {str(k): str(v) for k, v in params.items()}


def _numeric(field: dict[str, Any], params: dict[str, str]) -> tuple[T.DataType, T.DataType, Convert] | None:
    """NUMERIC/DECIMAL arrive as exact strings (decimal.handling.mode=string)."""
    pg = params.get("__debezium.source.column.type", "").upper()
    if pg == "MONEY" and field.get("type") == "string":
        # money.fraction.digits (default 2) digits; money's range fits 19 digits
        dt = T.DecimalType(19, 2)
        return T.StringType(), dt, _try_cast(dt)
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
    return T.StringType(), T.StringType(), _numeric_text


def value_spec(field: dict[str, Any]) -> tuple[T.DataType, T.DataType, Convert]:
    """(json type, silver type, conversion) for one Connect field schema (recursive for arrays)."""
    params = _params(field)
    numeric = _numeric(field, params)
    if numeric is not None:
        return numeric
    logical = field.get("name")
    if isinstance(logical, str) and logical in _LOSSY:
        raise UnsupportedField(_LOSSY[logical])
    if logical == "io.debezium.data.Bits":
        pg = params.get("__debezium.source.column.type", "").upper()
        length = int(params.get("length") or params.get("__debezium.source.column.length") or "0")
        return T.StringType(), T.StringType(), _bits(length, fixed=pg == "BIT" and length > 0)
    if isinstance(logical, str) and logical in _LOGICAL:
        return _LOGICAL[logical]
    kind = field.get("type")
    if kind == "bytes":
        return T.StringType(), T.BinaryType(), F.unbase64
    if kind == "array":
        items = field.get("items")
        if not isinstance(items, dict):
            raise UnsupportedField("array without an item schema")
        if params.get("__debezium.source.column.type", "").upper() in {"_NUMERIC", "_DECIMAL"}:
            items = {**items, "parameters": {"__debezium.source.column.type": "NUMERIC"}}
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


TEXT_OVERRIDE = "text"


def column_spec(field: dict[str, Any], override: str | None = None) -> ColumnSpec:
    """The column's spec; `override="text"` (silver.json `column.overrides`) keeps the value's exact
    text instead: the JSON string as it is, or the JSON text of a number, array or struct."""
    name = field.get("field")
    if not isinstance(name, str) or not name:
        raise UnsupportedField("field without a name")
    source_type = _params(field).get("__debezium.source.column.type", str(field.get("type", "?"))).upper()
    if override == TEXT_OVERRIDE:
        text = _numeric_text if source_type in {"NUMERIC", "DECIMAL"} else _same
        return ColumnSpec(
            name, T.StringType(), T.StringType(), text, source_type, bool(field.get("optional", True)), True
        )
    try:
        json_type, spark_type, convert = value_spec(field)
    except UnsupportedField as exc:
        raise UnsupportedField(f"column {name}: {exc}") from None
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

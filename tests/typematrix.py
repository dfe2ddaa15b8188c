"""The type matrix: one source column per common Postgres type, with its edge values.

The one place a type is added: a `TypeCase` names the column type, the SQL literals written to it
and how both sides are rendered as comparable text — `pg` is a Postgres expression over the source
column, `spark` a Spark SQL expression over the silver column (read from Delta, exact), `trino` a
Trino expression over the same column as the analyst sees it (the documented mapping). `{c}` is
the column. The rows cycle through each case's values, so every value is written at least once,
and row 0 is all NULL.

Used by the type-matrix test on the real stack (tests/integration/test_types.py), by the script
that captures real Debezium envelopes (tests/capture_debezium.py) and by the Spark-tier test that
runs the silver rules on those captured envelopes (tests/spark/test_captured.py).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TABLE = "type_matrix"

#: types the matrix's columns need before the table (in the captured schema)
PRELUDE = [
    "DO $$ BEGIN CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy'); "
    "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    "DO $$ BEGIN CREATE DOMAIN {schema}.posint AS integer CHECK (VALUE > 0); "
    "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
]

# large values that do not compress: stored out of line (TOASTed), so an UPDATE that leaves them
# unchanged sends Debezium's unavailable-value placeholder
_BIG_TEXT = "(SELECT string_agg(md5(g::text), ' ') FROM generate_series(1, 300) g)"
_BIG_BYTES = "(SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 300) g)"

_INT = ("{c}::text", "cast({c} as string)", "cast({c} as varchar)")
_TEXT = ("{c}::text", "{c}", "{c}")
_JSON_ARRAY = ("array_to_json({c})::text", "to_json({c})", "json_format(cast({c} as json))")
# dates and timestamps compare as numbers (days / µs since 1970): exact, and free of how each side
# prints BC years. ±infinity arrive as Debezium's stand-ins (docs/cdc-semantics.md, "Type mapping")
_DATE_PG = (
    "CASE WHEN {c} = 'infinity' THEN '2146033979' WHEN {c} = '-infinity' THEN '-2147472691' "
    "ELSE ({c} - date '1970-01-01')::text END"
)


def _ts_pg(infinity: int, minus_infinity: int) -> str:
    return (
        f"CASE WHEN {{c}} = 'infinity' THEN '{infinity}' WHEN {{c}} = '-infinity' THEN '{minus_infinity}' "
        "ELSE (extract(epoch from {c}) * 1000000)::numeric(30,0)::text END"
    )


def _ts_trino(value: str, fraction: str, suffix: str, infinity: str, minus_infinity: str) -> str:
    """Postgres rendering of a timestamp as Trino prints it: astronomical years for BC."""
    return (
        f"CASE WHEN {{c}} = 'infinity' THEN '{infinity}' WHEN {{c}} = '-infinity' THEN '{minus_infinity}' "
        f"WHEN {value} < '0001-01-01' THEN '-' || lpad((-extract(year from {value})::int - 1)::text, 4, '0') "
        f"|| to_char({value}, '-MM-DD HH24:MI:SS.{fraction}'){suffix} "
        f"ELSE to_char({value}, 'YYYY-MM-DD HH24:MI:SS.{fraction}'){suffix} END"
    )


_TS_SPARK = "cast(unix_micros(cast({c} as timestamp)) as string)"


@dataclass(frozen=True)
class TypeCase:
    column: str
    pg_type: str
    values: tuple[str, ...]  # SQL literals
    pg: str  # Postgres: the source column → comparable text
    spark: str  # Spark SQL: the silver column → the same text
    trino: str  # Trino: the column as the analyst sees it → the same text
    #: how both texts are normalised before comparing: text (as is), float32/float64 (the same
    #: IEEE value, -0.0 and NaN included), decimal (same number), json (same document), interval
    #: (same months, days and µs), time (same UTC time of day)
    normalise: str = "text"
    #: what silver stores (Spark simpleString), checked against the Delta schema
    silver_type: str = ""
    #: Postgres expression for what Trino shows, where it differs from `pg` (e.g. milliseconds)
    trino_pg: str | None = None
    trino_normalise: str | None = None
    #: source renderings (of `trino_pg`/`pg`) not compared through Trino: documented exceptions
    not_in_trino: tuple[str, ...] = ()


CASES: list[TypeCase] = [
    TypeCase("c_int2", "smallint", ("-32768", "32767", "0"), *_INT, silver_type="smallint"),
    TypeCase("c_int4", "integer", ("-2147483648", "2147483647", "7"), *_INT, silver_type="int"),
    TypeCase(
        "c_int8", "bigint", ("-9223372036854775808", "9223372036854775807", "42"), *_INT, silver_type="bigint"
    ),
    TypeCase(
        "c_real",
        "real",
        ("'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "3.4028235e38", "1.4e-45", "1.5"),
        "{c}::text",
        "cast({c} as string)",
        "cast(cast({c} as double) as varchar)",  # Trino prints a real with 7 digits
        normalise="float32",
        silver_type="float",
    ),
    TypeCase(
        "c_double",
        "double precision",
        ("'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "1.7976931348623157e308", "5e-324", "0.1"),
        *_INT,
        normalise="float64",
        silver_type="double",
    ),
    TypeCase(
        "c_numeric",
        "numeric(38,10)",
        ("'9999999999999999999999999999.9999999999'", "'-0.0000000001'", "0"),
        *_INT,
        normalise="decimal",
        silver_type="decimal(38,10)",
    ),
    TypeCase(
        "c_numeric_free",
        "numeric",
        (
            "'123456789012345678901234567890.123456789012345678901234567890'",
            "'NaN'",
            "'Infinity'",
            "'-1e-60'",
            "'1.50'",
        ),
        *_TEXT,
        silver_type="string",
    ),
    TypeCase(
        "c_money",
        "money",
        ("'92233720368547758.07'", "'-92233720368547758.08'", "'0.01'"),
        "{c}::numeric::text",
        "cast({c} as string)",
        "cast({c} as varchar)",
        normalise="decimal",
        silver_type="decimal(19,2)",
    ),
    TypeCase("c_bool", "boolean", ("true", "false"), *_INT, silver_type="boolean"),
    TypeCase(
        "c_char",
        "char(5)",
        ("'ab'", "''", "'üé漢字🙂'"),
        "rpad({c}::text, 5)",
        "{c}",
        "{c}",
        silver_type="string",
    ),
    TypeCase(
        "c_varchar", "varchar(20)", ("''", "'ünï ''quoted'' \\\\'", "'🙂'"), *_TEXT, silver_type="string"
    ),
    TypeCase("c_text", "text", ("''", "'line1\nline2\ttab'", _BIG_TEXT), *_TEXT, silver_type="string"),
    TypeCase(
        "c_bytea",
        "bytea",
        ("'\\x'", "'\\x00ff10'", _BIG_BYTES),
        "encode({c}, 'hex')",
        "lower(hex({c}))",
        "lower(to_hex({c}))",
        silver_type="binary",
    ),
    TypeCase(
        "c_uuid",
        "uuid",
        ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"),
        *_TEXT,
        silver_type="string",
    ),
    TypeCase(
        "c_json", "json", ('\'{"b": 1,  "a": [1, 2]}\'', "'null'", "'[]'"), *_TEXT, silver_type="string"
    ),
    TypeCase(
        "c_jsonb", "jsonb", ('\'{"b": 1,  "a": [1, 2.50]}\'', "'\"ü\"'", "'{}'"), *_TEXT, silver_type="string"
    ),
    TypeCase("c_xml", "xml", ("'<a x=\"1\">t&amp;</a>'", "'text only'"), *_TEXT, silver_type="string"),
    TypeCase(
        "c_date",
        "date",
        ("'2000-02-29'", "'0001-01-01'", "'9999-12-31'", "'4713-01-01 BC'", "'infinity'", "'-infinity'"),
        _DATE_PG,
        "cast(unix_date({c}) as string)",
        "cast(date_diff('day', date '1970-01-01', {c}) as varchar)",
        silver_type="date",
    ),
    TypeCase(
        "c_time",
        "time",
        ("'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"),
        "format('%s:%s:%s', lpad(extract(hour from {c})::int::text, 2, '0'), "
        "lpad(extract(minute from {c})::int::text, 2, '0'), "
        "to_char(extract(second from {c}), 'FM00.000000'))",
        "{c}",
        "{c}",
        silver_type="string",
    ),
    TypeCase(
        "c_timetz",
        "timetz",
        ("'12:34:56.789+05:30'", "'00:00:00-12'", "'23:59:59.999999+00'"),
        "({c} AT TIME ZONE 'UTC')::text",
        "{c}",
        "{c}",
        normalise="time",
        silver_type="string",
    ),
    TypeCase(
        "c_timestamp",
        "timestamp",
        (
            "'2026-01-02 03:04:05.123456'",
            "'0001-01-01 00:00:00'",
            "'9999-12-31 23:59:59.999999'",
            "'0044-03-15 12:00:00 BC'",
            "'infinity'",
            "'-infinity'",
        ),
        _ts_pg(2**63 - 1, -(2**63)),
        _TS_SPARK,
        "cast({c} as varchar)",
        silver_type="timestamp_ntz",
        trino_pg=_ts_trino("{c}", "US", "", "+294247-01-10 04:00:54.775807", "-290308-12-21 19:59:05.224192"),
    ),
    TypeCase(
        "c_timestamptz",
        "timestamptz",
        (
            "'2026-01-02 03:04:05.123456+02'",
            "'1970-01-01 00:00:00+00'",
            "'9999-12-31 23:59:59.999999+00'",
            "'0044-03-15 12:00:00+00 BC'",
            "'infinity'",
            "'-infinity'",
        ),
        _ts_pg(2_251_799_813_685_247_000, -2_251_799_813_685_248_000),
        _TS_SPARK,
        "cast({c} as varchar)",
        silver_type="timestamp",
        # Trino: timestamp(3) with time zone — milliseconds, truncated (documented)
        trino_pg=_ts_trino(
            "({c} AT TIME ZONE 'UTC')",
            "MS",
            " || ' UTC'",
            "+73326-09-11 20:14:45.247 UTC",
            "-69387-04-22 03:45:14.752 UTC",
        ),
    ),
    TypeCase(
        "c_interval",
        "interval",
        ("'1 year 2 months 3 days 04:05:06.789'", "'-1 month'", "'0'", "'30 days'", "'1 month'"),
        *_TEXT,
        normalise="interval",
        silver_type="string",
    ),
    # abbrev(): the inet output form (an explicit ::text cast adds /32 to a host)
    TypeCase(
        "c_inet",
        "inet",
        ("'192.168.0.1/24'", "'::1'", "'10.1.2.3'"),
        "abbrev({c})",
        "{c}",
        "{c}",
        silver_type="string",
    ),
    TypeCase("c_cidr", "cidr", ("'10.0.0.0/8'", "'2001:db8::/32'"), *_TEXT, silver_type="string"),
    TypeCase("c_macaddr", "macaddr", ("'08:00:2b:01:02:03'",), *_TEXT, silver_type="string"),
    TypeCase("c_enum", "{schema}.mood", ("'sad'", "'happy'"), *_TEXT, silver_type="string"),
    TypeCase("c_domain", "{schema}.posint", ("1", "2147483647"), *_INT, silver_type="int"),
    TypeCase(
        "c_int_array",
        "integer[]",
        ("'{}'", "'{1,NULL,-3}'", "ARRAY[2147483647]"),
        *_JSON_ARRAY,
        normalise="json",
        silver_type="array<int>",
    ),
    TypeCase(
        "c_text_array",
        "text[]",
        ("'{}'", "ARRAY['a b', '', 'ü\"', NULL]"),
        *_JSON_ARRAY,
        normalise="json",
        silver_type="array<string>",
    ),
    TypeCase(
        "c_numeric_array",
        "numeric[]",
        ("'{}'", "ARRAY[1.50, -2, 12345678901234567890.123]"),
        "array_to_json({c}::text[])::text",
        *_JSON_ARRAY[1:],
        normalise="json",
        silver_type="array<string>",
    ),
    TypeCase(
        "c_uuid_array",
        "uuid[]",
        ("ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]", "'{}'"),
        *_JSON_ARRAY,
        normalise="json",
        silver_type="array<string>",
    ),
    TypeCase("c_int4range", "int4range", ("'[1,10)'", "'empty'", "'(,5]'"), *_TEXT, silver_type="string"),
    TypeCase(
        "c_tstzrange",
        "tstzrange",
        ("'[2026-01-01 00:00+00,2026-02-01 00:00+00)'", "'(,infinity)'"),
        *_TEXT,
        silver_type="string",
    ),
    TypeCase("c_bit", "bit(3)", ("B'101'", "B'000'", "B'011'"), *_TEXT, silver_type="string"),
    # varbit: the event has no length, so leading zero bits are lost at the connector (documented)
    TypeCase(
        "c_varbit",
        "varbit(16)",
        ("B''", "B'1'", "B'0100'", "B'1111000011110000'"),
        "ltrim({c}::text, '0')",
        "{c}",
        "{c}",
        silver_type="string",
    ),
    TypeCase("c_tsvector", "tsvector", ("'a fat cat'", "''"), *_TEXT, silver_type="string"),
    TypeCase(
        "c_point",
        "point",
        ("'(1.5,-2)'", "'(0,0)'"),
        "json_build_object('x', {c}[0], 'y', {c}[1])::text",
        "to_json(named_struct('x', cast(get_json_object({c}, '$.x') as double), "
        "'y', cast(get_json_object({c}, '$.y') as double)))",
        "json_format(cast(map(array['x', 'y'], array[cast(json_extract_scalar({c}, '$.x') as double), "
        "cast(json_extract_scalar({c}, '$.y') as double)]) as json))",
        normalise="json",
        silver_type="string",
    ),
]

#: the source session settings the `pg` expressions assume
PG_SESSION = ["SET TIME ZONE 'UTC'", "SET intervalstyle = 'iso_8601'"]

ROWS = 8  # row 0 is all NULL; rows 1.. cycle through each case's values


def _null_safe(expr: str, column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {expr.format(c=column)} END"


def pg_expr(case: TypeCase) -> str:
    return _null_safe(case.pg, case.column)


def spark_expr(case: TypeCase) -> str:
    return _null_safe(case.spark, case.column)


def trino_expr(case: TypeCase) -> str:
    return _null_safe(case.trino, case.column)


def ddl(schema: str) -> list[str]:
    cols = ",\n  ".join(f"{c.column} {c.pg_type.format(schema=schema)}" for c in CASES)
    return [p.format(schema=schema) for p in PRELUDE] + [
        f"CREATE TABLE IF NOT EXISTS {schema}.{TABLE} (\n  id int PRIMARY KEY,\n  {cols}\n)"
    ]


def literal(case: TypeCase, row: int) -> str:
    if row == 0:
        return "NULL"
    return case.values[(row - 1) % len(case.values)]


def insert(schema: str, row: int) -> str:
    values = ", ".join(literal(c, row) for c in CASES)
    return f"INSERT INTO {schema}.{TABLE} (id, {', '.join(c.column for c in CASES)}) VALUES ({row}, {values})"


#: a row written and deleted last: once its events are in bronze, so are all before it
MARKER = 999


def changes(schema: str) -> list[str]:
    """After the inserts: a value changed, updates that leave TOASTed values unchanged (rows 3 and
    6 hold the large text and bytea), a primary-key change of a TOASTed row, a delete."""
    t = f"{schema}.{TABLE}"
    return [
        f"UPDATE {t} SET c_real = 'NaN', c_text = 'changed', c_int_array = '{{4,5}}' WHERE id = 1",
        f"UPDATE {t} SET c_int4 = c_int4 + 1 WHERE id = 3",
        f"UPDATE {t} SET c_text_array = ARRAY['x'], c_bool = true WHERE id = 0",
        f"UPDATE {t} SET id = 100 WHERE id = 6",
        f"DELETE FROM {t} WHERE id = 2",
    ]


_ISO_INTERVAL = re.compile(
    r"P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)W)?(?:(-?\d+)D)?"
    r"(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?"
)
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d(?::?\d\d)?)?")


def normalise(kind: str, text: str | None) -> object:
    """The comparable form of one side's text (TypeCase.normalise)."""
    if text is None:
        return None
    if kind in ("float32", "float64"):
        return struct.pack(">f" if kind == "float32" else ">d", float(text)).hex()
    if kind == "decimal":
        return Decimal(text)
    if kind == "json":
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    if kind == "interval":
        m = _ISO_INTERVAL.fullmatch(text)
        assert m, f"not an ISO-8601 interval: {text!r}"
        y, mo, w, d, h, mi = (int(g or 0) for g in m.groups()[:6])
        sec = Decimal(m.group(7) or 0)
        return (y * 12 + mo, w * 7 + d, (h * 3600 + mi * 60) * 10**6 + int(sec * 10**6))
    if kind == "time":
        m = _TIME.fullmatch(text)
        assert m, f"not a time of day: {text!r}"
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
        micros = ((h * 60 + mi) * 60 + s) * 10**6 + int(Decimal(m.group(4) or 0) * 10**6)
        offset = m.group(5) or "Z"
        assert offset in ("Z", "+00", "+00:00", "+0000"), f"expected UTC: {text!r}"
        return micros
    return text


def same(kind: str, left: str | None, right: str | None) -> bool:
    return normalise(kind, left) == normalise(kind, right)


Rendered = dict[str, dict[str, Any]]  # id → column → rendered text


def silver_rendered(spark: SparkSession, path: str) -> Rendered:
    """The silver table, each case's column rendered by its Spark expression (exact, from Delta)."""
    df = spark.read.format("delta").load(path)
    exprs = [f"{spark_expr(c)} AS {c.column}" for c in CASES]
    return {str(r["id"]): r.asDict() for r in df.selectExpr("cast(id as string) AS id", *exprs).collect()}


def source_rendered(conn: Any, schema: str, trino: bool = False) -> Rendered:
    """The source table, each case's column rendered by its Postgres expression (`trino`: the one
    for what Trino shows)."""
    for setting in PG_SESSION:
        conn.execute(setting)
    exprs = ", ".join(
        f"{_null_safe(c.trino_pg or c.pg, c.column) if trino else pg_expr(c)} AS {c.column}" for c in CASES
    )
    rows = conn.execute(f"SELECT id::text, {exprs} FROM {schema}.{TABLE} ORDER BY id").fetchall()
    return {r[0]: dict(zip([c.column for c in CASES], r[1:], strict=True)) for r in rows}


def mismatches(expected: Rendered, got: Rendered, trino: bool = False) -> list[str]:
    """Every value that differs (after the case's normalisation), as readable lines."""
    out = []
    if set(expected) != set(got):
        out.append(f"ids: source {sorted(expected)} silver {sorted(got)}")
    for key in sorted(set(expected) & set(got)):
        for case in CASES:
            want, have = expected[key][case.column], got[key][case.column]
            if trino and want in case.not_in_trino:
                continue
            kind = case.trino_normalise if trino and case.trino_normalise else case.normalise
            if not same(kind, want, have):
                out.append(f"id {key} {case.column}: source {want!r:.80} silver {have!r:.80}")
    return out

"""`lakehouse verify`: every captured source table vs its silver table, by primary key, on source columns.

Scales with Spark, not Python memory: both sides are read by Spark (the source over JDBC, in key
ranges when the key is one integer column), each row is reduced to a 64-bit hash of its source
columns, and per-bucket (count, hash sum) digests are compared first; only buckets that differ
are joined row by row to count and show missing / extra / different keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .store import Layout, written_by_another

BUCKETS = 1024
EXAMPLES = 3


@dataclass
class TableDiff:
    source: str
    source_rows: int = 0
    silver_rows: int = 0
    missing: int = 0  # in the source, not in silver
    extra: int = 0  # in silver, not in the source
    different: int = 0
    #: source rows with a value that cannot be converted to silver's column type (shown, never
    #: compared as NULL)
    unconvertible: int = 0
    #: source columns silver does not have (every row differs in them)
    missing_columns: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def clean(self) -> bool:
        return (
            self.error is None
            and self.missing == self.extra == self.different == self.unconvertible == 0
            and not self.missing_columns
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "clean": self.clean}


def _normalise(c: Column, silver_type: T.DataType) -> Column:
    """Source (JDBC) value in silver's representation (NULL where it does not convert: counted)."""
    return c.try_cast(silver_type)


def _digest(df: DataFrame, keys: list[str], cols: list[str]) -> DataFrame:
    return df.select(
        *keys,
        F.pmod(F.xxhash64(*[F.col(k) for k in keys]), F.lit(BUCKETS)).alias("_b"),
        F.xxhash64(*[F.col(c) for c in cols]).alias("_h"),
    )


def compare(source: DataFrame, silver: DataFrame, keys: list[str], name: str) -> TableDiff:
    diff = TableDiff(name)
    diff.missing_columns = [c for c in source.columns if c not in silver.columns]
    cols = [c for c in source.columns if c in silver.columns]
    converted = {c: _normalise(F.col(c), silver.schema[c].dataType) for c in cols}
    failed = [F.when(F.col(c).isNotNull() & converted[c].isNull(), F.lit(c)) for c in cols]
    bad_values = source.select(*keys, F.array_compact(F.array(*failed)).alias("_failed")).where(
        F.size("_failed") > 0
    )
    diff.unconvertible = bad_values.count()
    if diff.unconvertible:
        diff.examples["unconvertible"] = [
            ", ".join(f"{k}={r[k]}" for k in keys) + f" ({', '.join(r['_failed'])})"
            for r in bad_values.limit(EXAMPLES).collect()
        ]
    src = source.select(*[converted[c].alias(c) for c in cols])
    slv = silver.select(*cols)
    a, b = _digest(src, keys, cols).cache(), _digest(slv, keys, cols).cache()
    try:
        agg = [F.count("*").alias("n"), F.sum(F.col("_h").cast("decimal(38,0)")).alias("s")]
        da, db = a.groupBy("_b").agg(*agg), b.groupBy("_b").agg(*agg)
        buckets = da.join(db, "_b", "full_outer").where(
            ~(F.coalesce(da["n"], F.lit(0)) == F.coalesce(db["n"], F.lit(0))) | ~da["s"].eqNullSafe(db["s"])
        )
        diff.source_rows, diff.silver_rows = a.count(), b.count()
        bad = [r["_b"] for r in buckets.select("_b").collect()]
        if not bad:
            return diff
        j = (
            a.where(F.col("_b").isin(bad))
            .alias("a")
            .join(b.where(F.col("_b").isin(bad)).alias("b"), keys, "full_outer")
            .select(*keys, F.col("a._h").alias("ha"), F.col("b._h").alias("hb"))
            .cache()
        )
        kinds = {
            "missing": F.col("hb").isNull(),
            "extra": F.col("ha").isNull(),
            "different": F.col("ha").isNotNull() & F.col("hb").isNotNull() & (F.col("ha") != F.col("hb")),
        }
        for kind, cond in kinds.items():
            rows = j.where(cond)
            setattr(diff, kind, rows.count())
            diff.examples[kind] = [
                ", ".join(f"{k}={r[k]}" for k in keys) for r in rows.select(*keys).limit(EXAMPLES).collect()
            ]
        j.unpersist()
    finally:
        a.unpersist()
        b.unpersist()
    return diff


#: Postgres types JDBC reads differently from what silver stores → the SQL that renders silver's form
_SOURCE_SQL = {
    # time → `HH:MM:SS.ffffff` (JDBC reads 24:00:00 as the next day's midnight)
    "time without time zone": "format('%s:%s:%s', lpad(extract(hour from {c})::int::text, 2, '0'), "
    "lpad(extract(minute from {c})::int::text, 2, '0'), to_char(extract(second from {c}), 'FM00.000000'))",
}


def _source_select(spark: SparkSession, jdbc_url: str, props: dict[str, str], table: str) -> str:
    """`(SELECT …) AS src` with the columns JDBC would misread rendered in silver's form."""
    schema, _, name = table.partition(".")
    cols = (
        spark.read.format("jdbc")
        .option("url", jdbc_url)
        .options(**props)
        .option(
            "query",
            "SELECT column_name::text AS c, data_type::text AS t FROM information_schema.columns "
            f"WHERE table_schema = '{schema}' AND table_name = '{name}' ORDER BY ordinal_position",
        )
        .load()
        .collect()
    )
    exprs = []
    for r in cols:
        q = '"' + r["c"].replace('"', '""') + '"'
        sql = _SOURCE_SQL.get(r["t"])
        exprs.append(f"CASE WHEN {q} IS NULL THEN NULL ELSE {sql.format(c=q)} END AS {q}" if sql else q)
    return f"(SELECT {', '.join(exprs)} FROM {table}) AS src"


def read_source(
    spark: SparkSession, jdbc_url: str, props: dict[str, str], table: str, keys: list[str]
) -> DataFrame:
    source = _source_select(spark, jdbc_url, props, table)
    reader = spark.read.format("jdbc").option("url", jdbc_url).option("dbtable", source).options(**props)
    reader = reader.option("preferTimestampNTZ", "false").option("fetchsize", "10000")
    if len(keys) == 1:
        bounds = (
            spark.read.format("jdbc")
            .option("url", jdbc_url)
            .options(**props)
            .option("query", f'SELECT min("{keys[0]}") AS lo, max("{keys[0]}") AS hi FROM {table}')
            .load()
            .collect()[0]
        )
        if isinstance(bounds["lo"], int) and bounds["hi"] is not None and bounds["hi"] > bounds["lo"]:
            reader = (
                reader.option("partitionColumn", keys[0])
                .option("lowerBound", bounds["lo"])
                .option("upperBound", bounds["hi"] + 1)
                .option("numPartitions", 4)
            )
    return reader.load()


def verify_table(
    spark: SparkSession, layout: Layout, jdbc: tuple[str, dict[str, str]], table: str, keys: list[str]
) -> TableDiff:
    jdbc_url, props = jdbc
    path = layout.table(table)
    if not written_by_another(spark, path):
        source = read_source(spark, jdbc_url, props, table, keys)
        diff = TableDiff(table, source_rows=source.count())
        diff.missing = diff.source_rows
        return diff
    silver = spark.read.format("delta").load(path)
    return compare(read_source(spark, jdbc_url, props, table, keys), silver, keys, table)

"""`lakehouse verify`: every captured source table vs its silver table, by primary key, on source columns.

Scales with Spark, not Python memory: both sides are read by Spark (the source over JDBC, in key
ranges when the key is one integer column), each row is put in an exact form (a NULL flag at every
level, so NULL is neither `[]` nor a value in another column; a float as its shortest text, so
-0.0 is not 0.0 while NaN is NaN; a map as its sorted entries) and hashed to 64 bits, and per-bucket
(count, hash sum) digests are compared first. The hash only finds the buckets that differ: there
the rows are compared exactly, column by column and NULL-safely, to count and show missing / extra
/ different keys and keys held by more than one row. A table without a primary key is compared as a
multiset of rows (a row silver holds more or fewer times than the source is extra or missing).
`clean` also needs equal row counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.pipeline.silver.live_rows import read
from lakehouse.pipeline.silver.store import Layout, written_by_another

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
    #: keys more than one row holds, on either side (never equal; not counted as missing, extra or
    #: different)
    duplicates: int = 0
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
            and self.source_rows == self.silver_rows
            and self.missing == self.extra == self.different == self.duplicates == self.unconvertible == 0
            and not self.missing_columns
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "clean": self.clean}


def _normalise(c: Column, silver_type: T.DataType) -> Column:
    """Source (JDBC) value in silver's representation (NULL where it does not convert: counted)."""
    return c.try_cast(silver_type)


def _exact(c: Column, t: T.DataType) -> Column:
    """`c` as `(n: is NULL, v: value)` in a form whose equality and hash are exact, at every level:
    a hash that skips NULLs still sees where they are, and an empty array or struct is not NULL; a
    float is its shortest text (-0.0 is not 0.0, every NaN is NaN); a map (neither comparable nor
    hashable) is its entries, sorted."""
    v: Column
    if isinstance(t, (T.FloatType, T.DoubleType)):
        v = c.cast("string")
    elif isinstance(t, T.ArrayType):
        element = t.elementType
        v = F.transform(c, lambda x: _exact(x, element))
    elif isinstance(t, T.MapType):
        kt, vt = t.keyType, t.valueType
        v = F.array_sort(
            F.transform(
                F.map_entries(c),
                lambda e: F.struct(_exact(e["key"], kt).alias("k"), _exact(e["value"], vt).alias("v")),
            )
        )
    elif isinstance(t, T.StructType):
        v = F.struct(*[_exact(c[f.name], f.dataType).alias(f"_{i}") for i, f in enumerate(t.fields)])
    else:
        v = c
    return F.struct(c.isNull().alias("n"), v.alias("v"))


def _digest(df: DataFrame, keys: list[str], cols: list[str]) -> DataFrame:
    """Per row: the columns that name it in examples (the key, or every column without one), `_r`
    its exact form, `_h` the hash of that and `_b` its bucket (by key; by `_h` without one)."""
    ident = keys or cols
    row = F.struct(*[_exact(F.col(c), df.schema[c].dataType).alias(f"_{i}") for i, c in enumerate(cols)])
    exact = df.select(*ident, row.alias("_r")).withColumn("_h", F.xxhash64("_r"))
    bucket = F.xxhash64(*[F.col(k) for k in keys]) if keys else F.col("_h")
    return exact.withColumn("_b", F.pmod(bucket, F.lit(BUCKETS)))


def _show(row: Any, cols: list[str]) -> str:
    return ", ".join(f"{c}={row[c]}" for c in cols)


def _tally(diff: TableDiff, j: DataFrame, kinds: dict[str, Column], ident: list[str]) -> None:
    """Counts (`j` rows times their weight `_w`) and examples of each kind of difference."""
    sums = j.agg(
        *[F.sum(F.when(cond, F.col("_w")).otherwise(0)).alias(k) for k, cond in kinds.items()]
    ).first()
    for kind, cond in kinds.items():
        n = int(sums[kind] or 0) if sums is not None else 0
        setattr(diff, kind, n)
        rows = j.where(cond).select(*ident).limit(EXAMPLES).collect() if n else []
        diff.examples[kind] = [_show(r, ident) for r in rows]


def _by_key(diff: TableDiff, a: DataFrame, b: DataFrame, keys: list[str]) -> None:
    per_key = [F.count("*").alias("n"), F.first("_r").alias("r")]
    j = (
        a.groupBy(*keys)
        .agg(*per_key)
        .alias("a")
        .join(b.groupBy(*keys).agg(*per_key).alias("b"), keys, "full_outer")
        .select(
            *keys,
            F.col("a.n").alias("_na"),
            F.col("b.n").alias("_nb"),
            F.col("a.r").alias("_ra"),
            F.col("b.r").alias("_rb"),
        )
        .withColumn("_w", F.lit(1))
        .cache()
    )
    na, nb = F.col("_na"), F.col("_nb")
    try:
        _tally(
            diff,
            j,
            {
                "missing": (na == 1) & nb.isNull(),
                "extra": na.isNull() & (nb == 1),
                "different": (na == 1) & (nb == 1) & ~F.col("_ra").eqNullSafe(F.col("_rb")),
                "duplicates": (na > 1) | (nb > 1),
            },
            keys,
        )
    finally:
        j.unpersist()


def _as_multiset(diff: TableDiff, a: DataFrame, b: DataFrame, cols: list[str]) -> None:
    def times(side: DataFrame, n: str) -> DataFrame:
        return side.groupBy("_r").agg(F.count("*").alias(n), F.first(F.struct(*cols)).alias(f"{n}_row"))

    na, nb = F.coalesce("_na", F.lit(0)), F.coalesce("_nb", F.lit(0))
    j = (
        times(a, "_na")
        .join(times(b, "_nb"), "_r", "full_outer")
        .where(na != nb)
        .select((na - nb).alias("_d"), F.coalesce("_na_row", "_nb_row").alias("_row"))
        .select(F.abs("_d").alias("_w"), "_d", "_row.*")
        .cache()
    )
    try:
        _tally(diff, j, {"missing": F.col("_d") > 0, "extra": F.col("_d") < 0}, cols)
    finally:
        j.unpersist()


def compare(source: DataFrame, silver: DataFrame, keys: list[str], name: str) -> TableDiff:
    """`source` (as read over JDBC) against `silver` on the source's columns: by `keys`, or as
    multisets of rows when there are none."""
    diff = TableDiff(name)
    diff.missing_columns = [c for c in source.columns if c not in silver.columns]
    cols = [c for c in source.columns if c in silver.columns]
    ident = keys or cols
    converted = {c: _normalise(F.col(c), silver.schema[c].dataType) for c in cols}
    failed = [F.when(F.col(c).isNotNull() & converted[c].isNull(), F.lit(c)) for c in cols]
    bad_values = source.select(*ident, F.array_compact(F.array(*failed)).alias("_failed")).where(
        F.size("_failed") > 0
    )
    diff.unconvertible = bad_values.count()
    if diff.unconvertible:
        diff.examples["unconvertible"] = [
            _show(r, ident) + f" ({', '.join(r['_failed'])})" for r in bad_values.limit(EXAMPLES).collect()
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
        in_bad = F.col("_b").isin(bad)
        if keys:
            _by_key(diff, a.where(in_bad), b.where(in_bad), keys)
        else:
            _as_multiset(diff, a.where(in_bad), b.where(in_bad), cols)
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
    silver = read(spark, layout, table)
    return compare(read_source(spark, jdbc_url, props, table, keys), silver, keys, table)

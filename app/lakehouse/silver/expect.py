"""Expectations in the micro-batch: Spark's analyser on each rule, and the per-row transform.

`analyse` asks Spark's analyser whether a rule parses, names real columns and is boolean, against
the silver table's schema (no job runs): at the job's start for tables that exist, and when a
table's schema is first known otherwise. `expect` and `tallies` are pure: DataFrame in, DataFrame
or aggregate columns out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StructType

from ..errors import ConfigError
from .expectations import Rule

#: the array column of the rule names an upsert fails (contract-clean rows only)
FAILED = "_failed"
#: how much of a failing row a sample keeps (a TOASTed value can be 100 kB)
SAMPLE_CHARS = 2000


def analyse(spark: SparkSession, rules: Iterable[Rule], schema: StructType, path: Path) -> None:
    """Spark's analyser on each rule against the silver table's schema: it parses, names real
    columns and is boolean — or ConfigError naming the file, table, rule and problem. Runs no job."""
    empty = spark.createDataFrame([], schema)
    for r in rules:
        where = f"{path}: {r.table} ({r.name})"
        try:
            kind = empty.select(F.expr(r.expr).alias("x")).schema["x"].dataType
        except Exception as exc:  # ParseException, AnalysisException: Spark's own message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{where}: {first}") from None
        if not isinstance(kind, BooleanType):
            raise ConfigError(f"{where}: not a boolean expression ({kind.simpleString()})")


def failed(rule: Rule) -> Column:
    """An upsert that does not satisfy the rule (NULL is not satisfying); never a delete."""
    return (F.col("_op") != "d") & ~F.coalesce(F.expr(rule.expr), F.lit(False))


def expect(rows: DataFrame, rules: Iterable[Rule]) -> DataFrame:
    """`_failed`: the rules each contract-clean upsert fails. A `drop` rule's reason joins the
    row's `_errors`, so it takes the contract's path to quarantine and not to silver."""
    rules = tuple(rules)
    clean = F.size("_errors") == 0
    names = F.array(*[F.when(clean & failed(r), F.lit(r.name)) for r in rules]) if rules else None
    out = rows.withColumn(
        FAILED,
        F.filter(names, lambda n: n.isNotNull()) if names is not None else F.array().cast("array<string>"),
    )
    drops = [r for r in rules if r.action == "drop"]
    if drops:
        reasons = F.array(*[F.when(F.array_contains(FAILED, r.name), F.lit(r.reason)) for r in drops])
        out = out.withColumn("_errors", F.concat("_errors", F.filter(reasons, lambda x: x.isNotNull())))
    return out


def tallies(rules: Iterable[Rule], columns: Iterable[str]) -> list[Column]:
    """Aggregates over `expect`'s output, for the batch's one summary of a table: per rule the
    failing rows (`fail:<name>`) and a sample of one (`sample:<name>`, JSON of `columns`)."""
    row = F.substring(F.to_json(F.struct(*columns)), 1, SAMPLE_CHARS)
    out: list[Column] = []
    for r in rules:
        hit = F.array_contains(FAILED, r.name)
        out.append(F.count_if(hit).alias(f"fail:{r.name}"))
        out.append(F.first(F.when(hit, row), ignorenulls=True).alias(f"sample:{r.name}"))
    return out

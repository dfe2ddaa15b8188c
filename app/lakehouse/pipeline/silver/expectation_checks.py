"""Expectations in the micro-batch: Spark's analyser on each rule, and the per-row transform.

`analyse` asks Spark's analyser whether a rule parses, names real columns and is boolean, against
the silver table's schema (no job runs): at the job's start for tables that exist, and when a
table's schema is first known otherwise. `expect` and `tallies` are pure: DataFrame in, DataFrame
or aggregate columns out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StructType

from lakehouse.errors import ConfigError, LakehouseError
from lakehouse.pipeline.silver.expectations import Rule

#: the array column of the rule names an upsert fails (contract-clean rows only)
FAILED = "_failed"
#: whether the rules were evaluated on the row
CHECKED = "_checked"
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


def checkable(only: Column | None = None) -> Column:
    """Rows the rules are evaluated on: contract-clean upserts whose values are all in the event
    (a TOASTed value Debezium left out is a placeholder, not the value: that row is checked after
    the fill, with `only`)."""
    c = (F.size("_errors") == 0) & (F.size("_unavail") == 0) & (F.col("_op") != "d")
    return c if only is None else c & only


def expect(rows: DataFrame, rules: Iterable[Rule], only: Column | None = None) -> DataFrame:
    """`_checked` and `_failed`: whether each row was checked, and the rules it fails. A `drop`
    rule's reason joins the row's `_errors`, so it takes the contract's path to quarantine and not
    to silver. With `only` (rows whose TOASTed values were just filled) the other rows keep what
    an earlier pass gave them."""
    rules = tuple(rules)
    mine = checkable(only)
    names = F.array(*[F.when(mine & failed(r), F.lit(r.name)) for r in rules]) if rules else None
    new = F.filter(names, lambda n: n.isNotNull()) if names is not None else F.array().cast("array<string>")
    if only is None:
        out = rows.withColumns({CHECKED: mine, FAILED: new})
    else:
        out = rows.withColumns(
            {
                CHECKED: F.when(only, mine).otherwise(F.col(CHECKED)),
                FAILED: F.when(only, new).otherwise(F.col(FAILED)),
            }
        )
    drops = [r for r in rules if r.action == "drop"]
    if drops:
        hit = [F.when(F.array_contains(new, r.name), F.lit(r.reason)) for r in drops]
        more = F.concat("_errors", F.filter(F.array(*hit), lambda x: x.isNotNull()))
        out = out.withColumn(
            "_errors", more if only is None else F.when(only, more).otherwise(F.col("_errors"))
        )
    return out


def tallies(rules: Iterable[Rule], columns: Iterable[str], only: Column | None = None) -> list[Column]:
    """Aggregates over `expect`'s output, to join a table's one aggregation of the batch: the rows
    checked (`checked`), and per rule the failing rows (`fail:<name>`) and a sample of one
    (`sample:<name>`, JSON of `columns`). With `only`, over those rows alone."""
    rules = tuple(rules)
    if not rules:
        return []
    within = F.col(CHECKED) if only is None else F.col(CHECKED) & only
    row = F.substring(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])), 1, SAMPLE_CHARS)
    out: list[Column] = [F.count_if(within).alias("checked")]
    for r in rules:
        hit = within & F.array_contains(FAILED, r.name)
        out.append(F.count_if(hit).alias(f"fail:{r.name}"))
        out.append(F.first(F.when(hit, row), ignorenulls=True).alias(f"sample:{r.name}"))
    return out


@dataclass(frozen=True)
class Tally:
    """One rule's result on one table in one batch."""

    rule: Rule
    checked: int
    failed: int
    sample: str | None


def read_tallies(rules: Iterable[Rule], row: Any) -> list[Tally]:
    """`tallies`' columns of a collected row → one Tally per rule."""
    return [Tally(r, int(row["checked"]), int(row[f"fail:{r.name}"]), row[f"sample:{r.name}"]) for r in rules]


def added(a: list[Tally], b: list[Tally]) -> list[Tally]:
    """Two passes' tallies of the same rules (before and after the TOAST fill), summed."""
    by = {t.rule: t for t in a}
    out = []
    for t in b:
        o = by.pop(t.rule, None)
        if o is None:
            out.append(t)
        else:
            out.append(Tally(t.rule, o.checked + t.checked, o.failed + t.failed, o.sample or t.sample))
    return out + list(by.values())


class ExpectationFailed(LakehouseError):
    """A `fail` rule failed: the batch stops before the table is written."""

    @classmethod
    def of(cls, table: str, tally: Tally, path: str) -> ExpectationFailed:
        return cls(
            f"{table}: expectation {tally.rule.name!r} (action fail) failed on {tally.failed} of "
            f"{tally.checked} row(s), e.g. {tally.sample}. The table was not written and the batch "
            f"not committed (other tables' writes of it are applied again, idempotently): the job "
            f"stops here on every restart until the rule in {path} or the source row changes."
        )

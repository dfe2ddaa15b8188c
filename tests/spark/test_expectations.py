"""Expectations on real Spark: the analyser refuses what is not a boolean over real columns, and
`expect` + `tallies` mark, route and count rows as each action declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DecimalType, IntegerType, StringType, StructField, StructType

from lakehouse.errors import ConfigError
from lakehouse.silver.expect import FAILED, analyse, expect, tallies
from lakehouse.silver.expectations import Rule

PATH = Path("spark_streaming/expectations.yml")
SCHEMA = StructType(
    [
        StructField("user_id", IntegerType()),
        StructField("movie_id", IntegerType()),
        StructField("rating", DecimalType(2, 1)),
        StructField("_op", StringType()),
        StructField("_errors", ArrayType(StringType())),
    ]
)
HALF = Rule("movielens.ratings", "half_steps", "rating * 2 = floor(rating * 2)", "drop", 0.01)
LOW = Rule("movielens.ratings", "not_low", "rating >= 1.0", "warn", 0.01)
USER = Rule("movielens.ratings", "known_user", "user_id < 1000", "fail", 0.01)


def _rule(expr: str) -> Rule:
    return Rule("movielens.ratings", "r", expr, "warn", 0.01)


def test_the_analyser_passes_boolean_rules_over_real_columns(spark: SparkSession) -> None:
    analyse(spark, [HALF, LOW, USER], SCHEMA, PATH)


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("ratingg > 1", "ratingg"),  # a column the table lacks: Spark names it
        ("rating +", "PARSE_SYNTAX_ERROR"),
        ("rating * 2", "not a boolean expression (decimal"),
        ("no_such_function(rating)", "no_such_function"),
    ],
)
def test_the_analyser_names_the_file_the_rule_and_the_problem(
    spark: SparkSession, expr: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        analyse(spark, [_rule(expr)], SCHEMA, PATH)
    message = str(err.value)
    assert message.startswith(f"{PATH}: movielens.ratings (r): "), message
    assert problem in message, message


def test_each_action_marks_routes_and_counts_its_rows(spark: SparkSession) -> None:
    from decimal import Decimal

    rows = spark.createDataFrame(
        [
            (1, 10, Decimal("4.5"), "c", []),  # passes every rule
            (2, 10, Decimal("3.3"), "u", []),  # fails half_steps: dropped
            (3, 10, Decimal("0.5"), "r", []),  # fails not_low: kept, counted
            (4000, 10, Decimal("2.0"), "c", []),  # fails known_user
            (5, 10, None, "u", ["contract: rating is NULL"]),  # the contract's already: not counted
            (6, 10, Decimal("0.5"), "d", []),  # a delete is never checked
        ],
        SCHEMA,
    )
    out = expect(rows, [HALF, LOW, USER]).cache()
    failed = {r["user_id"]: sorted(r[FAILED]) for r in out.collect()}
    assert failed == {1: [], 2: ["half_steps"], 3: ["not_low"], 4000: ["known_user"], 5: [], 6: []}
    errors = {r["user_id"]: r["_errors"] for r in out.where(F.size("_errors") > 0).collect()}
    assert errors == {2: ["expectation: half_steps"], 5: ["contract: rating is NULL"]}
    t = out.agg(*tallies([HALF, LOW, USER], ["user_id", "rating"])).collect()[0]
    assert (t["fail:half_steps"], t["fail:not_low"], t["fail:known_user"]) == (1, 1, 1)
    assert t["sample:known_user"] == '{"user_id":4000,"rating":2.0}'
    assert t["sample:half_steps"] == '{"user_id":2,"rating":3.3}'


def test_no_rules_leave_rows_as_they_were(spark: SparkSession) -> None:
    rows = spark.createDataFrame([(1, 10, None, "c", [])], SCHEMA)
    out = expect(rows, [])
    assert out.drop(FAILED).collect() == rows.collect()
    assert out.first()[FAILED] == []

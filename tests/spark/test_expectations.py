"""Expectations on real Spark: the analyser refuses what is not a boolean over real columns, and
`expect` + `tallies` mark, route and count rows as each action declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DecimalType, IntegerType, StringType, StructField, StructType

from lakehouse.errors import ConfigError
from lakehouse.pipeline.silver.expectation_checks import CHECKED, FAILED, analyse, expect, tallies
from lakehouse.pipeline.silver.expectations import Expectations, Rule

PATH = Path("spark_streaming/expectations.yml")
SCHEMA = StructType(
    [
        StructField("user_id", IntegerType()),
        StructField("movie_id", IntegerType()),
        StructField("rating", DecimalType(2, 1)),
        StructField("_op", StringType()),
        StructField("_errors", ArrayType(StringType())),
        StructField("_unavail", ArrayType(StringType())),
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
            (1, 10, Decimal("4.5"), "c", [], []),  # passes every rule
            (2, 10, Decimal("3.3"), "u", [], []),  # fails half_steps: dropped
            (3, 10, Decimal("0.5"), "r", [], []),  # fails not_low: kept, counted
            (4000, 10, Decimal("2.0"), "c", [], []),  # fails known_user
            (5, 10, None, "u", ["contract: rating is NULL"], []),  # the contract's already: not counted
            (6, 10, Decimal("0.5"), "d", [], []),  # a delete is never checked
            (7, 10, Decimal("0.5"), "u", [], ["rating"]),  # a placeholder: checked after the fill
        ],
        SCHEMA,
    )
    out = expect(rows, [HALF, LOW, USER]).cache()
    failed = {r["user_id"]: sorted(r[FAILED]) for r in out.collect()}
    assert failed == {1: [], 2: ["half_steps"], 3: ["not_low"], 4000: ["known_user"], 5: [], 6: [], 7: []}
    errors = {r["user_id"]: r["_errors"] for r in out.where(F.size("_errors") > 0).collect()}
    assert errors == {2: ["expectation: half_steps"], 5: ["contract: rating is NULL"]}
    t = out.agg(*tallies([HALF, LOW, USER], ["user_id", "rating"])).collect()[0]
    assert (t["fail:half_steps"], t["fail:not_low"], t["fail:known_user"]) == (1, 1, 1)
    assert t["checked"] == 4  # not the contract's failure, the delete or the row with a placeholder
    assert t["sample:known_user"] == '{"user_id":4000,"rating":2.0}'
    assert t["sample:half_steps"] == '{"user_id":2,"rating":3.3}'


def test_no_rules_leave_rows_as_they_were(spark: SparkSession) -> None:
    rows = spark.createDataFrame([(1, 10, None, "c", [], [])], SCHEMA)
    out = expect(rows, [])
    assert out.drop(FAILED, CHECKED).collect() == rows.collect()
    assert out.first()[FAILED] == []


def test_a_second_pass_checks_only_the_filled_rows_and_keeps_the_first_passs_marks(
    spark: SparkSession,
) -> None:
    """A row with a TOASTed placeholder is checked once its value is filled in, and only then;
    the rows the first pass checked keep their marks and are not counted twice."""
    from decimal import Decimal

    from lakehouse.pipeline.silver.expectation_checks import added, read_tallies

    rows = spark.createDataFrame(
        [
            (1, 10, Decimal("3.3"), "u", [], []),  # first pass: dropped
            (7, 10, None, "u", [], ["rating"]),  # a placeholder: not checked yet
        ],
        SCHEMA,
    )
    rules = [HALF, LOW]
    first = expect(rows, rules).cache()
    one = read_tallies(rules, first.agg(*tallies(rules, ["user_id", "rating"])).collect()[0])
    # the fill: row 7's rating is now known (and fails half_steps)
    filled_value = F.when(F.col("user_id") == 7, F.lit(Decimal("2.7"))).otherwise(F.col("rating"))
    toasted = F.col("user_id") == 7
    filled = first.withColumns({"rating": filled_value, "_unavail": F.array().cast("array<string>")})
    second = expect(filled, rules, only=toasted).cache()
    two = read_tallies(rules, second.agg(*tallies(rules, ["user_id", "rating"], toasted)).collect()[0])
    marks = {r["user_id"]: (sorted(r[FAILED]), r["_errors"], r[CHECKED]) for r in second.collect()}
    assert marks == {
        1: (["half_steps"], ["expectation: half_steps"], True),
        7: (["half_steps"], ["expectation: half_steps"], True),
    }
    total = {t.rule.name: (t.checked, t.failed) for t in added(one, two)}
    assert total == {"half_steps": (2, 2), "not_low": (2, 0)}


def _movies_rules(tmp_path: Path, *rules: tuple[str, str, str]) -> Expectations:
    """An expectations file for the crafted movies table, loaded as the job loads it."""
    lines = ["movielens.movies:"]
    for name, expr, action in rules:
        lines += [f"  - name: {name}", f"    expr: {expr}", f"    action: {action}"]
    path = tmp_path / "expectations.yml"
    path.write_text("\n".join(lines) + "\n")
    return Expectations.load(path, schema="movielens")


def test_in_the_batch_warn_keeps_drop_quarantines_for_replay_and_fail_stops_before_writing(
    spark: SparkSession, tmp_path: Path
) -> None:
    from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
    from lakehouse.pipeline.silver.expectation_checks import ExpectationFailed
    from lakehouse.pipeline.silver.outcome import Replay
    from lakehouse.pipeline.silver.store import Layout

    from .events import PLACEHOLDER, TXN_TOPIC, event
    from .test_semantics import MOVIE, movie, quarantine, rows, run

    rules = _movies_rules(
        tmp_path,
        ("title_not_blank", "length(trim(title)) > 0", "warn"),
        ("title_not_banned", "title <> 'banned'", "drop"),
        ("id_below_1000", "movie_id < 1000", "fail"),
    )
    layout = Layout(str(tmp_path / "silver"))
    silver = BatchProcessor(spark, layout, Rules(TXN_TOPIC, expectations=rules))
    result = run(
        silver,
        event("c", movie(1, "ok"), 10),
        event("c", movie(2, "  "), 20),  # warn: kept and counted
        event("c", movie(3, "banned"), 30),  # drop: quarantined, silver untouched
        event("c", movie(4, "x" * 3000), 40),
        batch_id=0,
    )
    assert sorted(rows(silver)) == [1, 2, 4]
    (q,) = quarantine(spark, silver)
    assert (q["source_table"], q["reason"]) == (MOVIE, "expectation: title_not_banned")
    assert result.quarantined == {"expectation": 1} and result.applied[MOVIE] == 3
    tally = {t.rule.name: (t.checked, t.failed) for t in result.expectations[MOVIE]}
    assert tally == {"title_not_blank": (4, 1), "title_not_banned": (4, 1), "id_below_1000": (4, 0)}

    # a TOASTed title left out of an update is checked with its stored value, once filled in
    result = run(silver, event("u", movie(4, PLACEHOLDER, budget="5"), 50), batch_id=1)
    assert rows(silver)[4]["budget"] == 5
    assert {t.rule.name: t.checked for t in result.expectations[MOVIE]} == {
        "title_not_blank": 1,
        "title_not_banned": 1,
        "id_below_1000": 1,
    }

    # fail: the batch raises before the table is written; nothing of it lands
    version = spark.sql(f"DESCRIBE HISTORY delta.`{layout.table(MOVIE)}`").count()
    with pytest.raises(ExpectationFailed, match=r"'id_below_1000' \(action fail\) failed on 1 of 2"):
        run(silver, event("u", movie(1, "new"), 60), event("c", movie(5000, "big"), 70), batch_id=2)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{layout.table(MOVIE)}`").count() == version
    assert rows(silver)[1]["title"] == "ok"

    # the drop rule relaxed, a replay applies what it had refused
    relaxed = _movies_rules(tmp_path, ("title_not_blank", "length(trim(title)) > 0", "warn"))
    fixed = BatchProcessor(spark, layout, Rules(TXN_TOPIC, expectations=relaxed))
    empty = spark.createDataFrame([], "value string")
    again = fixed.process(empty, 3, replay=Replay(MOVIE))
    assert again.replayed == 1 and rows(silver)[3]["title"] == "banned"
    assert quarantine(spark, silver) == []


def test_results_are_written_in_one_commit_per_flush_and_a_rerun_batch_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from lakehouse.pipeline.silver.expectation_checks import Tally
    from lakehouse.pipeline.silver.expectation_log import ExpectationLog
    from lakehouse.pipeline.silver.store import Layout, Store

    store = Store(spark, Layout(str(tmp_path / "silver")))
    at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    results = ExpectationLog(spark, store)
    assert results.flush() == 0  # nothing left by a batch: no table, no commit
    results.add(7, at, {"movielens.ratings": [Tally(HALF, 10, 2, '{"rating":3.3}'), Tally(LOW, 10, 0, None)]})
    results.add(8, at, {"movielens.ratings": [Tally(HALF, 0, 0, None)]})  # nothing checked: no row
    assert results.flush() == 2
    # a restarted job re-runs batch 7 (it was not committed) and goes on with 9
    again = ExpectationLog(spark, store)
    again.add(7, at, {"movielens.ratings": [Tally(HALF, 10, 2, '{"rating":3.3}')]})
    again.add(9, at, {"movielens.ratings": [Tally(LOW, 4, 1, '{"rating":0.5}')]})
    assert again.flush() == 1
    table = spark.read.format("delta").load(store.layout.expectation_results)
    got = sorted((r["batch_id"], r["rule"], r["action"], r["passed"], r["failed"]) for r in table.collect())
    assert got == [
        (7, "half_steps", "drop", 8, 2),
        (7, "not_low", "warn", 10, 0),
        (9, "not_low", "warn", 3, 1),
    ]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{store.layout.expectation_results}`")
    assert history.where("operation = 'WRITE'").count() == 2

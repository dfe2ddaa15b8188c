"""spark_streaming/expectations.yml: the shipped file loads, and a bad file is refused with the file,
the rule and the problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.errors import ConfigError
from lakehouse.pipeline.silver.expectations import ACTIONS, WARN_RATIO, Expectations

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "spark_streaming" / "expectations.yml"
#: the start of a file with one table and its first rule
R = "movielens.ratings:\n  - "
MOVIELENS = ["movielens.movies", "movielens.links", "movielens.ratings", "movielens.tags"]


def test_the_shipped_rules_load_and_cover_each_action_they_declare() -> None:
    e = Expectations.load(SHIPPED, MOVIELENS)
    assert e.tables <= set(MOVIELENS)
    assert {r.action for r in e.rules} <= set(ACTIONS)
    names = [(r.table, r.name) for r in e.rules]
    assert len(names) == len(set(names))
    rating = {r.name: r for r in e.of("movielens.ratings")}
    assert rating["rating_in_half_steps"].action == "drop"
    assert rating["rating_in_half_steps"].reason == "expectation: rating_in_half_steps"
    assert all(r.warn_ratio == WARN_RATIO for r in e.rules)


def _load(tmp_path: Path, text: str) -> Expectations:
    path = tmp_path / "expectations.yml"
    path.write_text(text)
    return Expectations.load(path, MOVIELENS)


def test_an_empty_file_has_no_rules(tmp_path: Path) -> None:
    assert _load(tmp_path, "# nothing yet\n").rules == ()


def test_a_warn_ratio_is_kept(tmp_path: Path) -> None:
    e = _load(tmp_path, "movielens.tags:\n  - {name: t, expr: tag <> '', action: warn, warn_ratio: 0.2}\n")
    assert e.rules[0].warn_ratio == 0.2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("movielens.nope:\n  - {name: a, expr: 'x > 0', action: warn}\n", "movielens.nope: unknown table"),
        ("ratings:\n  - {name: a, expr: 'x > 0', action: warn}\n", "ratings: a table is named schema.table"),
        (
            R + "{name: a, expr: 'x > 0', action: ignore}\n",
            "(a): unknown action 'ignore'",
        ),
        (R + "{name: a, expr: '  ', action: warn}\n", "(a): expr must be a non-empty"),
        (R + "{name: a, action: warn}\n", "(a): missing expr"),
        (
            R + "{name: A-b, expr: 'x', action: warn}\n",
            "(A-b): name must be lower_snake_case",
        ),
        (R + "{name: a, expr: 'x', action: warn, when: y}\n", "(a): unknown key(s) when"),
        (
            R + "{name: a, expr: 'x', action: drop, warn_ratio: 0.5}\n",
            "(a): warn_ratio applies",
        ),
        (
            R + "{name: a, expr: 'x', action: warn, warn_ratio: 2}\n",
            "(a): warn_ratio must be",
        ),
        (
            R + "{name: a, expr: 'x', action: warn}\n  - {name: a, expr: 'y', action: drop}\n",
            "rule 'a' is declared twice",
        ),
        ("movielens.ratings: {name: a}\n", "movielens.ratings: expected a list of rules"),
        ("- a\n- b\n", "expected a mapping of table → list of rules"),
        ("movielens.ratings: [\n", "while parsing"),
    ],
)
def test_a_bad_file_names_the_file_the_rule_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "expectations.yml")), message
    assert problem in message, message


def test_preflight_refuses_a_table_outside_the_captured_schema(tmp_path: Path) -> None:
    path = tmp_path / "expectations.yml"
    path.write_text("other.ratings:\n  - {name: a, expr: 'x', action: warn}\n")
    with pytest.raises(ConfigError, match=r"other.ratings: not in the captured schema 'movielens'"):
        Expectations.load(path, schema="movielens")
    assert Expectations.load(SHIPPED, schema="movielens").rules


def test_the_rules_file_is_the_checkouts_unless_a_setting_names_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from lakehouse.config.settings import load_settings

    monkeypatch.setenv("LAKEHOUSE_EXPECTATIONS_FILE", "")  # as .env.example has it: the default
    s = load_settings()
    assert s.expectations == s.root / "spark_streaming" / "expectations.yml"
    mine = tmp_path / "rules.yml"
    monkeypatch.setenv("LAKEHOUSE_EXPECTATIONS_FILE", str(mine))
    assert load_settings().expectations == mine


CROSS = "cross_table:\n  - name: rating_movie_exists\n    table: movielens.ratings\n"


def test_cross_table_rules_load_beside_the_per_row_rules_with_their_interval() -> None:
    from lakehouse.pipeline.query.checks import statements

    e = Expectations.load(SHIPPED, MOVIELENS)
    (rule,) = e.cross
    assert (rule.table, rule.name, rule.every_s) == ("movielens.ratings", "rating_movie_exists", 300.0)
    count, sample = statements(rule)
    assert "lakehouse.silver.ratings" in count and "lakehouse.silver.movies" in count
    assert count.startswith("SELECT count(*) FROM (") and sample.endswith("LIMIT 1")
    assert "cross_table" not in e.tables  # not a table: the batch never sees it


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("    every_s: 300\n", "missing rows"),
        ("    rows: DELETE FROM silver.ratings\n", "rows must be a SELECT"),
        ("    rows: SELECT 1; SELECT 2\n", "without ';'"),
        ("    rows: SELECT 1\n    every_s: 5\n", "at least 30"),
        ("    rows: SELECT 1\n    action: warn\n", "unknown key(s) action"),
    ],
)
def test_a_bad_cross_table_rule_is_refused_naming_it(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"cross_table\[0\] \(rating_movie_exists\): .*") as err:
        _load(tmp_path, CROSS + body)
    assert problem in str(err.value)


def test_a_cross_table_rule_on_an_unknown_table_or_declared_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown table"):
        _load(tmp_path, CROSS.replace("movielens.ratings", "movielens.nope") + "    rows: SELECT 1\n")
    with pytest.raises(ConfigError, match="declared twice"):
        _load(tmp_path, CROSS + "    rows: SELECT 1\n" + CROSS.split("\n", 1)[1] + "    rows: SELECT 2\n")

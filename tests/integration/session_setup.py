"""What the integration tier sets up before its stack starts: expectation rules on a probe table,
the jobs folder with a job that fails, a table with rows before the connector's first start. The
session fixture does it for the tier's own stack; `python -m tests.integration.target prepare` does
it for one a developer starts (target.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from lakehouse.launcher.stack import Stack

from .helpers import source

#: a table with rows before the connector's first start: Debezium's initial snapshot reads them
#: (op = r), as it reads an existing database when a user points the stack at one
PREEXISTING = "preexisting"
PREEXISTING_ROWS = 500


#: a table only test_expectations writes, with a rule of each action (beside the shipped rules),
#: and a cross-table rule: each of its ids is a row of the preexisting table
PROBE = "expect_probe"
PROBE_RULES: dict[str, Any] = {
    f"movielens.{PROBE}": [
        {"name": "v_not_negative", "expr": "v >= 0", "action": "warn", "warn_ratio": 0.1},
        {"name": "v_not_13", "expr": "v <> 13", "action": "drop"},
        {"name": "v_below_1000", "expr": "v < 1000", "action": "fail"},
    ],
}
PROBE_CROSS = {
    "name": "probe_id_preexisting",
    "table": f"movielens.{PROBE}",
    "rows": (
        f"SELECT p.* FROM {{{{catalog}}}}.{{{{silver}}}}.{PROBE} p LEFT JOIN "
        f"{{{{catalog}}}}.{{{{silver}}}}.{PREEXISTING} r ON r.id = p.id WHERE r.id IS NULL"
    ),
    "every_s": 30,
}


#: a job that always fails (its parameter is out of range): the failed run, its record and alert
FAILING_JOB = "planned-failure"


def session_jobs(root: Path, folder: Path) -> None:
    """The shipped job files, and one that fails, in the folder the session's scheduler reads
    (tests add and remove files there to see it reload)."""
    folder.mkdir(parents=True, exist_ok=True)
    for job in (root / "jobs").glob("*.yml"):
        shutil.copy(job, folder / job.name)
    # the recommender's grid cut to two points (3 ALS fits, not 5): still a choice to make, and
    # the shipped file's other settings unchanged
    recommender = folder / "recommender.yml"
    spec = yaml.safe_load(recommender.read_text())
    spec["params"].update(ranks=spec["params"]["ranks"][:1], reg_params=spec["params"]["reg_params"][:2])
    recommender.write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / f"{FAILING_JOB}.yml").write_text(
        f"name: {FAILING_JOB}\n"
        "description: top-movies-daily with a parameter it refuses, for a failed run\n"
        "entry: lakehouse.apps.jobs.top_movies:run\n"
        "timeout_s: 120\n"
        "params: {top: 500}\n"
    )


def probe_rules(root: Path, with_fail: bool = True) -> str:
    """The shipped expectations with the probe table's rules and cross-table rule added."""
    rules = yaml.safe_load((root / "spark_streaming" / "expectations.yml").read_text())
    for table, items in PROBE_RULES.items():
        rules[table] = [r for r in items if with_fail or r["action"] != "fail"]
    rules["cross_table"] = [*rules.get("cross_table", []), PROBE_CROSS]
    return yaml.safe_dump(rules, sort_keys=False)


def create_preexisting(stack: Stack) -> None:
    """The table Debezium's initial snapshot reads (Postgres up, the connector not yet started)."""
    with source(stack) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {stack.s.source_schema}.{PREEXISTING} "
            "(id int PRIMARY KEY, label text NOT NULL, amount numeric(12,2), seen_at timestamptz)"
        )
        conn.execute(
            f"INSERT INTO {stack.s.source_schema}.{PREEXISTING} "
            "SELECT g, 'row ' || g, g * 1.25, timestamptz '2026-01-01' + g * interval '1 minute' "
            f"FROM generate_series(1, {PREEXISTING_ROWS}) g ON CONFLICT DO NOTHING"
        )

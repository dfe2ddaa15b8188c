"""Deterministic crash points (silver/faults.py): the job dies at each named point of a batch, a
new processor (fresh driver state, as after a restart) re-runs the same batch id, and silver,
tombstones, quarantine and held-back transactions end exactly as without the crash."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.silver.batch import BatchProcessor, Rules
from lakehouse.silver.faults import POINTS, Faults
from lakehouse.silver.store import Layout

from .events import TXN_TOPIC, end, event, field

MOVIE = "movielens.movies"
TAG = "movielens.tags"
TAG_FIELDS = [field("tag_id", "int32", "INT4", optional=False), field("tag", "string", "TEXT")]


class Crash(Exception):
    pass


def _die(point: str) -> None:
    raise Crash(point)


def movie(i: int, title: str) -> dict[str, Any]:
    return {"movie_id": i, "title": title, "budget": None, "released": None}


def tag(i: int, text: str, lsn: int, **kw: Any) -> str:
    return event("c", {"tag_id": i, "tag": text}, lsn, table=TAG, fields=TAG_FIELDS, keys=("tag_id",), **kw)


# batch 0: a base state; batch 1 reaches every point: two tables (update, delete, insert), a poison
# event, and a transaction whose END is still missing; batch 2 completes that transaction.
BATCH_0 = [event("c", movie(1, "one"), 10), event("c", movie(2, "two"), 11), tag(1, "a", 12)]
BATCH_1 = [
    event("u", movie(1, "one v2"), 20),
    event("d", movie(2, "two"), 21),
    tag(2, "b", 22),
    event("c", {"movie_id": 3, "title": "t", "budget": "not a number", "released": None}, 23),
    event("c", movie(4, "four"), 30, txid=9, dco=1),
]
BATCH_2 = [event("c", movie(5, "five"), 31, txid=9, dco=2), end(9, {MOVIE: 2})]


def run(p: BatchProcessor, lines: list[str], batch_id: int) -> None:
    p.process(p.spark.createDataFrame([(x,) for x in lines], "value string"), batch_id)


def snapshot(spark: SparkSession, layout: Layout) -> dict[str, Any]:
    def load(path: str) -> Any:
        return spark.read.format("delta").load(path)

    return {
        "movies": sorted((r["movie_id"], r["title"]) for r in load(layout.table(MOVIE)).collect()),
        "tags": sorted((r["tag_id"], r["tag"]) for r in load(layout.table(TAG)).collect()),
        "tombstones": sorted((r["table"], r["_key"], r["_lsn"]) for r in load(layout.tombstones).collect()),
        "quarantine": sorted((r["source_table"], r["reason"]) for r in load(layout.quarantine).collect()),
    }


RULES = Rules(transaction_topic=TXN_TOPIC)


@pytest.fixture(scope="module")
def base(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Silver after batch 0, written once: each scenario starts from a copy of it."""
    root = tmp_path_factory.mktemp("base") / "silver"
    run(BatchProcessor(spark, Layout(str(root)), RULES), BATCH_0, 0)
    return root


def scenario(spark: SparkSession, base: Path, root: Path, crash_at: str | None) -> dict[str, Any]:
    shutil.copytree(base, root)
    layout = Layout(str(root))
    rules = RULES
    crashing = BatchProcessor(spark, layout, rules, Faults(crash_at, action=_die))
    if crash_at in (None, "before-commit"):
        run(crashing, BATCH_1, 1)  # "before-commit": the batch is applied, its checkpoint is not
    else:
        with pytest.raises(Crash, match=crash_at):
            run(crashing, BATCH_1, 1)
    restarted = BatchProcessor(spark, layout, rules)  # driver state reloaded from storage
    if crash_at is not None:
        run(restarted, BATCH_1, 1)  # the stream re-runs the uncommitted batch
    run(restarted, BATCH_2, 2)
    return snapshot(spark, layout)


@pytest.fixture(scope="module")
def expected(spark: SparkSession, base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = scenario(spark, base, tmp_path_factory.mktemp("clean") / "silver", None)
    assert state["movies"] == [(1, "one v2"), (4, "four"), (5, "five")]
    assert state["tags"] == [(1, "a"), (2, "b")]
    assert state["tombstones"] == [(MOVIE, '{"movie_id":2}', 21)]
    assert len(state["quarantine"]) == 1
    return state


@pytest.mark.parametrize("point", POINTS)
def test_crash_point_then_restart_equals_no_crash(
    spark: SparkSession, base: Path, tmp_path: Path, expected: dict[str, Any], point: str
) -> None:
    assert scenario(spark, base, tmp_path / "silver", point) == expected


def test_unknown_crash_point_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown crash point 'after-lunch'"):
        Faults("after-lunch")


def test_a_table_whose_creation_died_before_its_first_commit_is_created_when_the_batch_runs_again(
    spark: SparkSession, tmp_path: Path
) -> None:
    """kill -9 inside the table's creation (seen on the real stack): Delta 4 had made
    `_delta_log/_staged_commits/` and committed nothing. The re-run batch must create the table,
    not fail on it for good."""
    layout = Layout(str(tmp_path / "silver"))
    (Path(layout.table(MOVIE)) / "_delta_log" / "_staged_commits").mkdir(parents=True)
    p = BatchProcessor(spark, layout, Rules(transaction_topic=TXN_TOPIC))
    run(p, BATCH_0, 0)
    rows = spark.read.format("delta").load(layout.table(MOVIE)).orderBy("movie_id").collect()
    assert [(r["movie_id"], r["title"]) for r in rows] == [(1, "one"), (2, "two")]

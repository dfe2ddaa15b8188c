"""Deterministic crash points (silver/faults.py): a child process runs a batch and dies at each named
point (the real `os._exit`, its JVM killed with it), the state it left is checked to be the point's
half-done one, and a new processor (fresh driver state, as after a restart) re-runs the same batch
id: silver, tombstones, quarantine and held-back transactions end exactly as without the crash.

Run as `python -m tests.spark.test_faults <point> <silver root> <lines.json>`, this module is that
child."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.faults import BESIDE, EXIT_CODE, POINTS, Faults
from lakehouse.pipeline.silver.store import Layout

from .events import TXN_TOPIC, end, event, field

MOVIE = "movielens.movies"
TAG = "movielens.tags"
TAG_FIELDS = [field("tag_id", "int32", "INT4", optional=False), field("tag", "string", "TEXT")]
REPO = Path(__file__).resolve().parents[2]
#: how a cut (a tombstone without a key) shows in `snapshot`
CUT = "<cut>"


def movie(i: int, title: str) -> dict[str, Any]:
    return {"movie_id": i, "title": title, "budget": None, "released": None}


def tag(op: str, i: int | None, text: str | None, lsn: int, **kw: Any) -> str:
    row = None if i is None else {"tag_id": i, "tag": text}
    return event(op, row, lsn, table=TAG, fields=TAG_FIELDS, keys=("tag_id",), **kw)


def begin(txid: int) -> str:
    """The transaction's BEGIN record (the END's, without its counts)."""
    line = json.loads(end(txid, {}))
    line["value"]["payload"] = {"status": "BEGIN", "id": f"{txid}:0"}
    return json.dumps(line)


# batch 0: a base state; batch 1 reaches every point: a TRUNCATE of one table (after-cut) and new
# rows after it, an update and a delete in the other (after-tombstones, after-merge), a poison
# event (after-quarantine), and a transaction whose END is still missing (after-pending); batch 2
# completes that transaction.
BATCH_0 = [event("c", movie(1, "one"), 10), event("c", movie(2, "two"), 11), tag("c", 1, "a", 12)]
BATCH_1 = [
    event("u", movie(1, "one v2"), 20),
    event("d", movie(2, "two"), 21),
    tag("t", None, None, 22),
    tag("c", 2, "b", 23),
    event("c", {"movie_id": 3, "title": "t", "budget": "not a number", "released": None}, 24),
    event("c", movie(4, "four"), 30, txid=9, dco=1),
]
BATCH_2 = [event("c", movie(5, "five"), 31, txid=9, dco=2), end(9, {MOVIE: 2})]


def run(p: BatchProcessor, lines: list[str], batch_id: int) -> None:
    p.process(p.spark.createDataFrame([(x,) for x in lines], "value string"), batch_id)


def snapshot(spark: SparkSession, layout: Layout) -> dict[str, Any]:
    def load(path: str) -> list[Any]:
        if not (Path(path) / "_delta_log").is_dir():
            return []  # not written yet
        return spark.read.format("delta").load(path).collect()

    held = Path(layout.held)
    return {
        "movies": sorted((r["movie_id"], r["title"]) for r in load(layout.table(MOVIE))),
        "tags": sorted((r["tag_id"], r["tag"]) for r in load(layout.table(TAG))),
        # a re-run batch writes its tombstones again: only a key's newest one counts (store.py)
        "tombstones": sorted({(r["table"], r["_key"] or CUT, r["_lsn"]) for r in load(layout.tombstones)}),
        "quarantine": sorted((r["source_table"], r["reason"]) for r in load(layout.quarantine)),
        "held": sorted(g["txid"] for g in json.loads(held.read_text())["groups"]) if held.exists() else [],
    }


RULES = Rules(transaction_topic=TXN_TOPIC)


class Witness(Faults):
    """Fires nowhere; records each point reached with whether its batch had work there."""

    def __init__(self) -> None:
        super().__init__()
        self.reached: list[tuple[str, bool]] = []

    def reach(self, point: str, work: bool | None = None) -> None:
        super().reach(point, work)
        self.reached.append((point, self.work))


#: the points a batch reaches (not the compactor's)
BATCH_POINTS = tuple(p for p in POINTS if p not in BESIDE)


@dataclass
class States:
    base: dict[str, Any]  # after batch 0
    first: dict[str, Any]  # after batch 1, not crashed
    end: dict[str, Any]  # after batch 2, not crashed


@pytest.fixture(scope="module")
def base(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Silver after batch 0, written once: each scenario starts from a copy of it."""
    root = tmp_path_factory.mktemp("base") / "silver"
    run(BatchProcessor(spark, Layout(str(root)), RULES), BATCH_0, 0)
    return root


@pytest.fixture(scope="module")
def expected(spark: SparkSession, base: Path, tmp_path_factory: pytest.TempPathFactory) -> States:
    root = tmp_path_factory.mktemp("clean") / "silver"
    shutil.copytree(base, root)
    layout = Layout(str(root))
    witness = Witness()
    p = BatchProcessor(spark, layout, RULES, witness)
    run(p, BATCH_1, 1)
    witness.reach("before-commit")  # where the job reaches it (silver/job.py)
    # batch 1 reaches every point of a batch, each with work (the compactor's: test_compaction.py)
    assert {point for point, work in witness.reached if work} == set(BATCH_POINTS)
    first = snapshot(spark, layout)
    run(p, BATCH_2, 2)
    states = States(snapshot(spark, Layout(str(base))), first, snapshot(spark, layout))
    assert states.base == {
        "movies": [(1, "one"), (2, "two")],
        "tags": [(1, "a")],
        "tombstones": [],
        "quarantine": [],
        "held": [],
    }
    assert first["movies"] == [(1, "one v2")] and first["tags"] == [(2, "b")] and first["held"] == [9]
    assert states.end["movies"] == [(1, "one v2"), (4, "four"), (5, "five")]
    assert states.end["tags"] == [(2, "b")]
    assert (
        states.end["tombstones"]
        == first["tombstones"]
        == [
            (MOVIE, '{"movie_id":2}', 21),
            (TAG, CUT, 22),
            (TAG, '{"tag_id":1}', 22),
        ]
    )
    assert len(states.end["quarantine"]) == len(first["quarantine"]) == 1
    assert states.end["held"] == []
    return states


def _alive(group: int) -> bool:
    """Whether a process of the group still runs (a zombie does not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
            if int(pgrp) == group and state != "Z":
                return True
    return False


def crash(base: Path, point: str, tmp: Path, children: list[subprocess.Popen[bytes]]) -> Path:
    """Batch 1 on a copy of `base` in a child process armed to exit hard at `point`; it must. Its
    JVM, which would outlive it for as long as its shutdown takes, is killed at once: the power went
    out. Returns the copy."""
    root, lines, log = tmp / "silver", tmp / "batch-1.json", tmp / "child.log"
    shutil.copytree(base, root)
    lines.write_text(json.dumps(BATCH_1))  # these lines: the child's own would number other offsets
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.spark.test_faults", point, str(root), str(lines)],
            cwd=REPO,
            env={**os.environ, "TMPDIR": str(tmp)},  # its session's scratch dir, left behind
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        children.append(child)
        try:
            code = child.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while _alive(child.pid):
        assert time.monotonic() < deadline, "the child's JVM did not die"
        time.sleep(0.05)
    assert code == EXIT_CODE, f"exit {code}, not {EXIT_CODE} at {point}:\n{log.read_text()[-5000:]}"
    return root


@pytest.fixture(scope="module")
def crashes(
    request: pytest.FixtureRequest, base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Path]]]:
    """The crashed copies of the selected points, two children at a time from as soon as the base
    exists: they start their JVMs and run while this process runs the clean batches and re-runs."""
    points = [
        item.callspec.params["point"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module and hasattr(item, "callspec")
    ]
    children: list[subprocess.Popen[bytes]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {p: pool.submit(crash, base, p, tmp_path_factory.mktemp(p), children) for p in points}
        try:
            yield futures
        finally:  # a run stopped early (-x) leaves no child behind
            for f in futures.values():
                f.cancel()
            for child in children:
                if child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)


def assert_mid_work(point: str, now: dict[str, Any], s: States) -> None:
    """The state a death at `point` leaves: the batch started and is not finished. Only what the
    point orders is asserted: the other table's thread runs on meanwhile."""
    if point == "after-cut":  # the TRUNCATE's tombstones are committed, the rows not deleted
        assert {(TAG, CUT, 22), (TAG, '{"tag_id":1}', 22)} <= set(now["tombstones"])
        assert now["tags"] == s.base["tags"] == [(1, "a")]
    elif point == "after-tombstones":  # the delete's tombstone is committed, the MERGE not
        assert (MOVIE, '{"movie_id":2}', 21) in now["tombstones"]
        assert now["movies"] == s.base["movies"]
    elif point == "after-merge":  # a table merged; no quarantine, no held transaction yet
        assert now["movies"] == s.first["movies"] or now["tags"] == s.first["tags"]
        assert now["quarantine"] == [] and now["held"] == []
    elif point == "after-quarantine":  # every table and the quarantine, the held state not yet
        assert now == {**s.first, "held": []}
    else:  # after-pending, before-commit: the whole batch (the stream has not recorded it)
        assert point in ("after-pending", "before-commit"), point
        assert now == s.first
    assert now != s.end


#: the points `make test` crashes at; `make test-long` adds the rest (a JVM each, 30-75 s)
SHORT_POINTS = ("after-tombstones", "after-merge", "before-commit")


@pytest.mark.parametrize(
    "point", [p if p in SHORT_POINTS else pytest.param(p, marks=pytest.mark.long) for p in BATCH_POINTS]
)
def test_a_process_killed_at_a_crash_point_then_restarted_ends_as_without_the_crash(
    spark: SparkSession, crashes: dict[str, Future[Path]], expected: States, point: str
) -> None:
    layout = Layout(str(crashes[point].result()))
    assert_mid_work(point, snapshot(spark, layout), expected)
    restarted = BatchProcessor(spark, layout, RULES)  # driver state reloaded from storage
    run(restarted, BATCH_1, 1)  # the stream re-runs the uncommitted batch
    run(restarted, BATCH_2, 2)
    assert snapshot(spark, layout) == expected.end


def test_a_batch_of_transaction_records_only_has_no_work_and_fires_no_point(
    spark: SparkSession, tmp_path: Path
) -> None:
    """BEGIN and END of a transaction that changed no captured table: the batch passes its last
    point and the job's `before-commit` without work, so a crash armed there waits for a batch
    that applies something."""
    witness = Witness()
    run(BatchProcessor(spark, Layout(str(tmp_path / "silver")), RULES, witness), [begin(7), end(7, {})], 1)
    witness.reach("before-commit")
    assert witness.reached == [("after-pending", False), ("before-commit", False)]


def test_a_crash_point_fires_only_in_a_batch_with_work() -> None:
    fired: list[str] = []
    faults = Faults("before-commit", action=fired.append)
    faults.reach("after-pending", work=False)
    faults.reach("before-commit")  # the job's call: the batch's word, from its last point
    assert fired == []
    faults.reach("after-pending", work=True)
    faults.reach("before-commit")
    assert fired == ["before-commit"]
    at_merge = Faults("after-merge", action=fired.append)
    at_merge.reach("after-merge", work=False)
    assert fired == ["before-commit"]


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


def _child(point: str, root: str, lines: str) -> None:
    """The crashing run: the tests' own session (conftest's `spark` fixture, called as the plain
    generator it wraps), batch 1 with `Faults(point)` and its real `os._exit`, then the job's
    `before-commit` as silver/job.py reaches it, right after the batch."""
    from .conftest import spark as session_fixture

    session = inspect.unwrap(session_fixture)()  # kept: collected, it would stop the session
    spark = next(session)
    faults = Faults(point)
    run(BatchProcessor(spark, Layout(root), RULES, faults), json.loads(Path(lines).read_text()), 1)
    faults.reach("before-commit")
    print(f"{point} was not reached", flush=True)  # exits 0: the parent's assertion says so


if __name__ == "__main__":
    _child(*sys.argv[1:])

"""Merge-on-read's write path and compactor (silver/compaction.py) on real Delta tables: batches
only append to the change log, a fold MERGEs it into the base, a crash between a fold's two
commits loses and doubles nothing, schema changes and cuts reach the log too.
(test_semantics.py runs every CDC rule in both write modes; these are the compactor's own.)"""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.compaction import TRIM_AFTER, Compactor
from lakehouse.pipeline.silver.faults import Faults
from lakehouse.pipeline.silver.live import SEQ
from lakehouse.pipeline.silver.live_rows import read
from lakehouse.pipeline.silver.outcome import BatchResult
from lakehouse.pipeline.silver.store import Layout, read_text

from .events import MOVIES, PLACEHOLDER, TXN_TOPIC, event, field

MOVIE = "movielens.movies"


class Crash(Exception):
    pass


def crash(point: str) -> None:
    raise Crash(point)


@pytest.fixture
def mor(spark: SparkSession, tmp_path: Path) -> BatchProcessor:
    return BatchProcessor(
        spark, Layout(str(tmp_path / "silver")), Rules(transaction_topic=TXN_TOPIC, merge_on_read=True)
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def compactor(silver: BatchProcessor, clock: Clock | None = None, **kw: Any) -> Compactor:
    """A compactor on a clock the test moves: a fold's entries are trimmed once they are
    TRIM_AFTER old on it."""
    return Compactor(silver.store, silver.locks, timedelta(seconds=30), 1000, clock=clock or Clock(), **kw)


def run(silver: BatchProcessor, *lines: str, batch_id: int = 0) -> BatchResult:
    return silver.process(silver.spark.createDataFrame([(line,) for line in lines], "value string"), batch_id)


def movie(i: int, title: str, **extra: Any) -> dict[str, Any]:
    return {"movie_id": i, "title": title, "budget": None, "released": None, **extra}


def titles(df: Any) -> dict[int, str]:
    return {r["movie_id"]: r["title"] for r in df.collect()}


def base(silver: BatchProcessor) -> Any:
    return silver.spark.read.format("delta").load(silver.store.layout.table(MOVIE))


def log_rows(silver: BatchProcessor) -> Any:
    return silver.spark.read.format("delta").load(silver.store.layout.log(MOVIE))


def operations(silver: BatchProcessor, path: str) -> list[str]:
    history = silver.spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    return [h["operation"] for h in history]


def test_batches_only_append_and_the_live_rows_are_read_through_the_log(mor: BatchProcessor) -> None:
    first = run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    assert first.logged == {MOVIE: 2}
    run(mor, event("u", movie(1, "a2"), 20), event("d", {"movie_id": 2}, 21), batch_id=1)
    run(mor, event("u", movie(1, PLACEHOLDER, budget="5"), 30), batch_id=2)  # filled from the log
    assert base(mor).count() == 0  # nothing folded yet: the base is as created
    assert operations(mor, mor.store.layout.table(MOVIE)) == ["CREATE TABLE"]
    assert set(operations(mor, mor.store.layout.log(MOVIE))) == {"CREATE TABLE", "WRITE"}
    now = read(mor.spark, mor.store.layout, MOVIE)
    assert titles(now) == {1: "a2"}
    assert str(now.collect()[0]["budget"]).startswith("5")
    assert log_rows(mor).count() == 5  # the latest event per key and batch, the delete included


def test_a_fold_merges_the_log_and_trims_it_a_round_later(mor: BatchProcessor) -> None:
    clock = Clock()
    c = compactor(mor, clock)
    run(mor, *[event("c", movie(i, f"m{i}"), 10 + i) for i in range(1, 4)], batch_id=0)
    c.appended(MOVIE, 3, clock.now)
    assert c.due(clock.now) == []
    clock.now += timedelta(seconds=30)
    assert c.due(clock.now) == [MOVIE]  # the oldest unfolded entry is compaction.age old
    first = c.fold(MOVIE)
    assert first.appended and first.keys == 3 and first.trimmed_upto is None  # creates only
    assert titles(base(mor)) == {1: "m1", 2: "m2", 3: "m3"}
    assert log_rows(mor).count() == 3  # kept: a reader may have pinned the base before the fold
    run(mor, event("u", movie(2, "new"), 20), event("d", {"movie_id": 3}, 21), batch_id=1)
    clock.now += TRIM_AFTER
    second = c.fold(MOVIE)
    assert not second.appended and second.trimmed_upto == first.upto
    assert titles(base(mor)) == {1: "m1", 2: "new"}
    assert sorted(r["movie_id"] for r in log_rows(mor).collect()) == [2, 3]  # the second fold's
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == titles(base(mor))
    c.appended(MOVIE, 1, clock.now)
    assert c.due(clock.now) == []
    assert c.behind(clock.now + timedelta(seconds=5)) == {MOVIE: 5.0}
    c.ages[MOVIE] = timedelta(minutes=10)  # a table with an age of its own (compaction.table.age.s)
    assert c.due(clock.now + timedelta(seconds=30)) == []
    assert c.due(clock.now + timedelta(minutes=10)) == [MOVIE]


def test_a_crash_between_the_merge_and_the_trim_loses_and_doubles_nothing(mor: BatchProcessor) -> None:
    clock = Clock()
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    compactor(mor, clock).fold(MOVIE)  # the base holds 1 and 2
    run(mor, event("u", movie(1, "a2"), 20), event("d", {"movie_id": 2}, 21), batch_id=1)
    clock.now += TRIM_AFTER
    dying = compactor(mor, clock, faults=Faults("after-fold", action=crash))
    dying.appended(MOVIE, 2, clock.now)
    with pytest.raises(Crash):
        dying.fold(MOVIE)
    assert titles(base(mor)) == {1: "a2"}  # MERGEd, then the job died before the trim
    assert dying.due(clock.now + timedelta(hours=1)) == [MOVIE]  # still waiting in this job
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a2"}
    # the restarted job folds everything in the log again (its folds are not remembered)
    restarted = compactor(mor, clock)
    restarted.recover([MOVIE])
    assert restarted.due(clock.now) == []  # waiting from the start, not due beside the first batch
    assert restarted.due(clock.now + restarted.age) == [MOVIE]
    again = restarted.fold(MOVIE)
    assert again.keys == 2 and again.trimmed_upto is None  # 1 and 2, folded again
    got = base(mor).collect()
    assert [(r["movie_id"], r["title"], r["_lsn"]) for r in got] == [(1, "a2", 20)]
    clock.now += TRIM_AFTER
    run(mor, event("c", movie(5, "e"), 30), batch_id=2)
    assert restarted.fold(MOVIE).trimmed_upto == again.upto
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a2", 5: "e"}
    assert [r["movie_id"] for r in log_rows(mor).collect()] == [5]


def tombstones(silver: BatchProcessor) -> list[tuple[str, str, int]]:
    """The tombstones committed (a fold done again writes its own again: each counts once)."""
    if not silver.store.exists(silver.store.layout.tombstones):
        return []
    got = silver.spark.read.format("delta").load(silver.store.layout.tombstones).collect()
    return sorted({(r["table"], r["_key"], r["_lsn"]) for r in got})


def test_a_batchs_deletes_commit_no_tombstone_the_fold_writes_them(mor: BatchProcessor) -> None:
    """The freshness path commits a delete to the log only: until the fold, its log entry is the
    tombstone that outranks older events."""
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(mor, event("d", {"movie_id": 2}, 20), batch_id=1)
    assert tombstones(mor) == []  # nothing but the log entry was committed
    stale = run(mor, event("u", movie(2, "stale"), 15), batch_id=2)  # older than the delete
    assert stale.tombstone_checks == [MOVIE]  # outranked by the log entry
    fold = compactor(mor).fold(MOVIE)
    assert "tombstones" in fold.steps
    assert tombstones(mor) == [(MOVIE, '{"movie_id":2}', 20)]
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a"} == titles(base(mor))


def test_a_batch_that_reads_the_logs_deletes_still_appends_blindly(mor: BatchProcessor) -> None:
    """A batch whose older events are checked against the log's delete entries (or filled from
    the log's TOAST values) commits a blind append: its write reads nothing of the log, so a
    fold's trim committing while it runs cannot fail the batch (Delta fails a transaction whose
    read files a concurrent commit removed). The log's history says so for each append."""
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(mor, event("d", {"movie_id": 2}, 20), batch_id=1)
    stale = run(mor, event("u", movie(2, "stale"), 15), event("c", movie(3, "c"), 30), batch_id=2)
    assert stale.tombstone_checks == [MOVIE]  # the log's delete entry was read
    run(mor, event("u", movie(3, PLACEHOLDER, budget="5"), 40), batch_id=3)  # filled from the log
    path = mor.store.layout.log(MOVIE)
    history = mor.spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    writes = [(h["version"], h["isBlindAppend"]) for h in history if h["operation"] == "WRITE"]
    assert len(writes) == 4 and all(blind for _, blind in writes), writes
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a", 3: "c"}


def deletes(silver: BatchProcessor) -> list[dict[str, str]]:
    """The operation metrics of each DELETE in the log's history, oldest first."""
    path = silver.store.layout.log(MOVIE)
    history = silver.spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    return [dict(h["operationMetrics"]) for h in history if h["operation"] == "DELETE"]


def test_trims_land_while_batches_append_and_rewrite_no_file(mor: BatchProcessor) -> None:
    """Open-source Delta commits a DELETE at Serializable isolation: on an unpartitioned log, an
    append committed while the trim ran failed it (ConcurrentAppendException; on the dev stack at
    50 changes/s half the trims, and before that the whole fold). The log is partitioned by
    `_seq`: a trim drops the partitions of folded appends, which no batch writes to, reading and
    rewriting no file. Folds run with appends all along; every fold trims the one before it."""
    clock = Clock()
    c = compactor(mor, clock)
    run(mor, *[event("c", movie(i, f"m{i}"), 10 + i) for i in range(1, 4)], batch_id=0)
    first = c.fold(MOVIE)
    entry = mor.store.live(MOVIE).where("movie_id = 1").localCheckpoint(eager=True)
    stop = threading.Event()
    appends = []

    def append_all_along() -> None:  # what batches do on their own threads, as fast as it goes
        while not stop.is_set():
            appends.append(mor.store.append_log(MOVIE, entry, entry.columns))

    appender = threading.Thread(target=append_all_along)
    appender.start()
    folds = [first]
    try:
        for i in range(5):
            run(mor, event("u", movie(2, f"new{i}"), 20 + i), batch_id=1 + i)
            clock.now += TRIM_AFTER
            folds.append(c.fold(MOVIE))  # raised, then deferred its trim, on the unpartitioned log
    finally:
        stop.set()
        appender.join()
    assert len(appends) > 5, "the appends did not run beside the folds"
    assert [f.trimmed_upto for f in folds[1:]] == [f.upto for f in folds[:-1]]
    assert titles(base(mor)) == {1: "m1", 2: "new4", 3: "m3"}
    assert log_rows(mor).where(f"{SEQ} <= {folds[-2].upto}").count() == 0
    assert log_rows(mor).where(f"{SEQ} > {folds[-2].upto}").count() > 0  # the last fold's, kept
    trims = deletes(mor)
    assert len(trims) == 5 and all(t["numRemovedFiles"] != "0" for t in trims), trims
    rewritten = [t for t in trims if t.get("numAddedFiles", "0") != "0" or t.get("numCopiedRows", "0") != "0"]
    assert rewritten == [], trims
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "m1", 2: "new4", 3: "m3"}


def test_a_folds_entries_are_trimmed_when_ripe_without_waiting_for_the_next_fold(
    mor: BatchProcessor,
) -> None:
    clock = Clock()
    c = compactor(mor, clock)
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(mor, event("u", movie(1, "a2"), 12), batch_id=1)
    fold = c.fold(MOVIE)
    assert c.trim_due() == []  # not TRIM_AFTER old yet: a reader may have pinned the base before it
    assert log_rows(mor).count() == 3
    run(mor, event("u", movie(2, "b2"), 20), batch_id=2)  # after the fold: stays
    clock.now += TRIM_AFTER
    assert c.trim_due() == [MOVIE]
    assert [r["title"] for r in log_rows(mor).collect()] == ["b2"]
    assert c.trim_due() == []  # nothing ripe left
    assert json.loads(read_text(mor.spark, mor.store.layout.folded(MOVIE)) or "{}") == {
        "upto": fold.upto,
        "untrimmed": 0,
    }
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a2", 2: "b2"}


def test_an_older_versions_unpartitioned_log_is_partitioned_at_the_start(mor: BatchProcessor) -> None:
    from pyspark.sql import types as T

    run(mor, event("c", movie(1, "a"), 10), batch_id=0)  # the log as this version makes it
    path = mor.store.layout.log(MOVIE)
    entries = log_rows(mor).localCheckpoint(eager=True)
    shutil.rmtree(path)
    schema = T.StructType(entries.schema.fields)
    mor.store.ensure(path, schema)  # an older version's: no partitions
    entries.write.format("delta").mode("append").save(path)
    run(mor, event("u", movie(1, "a2"), 20), event("c", movie(2, "b"), 21), batch_id=1)
    assert mor.store._partitioning(path) == []
    before = sorted(map(tuple, log_rows(mor).collect()))
    restarted = BatchProcessor(mor.spark, mor.store.layout, mor.rules)
    assert restarted.store.partition_log(MOVIE)
    assert restarted.store._partitioning(path) == [SEQ]
    assert sorted(map(tuple, log_rows(mor).select(*entries.columns).collect())) == before
    assert not restarted.store.partition_log(MOVIE)  # once
    clock = Clock()
    c = compactor(restarted, clock)
    c.recover([MOVIE])
    c.fold(MOVIE)
    clock.now += TRIM_AFTER
    assert c.trim_due() == [MOVIE]
    assert log_rows(mor).count() == 0
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == titles(base(mor)) == {1: "a2", 2: "b"}


def test_a_delete_folded_and_trimmed_after_a_restart_still_outranks_an_older_event(
    mor: BatchProcessor,
) -> None:
    """The job restarts with a delete in the log only; its compactor folds it (writing its
    tombstone) and a later fold trims it from the log. A replayed event older than the delete must
    stay out: the restarted job took the delete from the log when it loaded its state."""
    clock = Clock()
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(mor, event("d", {"movie_id": 2}, 20), batch_id=1)
    restarted = BatchProcessor(mor.spark, mor.store.layout, mor.rules)
    run(restarted, event("c", movie(3, "c"), 30), batch_id=2)  # its state is loaded now
    c = compactor(restarted, clock)
    c.recover([MOVIE])
    first = c.fold(MOVIE)
    clock.now += TRIM_AFTER
    run(restarted, event("c", movie(4, "d"), 40), batch_id=3)
    assert c.fold(MOVIE).trimmed_upto == first.upto
    assert sorted(r["movie_id"] for r in log_rows(restarted).collect()) == [4]  # the delete is gone
    replayed = run(restarted, event("u", movie(2, "replayed"), 15), batch_id=4)
    assert replayed.tombstone_checks == [MOVIE]
    c.fold(MOVIE)
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a", 3: "c", 4: "d"} == titles(base(mor))


def test_a_crash_between_a_folds_tombstones_and_its_merge_still_deletes(mor: BatchProcessor) -> None:
    clock = Clock()
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    compactor(mor, clock).fold(MOVIE)
    run(mor, event("d", {"movie_id": 2}, 20), batch_id=1)
    dying = compactor(mor, clock, faults=Faults("after-tombstones", action=crash))
    with pytest.raises(Crash):
        dying.fold(MOVIE)
    assert tombstones(mor) == [(MOVIE, '{"movie_id":2}', 20)]  # committed; the MERGE is not
    assert titles(base(mor)) == {1: "a", 2: "b"}
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a"}
    restarted = compactor(mor, clock)
    restarted.recover([MOVIE])
    restarted.fold(MOVIE)  # the delete is not outranked by its own tombstone
    assert titles(base(mor)) == {1: "a"}
    assert tombstones(mor) == [(MOVIE, '{"movie_id":2}', 20)]


def test_a_schema_change_and_a_cut_reach_the_log(mor: BatchProcessor) -> None:
    wider = [*MOVIES, field("tagline", "string", "TEXT")]
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(mor, event("u", movie(2, "b2", tagline="hi"), 20, fields=wider), batch_id=1)
    assert "tagline" in log_rows(mor).columns and "tagline" in base(mor).columns
    now = {r["movie_id"]: r["tagline"] for r in read(mor.spark, mor.store.layout, MOVIE).collect()}
    assert now == {1: None, 2: "hi"}
    # a TRUNCATE: the log's entries before it go too, and the base stays empty after a fold
    result = run(mor, event("t", None, 30), event("c", movie(3, "after"), 40, fields=wider), batch_id=2)
    assert result.truncates == 1
    assert sorted(r["movie_id"] for r in log_rows(mor).collect()) == [3]
    compactor(mor).fold(MOVIE)
    assert titles(base(mor)) == {3: "after"}
    assert SEQ not in base(mor).columns


def test_back_to_merge_on_write_folds_the_logs_and_removes_them(mor: BatchProcessor) -> None:
    from lakehouse.pipeline.silver.job import drop_logs

    run(mor, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(mor, event("d", {"movie_id": 2}, 20), batch_id=1)
    assert base(mor).count() == 0  # all in the log
    mow = BatchProcessor(mor.spark, mor.store.layout, Rules(transaction_topic=TXN_TOPIC))
    drop_logs(mow, [MOVIE])
    assert not mor.store.exists(mor.store.layout.log(MOVIE))
    assert titles(base(mow)) == {1: "a"}
    run(mow, event("u", movie(1, "a2"), 30), batch_id=2)  # MERGEd into the table again
    assert titles(read(mow.spark, mow.store.layout, MOVIE)) == {1: "a2"} == titles(base(mow))


def test_a_log_killed_out_of_a_schema_change_gets_the_bases_new_column_at_the_next_start(
    mor: BatchProcessor,
) -> None:
    """A schema change ALTERs the base, then the log: a job killed between the two (seen in an
    integration run: kill -9 mid-load) left a log without the column, and the live rule, which
    reads the base's columns from both, failed in every batch after the restart."""
    from pyspark.errors import AnalysisException

    run(mor, event("c", movie(1, "a"), 10), batch_id=0)
    run(mor, event("u", movie(1, "a2"), 20), batch_id=1)  # an entry in the log
    mor.spark.sql(f"ALTER TABLE delta.`{mor.store.layout.table(MOVIE)}` ADD COLUMNS (tagline string)")
    with pytest.raises(AnalysisException, match="tagline"):
        read(mor.spark, mor.store.layout, MOVIE).collect()
    # the restarted job (a new processor: it reads the schemas afresh)
    restarted = BatchProcessor(mor.spark, mor.store.layout, mor.rules)
    assert restarted.store.align_log(MOVIE) == ["tagline"]
    assert restarted.store.align_log(MOVIE) == []  # once
    rows = read(mor.spark, mor.store.layout, MOVIE).collect()
    assert [(r["movie_id"], r["title"], r["tagline"]) for r in rows] == [(1, "a2", None)]
    wider = [*MOVIES, field("tagline", "string", "TEXT")]
    run(restarted, event("u", movie(1, "a3", tagline="hi"), 30, fields=wider), batch_id=2)
    assert {r["movie_id"]: r["tagline"] for r in read(mor.spark, mor.store.layout, MOVIE).collect()} == {
        1: "hi"
    }
    assert mor.store.align_log("movielens.nothing_here") == []


def test_a_log_killed_out_of_a_type_change_gets_the_bases_type_at_the_next_start(
    mor: BatchProcessor,
) -> None:
    """The same kill between the base's ALTER and the log's, for a widening (int to bigint) and a
    column rewritten as text (`column.overrides`): the log keeps the old type, and the live rule's
    union of the two fails until the log has the base's types."""
    from pyspark.sql import types as T

    run(mor, event("c", movie(1, "a"), 10), batch_id=0)
    run(mor, event("u", movie(1, "a2"), 20), batch_id=1)  # an entry in the log
    table = mor.store.layout.table(MOVIE)
    mor.store.spark.sql(
        f"ALTER TABLE delta.`{table}` SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')"
    )
    mor.store.spark.sql(f"ALTER TABLE delta.`{table}` ALTER COLUMN movie_id TYPE bigint")
    df = mor.spark.read.format("delta").load(table)
    assert not isinstance(df.schema["budget"].dataType, T.StringType)
    texts = df.withColumn("budget", df["budget"].cast("string"))
    texts.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(table)
    restarted = BatchProcessor(mor.spark, mor.store.layout, mor.rules)
    assert restarted.store.align_log(MOVIE) == ["movie_id", "budget"]
    assert restarted.store.align_log(MOVIE) == []  # once
    log = mor.spark.read.format("delta").load(mor.store.layout.log(MOVIE)).schema
    assert (log["movie_id"].dataType, log["budget"].dataType) == (T.LongType(), T.StringType())
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "a2"}
    assert restarted.store._partitioning(mor.store.layout.log(MOVIE)) == [SEQ]  # kept by the rewrite


def test_lakehouse_compact_is_a_request_the_compactor_answers_with_a_fold(
    mor: BatchProcessor,
) -> None:
    from lakehouse.pipeline.silver.compaction import NAME
    from lakehouse.pipeline.silver.store import read_text, write_text

    layout = mor.store.layout
    run(mor, event("c", movie(1, "a"), 10), event("u", movie(1, "b"), 11), batch_id=0)
    c = compactor(mor)  # the entries are far from due: only the request folds them
    c.appended(MOVIE, 2, c.clock())
    c.start(every=0.1)
    try:
        write_text(mor.spark, layout.request(NAME), json.dumps({"id": "r1", "table": None}))
        deadline = time.monotonic() + 120
        while (answer := read_text(mor.spark, layout.result(NAME))) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        c.stop()
    assert answer is not None, "the compactor did not answer"
    body = json.loads(answer)
    assert body["id"] == "r1" and body["error"] is None
    assert [(f["table"], f["keys"]) for f in body["folded"]] == [(MOVIE, 1)]
    assert titles(base(mor)) == {1: "b"}
    assert read_text(mor.spark, layout.request(NAME)) is None  # taken: the next one may come
    assert c.due(c.clock() + timedelta(days=1)) == []  # nothing waits after the fold


def test_a_fold_reads_only_the_entries_no_earlier_fold_covered(mor: BatchProcessor) -> None:
    c = compactor(mor)  # its clock stands still: the folded entries stay in the log
    run(mor, *[event("c", movie(i, f"m{i}"), 10 + i) for i in range(1, 4)], batch_id=0)
    assert c.fold(MOVIE).keys == 3
    again = c.fold(MOVIE)  # they are in the base: nothing to fold
    assert again.keys == 0 and again.upto is None
    run(mor, event("u", movie(2, "new"), 20), batch_id=1)
    assert c.fold(MOVIE).keys == 1  # only the new entry, not the three before it
    assert log_rows(mor).count() == 4
    assert titles(base(mor)) == {1: "m1", 2: "new", 3: "m3"}
    # a restarted job takes up the recorded folds: it reads none of the four entries again ...
    recorded = json.loads(read_text(mor.spark, mor.store.layout.folded(MOVIE)) or "{}")
    assert recorded["untrimmed"] == 4
    restarted = BatchProcessor(mor.spark, mor.store.layout, mor.rules)
    clock = Clock()
    fresh = compactor(restarted, clock)
    fresh.recover([MOVIE])
    assert restarted.store._seq >= recorded["upto"]  # its `_seq`s follow the last run's, whatever its clock
    run(restarted, event("u", movie(3, "newer"), 30), batch_id=2)
    assert log_rows(mor).agg({SEQ: "max"}).collect()[0][0] > recorded["upto"]
    clock.now += TRIM_AFTER
    after = fresh.fold(MOVIE)
    assert after.keys == 1  # only the entry appended since
    # ... and trims them as its own
    assert after.trimmed_upto is not None
    assert [r["title"] for r in log_rows(mor).collect()] == ["newer"]
    now = titles(read(mor.spark, mor.store.layout, MOVIE))
    assert titles(base(mor)) == now == {1: "m1", 2: "new", 3: "newer"}


def test_a_batch_does_not_wait_for_a_fold_of_its_table(mor: BatchProcessor) -> None:
    """The table's lock is held by a fold for its whole MERGE: a batch that changes no schema
    appends to the log meanwhile (it used to wait for the lock, the fold's length on the
    freshness path)."""
    run(mor, event("c", movie(1, "a"), 10), batch_id=0)
    held, release = threading.Event(), threading.Event()

    def fold_in_progress() -> None:
        with mor.locks.held(MOVIE):
            held.set()
            release.wait(timeout=600)

    folder = threading.Thread(target=fold_in_progress, daemon=True)
    folder.start()
    assert held.wait(timeout=30)
    try:
        done: list[BatchResult] = []
        batch = threading.Thread(
            target=lambda: done.append(run(mor, event("u", movie(1, "b"), 20), batch_id=1)), daemon=True
        )
        batch.start()
        batch.join(timeout=120)
        assert done, "the batch waited for the fold's lock"
        assert done[0].logged == {MOVIE: 1}
    finally:
        release.set()
        folder.join(timeout=30)
    assert titles(read(mor.spark, mor.store.layout, MOVIE)) == {1: "b"}


def test_optimize_runs_on_the_compactors_thread_a_table_per_round_not_between_batches(
    mor: BatchProcessor,
) -> None:
    """With merge-on-read a round of every table's fold and OPTIMIZE between two batches held the
    stream up (a 102 s batch at 300 changes/s): the batch's thread only hands the tables over."""

    from lakehouse.config.paths import repo_root
    from lakehouse.pipeline.silver.config import SilverConfig
    from lakehouse.pipeline.silver.maintenance import Maintenance

    other = "movielens.tags"
    run(mor, event("c", movie(1, "a"), 10), event("c", movie(7, "t"), 11, table=other), batch_id=0)
    run(mor, event("u", movie(1, "a2"), 20), batch_id=1)
    clock = Clock()
    c = compactor(mor, clock)
    cfg = SilverConfig.load(repo_root() / "spark_streaming/silver.json")
    start = datetime.now(UTC)
    m = Maintenance(mor.spark, mor.store.layout, cfg, start, c)
    m.touched([MOVIE, other])
    m.maybe_run(start + cfg.optimize_every)  # between batches: due, handed over, nothing run
    assert m.runs["optimize"] == 0 and m.due == {MOVIE, other}
    assert base(mor).count() == 0  # not folded either
    assert c.do_chore()  # the compactor's round: one table, folded then OPTIMIZEd
    assert m.runs["optimize"] == 1 and m.due == {other}
    assert titles(base(mor)) == {1: "a2"}  # (the rest after it: test_compaction_rest.py)
    clock.now += timedelta(hours=1)
    assert c.do_chore() and m.runs["optimize"] == 2 and not m.due
    clock.now += timedelta(hours=1)
    assert not c.do_chore()  # nothing left to OPTIMIZE

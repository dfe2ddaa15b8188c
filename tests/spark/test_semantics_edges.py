"""Cases a line-by-line review of silver found that random workloads never hit (issue 43): each
test builds the exact event sequence, as the pinned Debezium writes it, that used to lose,
resurrect or alter a row."""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.batch import BatchProcessor
from lakehouse.pipeline.silver.outcome import Replay

from .events import PLACEHOLDER, end, event, field
from .test_semantics import MOVIE, movie, quarantine, rows, run

GONE = {"title": None, "budget": None, "released": None}


def titles(silver: BatchProcessor) -> dict[Any, str]:
    return {k: v["title"] for k, v in rows(silver).items()}


# ---- 1. a TRUNCATE or a snapshot cuts the whole table, not only the keys silver held


def test_an_insert_older_than_an_applied_truncate_stays_out_though_silver_never_held_its_key(
    silver: BatchProcessor,
) -> None:
    """`truncate @30`, then `insert K @12` in a later batch (a transaction held back, a replayed
    quarantine row, a late partition): K was never in silver, so no per-key tombstone guards it."""
    run(silver, event("c", movie(1, "a"), 10), batch_id=0)
    run(silver, event("t", None, 30), batch_id=1)
    run(silver, event("c", movie(2, "late"), 12), batch_id=2)
    assert titles(silver) == {}
    # a restarted job remembers the cut
    again = BatchProcessor(silver.spark, silver.store.layout, silver.rules)
    run(again, event("c", movie(3, "late too"), 13), event("c", movie(4, "after"), 40), batch_id=3)
    assert titles(again) == {4: "after"}


def test_a_truncate_before_the_table_exists_still_cuts(silver: BatchProcessor) -> None:
    run(silver, event("t", None, 30), batch_id=0)
    run(silver, event("c", movie(1, "late"), 12), event("c", movie(2, "after"), 40), batch_id=1)
    assert titles(silver) == {2: "after"}


def test_an_event_older_than_a_snapshot_that_created_the_table_stays_out(silver: BatchProcessor) -> None:
    """A resnapshot's reads create the table (a rebuild); a change older than the snapshot that
    arrives in a later batch is one the snapshot already saw or saw deleted."""
    run(silver, event("r", movie(1, "snap"), 500), batch_id=0)
    run(silver, event("c", movie(2, "deleted before the snapshot"), 400, commit_lsn=401), batch_id=1)
    assert titles(silver) == {1: "snap"}


# ---- 2. the first transaction streamed after a snapshot sorts by its real commit


def test_the_first_transaction_streamed_after_a_snapshot_wins_over_its_reads(silver: BatchProcessor) -> None:
    """Snapshot reads sit at (L, L). The first streamed transaction's events carry no previous
    commit (`sequence = [null, lsn]`) and may have begun before L: by their change LSN they tie
    with the reads or sort below them. Their END record carries the real commit LSN (> L)."""
    run(
        silver,
        *(event("r", movie(i, "snap"), 500) for i in (1, 2, 3)),
        batch_id=0,
    )
    run(
        silver,
        event("u", movie(1, "updated"), 480, txid=40, dco=1),  # began before the snapshot
        event("d", {"movie_id": 2, **GONE}, 500, txid=40, dco=2),  # ties with the reads
        event("c", movie(4, "inserted"), 490, txid=40, dco=3),
        end(40, {MOVIE: 3}, commit=520),
        batch_id=1,
    )
    assert titles(silver) == {1: "updated", 3: "snap", 4: "inserted"}


def test_the_real_commit_orders_a_transaction_after_the_one_before_it(silver: BatchProcessor) -> None:
    """Transaction B committed right after A: B's `sequence[0]` is A's commit LSN. Without B's
    END, B must still sort after every change of A, whatever the change LSNs."""
    run(
        silver,
        event("u", movie(1, "A"), 300, commit_lsn=250, txid=50, dco=1),
        end(50, {MOVIE: 1}, commit=310),
        batch_id=0,
    )
    # B began before A's change (lower change LSN) and committed after A; its END comes later
    run(silver, event("u", movie(1, "B"), 290, commit_lsn=310), batch_id=1)
    assert titles(silver) == {1: "B"}


# ---- 3. TOAST fill walks the key's versions in position order


def test_a_placeholder_after_a_delete_is_not_filled_from_before_the_delete(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    run(silver, event("c", movie(1, "old big text", budget="1"), 10), batch_id=0)
    result = run(
        silver,
        event("d", {"movie_id": 1, **GONE}, 20),
        # the re-insert between these two is not in the batch (held back or quarantined)
        event("u", movie(1, PLACEHOLDER, budget="2"), 30),
        batch_id=1,
    )
    assert titles(silver) == {}
    assert result.quarantined["toast"] == 1
    assert "title" in quarantine(spark, silver)[0]["reason"]


def test_a_reused_key_takes_the_value_of_its_newest_version_in_the_batch(silver: BatchProcessor) -> None:
    """`d B`, key change A→B with a placeholder, `u B` with a placeholder, in one batch: B's value
    comes from A through the key change, not from B's row before its delete."""
    run(
        silver,
        event("c", movie(1, "A's big text", budget="1"), 10),
        event("c", movie(2, "B's old text", budget="2"), 11),
        batch_id=0,
    )
    run(
        silver,
        event("d", {"movie_id": 2, **GONE}, 20),
        event("d", {"movie_id": 1, **GONE}, 30, txid=60, dco=1),  # key change 1 → 2
        event("c", movie(2, PLACEHOLDER, budget="3"), 30, txid=60, dco=2),
        end(60, {MOVIE: 2}, commit=35),
        event("u", movie(2, PLACEHOLDER, budget="4"), 40, commit_lsn=35),
        batch_id=1,
    )
    assert {k: (v["title"], str(v["budget"])) for k, v in rows(silver).items()} == {
        2: ("A's big text", "4.0000000000")
    }


def test_a_placeholder_waits_for_an_earlier_change_of_its_row_that_is_held_back(
    silver: BatchProcessor,
) -> None:
    """Transaction 70 changed the title and is incomplete (held back); transaction 71, later,
    left the title unchanged (placeholder). 71 must not be filled from the row before 70."""
    run(silver, event("c", movie(1, "v1", budget="1"), 10), batch_id=0)
    run(
        silver,
        event("u", movie(1, "v2", budget="2"), 20, txid=70, dco=1),  # its END still to come
        event("u", movie(1, PLACEHOLDER, budget="3"), 30, commit_lsn=25, txid=71, dco=1),
        end(71, {MOVIE: 1}, commit=35),
        batch_id=1,
    )
    assert titles(silver) == {1: "v1"}  # nothing of the row applied out of order
    run(
        silver,
        event("u", movie(1, "x", budget="9"), 21, txid=70, dco=2),
        end(70, {MOVIE: 2}, commit=25),
        batch_id=2,
    )
    r = rows(silver)[1]
    assert (r["title"], str(r["budget"])) == ("x", "3.0000000000")


def test_a_placeholder_waits_in_quarantine_for_an_earlier_change_of_its_row(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    """The earlier change was quarantined (a value that does not fit): the later placeholder cannot
    be filled before it is applied, so it waits with it, and replay applies both."""
    run(silver, event("c", movie(1, "v1", budget="1"), 10), batch_id=0)
    result = run(
        silver,
        event("u", movie(1, "v2", budget="not a number"), 20),
        event("u", movie(1, PLACEHOLDER, budget="3"), 30),
        batch_id=1,
    )
    assert titles(silver) == {1: "v1"}
    assert sum(result.quarantined.values()) == 2
    # the source's fix (here: the value corrected in the quarantined line), then replay
    path = silver.store.layout.quarantine
    q = spark.read.format("delta").load(path)
    fixed = q.withColumn("raw", F.regexp_replace("raw", "not a number", "2"))
    fixed.write.format("delta").mode("overwrite").save(path)
    empty = spark.createDataFrame([], "value string")
    silver.process(empty, 2, replay=Replay(MOVIE))
    r = rows(silver)[1]
    assert (r["title"], str(r["budget"])) == ("v2", "3.0000000000")


# ---- 5. a re-run batch may hold other events than its first run: nothing vanishes


def test_a_rerun_batch_with_other_quarantined_events_keeps_them(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    poison = event("c", {"movie_id": 5, "title": "t", "budget": "bad", "released": None}, 10)
    run(silver, poison, batch_id=0)
    assert len(quarantine(spark, silver)) == 1
    other = event("c", {"movie_id": 6, "title": "t", "budget": "worse", "released": None}, 11)
    run(silver, other, batch_id=1)  # first run of batch 1: dies before the checkpoint
    # the re-run of batch 1 also picks up a replay request: both are refused again
    df = spark.createDataFrame([(other,)], "value string")
    silver.process(df, 1, replay=Replay(MOVIE))
    reasons = sorted(json.loads(q["raw"])["offset"] for q in quarantine(spark, silver))
    assert len(reasons) == 2, quarantine(spark, silver)


def test_a_rerun_batch_with_a_delete_the_first_run_lacked_still_leaves_its_tombstone(
    silver: BatchProcessor,
) -> None:
    run(silver, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    run(silver, event("d", {"movie_id": 1, **GONE}, 20), batch_id=1)
    # batch 1 again, now with a delete of 2 too (a held group released in between)
    run(silver, event("d", {"movie_id": 1, **GONE}, 20), event("d", {"movie_id": 2, **GONE}, 21), batch_id=1)
    run(silver, event("c", movie(2, "stale"), 15), batch_id=2)
    assert titles(silver) == {}


# ---- 7. rule 10's remedy: add a primary key at the source, then replay


def test_events_of_a_table_without_a_key_are_applied_by_replay_once_the_table_has_one(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    def keyless(line: str) -> str:  # what Debezium sends for a table without a primary key
        e = json.loads(line)
        e["key"] = None
        return json.dumps(e)

    result = run(silver, keyless(event("c", movie(1, "a"), 10)), keyless(event("c", movie(2, "b"), 11)))
    assert result.quarantined["missing"] == 2
    # `ALTER TABLE … ADD PRIMARY KEY (movie_id)`: Debezium's events carry the key from then on
    run(silver, event("c", movie(3, "c"), 20), batch_id=1)
    replayed = silver.process(spark.createDataFrame([], "value string"), 2, replay=Replay(MOVIE))
    assert replayed.replayed == 2 and not replayed.quarantined, replayed.quarantined
    assert titles(silver) == {1: "a", 2: "b", 3: "c"}
    assert quarantine(spark, silver) == []


# ---- smaller ones


def test_unparseable_lines_of_a_batch_that_reloads_held_lines_are_each_quarantined(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    """After a restart with held transactions the batch drops duplicate lines by (topic,
    partition, offset); lines that did not parse have none of these and are not duplicates."""
    run(silver, event("c", movie(1, "in txn"), 10, txid=80, dco=1), batch_id=0)  # held: no END yet
    restarted = BatchProcessor(spark, silver.store.layout, silver.rules)
    result = run(restarted, "not json, the first", "not json, the second", batch_id=1)
    assert result.quarantined["unparseable"] == 2
    assert sorted(q["raw"] for q in quarantine(spark, silver)) == [
        "not json, the first",
        "not json, the second",
    ]


STAMPED = [
    field("at", "int64", "TIMESTAMP", optional=False, logical="io.debezium.time.MicroTimestamp"),
    field("title", "string", "TEXT"),
]


def stamped(op: str, at: int, title: str | None, lsn: int) -> str:
    return event(op, {"at": at, "title": title}, lsn, table="movielens.stamps", fields=STAMPED, keys=("at",))


def test_keys_a_microsecond_apart_have_tombstones_of_their_own(silver: BatchProcessor) -> None:
    one, two = 1_795_000_000_000_001, 1_795_000_000_000_002  # µs, the same millisecond
    run(silver, stamped("c", one, "one", 10), stamped("c", two, "two", 11), batch_id=0)
    run(silver, stamped("d", one, None, 20), batch_id=1)
    run(silver, stamped("u", two, "two, later", 15), batch_id=2)  # older than the delete of `one`
    assert [r["title"] for r in rows(silver, "movielens.stamps").values()] == ["two, later"]


def decimal_key(length: str, scale: str) -> list[dict[str, Any]]:
    params = {"__debezium.source.column.length": length, "__debezium.source.column.scale": scale}
    return [field("k", "string", "NUMERIC", optional=False, **params), field("title", "string", "TEXT")]


def test_a_tombstone_written_after_a_decimal_key_was_widened_guards_the_older_events(
    silver: BatchProcessor,
) -> None:
    def ev(op: str, k: str, title: str | None, lsn: int, widened: bool) -> str:
        fields = decimal_key("10", "4") if widened else decimal_key("5", "2")
        return event(op, {"k": k, "title": title}, lsn, table="movielens.prices", fields=fields, keys=("k",))

    run(silver, ev("c", "1.50", "a", 10, widened=False), batch_id=0)
    run(silver, ev("d", "1.5000", None, 20, widened=True), batch_id=1)  # numeric(10,4) since
    run(silver, ev("c", "1.50", "replayed", 10, widened=False), batch_id=2)
    assert rows(silver, "movielens.prices") == {}

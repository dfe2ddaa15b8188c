"""CDC semantics of silver, on a local SparkSession with crafted Debezium events — in both of
silver's write modes (silver.json `write`): MERGE per batch, and merge-on-read (a change log per
table, read through the live rule, folded into the base by the compactor): the tests marked
`both_modes`, a core of those whose outcome the write path decides, in both; the rest in the mode
silver.json ships (test_compaction.py has the compactor's own). In merge-on-read every read of the rows
also folds the log and checks that the base then holds exactly the live rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.paths import repo_root
from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.compaction import Compactor
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.live_rows import read
from lakehouse.pipeline.silver.outcome import BatchResult
from lakehouse.pipeline.silver.store import Layout

from .events import MOVIES, PLACEHOLDER, TXN_TOPIC, end, event, field

MOVIE = "movielens.movies"


def run(silver: BatchProcessor, *lines: str, batch_id: int = 0) -> BatchResult:
    df = silver.spark.createDataFrame([(line,) for line in lines], "value string")
    return silver.process(df, batch_id)


MODES = ("merge-on-write", "merge-on-read")
#: the mode the rest run in: the one silver.json ships
SHIPPED = (
    "merge-on-read"
    if SilverConfig.load(repo_root() / "spark_streaming" / "silver.json").merge_on_read
    else MODES[0]
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_modes` (where the write path decides the outcome) run in both modes,
    those of merge-on-write's own write path (`merge_on_write`) in it; the rest in the mode silver
    ships with."""
    if "write_mode" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker
        modes = MODES if marked("both_modes") else (MODES[0],) if marked("merge_on_write") else (SHIPPED,)
        metafunc.parametrize("write_mode", modes)


@pytest.fixture
def silver(write_mode: str, spark: SparkSession, tmp_path: Path) -> BatchProcessor:
    mor = write_mode == "merge-on-read"
    return BatchProcessor(
        spark, Layout(str(tmp_path / "silver")), Rules(transaction_topic=TXN_TOPIC, merge_on_read=mor)
    )


def _keyed(df: Any) -> dict[Any, dict[str, Any]]:
    key = next(c for c in df.columns if not c.startswith("_"))
    return {r[key]: r.asDict() for r in df.collect()}


def rows(silver: BatchProcessor, table: str = MOVIE) -> dict[Any, dict[str, Any]]:
    """The table's live rows; in merge-on-read, the log is then folded, and the base must equal them."""
    got = _keyed(read(silver.spark, silver.store.layout, table))
    if silver.rules.merge_on_read:
        Compactor(silver.store, silver.locks, timedelta(0), 1).fold_all([table])
        base = _keyed(silver.spark.read.format("delta").load(silver.store.layout.table(table)))
        assert base == got, "the folded base differs from the live rows"
    return got


def quarantine(spark: SparkSession, silver: BatchProcessor) -> list[dict[str, Any]]:
    return [r.asDict() for r in spark.read.format("delta").load(silver.store.layout.quarantine).collect()]


def movie(i: int, title: str, **extra: Any) -> dict[str, Any]:
    return {"movie_id": i, "title": title, "budget": None, "released": None, **extra}


def test_types_come_from_the_debezium_schema(silver: BatchProcessor) -> None:
    run(
        silver,
        event("c", movie(1, "Heat", budget="1234567890.0123456789", released="1995-12-15T08:00:00Z"), 10),
    )
    r = rows(silver)[1]
    assert r["budget"] == Decimal("1234567890.0123456789")
    assert r["released"].isoformat().startswith("1995-12-15")
    schema = {
        f.name: f.dataType.simpleString()
        for f in silver.spark.read.format("delta").load(silver.store.layout.table(MOVIE)).schema
    }
    assert schema["budget"] == "decimal(38,10)"
    assert schema["released"] == "timestamp"
    assert {"_op", "_lsn", "_commit_lsn", "_source_ts", "_ingested_at"} <= set(schema)


@pytest.mark.both_modes
def test_highest_position_wins_across_batches_and_replays(silver: BatchProcessor) -> None:
    newer = event("u", movie(1, "new"), 20, commit_lsn=19)
    older = event("c", movie(1, "old"), 10, commit_lsn=9)
    run(silver, newer, batch_id=0)
    run(silver, older, batch_id=1)  # late arrival
    run(silver, older, newer, batch_id=2)  # a replay of both
    assert rows(silver)[1]["title"] == "new"
    assert rows(silver)[1]["_lsn"] == 20
    assert len(rows(silver)) == 1


def test_commit_order_beats_change_lsn_order(silver: BatchProcessor) -> None:
    # a long transaction changed the row first (low LSN) but committed last
    run(
        silver,
        event("u", movie(1, "committed first"), 200, commit_lsn=150),
        event("u", movie(1, "committed last"), 100, commit_lsn=300),
    )
    assert rows(silver)[1]["title"] == "committed last"


@pytest.mark.both_modes
def test_delete_leaves_tombstone_against_stale_events(silver: BatchProcessor) -> None:
    run(silver, event("c", movie(1, "a"), 10), event("d", {"movie_id": 1}, 30), batch_id=0)
    assert rows(silver) == {}
    run(silver, event("u", movie(1, "stale"), 20), batch_id=1)
    assert rows(silver) == {}
    run(silver, event("c", movie(1, "reinserted"), 40), batch_id=2)
    assert rows(silver)[1]["title"] == "reinserted"


def test_tombstones_are_checked_only_where_one_could_outrank_an_event(silver: BatchProcessor) -> None:
    def movies(processor: BatchProcessor) -> dict[Any, str]:
        return {k: r["title"] for k, r in rows(processor).items()}

    r = run(
        silver, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), event("d", {"movie_id": 1}, 30)
    )
    assert r.tombstone_checks == []  # no tombstone existed before this batch
    r = run(silver, event("u", movie(2, "newer"), 40), batch_id=1)
    assert r.tombstone_checks == []  # every event follows the newest tombstone (30)
    assert movies(silver) == {2: "newer"}
    r = run(silver, event("u", movie(1, "stale"), 20), event("u", movie(2, "newest"), 50), batch_id=2)
    assert r.tombstone_checks == [MOVIE]  # one event precedes the tombstone: checked, and dropped
    assert movies(silver) == {2: "newest"}
    # a restarted job reads the newest tombstone from the log
    restarted = BatchProcessor(silver.spark, silver.store.layout, silver.rules)
    r = run(restarted, event("u", movie(2, "after restart"), 60), batch_id=3)
    assert r.tombstone_checks == []
    r = run(restarted, event("c", movie(1, "replayed"), 25), batch_id=4)
    assert r.tombstone_checks == [MOVIE]
    assert movies(restarted) == {2: "after restart"}
    # a later delete raises the newest tombstone: an event between the two is checked again
    run(restarted, event("d", {"movie_id": 2}, 70), batch_id=5)
    r = run(restarted, event("c", movie(2, "late"), 65), batch_id=6)
    assert r.tombstone_checks == [MOVIE]
    assert movies(restarted) == {}


@pytest.mark.both_modes
def test_unchanged_toast_value_is_kept(silver: BatchProcessor) -> None:
    big = "x" * 5000
    run(silver, event("c", movie(1, big, budget="1"), 10), batch_id=0)
    run(silver, event("u", movie(1, PLACEHOLDER, budget="2"), 20), batch_id=1)
    r = rows(silver)[1]
    assert r["title"] == big
    assert r["budget"] == Decimal("2")


def test_toast_within_one_batch_uses_the_earlier_event(silver: BatchProcessor) -> None:
    run(silver, event("c", movie(1, "big"), 10), event("u", movie(1, PLACEHOLDER, budget="3"), 20))
    assert rows(silver)[1]["title"] == "big"


@pytest.mark.both_modes
def test_toast_with_primary_key_change(silver: BatchProcessor) -> None:
    run(silver, event("c", movie(1, "big text", budget="1"), 10), batch_id=0)
    run(
        silver,
        event("d", {"movie_id": 1, "title": None, "budget": None, "released": None}, 20, txid=5, dco=1),
        event("c", movie(2, PLACEHOLDER, budget="1"), 20, txid=5, dco=2),
        end(5, {MOVIE: 2}),
        batch_id=1,
    )
    assert set(rows(silver)) == {2}
    assert rows(silver)[2]["title"] == "big text"


def test_toast_through_a_chain_of_key_changes_in_one_batch(silver: BatchProcessor) -> None:
    gone = {"title": None, "budget": None, "released": None}
    run(
        silver,
        event("c", movie(1, "big text"), 10),
        event("d", {"movie_id": 1, **gone}, 20, txid=5, dco=1),
        event("c", movie(2, PLACEHOLDER), 20, txid=5, dco=2),
        event("d", {"movie_id": 2, **gone}, 30, commit_lsn=25, txid=6, dco=1),
        event("c", movie(3, PLACEHOLDER), 30, commit_lsn=25, txid=6, dco=2),
        end(5, {MOVIE: 2}),
        end(6, {MOVIE: 2}),
    )
    assert {k: v["title"] for k, v in rows(silver).items()} == {3: "big text"}


@pytest.mark.both_modes
def test_toast_of_an_update_right_after_a_key_change_in_one_transaction(silver: BatchProcessor) -> None:
    """What the chaos load made Debezium emit (`UPDATE … SET id = …`, then an update of the new
    key that leaves the TOASTed column alone, in one transaction): the key change's create and the
    update both carry the placeholder; the create takes the old key's value, the update the
    create's."""
    run(silver, event("c", movie(1, "big text", budget="1"), 10), batch_id=0)
    gone = {"title": None, "budget": None, "released": None}
    run(
        silver,
        event("d", {"movie_id": 1, **gone}, 20, commit_lsn=15, txid=5, dco=1),
        event("c", movie(2, PLACEHOLDER, budget="1"), 20, commit_lsn=15, txid=5, dco=2),
        event("u", movie(2, PLACEHOLDER, budget="2"), 22, commit_lsn=15, txid=5, dco=3),
        end(5, {MOVIE: 3}),
        batch_id=1,
    )
    assert {k: (v["title"], v["budget"]) for k, v in rows(silver).items()} == {2: ("big text", Decimal("2"))}


@pytest.mark.both_modes
def test_toast_through_more_updates_of_one_row_in_a_batch_than_fill_passes(silver: BatchProcessor) -> None:
    """A busy row under load: its insert and a dozen updates that leave the TOASTed column alone,
    one batch, then a key change and another dozen in one transaction (as the chaos load makes
    them). Each placeholder means "as the version before"; a fill that took one version per pass
    ran out of passes (8) and quarantined the rest (the chaos matrix's run quarantined two so)."""
    from lakehouse.pipeline.silver.toast_fill import MAX_TOAST_PASSES

    n = MAX_TOAST_PASSES + 4
    updates = [event("u", movie(1, PLACEHOLDER, budget=str(i)), 20 + i) for i in range(n)]
    result = run(silver, event("c", movie(1, "big text", budget="0"), 10), *updates)
    assert not result.quarantined
    assert rows(silver)[1]["title"] == "big text"
    gone = {"title": None, "budget": None, "released": None}
    later = [
        event("u", movie(2, PLACEHOLDER, budget=str(100 + i)), 200 + i, commit_lsn=90, txid=7, dco=3 + i)
        for i in range(n)
    ]
    result = run(
        silver,
        event("d", {"movie_id": 1, **gone}, 100, commit_lsn=90, txid=7, dco=1),
        event("c", movie(2, PLACEHOLDER, budget="99"), 100, commit_lsn=90, txid=7, dco=2),
        *later,
        end(7, {MOVIE: 2 + n}),
        batch_id=1,
    )
    assert not result.quarantined
    assert {k: (v["title"], v["budget"]) for k, v in rows(silver).items()} == {
        2: ("big text", Decimal(str(100 + n - 1)))
    }


def test_a_table_of_wide_rows_does_not_exhaust_the_heap(silver: BatchProcessor) -> None:
    """3,000 stored rows of 77 kB each (230 MB of text in one file), then a batch that updates one
    of them, with a TOAST placeholder for the wide column: its MERGE rewrites the file and the
    placeholder is filled from it. Read in Spark's default 4,096-row Parquet batches every value
    of the column is in memory at once, and the 1 GB heap of this session ran out (the stack's job
    died that way on a table of 100 kB values); spark-defaults.conf reads 256 rows at a time."""
    from pyspark.sql import functions as F

    run(silver, event("c", movie(0, "small"), 10))  # the table, as the stream creates it
    path = silver.store.layout.table(MOVIE)
    stored = silver.spark.read.format("delta").load(path)
    wide = silver.spark.range(1, 3001, 1, 1).select(
        *[
            F.col("id").cast("int").alias(c)
            if c == "movie_id"
            else F.expr("repeat(md5(cast(id AS string)), 2400)").alias(c)
            if c == "title"
            else F.lit(11).cast("long").alias(c)
            if c in ("_commit_lsn", "_lsn")
            else F.lit(None).cast(stored.schema[c].dataType).alias(c)
            for c in stored.columns
        ]
    )
    wide.write.format("delta").mode("append").save(path)
    result = run(silver, event("u", movie(7, PLACEHOLDER, budget="1.5"), 20), batch_id=1)
    assert result.applied[MOVIE] == 1 and not result.quarantined
    now = read(silver.spark, silver.store.layout, MOVIE)
    got = now.where("movie_id = 7").collect()[0]
    assert got["budget"] is not None and len(got["title"]) == 2400 * 32
    assert now.count() == 3001


def test_toast_without_any_stored_value_is_quarantined(spark: SparkSession, silver: BatchProcessor) -> None:
    result = run(silver, event("c", movie(1, "a"), 10), event("u", movie(7, PLACEHOLDER), 20))
    assert set(rows(silver)) == {1}
    assert result.quarantined["toast"] == 1
    assert "title" in quarantine(spark, silver)[0]["reason"]


def test_replayed_toast_events_silver_has_moved_past_are_dropped_not_quarantined(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    """After a Kafka or Connect crash Debezium re-sends events from its last committed offset:
    an update with an unchanged TOASTed value whose row was deleted since, and the create of a key
    change whose old key is gone, have no stored value to fill the placeholder from — and need
    none, since silver is past them (the MERGE would skip them). A valid replay quarantines nothing."""
    gone = {"title": None, "budget": None, "released": None}
    first = [
        event("c", movie(1, "big one", budget="1"), 10),
        event("c", movie(3, "big three", budget="3"), 11),
        event("u", movie(1, PLACEHOLDER, budget="2"), 20),
        event("d", {"movie_id": 3, **gone}, 30, txid=5, dco=1),  # key change 3 → 4
        event("c", movie(4, PLACEHOLDER, budget="4"), 30, txid=5, dco=2),
        end(5, {MOVIE: 2}),
        event("d", {"movie_id": 1, **gone}, 40),
    ]
    run(silver, *first, batch_id=0)
    assert {k: v["title"] for k, v in rows(silver).items()} == {4: "big three"}
    # the replay: everything from the update on, again, in a later batch
    result = run(silver, *first[2:], batch_id=1)
    assert not result.quarantined, result.quarantined
    assert {k: (v["title"], v["budget"]) for k, v in rows(silver).items()} == {4: ("big three", Decimal("4"))}
    # a placeholder silver is *not* past still has nowhere to come from: quarantined as before
    result = run(silver, event("u", movie(9, PLACEHOLDER), 50), batch_id=2)
    assert result.quarantined["toast"] == 1


@pytest.mark.both_modes
def test_truncate_empties_and_later_events_apply(silver: BatchProcessor) -> None:
    run(silver, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    # Debezium's TRUNCATE has no key (so a schema id of its own): applied, never quarantined
    truncated = run(silver, event("t", None, 30), event("c", movie(3, "after"), 40), batch_id=1)
    assert set(rows(silver)) == {3}
    assert truncated.truncates == 1 and not truncated.quarantined, truncated.quarantined
    run(silver, event("u", movie(1, "stale"), 12), batch_id=2)  # replay from before the truncate
    assert set(rows(silver)) == {3}


def test_snapshot_then_streaming(silver: BatchProcessor) -> None:
    run(silver, event("r", movie(1, "snap"), 500), event("r", movie(2, "snap"), 500), batch_id=0)
    run(
        silver,
        event("u", movie(1, "streamed"), 501, commit_lsn=600),
        event("d", {"movie_id": 2}, 502, commit_lsn=610),
        batch_id=1,
    )
    assert {k: v["title"] for k, v in rows(silver).items()} == {1: "streamed"}


def test_a_snapshot_taken_again_replaces_the_table_deletes_included(silver: BatchProcessor) -> None:
    """The recovery from a lost replication slot: a new snapshot reads every row there is now;
    rows older than it that it does not read were deleted while nothing streamed, and go."""
    titles = lambda: {k: v["title"] for k, v in rows(silver).items()}  # noqa: E731
    run(silver, *(event("r", movie(i, t), 500) for i, t in ((1, "a"), (2, "b"), (3, "c"))), batch_id=0)
    run(silver, event("u", movie(1, "a2"), 501, commit_lsn=600), batch_id=1)
    # unseen: 2 deleted, 3 changed, 4 inserted. The new snapshot (at 900) spans two batches
    run(silver, event("r", movie(1, "a2"), 900), event("r", movie(3, "c2"), 900), batch_id=2)
    assert titles() == {1: "a2", 3: "c2"}
    run(silver, event("r", movie(4, "d"), 900), batch_id=3)  # keeps the first batch's reads
    assert titles() == {1: "a2", 3: "c2", 4: "d"}
    # a job restarted mid-snapshot does not know the snapshot yet: its cut still keeps the reads
    again = BatchProcessor(silver.spark, silver.store.layout, silver.rules)
    run(again, event("r", movie(5, "e"), 900), batch_id=4)
    assert titles() == {1: "a2", 3: "c2", 4: "d", 5: "e"}
    # a replayed event from before the snapshot cannot bring a deleted row back ...
    run(again, event("u", movie(2, "stale"), 502, commit_lsn=610), batch_id=5)
    assert 2 not in titles()
    # ... and the stream after the snapshot applies as ever
    run(
        again,
        event("d", {"movie_id": 1}, 901, commit_lsn=950),
        event("c", movie(2, "new"), 902, commit_lsn=960),
        batch_id=6,
    )
    assert titles() == {2: "new", 3: "c2", 4: "d", 5: "e"}


def test_a_rebuild_replays_both_snapshots_in_one_batch_and_the_later_one_replaces_the_rest(
    silver: BatchProcessor,
) -> None:
    """`reset-silver` after `lakehouse resnapshot`: the first batch of the rebuild creates the table
    and holds the first snapshot, the changes streamed after it and the new snapshot. The new one
    decides: rows it does not read were deleted while nothing streamed (found by the integration
    tests, which rebuilt a table with its deleted rows back when the cut used the batch's first
    snapshot, and none for a table the batch created)."""
    result = run(
        silver,
        *(event("r", movie(i, t), 500) for i, t in ((1, "a"), (2, "b"), (3, "c"))),
        event("u", movie(1, "a2"), 501, commit_lsn=600),
        event("c", movie(6, "f"), 502, commit_lsn=610),
        event("r", movie(1, "a2"), 900),
        event("r", movie(3, "c2"), 900),
        event("r", movie(4, "d"), 900),
        event("u", movie(4, "d2"), 901, commit_lsn=950),
    )
    assert {k: v["title"] for k, v in rows(silver).items()} == {1: "a2", 3: "c2", 4: "d2"}
    assert result.truncates == 0  # nothing stored to cut: the batch's own older events left out


def test_a_table_the_batch_creates_keeps_no_row_its_snapshot_left_out(silver: BatchProcessor) -> None:
    """Inserts before a lost slot, then the new snapshot (one table, one batch of a rebuild)."""
    run(
        silver,
        *(event("c", movie(i, "x"), 10 + i, commit_lsn=100 + i) for i in (1, 2, 3)),
        event("r", movie(3, "y"), 900),
    )
    assert {k: v["title"] for k, v in rows(silver).items()} == {3: "y"}


def test_an_incremental_snapshot_replaces_nothing(silver: BatchProcessor) -> None:
    """Incremental snapshots (Debezium signals) read chunks between changes: no cut."""
    run(silver, event("c", movie(1, "a"), 10), event("c", movie(2, "b"), 11), batch_id=0)
    chunk = json.loads(event("r", movie(2, "b"), 900))
    chunk["value"]["payload"]["source"]["snapshot"] = "incremental"
    run(silver, json.dumps(chunk), batch_id=1)
    assert set(rows(silver)) == {1, 2}


def test_transaction_is_not_half_applied(silver: BatchProcessor) -> None:
    first = event("c", movie(1, "a"), 10, txid=7, dco=1)
    second = event("c", movie(2, "b"), 11, txid=7, dco=2)
    r0 = run(silver, first, batch_id=0)
    assert r0.pending == 1
    assert not silver.store.exists(silver.store.layout.table(MOVIE))
    r1 = run(silver, second, end(7, {MOVIE: 2}), batch_id=1)
    assert r1.pending == 0
    assert set(rows(silver)) == {1, 2}


def test_end_before_data_is_remembered(silver: BatchProcessor) -> None:
    run(silver, end(8, {MOVIE: 1}), batch_id=0)
    run(silver, event("c", movie(1, "a"), 10, txid=8, dco=1), batch_id=1)
    assert set(rows(silver)) == {1}


def test_poison_events_are_quarantined_and_the_rest_applies(
    spark: SparkSession, silver: BatchProcessor
) -> None:
    wrong_type = event("c", {"movie_id": 2, "title": "t", "budget": "not a number", "released": None}, 11)
    missing_key = event("c", {"movie_id": None, "title": "t", "budget": None, "released": None}, 12)
    result = run(silver, "this is not json", wrong_type, missing_key, event("c", movie(1, "good"), 10))
    assert set(rows(silver)) == {1}
    reasons = sorted(q["reason"] for q in quarantine(spark, silver))
    assert len(reasons) == 3
    assert any(r.startswith("unparseable") for r in reasons)
    assert any("budget" in r and "decimal(38,10)" in r for r in reasons)
    assert any("missing key column movie_id" in r for r in reasons)
    # each quarantined event keeps its own bronze line, also those refused after decoding (the
    # line is looked up again by topic/partition/offset: it does not ride with the decoded rows)
    raws = {q["raw"] for q in quarantine(spark, silver)}
    assert raws == {"this is not json", wrong_type, missing_key}
    decoded = [q for q in quarantine(spark, silver) if q["raw"] != "this is not json"]
    assert {q["source_table"] for q in decoded} == {MOVIE}
    assert {(q["topic"], q["offset"]) for q in decoded} == {
        (json.loads(x)["topic"], json.loads(x)["offset"]) for x in (wrong_type, missing_key)
    }
    assert sum(result.quarantined.values()) == 3


@pytest.mark.both_modes
def test_schema_evolution_add_drop_widen_reject(spark: SparkSession, silver: BatchProcessor) -> None:
    run(silver, event("c", movie(1, "a"), 10), batch_id=0)
    added = [*MOVIES, field("votes", "int32", "INT4")]
    run(silver, event("c", movie(2, "b", votes=5), 20, fields=added), batch_id=1)
    assert rows(silver)[2]["votes"] == 5
    assert rows(silver)[1]["votes"] is None
    dropped = [f for f in added if f["field"] != "title"]
    run(
        silver,
        event("u", {"movie_id": 1, "budget": None, "released": None, "votes": 1}, 30, fields=dropped),
        batch_id=2,
    )
    assert rows(silver)[1]["title"] is None
    widened = [*dropped[:-1], field("votes", "int64", "INT8")]
    run(
        silver,
        event("c", {"movie_id": 3, "budget": None, "released": None, "votes": 2**40}, 40, fields=widened),
        batch_id=3,
    )
    assert rows(silver)[3]["votes"] == 2**40
    incompatible = [*dropped[:-1], field("votes", "string", "TEXT")]
    result = run(
        silver,
        event(
            "c", {"movie_id": 4, "budget": None, "released": None, "votes": "many"}, 50, fields=incompatible
        ),
        batch_id=4,
    )
    assert 4 not in rows(silver)
    assert result.schema_rejections[MOVIE] == 1
    assert any("votes" in q["reason"] for q in quarantine(spark, silver))


def test_new_table_gets_its_silver_table(silver: BatchProcessor) -> None:
    tags = [field("tag_id", "int64", "INT8", optional=False), field("tag", "string", "TEXT")]
    run(
        silver,
        event("c", {"tag_id": 1, "tag": "noir"}, 10, table="movielens.tags2", fields=tags, keys=("tag_id",)),
    )
    assert rows(silver, "movielens.tags2")[1]["tag"] == "noir"


@pytest.mark.both_modes
def test_duplicate_batch_changes_nothing(silver: BatchProcessor) -> None:
    lines = [event("c", movie(1, "a"), 10), event("u", movie(1, "b"), 20), event("c", movie(2, "c"), 30)]
    run(silver, *lines, batch_id=0)
    first = rows(silver)
    run(silver, *lines, batch_id=1)
    again = rows(silver)
    for r in (*first.values(), *again.values()):
        r.pop("_ingested_at")
    assert first == again


@pytest.mark.merge_on_write
def test_crash_between_the_tombstone_and_the_merge_still_deletes(
    silver: BatchProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job dies after a delete's tombstone is committed but before the table's MERGE; the
    restarted job re-runs the batch: the delete must still be applied (its own tombstone does not
    outrank it). (Merge-on-read's batch commits no tombstone; its fold does, before its MERGE:
    test_compaction.py.)"""
    run(silver, event("c", movie(1, "a"), 10), batch_id=0)
    delete = event("d", {"movie_id": 1}, 30)
    write = "table"
    real_write = getattr(silver.store, write)

    def crash(*_: object, **__: object) -> object:
        raise RuntimeError("killed between the tombstone commit and the table's write")

    monkeypatch.setattr(silver.store, write, crash)
    with pytest.raises(RuntimeError, match="killed"):
        run(silver, delete, batch_id=1)
    monkeypatch.setattr(silver.store, write, real_write)
    tombs = silver.spark.read.format("delta").load(silver.store.layout.tombstones).collect()
    assert [(t["_key"], t["_lsn"]) for t in tombs] == [('{"movie_id":1}', 30)]  # the crash point
    assert 1 in rows(silver)
    restarted = BatchProcessor(silver.spark, silver.store.layout, silver.rules)
    run(restarted, delete, batch_id=1)
    assert rows(silver) == {}


def test_first_deletes_in_several_tables_at_once_create_one_tombstone_log(silver: BatchProcessor) -> None:
    # the per-table threads of one batch all need the tombstone log, which does not exist yet
    tables = [f"movielens.t{i}" for i in range(4)]
    run(silver, *[event("c", movie(1, "a"), 10 + i, table=t) for i, t in enumerate(tables)], batch_id=0)
    run(
        silver,
        *[event("d", {"movie_id": 1}, 20 + i, table=t) for i, t in enumerate(tables[:3])],
        event("t", None, 30, table=tables[3]),
        batch_id=1,
    )
    assert all(rows(silver, t) == {} for t in tables)
    assert not silver.store.exists(silver.store.layout.quarantine)  # the TRUNCATE was not refused
    tombs = silver.spark.read.format("delta").load(silver.store.layout.tombstones)
    assert {r["table"] for r in tombs.select("table").distinct().collect()} == set(tables)


def test_a_transaction_across_two_tables_is_applied_per_table(silver: BatchProcessor) -> None:
    """Rule 5 holds per (transaction, table): a table whose events of the transaction are all there
    is applied; another table of the same transaction waits for the rest of its events."""
    other = "movielens.watch"
    r0 = run(
        silver,
        event("c", movie(1, "a"), 10, txid=9, dco=1),
        event("c", movie(10, "w1"), 11, txid=9, dco=2, table=other),
        end(9, {MOVIE: 1, other: 2}),
        batch_id=0,
    )
    assert set(rows(silver)) == {1}  # complete: applied
    assert r0.pending == 1 and not silver.store.exists(silver.store.layout.table(other))  # 1 of 2: held
    r1 = run(silver, event("c", movie(11, "w2"), 12, txid=9, dco=3, table=other), batch_id=1)
    assert (r1.pending, r1.timed_out_groups) == (0, 0)
    assert set(rows(silver, other)) == {10, 11}


def test_a_transaction_without_its_end_is_applied_when_it_times_out(
    spark: SparkSession, tmp_path: Path
) -> None:
    impatient = BatchProcessor(
        spark,
        Layout(str(tmp_path / "silver")),
        Rules(transaction_topic=TXN_TOPIC, transaction_timeout=timedelta(0)),
    )
    first = run(impatient, event("c", movie(1, "a"), 10, txid=11, dco=1), batch_id=0)
    assert first.pending == 1  # held in the batch it arrived in, however short the timeout
    later = run(impatient, event("c", movie(2, "b"), 20), batch_id=1)
    assert (later.pending, later.timed_out_groups) == (0, 1)
    assert set(rows(impatient)) == {1, 2}


def test_a_held_transaction_times_out_counted_from_the_batch_it_arrived_in(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A held line keeps the time it was first seen from batch to batch (it is not seen anew by
    each batch that carries it), so the timeout runs from its arrival."""
    silver = BatchProcessor(
        spark,
        Layout(str(tmp_path / "silver")),
        Rules(transaction_topic=TXN_TOPIC, transaction_timeout=timedelta(seconds=60)),
    )
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def at(seconds: int, batch_id: int, *lines: str) -> BatchResult:
        df = spark.createDataFrame([(line,) for line in lines], "value string")
        return silver.process(df, batch_id, now=t0 + timedelta(seconds=seconds))

    assert at(0, 0, event("c", movie(1, "a"), 10, txid=11, dco=1)).pending == 1
    assert at(30, 1, event("c", movie(2, "b"), 20)).pending == 1  # 30 s old: still held
    assert set(rows(silver)) == {2}
    late = at(61, 2, event("c", movie(3, "c"), 30))
    assert (late.pending, late.timed_out_groups) == (0, 1)
    assert set(rows(silver)) == {1, 2, 3}


def _operations(silver: BatchProcessor, table: str = MOVIE) -> list[str]:
    path = silver.store.layout.table(table)
    history = silver.spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    return [h["operation"] for h in history]


@pytest.mark.merge_on_write
def test_inserts_of_keys_the_table_lacks_are_appended_and_a_rerun_adds_nothing(
    silver: BatchProcessor,
) -> None:
    assert run(silver, event("c", movie(1, "a"), 10), batch_id=0).appended == [MOVIE]  # created
    new = [event("c", movie(i, f"m{i}"), 10 + i) for i in range(2, 6)]
    assert run(silver, *new, batch_id=1).appended == [MOVIE]
    # the same batch again (a crash before the stream's checkpoint): its keys are stored now, so
    # it is MERGEd, and the position guard leaves the rows as they are
    again = run(silver, *new, batch_id=1)
    assert again.appended == [] and again.tables == [MOVIE]
    assert sorted(rows(silver)) == [1, 2, 3, 4, 5]
    # a create of a key the table holds (a replay older than the stored row) is MERGEd too
    run(silver, event("u", movie(2, "newer"), 100), batch_id=2)
    mixed = run(silver, event("c", movie(2, "m2"), 12), event("c", movie(9, "x"), 101), batch_id=3)
    assert mixed.appended == []
    got = rows(silver)
    assert got[2]["title"] == "newer" and got[9]["title"] == "x" and len(got) == 6
    ops = _operations(silver)
    assert ops.count("WRITE") == 2 and ops.count("MERGE") == 3, ops

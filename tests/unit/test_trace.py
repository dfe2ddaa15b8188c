"""The trace's pure parts: keys as typed and as Kafka carries them, hop order, the slowest hop."""

from __future__ import annotations

import json

import pytest

from lakehouse.apps.monitor.trace import (
    Change,
    Trace,
    TraceError,
    _key_of,
    key_sql,
    lsn_text,
    parse_key,
    render,
)

pytestmark = pytest.mark.unit


def test_a_key_is_one_value_or_every_column_named() -> None:
    assert parse_key("42", ["movie_id"]) == {"movie_id": "42"}
    assert parse_key("movie_id=31, user_id=1", ["user_id", "movie_id"]) == {"user_id": "1", "movie_id": "31"}
    with pytest.raises(TraceError, match=r"the key has 2 columns \(user_id, movie_id\)"):
        parse_key("1", ["user_id", "movie_id"])
    with pytest.raises(TraceError, match=r"the key is \(user_id, movie_id\); got user_id"):
        parse_key("user_id=1", ["user_id", "movie_id"])


def test_a_kafka_key_is_read_with_or_without_its_schema() -> None:
    with_schema = {"schema": {"type": "struct"}, "payload": {"user_id": 1, "movie_id": 31}}
    assert _key_of(json.dumps(with_schema).encode()) == {"user_id": "1", "movie_id": "31"}
    assert _key_of(b'{"movie_id": 7}') == {"movie_id": "7"}
    assert _key_of(None) is None
    assert _key_of(b"not json") is None


def test_key_sql_compares_text_and_quotes() -> None:
    assert key_sql({"title": "it's"}) == "CAST(\"title\" AS varchar) = 'it''s'"


def test_lsn_as_postgres_writes_it() -> None:
    assert lsn_text(0x16_B374D848) == "16/B374D848"


def _change(op: str = "u") -> Change:
    return Change(
        "movielens.movies",
        {"movie_id": "1"},
        op,
        77,
        0x1_00000010,
        100.0,
        "cdc.movielens.movies",
        0,
        5,
        100.4,
    )


def test_hops_fill_in_order_and_the_slowest_is_named_by_where_it_ends() -> None:
    t = Trace("movielens.movies", {"movie_id": "1"}, merge_on_read=True, change=_change())
    assert t.expected() == ("postgres", "kafka", "bronze", "silver", "base", "trino")
    assert t.pending() == "postgres" and t.slowest() is None
    for hop, at in (
        ("postgres", 100.0),
        ("kafka", 100.4),
        ("bronze", 101.0),
        ("silver", 104.9),
        ("trino", 105.2),
    ):
        t.hops[hop].at = at
    assert t.pending() == "base" and not t.complete()
    assert t.slowest() == "silver"  # kafka → silver: 4.5 s of the 5.2
    assert t.after_s("trino") == 5.2
    t.hops["base"].at = 130.0
    assert t.complete()
    doc = t.as_dict()
    assert [h["hop"] for h in doc["hops"]] == list(t.expected())
    assert doc["complete"] and doc["slowest"] == "silver" and doc["write_mode"] == "merge-on-read"


def test_merge_on_write_has_no_base_hop() -> None:
    assert "base" not in Trace("movielens.movies", {"movie_id": "1"}, merge_on_read=False).expected()


def test_render_marks_the_slowest_hop_and_what_is_still_pending() -> None:
    t = Trace("movielens.movies", {"movie_id": "1"}, merge_on_read=True, change=_change())
    t.hops["postgres"].at, t.hops["postgres"].detail = 100.0, {"txid": 77, "lsn": 0x1_00000010}
    t.hops["kafka"].at, t.hops["kafka"].detail = (
        100.4,
        {"topic": "cdc.movielens.movies", "partition": 0, "offset": 5},
    )
    t.hops["silver"].at, t.hops["silver"].detail = 104.9, {"table": "silver_log.movies", "version": 3}
    t.hops["trino"].at, t.hops["trino"].detail = 105.2, {"query": "silver.movies"}
    text = render(t)
    assert text.splitlines()[0] == "movielens.movies movie_id=1: update (merge-on-read silver)"
    assert "change LSN 1/10" in text
    assert "silver_log.movies version 3  ← slowest hop" in text
    assert "base" in text and "not folded yet" in text
    assert "bronze" in text and "not yet" in text

"""Silver's sources and the hand-over between them (silver/sources.py): pure rules."""

from __future__ import annotations

from lakehouse.pipeline.bronze.format import object_key, object_range
from lakehouse.pipeline.silver.sources import Epoch, before, gaps, object_maxima, raised, starting_offsets

T = "cdc.movielens.movies"
URI = "s3a://lakehouse/"


def obj(topic: str, partition: int, first: int, last: int) -> str:
    return URI + object_key("bronze", topic, partition, first, last)


def test_object_names_give_back_their_offset_range() -> None:
    assert object_range(obj(T, 2, 10, 19)) == (T, 2, 10, 19)
    assert object_range(object_key("bronze", T, 0, 0, 0)) == (T, 0, 0, 0)
    # anything else in bronze (a hand-placed object, a folder) has no range
    assert object_range(URI + f"bronze/{T}/partition=0/poison-test.jsonl") is None
    assert object_range(URI + f"bronze/{T}/partition=0/") is None


def test_the_last_offset_per_partition_of_the_objects_read() -> None:
    files = [obj(T, 0, 0, 9), obj(T, 0, 10, 19), obj(T, 1, 0, 4), obj("cdc.transaction", 0, 0, 2)]
    files.append(URI + f"bronze/{T}/partition=0/poison-test.jsonl")
    assert object_maxima(files) == {T: {0: 19, 1: 4}, "cdc.transaction": {0: 2}}
    # a rewritten object with more records (same first offset) raises the maximum; order is free
    assert object_maxima([obj(T, 0, 0, 12), obj(T, 0, 0, 9)]) == {T: {0: 12}}
    assert raised({T: {0: 19}}, {T: {0: 7, 1: 3}, "x": {0: 1}}) == {T: {0: 19, 1: 3}, "x": {0: 1}}


def test_kafka_starts_right_after_bronze_and_from_the_earliest_where_bronze_has_nothing() -> None:
    applied = {T: {0: 19}, "gone": {0: 5}}
    start = starting_offsets(applied, {T: [0, 1], "cdc.transaction": [0]})
    # every partition the pattern matches now, and only those (Spark wants exactly them)
    assert start == {T: {"0": 20, "1": -2}, "cdc.transaction": {"0": -2}}


def test_a_gap_is_a_partition_whose_next_offset_kafka_no_longer_holds() -> None:
    needed = {T: {0: 20, 1: 5}}
    assert gaps(needed, {T: {0: 20, 1: 0}}) == []
    assert gaps(needed, {T: {0: 21, 1: 0}}) == [f"{T}[0]: needs 20, holds from 21"]
    assert gaps(needed, {}) == []  # a deleted topic has nothing left to read
    assert before(needed) == {T: {0: 19, 1: 4}}


def test_the_epoch_survives_its_json() -> None:
    e = Epoch(3, "kafka", "s3a://b/_checkpoints/silver-kafka-3", 41, {T: {0: 19}}, {T: {1: 2}}, True)
    assert Epoch.from_json(e.to_json()) == e

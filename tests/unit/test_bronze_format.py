import base64
import json
from pathlib import Path

import pytest

from lakehouse.bronze.config import SinkConfig
from lakehouse.bronze.format import Batch, Record, encode, object_key
from lakehouse.errors import ConfigError
from lakehouse.paths import repo_root

ENVELOPE = {"schema": {"type": "struct"}, "payload": {"op": "c", "after": {"movie_id": 1}}}


def rec(offset: int, value: bytes | None = b"{}") -> Record:
    return Record("cdc.movielens.movies", 0, offset, 1_700_000_000_000, b'{"movie_id":1}', value)


def test_line_keeps_key_value_schema_offset_timestamp() -> None:
    line = json.loads(encode(rec(7, json.dumps(ENVELOPE).encode())))
    assert line["offset"] == 7
    assert line["timestamp"] == 1_700_000_000_000
    assert line["key"] == {"movie_id": 1}
    assert line["value"] == ENVELOPE


def test_non_json_value_is_kept_byte_exact() -> None:
    raw = b"\xff\xfenot json"
    line = json.loads(encode(rec(1, raw)))
    assert line["value"] is None
    assert base64.b64decode(line["value_raw_b64"]) == raw


def test_tombstone_is_null_value() -> None:
    assert json.loads(encode(rec(1, None)))["value"] is None


def test_object_key_lists_per_topic_and_sorts_by_offset() -> None:
    a = object_key("bronze", "cdc.movielens.movies", 0, 9, 9)
    b = object_key("bronze", "cdc.movielens.movies", 0, 10, 12)
    assert a.startswith("bronze/cdc.movielens.movies/partition=0/")
    assert a < b  # zero-padded: lexical order is offset order


def test_rewritten_batch_with_more_records_gets_a_new_name() -> None:
    same = object_key("bronze", "t", 0, 10, 12)
    assert same == object_key("bronze", "t", 0, 10, 12)
    assert object_key("bronze", "t", 0, 10, 15) != same


def test_batch_flush_rules() -> None:
    b = Batch.start(rec(0), now=100.0)
    assert not b.due(100.5, interval_s=1.0, max_records=10, max_bytes=10_000)
    assert b.due(101.0, interval_s=1.0, max_records=10, max_bytes=10_000)
    for i in range(1, 10):
        b.add(rec(i))
    assert b.due(100.0, interval_s=1.0, max_records=10, max_bytes=10_000)
    assert (b.first_offset, b.last_offset) == (0, 9)
    assert b.body().count(b"\n") == 10


def test_sink_config_from_repo_is_valid() -> None:
    cfg = SinkConfig.load(repo_root() / "bronze" / "sink.json", {"topic_prefix": "cdc", "schema": "m"})
    assert cfg.topics_regex.startswith("^cdc")
    assert cfg.flush_interval_ms > 0


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"flush.intervall.ms": "1"}, "unknown key 'flush.intervall.ms'"),
        ({"flush.max.records": "many"}, "key 'flush.max.records' must be int"),
        ({"topics.regex": "cdc.*"}, "must start with"),
    ],
)
def test_sink_config_errors_name_the_key(tmp_path: Path, patch: dict[str, str], message: str) -> None:
    doc = json.loads((repo_root() / "bronze" / "sink.json").read_text())
    doc.update(patch)
    f = tmp_path / "sink.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=message):
        SinkConfig.load(f, {"topic_prefix": "cdc", "schema": "m"})

"""Bronze object names and the sink connector's config as the Python side reads them."""

import gzip
import json
from pathlib import Path

import pytest

from lakehouse.config.paths import repo_root
from lakehouse.config.render import load_connector
from lakehouse.errors import ConfigError
from lakehouse.pipeline.bronze.connector import SINK_CONNECTOR, SinkSettings
from lakehouse.pipeline.bronze.format import is_object, lines_of, object_key, object_range

VALUES = {
    "topic_prefix": "cdc",
    "minio_endpoint": "http://127.0.0.1:29000",
    "bucket": "lakehouse",
    "bronze_prefix": "bronze",
    "connect_secrets_file": "/tmp/secrets.properties",
    "tasks": 1,
}


def test_object_key_lists_per_topic_and_sorts_by_offset() -> None:
    a = object_key("bronze", "cdc.movielens.movies", 0, 9, 9)
    b = object_key("bronze", "cdc.movielens.movies", 0, 10, 12)
    assert a.startswith("bronze/cdc.movielens.movies/partition=0/")
    assert a.endswith(".jsonl.gz")  # the connector compresses by default
    assert a < b  # zero-padded: lexical order is offset order


def test_rewritten_batch_with_more_records_gets_a_new_name() -> None:
    same = object_key("bronze", "t", 0, 10, 12)
    assert same == object_key("bronze", "t", 0, 10, 12)
    assert object_key("bronze", "t", 0, 10, 15) != same


@pytest.mark.parametrize("compressed", [True, False])
def test_object_range_reads_both_the_compressed_and_the_older_plain_names(compressed: bool) -> None:
    key = object_key("bronze", "cdc.m.movies", 2, 7, 19, compressed=compressed)
    assert is_object(key)
    assert object_range(key) == ("cdc.m.movies", 2, 7, 19)
    assert object_range(key + ".tmp") is None
    assert not is_object(key + ".tmp")


def test_lines_of_gunzips_by_name() -> None:
    body = b'{"offset":1}\n{"offset":2}\n'
    assert lines_of("a/t+0+1-2.jsonl.gz", gzip.compress(body)) == [b'{"offset":1}', b'{"offset":2}']
    assert lines_of("a/t+0+1-2.jsonl", body) == [b'{"offset":1}', b'{"offset":2}']


def test_sink_connector_from_repo_is_read_once_for_everyone() -> None:
    sink = SinkSettings.load(repo_root() / SINK_CONNECTOR, VALUES, "bronze")
    assert sink.name == "lakehouse-bronze-sink"
    assert sink.topics_regex == r"^cdc\..+"
    assert sink.group_id == "lakehouse-bronze"  # the group the Python sink used: offsets carry over
    assert sink.flush_interval_ms == 1000
    _, config = load_connector(repo_root() / SINK_CONNECTOR, VALUES)
    assert config["file.compression.type"] == "gzip"  # what silver and the readers expect by default


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"topics.regex": "cdc.*"}, "'topics.regex' must start with"),
        ({"file.name.prefix": "raw/"}, "'file.name.prefix' must be 'bronze/'"),
        ({"file.flush.interval.ms": "soon"}, "'file.flush.interval.ms' must be an integer"),
        ({"tasks.max": 3}, "'tasks.max' must be a string"),
    ],
)
def test_sink_connector_errors_name_the_file_and_key(
    tmp_path: Path, patch: dict[str, object], message: str
) -> None:
    doc = json.loads((repo_root() / SINK_CONNECTOR).read_text())
    doc["config"].update(patch)
    f = tmp_path / "bronze-sink.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=message) as err:
        SinkSettings.load(f, VALUES, "bronze")
    assert str(f) in str(err.value)

"""The bronze S3 sink connector (connect/s3-sink) on the real stack: Kafka Connect, MinIO.

Each test registers a probe instance of the connector from connect/bronze-sink.json — its own
topic (outside the CDC pattern, so silver never reads it), object prefix, consumer group and
dead-letter topic — and removes it afterwards. The CDC path itself (order, content, down/up,
MinIO stopped) is tested through the registered sink in test_spine.py.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from lakehouse.config.render import load_connector
from lakehouse.launcher import connectors
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.connector import SINK_CONNECTOR, sink_values
from lakehouse.pipeline.bronze.format import object_range


@dataclass(frozen=True)
class Probe:
    name: str
    topic: str
    prefix: str
    dlq: str


def _objects(stack: Stack, prefix: str) -> dict[str, bytes]:
    mc = stack.minio.client()
    out = {}
    for o in mc.list_objects(stack.s.bucket, prefix=prefix, recursive=True):
        resp = mc.get_object(stack.s.bucket, o.object_name)
        try:
            out[o.object_name] = resp.read()
        finally:
            resp.close()
            resp.release_conn()
    return out


def _lines(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    lines = []
    for key, body in _objects(stack, prefix).items():
        assert key.endswith(".jsonl.gz"), key
        lines += [json.loads(x) for x in gzip.decompress(body).splitlines()]
    return lines


@pytest.fixture
def probe(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Probe]:
    """A probe sink connector on a new topic; `request.param` = (partitions, tasks.max)."""
    partitions, tasks = getattr(request, "param", (1, 1))
    tag = uuid.uuid4().hex[:8]
    p = Probe(f"bronze-probe-{tag}", f"probe.bronze.{tag}", f"probe-{tag}/", f"probe-dlq-{tag}")
    admin = AdminClient({"bootstrap.servers": stack.s.kafka_bootstrap})
    admin.create_topics([NewTopic(p.topic, partitions, 1)])[p.topic].result(30)
    _, config = load_connector(stack.s.root / SINK_CONNECTOR, sink_values(stack.s))
    del config["topics.regex"]
    config |= {
        "topics": p.topic,
        "tasks.max": str(tasks),
        "file.name.prefix": p.prefix,
        "consumer.override.group.id": p.name,
        "errors.deadletterqueue.topic.name": p.dlq,
    }
    url = stack.s.connect_url
    r = httpx.put(f"{url}/connectors/{p.name}/config", json=config, timeout=30)
    assert r.status_code < 300, r.text
    try:
        connectors.wait_running(url, p.name, 120)
        yield p
    finally:
        httpx.delete(f"{url}/connectors/{p.name}", timeout=30)
        admin.delete_topics([p.topic, p.dlq])


def _produce(stack: Stack, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": stack.s.kafka_bootstrap, "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def _wait(what: str, check: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} after {timeout:.0f}s"
        time.sleep(1)


def test_records_land_gzipped_byte_exact_and_named_by_offsets(stack: Stack, probe: Probe) -> None:
    values = [b'{"price":1.50,"title":"Am\xc3\xa9lie","n":[1, 2]}', b'{"deep":{"a":null}}', b"[1,2,3]"]
    _produce(stack, probe.topic, [(b'{"id":%d}' % i, v) for i, v in enumerate(values)])
    _wait("3 records in bronze", lambda: len(_lines(stack, probe.prefix)) == 3)
    objects = _objects(stack, probe.prefix)
    text = b"".join(gzip.decompress(b) for b in objects.values())
    # the value is spliced in as written (1.50 stays 1.50, no re-encoding), one line per record
    assert b'"value":{"price":1.50,"title":"Am\xc3\xa9lie","n":[1, 2]}' in text
    lines = sorted(_lines(stack, probe.prefix), key=lambda x: x["offset"])
    assert [x["offset"] for x in lines] == [0, 1, 2]
    assert [x["key"] for x in lines] == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert all(x["topic"] == probe.topic and x["partition"] == 0 for x in lines)
    assert all(isinstance(x["timestamp"], int) for x in lines)
    for key in objects:  # the offset range in each name is exactly the offsets it holds
        r = object_range(key)
        assert r is not None and r[0] == probe.topic
        held = [x["offset"] for x in json_lines(objects[key])]
        assert (r[2], r[3]) == (min(held), max(held))


def json_lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(x) for x in gzip.decompress(body).splitlines()]


def test_a_record_that_is_not_json_is_kept_in_bronze_with_its_bytes(stack: Stack, probe: Probe) -> None:
    """One rule for both of silver's sources: a record whose value is not JSON is a bronze line
    carrying its bytes (`value_raw_b64`), exactly as silver encodes it when it reads Kafka, and
    silver quarantines it from either — a rebuild from bronze lacks nothing live silver refused.
    (The dead-letter topic is left for records that cannot be a line at all: Surefire tests.)"""
    poison = b"\xff\xfe not json"
    _produce(stack, probe.topic, [(b'{"id":1}', b'{"ok":true}'), (b'{"id":2}', poison)])
    _produce(stack, probe.topic, [(b'{"id":3}', b'{"ok":"after"}')])
    _wait("every record in bronze", lambda: len(_lines(stack, probe.prefix)) == 3)
    lines = {x["offset"]: x for x in _lines(stack, probe.prefix)}
    assert sorted(lines) == [0, 1, 2]
    assert lines[1]["value"] is None
    assert base64.b64decode(lines[1]["value_raw_b64"]) == poison  # byte-exact
    assert lines[2]["value"] == {"ok": "after"}
    st = connectors.status(stack.s.connect_url, probe.name) or {}
    assert [t["state"] for t in st["tasks"]] == ["RUNNING"]


@pytest.mark.parametrize("probe", [(3, 3)], indirect=True)
def test_three_partitions_three_tasks_land_every_record_once(stack: Stack, probe: Probe) -> None:
    st = connectors.status(stack.s.connect_url, probe.name) or {}
    assert [t["state"] for t in st["tasks"]] == ["RUNNING"] * 3
    n = 600
    _produce(stack, probe.topic, [(b'{"id":%d}' % i, b'{"n":%d}' % i) for i in range(n)])
    _wait(f"{n} records in bronze", lambda: len(_lines(stack, probe.prefix)) >= n, timeout=120)
    lines = _lines(stack, probe.prefix)
    seen = [(x["partition"], x["offset"]) for x in lines]
    assert len(seen) == len(set(seen)) == n  # each record once
    assert {x["partition"] for x in lines} == {0, 1, 2}
    assert sorted(x["value"]["n"] for x in lines) == list(range(n))
    # per-key order is Kafka's: within a partition, offsets and values rise together
    for part in (0, 1, 2):
        mine = sorted((x for x in lines if x["partition"] == part), key=lambda x: x["offset"])
        assert [x["offset"] for x in mine] == list(range(len(mine)))

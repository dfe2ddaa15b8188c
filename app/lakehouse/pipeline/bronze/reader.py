"""Read bronze back: list one topic's objects and decode their lines (demo, tests, debugging)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lakehouse.pipeline.bronze.format import is_object, lines_of


@dataclass(frozen=True)
class BronzeEvent:
    object_key: str
    topic: str
    offset: int
    key: Any
    value: Any

    @property
    def payload(self) -> dict[str, Any]:
        """The Debezium envelope's payload (op, before, after, source, ts_ms, transaction)."""
        if not isinstance(self.value, dict):
            return {}
        inner = self.value.get("payload", self.value)
        return inner if isinstance(inner, dict) else {}

    @property
    def op(self) -> str | None:
        return self.payload.get("op")

    @property
    def lsn(self) -> int | None:
        source = self.payload.get("source") or {}
        lsn = source.get("lsn")
        return int(lsn) if lsn is not None else None


def topic_prefix(bronze_prefix: str, topic: str) -> str:
    return f"{bronze_prefix}/{topic}/"


def read_topic(client: Any, bucket: str, bronze_prefix: str, topic: str) -> Iterator[BronzeEvent]:
    """Events of one topic in offset order (objects are named by their first offset)."""
    objects = sorted(
        (
            o
            for o in client.list_objects(bucket, prefix=topic_prefix(bronze_prefix, topic), recursive=True)
            if is_object(o.object_name)
        ),
        key=lambda o: o.object_name,
    )
    for obj in objects:
        for rec in read_records(client, bucket, obj.object_name):
            yield BronzeEvent(obj.object_name, rec["topic"], rec["offset"], rec["key"], rec["value"])


def read_records(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The JSON records (one per line) of one bronze object."""
    resp = client.get_object(bucket, key)
    try:
        body = resp.read()
    finally:
        resp.close()
        resp.release_conn()
    return [json.loads(line) for line in lines_of(key, body)]

"""Pure encoding of Kafka records into bronze JSON lines and object keys (no I/O)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


def _embed(name: str, raw: bytes | None, out: dict[str, Any]) -> None:
    """Embed JSON payloads as JSON; anything else is kept byte-exact (base64) for quarantine."""
    if raw is None:
        out[name] = None
        return
    try:
        out[name] = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        out[name] = None
        out[f"{name}_raw_b64"] = base64.b64encode(raw).decode("ascii")


def encode(record: Record) -> bytes:
    """One bronze line: topic, partition, offset, timestamp, key, value (with its schema), headers."""
    line: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
    }
    _embed("key", record.key, line)
    _embed("value", record.value, line)
    if record.headers:
        line["headers"] = {
            k: (base64.b64encode(v).decode("ascii") if v is not None else None) for k, v in record.headers
        }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def object_key(prefix: str, topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    """`<prefix>/<topic>/partition=<p>/<topic>+<p>+<first offset>-<last offset>.jsonl`.

    One topic (= one source table) lists on its own under `<prefix>/<topic>/`. The name is
    fixed by the offset range: a batch rewritten after a crash with the same records overwrites
    itself, and one with more records gets a new name. Readers that track files by name (Spark's
    file source) therefore never miss records that a rewritten object gained.
    """
    name = f"{topic}+{partition}+{first_offset:020d}-{last_offset:020d}.jsonl"
    return f"{prefix}/{topic}/partition={partition}/{name}"


#: an `object_key` name: topic, partition, first and last offset (also a Java regex, for Spark)
OBJECT_NAME = r"(?:^|/)([^/+]+)\+(\d+)\+(\d+)-(\d+)\.jsonl$"
_OBJECT_NAME = re.compile(OBJECT_NAME)


def object_range(key: str) -> tuple[str, int, int, int] | None:
    """(topic, partition, first offset, last offset) of an object `object_key` named (a key, a path
    or a URI); None for any other name."""
    m = _OBJECT_NAME.search(key)
    return None if m is None else (m[1], int(m[2]), int(m[3]), int(m[4]))


@dataclass
class Batch:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    lines: list[bytes]
    size: int
    opened_at: float

    @classmethod
    def start(cls, record: Record, now: float) -> Batch:
        line = encode(record)
        return cls(record.topic, record.partition, record.offset, record.offset, [line], len(line), now)

    def add(self, record: Record) -> None:
        line = encode(record)
        self.lines.append(line)
        self.size += len(line)
        self.last_offset = record.offset

    def due(self, now: float, interval_s: float, max_records: int, max_bytes: int) -> bool:
        return now - self.opened_at >= interval_s or len(self.lines) >= max_records or self.size >= max_bytes

    def body(self) -> bytes:
        return b"".join(self.lines)

"""Where silver's stream reads from — bronze objects or the Kafka topics — and the hand-over.

Bronze is the system of record: `reset-silver` rebuilds silver from it alone. The live stream
reads the topics with Spark's Kafka source (docs/benchmarks.md, tenth round: no listing of a
growing bronze each trigger, no Kafka → bronze hop). Both feed the same `BatchProcessor`.

The stream runs in *epochs*: one streaming query over one source, with its own checkpoint.
- A **bronze** epoch reads the bronze objects with Spark's file source, `availableNow`, under the
  job's first checkpoint (`_checkpoints/silver`). Object names carry their offset range
  (`bronze.format.object_key`), so the epoch knows, per topic and partition, the last offset it
  applied: `applied`, saved after each batch.
- A **kafka** epoch then reads the topics from exactly the next offset of every partition bronze
  had (`starting_offsets`; partitions bronze never saw from the earliest), under a checkpoint of its
  own. Nothing is read twice, nothing skipped.
- When the job starts in a kafka epoch whose next offsets Kafka no longer holds (retention passed
  them while silver was down: `gaps`), a bronze epoch applies what bronze holds past them —
  objects wholly before them are skipped by name — and a new kafka epoch follows.

Silver's batch number is the epoch's `base` plus the query's batch id: bases keep numbers rising
across epochs, because Delta's idempotent appends (tombstones, quarantine) are keyed by them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline.bronze.format import OBJECT_NAME, object_range
from lakehouse.pipeline.silver.store import Layout, hadoop_path, read_text, write_text

log = logging.getLogger("lakehouse.silver")

#: topic → partition → offset
Offsets = dict[str, dict[int, int]]

BRONZE, KAFKA = "bronze", "kafka"


@dataclass
class Epoch:
    n: int
    source: str
    checkpoint: str
    #: silver batch number = base + the query's batch id
    base: int = 0
    #: the last offset per partition applied by this epoch and those before it
    applied: Offsets = field(default_factory=dict)
    #: bronze epochs after a kafka one: objects that end at or before these offsets were applied
    skip: Offsets = field(default_factory=dict)
    #: a kafka epoch ran a batch (its checkpoint must exist from then on)
    ran: bool = False

    def to_json(self) -> str:
        def out(o: Offsets) -> dict[str, dict[str, int]]:
            return {t: {str(p): v for p, v in sorted(ps.items())} for t, ps in sorted(o.items())}

        body = {
            "epoch": self.n,
            "source": self.source,
            "checkpoint": self.checkpoint,
            "base": self.base,
            "applied": out(self.applied),
            "skip": out(self.skip),
            "ran": self.ran,
        }
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Epoch:
        raw = json.loads(text)
        return cls(
            n=int(raw["epoch"]),
            source=str(raw["source"]),
            checkpoint=str(raw["checkpoint"]),
            base=int(raw["base"]),
            applied=offsets_from_json(raw["applied"]),
            skip=offsets_from_json(raw["skip"]),
            ran=bool(raw["ran"]),
        )


def offsets_from_json(raw: dict[str, Any]) -> Offsets:
    """`{"topic": {"0": 42}}` (Spark's and our JSON) → Offsets."""
    return {str(t): {int(p): int(v) for p, v in ps.items()} for t, ps in raw.items()}


# ---- pure rules


def raised(a: Offsets, b: Offsets) -> Offsets:
    """Per partition, the larger offset of the two."""
    out = {t: dict(ps) for t, ps in a.items()}
    for t, ps in b.items():
        mine = out.setdefault(t, {})
        for p, v in ps.items():
            mine[p] = max(v, mine.get(p, v))
    return out


def object_maxima(files: Iterable[str]) -> Offsets:
    """The last offset per partition in these bronze objects (names not from the sink are left out)."""
    out: Offsets = {}
    for f in files:
        r = object_range(f)
        if r is not None:
            topic, partition, _, last = r
            out.setdefault(topic, {})[partition] = max(last, out.get(topic, {}).get(partition, last))
    return out


def covered_column(file: Column, skip: Offsets) -> Column:
    """Whether a line's file (`file`, a name column) is a bronze object whose every record is at or
    before `skip`: applied already. A Spark expression, no job; other names are never covered."""
    ends = [(f"{t}+{p}", v) for t, ps in sorted(skip.items()) for p, v in sorted(ps.items())]
    if not ends:
        return F.lit(False)
    point = F.create_map(*[c for k, v in ends for c in (F.lit(k), F.lit(v).cast("long"))])
    part = F.concat(
        F.regexp_extract(file, OBJECT_NAME, 1), F.lit("+"), F.regexp_extract(file, OBJECT_NAME, 2)
    )
    last = F.regexp_extract(file, OBJECT_NAME, 4)
    return F.coalesce((last != "") & (last.cast("long") <= point[part]), F.lit(False))


def starting_offsets(applied: Offsets, partitions: dict[str, list[int]]) -> dict[str, dict[str, int]]:
    """Spark's `startingOffsets` for every partition the pattern matches now: right after the last
    applied offset, or the earliest (-2) for a partition nothing was applied from."""
    out: dict[str, dict[str, int]] = {}
    for t, ps in sorted(partitions.items()):
        mine = applied.get(t, {})
        out[t] = {str(p): mine[p] + 1 if p in mine else -2 for p in sorted(ps)}
    return out


def gaps(needed: Offsets, earliest: Offsets) -> list[str]:
    """Partitions where Kafka no longer holds the next offset silver needs, described."""
    return [
        f"{t}[{p}]: needs {n}, holds from {earliest[t][p]}"
        for t, ps in sorted(needed.items())
        for p, n in sorted(ps.items())
        if p in earliest.get(t, {}) and earliest[t][p] > n
    ]


def before(next_offsets: Offsets) -> Offsets:
    """Next offsets to read → the last offsets applied."""
    return {t: {p: v - 1 for p, v in ps.items()} for t, ps in next_offsets.items()}


# ---- I/O: the state object, Spark's checkpoint logs, the broker


def batch_ids(spark: SparkSession, checkpoint: str, log_name: str) -> list[int]:
    """Batch ids in a checkpoint's `offsets` or `commits` log (empty when there is none)."""
    p, fs = hadoop_path(spark, f"{checkpoint}/{log_name}")
    if not fs.exists(p):
        return []
    return sorted(int(n) for s in fs.listStatus(p) if (n := s.getPath().getName()).isdigit())


def committed_end(spark: SparkSession, checkpoint: str) -> Offsets | None:
    """The Kafka offsets after the last committed batch of a kafka epoch's query (None: none yet).
    An offset log entry is a version line, the batch's metadata, then one line per source."""
    done = batch_ids(spark, checkpoint, "commits")
    if not done:
        return None
    text = read_text(spark, f"{checkpoint}/offsets/{done[-1]}") or ""
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("v"):
        raise ValueError(f"unexpected offset log entry {checkpoint}/offsets/{done[-1]}: {text[:200]!r}")
    return offsets_from_json(json.loads(lines[2]))


class Epochs:
    """The current epoch, kept in `_state/source.json` beside silver."""

    def __init__(self, spark: SparkSession, layout: Layout, checkpoint: str) -> None:
        self.spark, self.layout, self.checkpoint = spark, layout, checkpoint

    def current(self) -> Epoch:
        text = read_text(self.spark, self.layout.source_state)
        return Epoch.from_json(text) if text else Epoch(0, BRONZE, self.checkpoint)

    def save(self, epoch: Epoch) -> None:
        write_text(self.spark, self.layout.source_state, epoch.to_json())

    def needed(self, epoch: Epoch) -> Offsets:
        """A kafka epoch's next offsets: after its last committed batch, else its hand-over point."""
        end = committed_end(self.spark, epoch.checkpoint)
        return raised({t: {p: v + 1 for p, v in ps.items()} for t, ps in epoch.applied.items()}, end or {})

    def begin(self, prev: Epoch, source: str, applied: Offsets | None = None) -> Epoch:
        """The epoch after `prev`. A bronze one resumes the bronze query (its checkpoint), skipping
        objects at or before `applied`; a kafka one gets a new checkpoint."""
        used = batch_ids(self.spark, prev.checkpoint, "offsets")
        last = prev.base + (used[-1] if used else -1)  # a batch started but not committed counts
        if source == BRONZE:
            checkpoint, skip = self.checkpoint, applied or {}
        else:
            checkpoint, skip = f"{self.checkpoint}-{KAFKA}-{prev.n + 1}", {}
        done = batch_ids(self.spark, checkpoint, "commits")
        next_id = done[-1] + 1 if done else 0  # the id the query runs next (re-run or new)
        epoch = Epoch(
            prev.n + 1,
            source,
            checkpoint,
            base=last + 1 - next_id,
            applied=raised(prev.applied, applied or {}),
            skip=skip,
        )
        self.save(epoch)
        log.info(
            "source: epoch %d reads %s (checkpoint %s, batch numbers from %d)",
            epoch.n,
            source,
            checkpoint,
            last + 1,
        )
        return epoch


def kafka_partitions(bootstrap: str, pattern: str, timeout_s: float = 30) -> dict[str, dict[int, int]]:
    """Every partition of the topics matching `pattern`, with the earliest offset Kafka holds."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakehouse-silver-offsets"})
    try:
        meta = consumer.list_topics(timeout=timeout_s).topics
        out: dict[str, dict[int, int]] = {}
        for topic in sorted(t for t in meta if re.match(pattern, t)):
            for p in sorted(meta[topic].partitions):
                low, _ = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
                out.setdefault(topic, {})[p] = int(low)
        return out
    finally:
        consumer.close()

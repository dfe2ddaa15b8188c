"""The bronze sink: Kafka → JSON-lines objects in MinIO, at least once.

Offsets are committed only after the object holding those records is stored, so a failed
write (MinIO down, network) is retried with backoff and never advances the offset; a crash
re-reads from the last committed offset. Duplicates are possible and expected downstream
(silver keeps the highest source position per key).
"""

from __future__ import annotations

import io
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import Counter, Gauge

from .config import SinkConfig
from .format import Batch, Record

log = logging.getLogger("lakehouse.bronze")

RECORDS = Counter("lakehouse_bronze_records", "Records written to bronze", ["topic"])
OBJECTS = Counter("lakehouse_bronze_objects", "Objects written to bronze", ["topic"])
WRITE_ERRORS = Counter("lakehouse_bronze_write_errors", "Failed bronze object writes (retried)")
LAST_FLUSH = Gauge("lakehouse_bronze_last_flush_timestamp_seconds", "Time of the last stored batch")
READY = Gauge("lakehouse_bronze_sink_ready", "1 once the sink polls its subscription")

Put = Callable[[str, bytes], None]


def put_to_minio(client: Any, bucket: str) -> Put:
    def put(key: str, body: bytes) -> None:
        client.put_object(bucket, key, io.BytesIO(body), len(body), content_type="application/x-ndjson")

    return put


class BronzeSink:
    def __init__(self, cfg: SinkConfig, consumer_conf: dict[str, Any], put: Put) -> None:
        self.cfg = cfg
        self.put = put
        self.stopping = threading.Event()
        self.batches: dict[tuple[str, int], Batch] = {}
        self.consumer = Consumer(
            {
                **consumer_conf,
                "group.id": cfg.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": cfg.topic_metadata_refresh_interval_ms,
                "max.poll.interval.ms": 600_000,
            }
        )

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Store what we hold for the revoked partitions before another member takes them.
        owned = {(p.topic, p.partition) for p in partitions}
        self._flush([k for k in self.batches if k in owned])

    def run(self) -> None:
        self.consumer.subscribe([self.cfg.topics_regex], on_revoke=self._on_revoke)
        interval = self.cfg.flush_interval_ms / 1000
        try:
            while not self.stopping.is_set():
                msg = self.consumer.poll(0.2)
                READY.set(1)
                now = time.monotonic()
                if msg is not None:
                    self._accept(msg, now)
                due = [
                    k
                    for k, b in self.batches.items()
                    if b.due(now, interval, self.cfg.flush_max_records, self.cfg.flush_max_bytes)
                ]
                if due:
                    self._flush(due)
            self._flush(list(self.batches))
        finally:
            self.consumer.close()

    def _accept(self, msg: Any, now: float) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return
            if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                # a regex subscription before the first matching topic exists: not an error
                log.debug("kafka: %s", err)
                return
            if err.fatal() or not err.retriable():
                raise KafkaException(err)
            log.warning("kafka: %s (retrying)", err)
            return
        ts_type, ts = msg.timestamp()
        record = Record(
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            timestamp_ms=ts if ts_type != 0 else None,
            key=msg.key(),
            value=msg.value(),
            headers=tuple(msg.headers() or ()),
        )
        slot = (record.topic, record.partition)
        batch = self.batches.get(slot)
        if batch is None:
            self.batches[slot] = Batch.start(record, now)
        else:
            batch.add(record)

    def _store(self, key: str, body: bytes) -> None:
        backoff = 0.5
        while True:
            try:
                self.put(key, body)
                return
            except Exception as exc:  # any storage failure: retry, never skip, never commit
                WRITE_ERRORS.inc()
                log.error("bronze write %s failed: %s — retrying in %.1fs", key, exc, backoff)
                if self.stopping.wait(backoff):
                    raise RuntimeError(f"stopped while {key} was not yet stored") from exc
                backoff = min(backoff * 2, self.cfg.retry_backoff_max_ms / 1000)

    def _flush(self, slots: list[tuple[str, int]]) -> None:
        from .format import object_key

        commits = []
        for slot in slots:
            batch = self.batches.pop(slot)
            key = object_key(
                self.cfg.prefix, batch.topic, batch.partition, batch.first_offset, batch.last_offset
            )
            self._store(key, batch.body())
            RECORDS.labels(batch.topic).inc(len(batch.lines))
            OBJECTS.labels(batch.topic).inc()
            commits.append(TopicPartition(batch.topic, batch.partition, batch.last_offset + 1))
        if commits:
            try:
                self.consumer.commit(offsets=commits, asynchronous=False)
            except KafkaException as exc:
                # e.g. a rebalance took the partition: the records are stored but will be read
                # and stored again by the new owner — a duplicate, never a loss.
                log.warning("offset commit failed (records will be re-read): %s", exc)
            LAST_FLUSH.set_to_current_time()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

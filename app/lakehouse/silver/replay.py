"""`lakehouse quarantine replay`, job side: the silver job is the only writer of silver and of the
quarantine, so a replay is a request the job picks up between micro-batches.

The CLI writes `_state/replay/request.json` (`{"id", "table"}`); the next micro-batch applies the
table's quarantined lines together with its bronze lines (BatchProcessor.process, `replay=`),
removes the quarantine rows they came from (those still refused are quarantined again by that
batch) and answers in `_state/replay/result.json` (`{"id", "table", "replayed", "still_quarantined"}`),
then deletes the request. A crash in between leaves the request, and the replay runs again:
silver's MERGE is position-guarded, so applying an event twice changes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from .batch import Replay
from .store import Layout, Store

#: how often the job looks for a request (one object-store HEAD)
POLL_EVERY_S = 2.0


@dataclass(frozen=True)
class Request:
    id: str
    table: str | None

    @classmethod
    def from_json(cls, body: str) -> Request:
        raw = json.loads(body)
        table = raw.get("table")
        return cls(str(raw["id"]), str(table) if table else None)

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "table": self.table})


def _fs(spark: SparkSession, path: str) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p, p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def read_text(spark: SparkSession, path: str) -> str | None:
    p, fs = _fs(spark, path)
    if not fs.exists(p):
        return None
    stream = fs.open(p)
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, body: str) -> None:
    p, fs = _fs(spark, path)
    out = fs.create(p, True)
    try:
        out.write(bytearray(body.encode()))
    finally:
        out.close()


class Replays:
    def __init__(self, spark: SparkSession, layout: Layout) -> None:
        self.spark, self.layout = spark, layout
        self.checked = 0.0

    def poll(self) -> Request | None:
        """The waiting request, looked for at most every POLL_EVERY_S."""
        if time.monotonic() - self.checked < POLL_EVERY_S:
            return None
        self.checked = time.monotonic()
        body = read_text(self.spark, self.layout.replay_request)
        return Request.from_json(body) if body else None

    @staticmethod
    def replay(request: Request) -> Replay:
        return Replay(request.table)

    def done(self, request: Request, store: Store, replayed: int) -> None:
        left = store.quarantined(request.table).count()
        result = {"id": request.id, "table": request.table, "replayed": replayed, "still_quarantined": left}
        write_text(self.spark, self.layout.replay_result, json.dumps(result))
        p, fs = _fs(self.spark, self.layout.replay_request)
        fs.delete(p, False)

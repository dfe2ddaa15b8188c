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

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.outcome import Replay
from lakehouse.pipeline.silver.store import Layout, Store, delete_object, read_text, write_text

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
        delete_object(self.spark, self.layout.replay_request)

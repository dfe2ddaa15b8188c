"""`lakehouse quarantine replay`, job side: a request the job picks up between micro-batches
(mailbox.py).

The CLI asks with `{"id", "table"}`; the next micro-batch applies the table's quarantined lines
together with its bronze lines (BatchProcessor.process, `replay=`), removes the quarantine rows
they came from (those still refused are quarantined again by that batch) and answers
`{"id", "table", "replayed", "still_quarantined"}`. A crash in between leaves the request, and the
replay runs again: applying an event twice changes nothing (silver's position guard).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.mailbox import Mailbox
from lakehouse.pipeline.silver.outcome import Replay
from lakehouse.pipeline.silver.store import Layout, Store

#: the mailbox's name (`_state/replay/`)
NAME = "replay"


@dataclass(frozen=True)
class Request:
    id: str
    table: str | None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Request:
        table = raw.get("table")
        return cls(str(raw["id"]), str(table) if table else None)

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "table": self.table}


class Replays:
    def __init__(self, spark: SparkSession, layout: Layout) -> None:
        self.box = Mailbox(spark, layout, NAME)

    def poll(self) -> Request | None:
        raw = self.box.poll()
        return Request.of(raw) if raw else None

    @staticmethod
    def replay(request: Request) -> Replay:
        return Replay(request.table)

    def done(self, request: Request, store: Store, replayed: int) -> None:
        left = store.quarantined(request.table).count()
        self.box.answer(request.id, {"table": request.table, "replayed": replayed, "still_quarantined": left})

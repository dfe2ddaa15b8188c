"""Requests the CLI leaves for the silver job, and the job's answers (`quarantine replay`,
`compact`): the job is the only writer of silver, so a command that must write it asks the job.

A request is a small JSON object `{"id", …}` at `_state/<name>/request.json`; the job answers at
`_state/<name>/result.json` with the request's `id`, then deletes the request. A crash in between
leaves the request, and the job acts on it again: every request it takes is idempotent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.pipeline.silver.store import Layout, delete_object, read_text, write_text

#: how often the job looks for a request (one object-store HEAD)
POLL_EVERY_S = 2.0


@dataclass
class Mailbox:
    spark: SparkSession
    layout: Layout
    name: str
    every: float = POLL_EVERY_S
    _checked: float = field(default=float("-inf"))

    def poll(self) -> dict[str, Any] | None:
        """The waiting request, looked for at most every `every` seconds."""
        if time.monotonic() - self._checked < self.every:
            return None
        self._checked = time.monotonic()
        body = read_text(self.spark, self.layout.request(self.name))
        return dict(json.loads(body)) if body else None

    def answer(self, request_id: str, result: dict[str, Any]) -> None:
        write_text(self.spark, self.layout.result(self.name), json.dumps({**result, "id": request_id}))
        delete_object(self.spark, self.layout.request(self.name))

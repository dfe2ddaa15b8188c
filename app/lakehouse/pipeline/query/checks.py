"""Cross-table expectations (spark_streaming/expectations.yml `cross_table`), run in Trino.

Each rule is a query returning the rows that break it; a check counts them and keeps one as a
sample. The monitor runs each rule every `every_s` seconds; `lakehouse expectations` runs them now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lakehouse.clients.trino_client import Trino
from lakehouse.config.render import render_text
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.query.views import SCHEMAS
from lakehouse.pipeline.silver.expectations import CrossRule


@dataclass(frozen=True)
class CrossResult:
    rule: CrossRule
    failing: int | None  # None: the query failed (error says why)
    sample: str | None = None  # one failing row as JSON
    error: str | None = None
    at: float | None = None  # epoch seconds of the run (set by the monitor)


def statements(rule: CrossRule) -> tuple[str, str]:
    """The rule's count and sample queries, its placeholders filled."""
    rows = render_text(rule.rows, SCHEMAS, f"cross_table rule {rule.name}")
    return f"SELECT count(*) FROM (\n{rows}\n) AS failing", f"{rows}\nLIMIT 1"


def run(trino: Trino, rule: CrossRule, *, sample: bool = True) -> CrossResult:
    try:
        count_sql, sample_sql = statements(rule)
        failing = int(trino.scalar(count_sql))
        row = None
        if sample and failing:
            got = trino.query(sample_sql)
            if got.rows:
                row = json.dumps(dict(zip(got.columns, got.rows[0], strict=True)), default=_text)
        return CrossResult(rule, failing, row)
    except LakehouseError as exc:
        return CrossResult(rule, None, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _text(value: Any) -> str:
    return str(value)


def due(last_run: float | None, now: float, rule: CrossRule) -> bool:
    """Whether the monitor runs the rule now: first poll with Trino up, or `every_s` after the last
    run (failed runs too: a broken query is not retried every poll)."""
    return last_run is None or now - last_run >= rule.every_s

"""The page's "pipeline now" strip: per hop, the median over the last minute of what the stack's
own metrics measured, read from Prometheus (PromQL `quantile_over_time`), so a visitor sees the
pipeline breathing without editing anything. Debezium's heartbeat is a change every 30 s, so an
idle stack still has changes to take the median of.

Each hop is a time since the change's Postgres commit, as on an edit's timeline:
- kafka: per silver micro-batch, its newest applied change's commit → that change's Kafka record
  time (`lakehouse_silver_source_to_kafka_seconds`);
- silver: the same change's commit → the batch's Delta commit (`lakehouse_silver_source_lag_seconds`).
Both hops are of the same change, so the first is never the larger.
Bronze and the base are off the freshness path and have no per-change metric; Trino reads the
newest Delta commit at query time, so a change is visible to it once silver has committed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

#: the window each median is over (PromQL range)
WINDOW = "1m"

#: hop → PromQL: the median of its samples over the window (max over series: one connector
#: and one silver job; with several, the slowest)
QUERIES = {
    "kafka": f"max(quantile_over_time(0.5, lakehouse_silver_source_to_kafka_seconds[{WINDOW}]))",
    "silver": f"max(quantile_over_time(0.5, lakehouse_silver_source_lag_seconds[{WINDOW}]))",
}
#: changes applied to silver per second over the window (the heartbeat included)
RATE = f"sum(rate(lakehouse_silver_events_applied_total[{WINDOW}]))"


@dataclass(frozen=True)
class Pulse:
    """Reads the strip's numbers from Prometheus's HTTP API (no credentials: it listens on the
    loopback or the compose network only)."""

    prometheus_url: str
    timeout_s: float = 3.0

    def _value(self, client: httpx.Client, query: str) -> float | None:
        r = client.get(f"{self.prometheus_url}/api/v1/query", params={"query": query})
        r.raise_for_status()
        result = r.json()["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value  # NaN: no samples in the window

    def now(self) -> dict[str, Any]:
        """`{"window": "1m", "hops": [{"hop", "median_s"}], "changes_per_s"}`; a hop with no
        samples has `median_s` None. `error` instead when Prometheus cannot be asked."""
        try:
            with httpx.Client(timeout=self.timeout_s) as client:
                hops = [{"hop": hop, "median_s": self._value(client, q)} for hop, q in QUERIES.items()]
                rate = self._value(client, RATE)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return {"window": WINDOW, "error": f"Prometheus: {type(exc).__name__}: {exc}".splitlines()[0]}
        return {"window": WINDOW, "hops": hops, "changes_per_s": rate}

"""`lakehouse bench throughput`: the freshness run at rising rates; the highest rate the
generator achieved (within 5 %) while the lag stayed bounded is the sustained throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakehouse.benchmark import plots
from lakehouse.benchmark.report import write_json
from lakehouse.benchmark.run import run as freshness_run
from lakehouse.launcher.stack import Stack


def run(stack: Stack, rates: list[float], duration_s: float, out_dir: Path) -> dict[str, Any]:
    steps = []
    for rate in sorted(rates):
        r = freshness_run(stack, rate, duration_s, out_dir / f"rate-{rate:g}")
        kept_up = r["achieved_rate"] >= 0.95 * rate
        steps.append(
            {
                "target_rate": rate,
                "achieved_rate": r["achieved_rate"],
                "freshness_s": r["freshness_s"],
                "lag_bounded": r["lag_bounded"],
                "sustained": bool(kept_up and r["lag_bounded"]),
                "bottleneck": r["bottleneck"],
            }
        )
    sustained = [s["achieved_rate"] for s in steps if s["sustained"]]
    result = {"duration_s": duration_s, "steps": steps, "max_sustained_rate": max(sustained, default=None)}
    write_json(out_dir / "throughput.json", result)
    plots.throughput(steps, out_dir / "throughput.png")
    return result

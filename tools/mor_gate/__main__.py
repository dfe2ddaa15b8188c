"""`python -m tools.mor_gate`: the gate's three runs side by side (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lakehouse.benchmark import plots
from lakehouse.benchmark.compare import SideJob, floor_job, side_run
from lakehouse.benchmark.observe import MARKER_TABLE, Target
from lakehouse.benchmark.results import write_json
from lakehouse.benchmark.run import run
from lakehouse.stack import Stack

from .job import PREFIX

#: the prototype's marker log, read back as the floor's: the highest `seq` (one key, only updates)
PROTO = Target("proto", "seq", "admin")


def proto_job(source_schema: str) -> SideJob:
    repo = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    return SideJob(
        "tools.mor_gate.job",
        PREFIX,
        f"{PREFIX}/{source_schema}/{MARKER_TABLE}/",
        PROTO,
        {"PYTHONPATH": path},
    )


def side(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r["freshness_s"][k] for k in ("p50", "p95", "p99", "max")} | {
        "achieved_rate": r["achieved_rate"],
        "lag_bounded": r["lag_bounded"],
        "markers": r["markers"],
        "silver_batches": r.get("silver_batches"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.mor_gate", description=__doc__)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--duration", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("artifacts/mor-gate"))
    a = ap.parse_args()
    stack = Stack()
    out: Path = a.out
    runs = {
        "silver": run(stack, a.rate, a.duration, out / "silver", a.seed),
        "log append": side_run(
            stack, proto_job(stack.s.source_schema), a.rate, a.duration, out / "proto", seed=a.seed
        ),
        "append floor": side_run(stack, floor_job("append"), a.rate, a.duration, out / "floor", seed=a.seed),
    }
    p50 = {k: r["freshness_s"]["p50"] for k, r in runs.items()}
    result = {
        "rate": a.rate,
        "duration_s": a.duration,
        "runs": {k: side(r) for k, r in runs.items()},
        "silver_over_log_p50": round(p50["silver"] / p50["log append"], 2),
        "log_over_floor_p50": round(p50["log append"] / p50["append floor"], 2),
    }
    write_json(out / "gate.json", result)
    plots.cdf(
        {f"{k} (p50 {r['freshness_s']['p50']:.1f} s)": r["freshness_samples_s"] for k, r in runs.items()},
        f"Commit → visible in Trino, {a.rate:.0f} changes/s",
        out / "gate.png",
    )
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

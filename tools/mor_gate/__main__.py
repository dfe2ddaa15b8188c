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
from lakehouse.benchmark.report import write_json
from lakehouse.benchmark.run import run
from lakehouse.launcher.stack import Stack

from .job import PREFIX, SHARED_LOG

#: the prototype's marker log, read back as the floor's: the highest `seq` (one key, only updates)
PROTO = Target("proto", "seq", "admin")
#: the shared log holds every table's rows as JSON text (other tables have no `seq`)
PROTO_SHARED = Target("proto", "CAST(json_extract_scalar(row, '$.seq') AS bigint)", "admin")


def proto_job(source_schema: str, log: str = "table") -> SideJob:
    repo = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    shared = log == "shared"
    folder = {
        "shared": f"{PREFIX}/{SHARED_LOG}/",
        # silver's merge-on-read: the marker is visible through the live view once its log has it
        "product": f"{PREFIX}/_log/{source_schema}/{MARKER_TABLE}/",
    }.get(log, f"{PREFIX}/{source_schema}/{MARKER_TABLE}/")
    return SideJob(
        "tools.mor_gate.job",
        PREFIX,
        folder,
        PROTO_SHARED if shared else PROTO,
        {"PYTHONPATH": path},
        ("--log", log),
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
    ap.add_argument("--runs", default="silver,table,floor", help="of silver, table, shared, product, floor")
    a = ap.parse_args()
    stack = Stack()
    out: Path = a.out
    names = {
        "silver": "silver",
        "table": "log per table",
        "shared": "shared log",
        "product": "silver merge-on-read",
        "floor": "append floor",
    }
    runs: dict[str, dict[str, Any]] = {}
    for name in a.runs.split(","):
        d = out / name
        if name == "silver":
            runs[names[name]] = run(stack, a.rate, a.duration, d, a.seed)
        elif name in ("table", "shared", "product"):
            job = proto_job(stack.s.source_schema, name)
            runs[names[name]] = side_run(stack, job, a.rate, a.duration, d, seed=a.seed)
        else:
            runs[names[name]] = side_run(stack, floor_job("append"), a.rate, a.duration, d, seed=a.seed)
    p50 = {k: r["freshness_s"]["p50"] for k, r in runs.items()}
    result = {
        "rate": a.rate,
        "duration_s": a.duration,
        "runs": {k: side(r) for k, r in runs.items()},
        "p50_ratios": {f"{a_} / {b}": round(p50[a_] / p50[b], 2) for a_ in p50 for b in p50 if a_ != b},
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

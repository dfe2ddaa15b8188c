"""`python -m tools.idle_cpu`: the cores each service of the running stack uses while nothing is written.

Reads each service's CPU seconds (its process tree, /proc) at the start and the end of a window
of `--seconds` and reports the difference per second of wall time: cores. Run it on an idle stack
(no generator, no edits); Debezium's heartbeat and silver's own upkeep still run, which is what it
measures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lakehouse.benchmark.footprint import tree_cpu_s
from lakehouse.benchmark.report import write_json
from lakehouse.launcher.stack import Stack


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tools.idle_cpu", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=Path("artifacts/bench/idle-cpu.json"))
    a = ap.parse_args()
    stack = Stack()
    pids = {svc.name: pid for svc in stack.services if (pid := svc.pid()) is not None}
    before = {name: tree_cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(a.seconds)
    wall = time.monotonic() - started
    cores = {name: round((tree_cpu_s(pid) - before[name]) / wall, 3) for name, pid in pids.items()}
    ranked = dict(sorted(cores.items(), key=lambda kv: -kv[1]))
    total = round(sum(cores.values()), 3)
    write_json(a.out, {"window_s": round(wall, 1), "cores": ranked, "total_cores": total})
    for name, c in ranked.items():
        print(f"{name:<16} {c:.3f} cores")
    print(f"{'total':<16} {total:.3f} cores → {a.out}")


if __name__ == "__main__":
    main()

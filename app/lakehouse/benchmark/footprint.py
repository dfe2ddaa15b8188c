"""What the stack costs: resident memory and CPU time per service (with its child processes),
machine facts."""

from __future__ import annotations

import os
from pathlib import Path

from lakehouse.launcher.procs import tree as _tree


def tree_rss_mib(pid: int) -> float:
    """RSS of `pid` and all its descendants, in MiB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its descendants: the living ones, and
    the exited ones their parents have waited for (a Postgres backend of a closed connection)."""
    ticks = 0
    for p in _tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
        # utime, stime, cutime, cstime: fields 14 to 17 of proc(5)
        ticks += sum(int(f) for f in fields[11:15])
    return round(ticks / os.sysconf("SC_CLK_TCK"), 2)


def machine() -> dict[str, object]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1), "cpu_model": model}

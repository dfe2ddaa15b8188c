"""`lakehouse bench --floor`: the same load through silver, then through each floor job.

The floors (benchmark/floor.py) are the tutorial job with none of silver's rules: MERGE (what a
user would copy) and append (the cheapest write Spark can make to Delta). Every run uses the same
generator seed, rate and duration on the same stack, one after the other: first silver as it
runs, then silver stopped and each floor job reading the topics instead. The comparison reports
silver's freshness as a multiple of each floor's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio.deleteobjects import DeleteObject

from lakehouse.benchmark import FloorWrite, plots
from lakehouse.benchmark.floor import PREFIX
from lakehouse.benchmark.observe import FLOOR, MARKER_TABLE, Target
from lakehouse.benchmark.report import write_json
from lakehouse.benchmark.run import run, touch_marker
from lakehouse.clients import admin_client
from lakehouse.errors import LakehouseError, UsageError
from lakehouse.launcher.procs import tail
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.query.catalog import CatalogSync, has_log

#: how long a job run in silver's place may take to start and write the marker's first commit
START_S = 300.0


@dataclass(frozen=True)
class SideJob:
    """A Spark job the benchmark runs in silver's place, with silver's environment: what it runs
    (`python -m <module>`), the bucket prefix it writes everything under, its marker table's
    folder and the Trino target the marker is read back from."""

    module: str
    prefix: str
    marker_folder: str
    target: Target
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()


def floor_job(write: FloorWrite = "merge") -> SideJob:
    return SideJob(
        "lakehouse.benchmark.floor",
        PREFIX,
        f"{PREFIX}/{MARKER_TABLE}/",
        FLOOR,
        args=("--write", write),
    )


def side_catalog(stack: Stack, job: SideJob) -> CatalogSync:
    sync = CatalogSync(admin_client(stack.s, stack.ctx.secrets), stack.minio.client(), stack.s.bucket, "", [])
    sync.trino.query(f"CREATE SCHEMA IF NOT EXISTS lakehouse.{job.target.schema}")
    return sync


def clear_side(stack: Stack, sync: CatalogSync, job: SideJob) -> None:
    """Forget the job's marker table in Trino and delete everything the job wrote."""
    sync.unregister((job.target.schema, MARKER_TABLE))
    mc = stack.minio.client()
    names = [o.object_name for o in mc.list_objects(stack.s.bucket, prefix=f"{job.prefix}/", recursive=True)]
    for error in mc.remove_objects(stack.s.bucket, [DeleteObject(n) for n in names if n]):
        raise LakehouseError(f"could not delete {job.module}'s {error.name}: {error.message}")


def _wait_for_marker_table(stack: Stack, job: SideJob, proc: subprocess.Popen[bytes], log: Path) -> str:
    """Write the marker until the job has created its table; its location."""
    mc = stack.minio.client()
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LakehouseError(f"{job.module} exited ({proc.returncode}); {log}:\n{tail(log, 30)}")
        touch_marker(stack)
        if has_log(mc, stack.s.bucket, job.marker_folder):
            return stack.s.storage.trino(job.marker_folder)
        time.sleep(2)
    raise LakehouseError(f"{job.module} wrote no marker table within {START_S:.0f}s; {log}:\n{tail(log, 30)}")


def start_side_job(stack: Stack, job: SideJob, log: Path) -> subprocess.Popen[bytes]:
    """The job as its own process, with silver's environment, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", job.module, *job.args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=stack.service("silver").env() | job.env,
        )


def stop_side_job(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int | None:
    """SIGTERM, as the launchers stop a job; its exit code, or None if it had to be killed."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def side_run(
    stack: Stack,
    job: SideJob,
    rate: float,
    duration_s: float,
    out_dir: Path,
    *,
    seed: int,
    warmup_s: float = 0.0,
) -> dict[str, Any]:
    """Stop silver, run `job` under the same load, then put silver back."""
    if stack.s.service_hostnames:
        raise UsageError("this benchmark needs the native launcher: it stops silver and starts its own job")
    out_dir.mkdir(parents=True, exist_ok=True)
    silver = stack.service("silver")
    sync = side_catalog(stack, job)
    log = out_dir / "job.log"
    silver.stop()
    proc: subprocess.Popen[bytes] | None = None
    try:
        clear_side(stack, sync, job)
        proc = start_side_job(stack, job, log)
        sync.register((job.target.schema, MARKER_TABLE), _wait_for_marker_table(stack, job, proc, log))
        return run(stack, rate, duration_s, out_dir, seed, target=job.target, warmup_s=warmup_s)
    finally:
        # a second Ctrl-C while this runs would leave the job running and silver stopped
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if proc is not None:
                stop_side_job(proc)
            clear_side(stack, sync, job)
            silver.start()
        finally:
            signal.signal(signal.SIGINT, previous)


def floor_run(
    stack: Stack,
    rate: float,
    duration_s: float,
    out_dir: Path,
    seed: int,
    *,
    write: FloorWrite = "merge",
    warmup_s: float = 0.0,
) -> dict[str, Any]:
    """Stop silver, run the floor job under the same load, then put silver back."""
    return side_run(stack, floor_job(write), rate, duration_s, out_dir, seed=seed, warmup_s=warmup_s)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def comparison(ours: dict[str, Any], floors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Silver against each floor (by how it writes): freshness percentiles, silver's as a multiple
    of each floor's, and whether each run kept up.

    Percentiles are over the markers that became visible; a run that fell behind shows fewer
    (`markers`), so its ratio understates the gap."""
    keys = ("p50", "p95", "p99", "max")

    def side(r: dict[str, Any]) -> dict[str, Any]:
        return {k: r["freshness_s"][k] for k in keys} | {
            "achieved_rate": r["achieved_rate"],
            "lag_bounded": r["lag_bounded"],
            "markers": r["markers"],
        }

    return {
        "silver": side(ours),
        "floors": {write: side(r) for write, r in floors.items()},
        "freshness_ratio": {
            write: {k: _ratio(ours["freshness_s"][k], r["freshness_s"][k]) for k in keys}
            for write, r in floors.items()
        },
    }


#: what each floor is called in the plot
FLOOR_NAMES = {"merge": "tutorial MERGE job", "append": "append floor"}


def run_with_floors(
    stack: Stack,
    rate: float,
    duration_s: float,
    out_dir: Path,
    seed: int = 1,
    *,
    writes: tuple[FloorWrite, ...] = ("merge", "append"),
    warmup_s: float = 0.0,
) -> dict[str, Any]:
    """Silver's run, then each floor's (OUT/floor-<write>/); comparison.json and .png beside. Each
    run after the same warm-up (`run`)."""
    ours = run(stack, rate, duration_s, out_dir, seed, warmup_s=warmup_s)
    floors: dict[str, dict[str, Any]] = {
        w: floor_run(stack, rate, duration_s, out_dir / f"floor-{w}", seed, write=w, warmup_s=warmup_s)
        for w in writes
    }
    result = comparison(ours, floors)
    write_json(out_dir / "comparison.json", result)
    curves = {f"silver (p50 {ours['freshness_s']['p50']:.1f} s)": ours["freshness_samples_s"]}
    for w, r in floors.items():
        curves[f"{FLOOR_NAMES[w]} (p50 {r['freshness_s']['p50']:.1f} s)"] = r["freshness_samples_s"]
    plots.cdf(
        curves,
        f"Silver against the floors, {ours['achieved_rate']:.0f} changes/s",
        out_dir / "comparison.png",
    )
    return result

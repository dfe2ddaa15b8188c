"""Runs one job in a child process (lakehouse.jobs.exec) with its timeout, and reads its outcome.

The child leads its own process group, so a timeout or a scheduler shutdown stops the whole of it
(a Spark job's JVM included): SIGTERM to the group, SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.apps.jobs.runs import FAILED, SUCCEEDED
from lakehouse.apps.jobs.spec import JobSpec

#: how long a stopped job's process group has between SIGTERM and SIGKILL
GRACE_S = 20.0


@dataclass
class Outcome:
    status: str
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def stop_group(proc: subprocess.Popen[Any], grace_s: float = GRACE_S) -> None:
    """SIGTERM to the child's process group, SIGKILL if it is still there after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_job(
    spec: JobSpec,
    run_id: str,
    workdir: Path,
    logfile: Path,
    *,
    cancel: threading.Event | None = None,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run `spec` to its end, its timeout, or `cancel` (the scheduler stopping); output to `logfile`."""
    workdir.mkdir(parents=True, exist_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    result = workdir / f"{run_id}.json"
    result.unlink(missing_ok=True)
    started = time.monotonic()
    with open(logfile, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} run {run_id} of {spec.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.apps.jobs.exec", str(spec.path), run_id, str(result)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    stopped: str | None = None
    try:
        while proc.poll() is None:
            if time.monotonic() - started > spec.timeout_s:
                stopped = f"timed out after {spec.timeout_s:g} s"
            elif cancel is not None and cancel.is_set():
                stopped = "stopped: the scheduler was shut down"
            if stopped:
                stop_group(proc)
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            stop_group(proc)
    seconds = time.monotonic() - started
    body: dict[str, Any] = {}
    if result.is_file():
        try:
            body = json.loads(result.read_text())
        except json.JSONDecodeError:
            body = {}
        result.unlink(missing_ok=True)
    if stopped is None and proc.returncode == 0:
        return Outcome(SUCCEEDED, seconds, {k: float(v) for k, v in body.get("metrics", {}).items()})
    error = stopped or body.get("error") or f"exited with code {proc.returncode} (see the job's log)"
    return Outcome(FAILED, seconds, error=error)

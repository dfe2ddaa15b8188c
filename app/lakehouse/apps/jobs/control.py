"""The CLI's side of `lakehouse jobs`: the job files, the scheduler's status file and answers, and
ops.job_runs through Trino. A run is asked for by a request file the scheduler picks up. Whether the
scheduler runs is the launcher's to say (`scheduler_up`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakehouse import clients
from lakehouse.apps.jobs.runs import RUNNING, RunLog
from lakehouse.apps.jobs.scheduler import ANSWERS, REQUESTS, STATUS, new_run_id, write_json
from lakehouse.apps.jobs.spec import JobSpec, load_jobs
from lakehouse.errors import LakehouseError, UsageError

if TYPE_CHECKING:
    from lakehouse.config.endpoints import Endpoints
    from lakehouse.config.settings import Settings

#: how long `jobs run` waits for the scheduler to take a request before saying it is not there
PICKUP_S = 30.0


def _specs(s: Settings) -> dict[str, JobSpec]:
    return load_jobs(s.jobs_folder)


def _spec(s: Settings, name: str) -> JobSpec:
    specs = _specs(s)
    if name not in specs:
        raise UsageError(f"no job named {name!r} (jobs: {', '.join(sorted(specs)) or 'none'})")
    return specs[name]


def _status_file(s: Settings) -> dict[str, Any]:
    path = s.state("scheduler") / STATUS
    try:
        body: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return body


def _scheduler_up(up: bool) -> None:
    if not up:
        raise LakehouseError("the scheduler is not running: `lakehouse up` starts it")


def list_jobs(s: Settings, scheduler_up: bool) -> list[dict[str, Any]]:
    status = _status_file(s) if scheduler_up else {}
    return [
        {
            "name": name,
            "description": spec.description,
            "schedule": spec.schedule,
            "entry": spec.entry,
            "timeout_s": spec.timeout_s,
            "params": spec.params,
            "next_run": status.get(name, {}).get("next_run"),
            "running": status.get(name, {}).get("running"),
            "last_run": status.get(name, {}).get("last_run"),
        }
        for name, spec in sorted(_specs(s).items())
    ]


def run(
    s: Settings,
    scheduler_up: bool,
    name: str,
    wait_s: float,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Ask the scheduler to run `name` now; its final answer, or its first if `wait_s` is 0 or runs out."""
    _spec(s, name)
    _scheduler_up(scheduler_up)
    state = s.state("scheduler")
    run_id = new_run_id(name)
    answer = state / ANSWERS / f"{run_id}.json"
    write_json(state / REQUESTS / f"{run_id}.json", {"job": name})
    started = time.monotonic()
    body: dict[str, Any] = {}
    while True:
        elapsed = time.monotonic() - started
        try:
            body = json.loads(answer.read_text())
        except (OSError, ValueError):
            body = {}
        if body and (body.get("status") != RUNNING or elapsed >= wait_s):
            break
        if not body and elapsed >= PICKUP_S:
            (state / REQUESTS / f"{run_id}.json").unlink(missing_ok=True)
            raise LakehouseError(
                f"the scheduler did not take the request within {PICKUP_S:.0f} s: "
                "`lakehouse logs scheduler` says why"
            )
        if progress is not None and body:
            progress(elapsed)
        time.sleep(0.5)
    return {"run_id": run_id, **body}


def status(s: Settings, ep: Endpoints, scheduler_up: bool, name: str) -> dict[str, Any]:
    spec = _spec(s, name)
    _scheduler_up(scheduler_up)
    now = _status_file(s).get(name, {})
    last = history(s, ep, name, 1)
    return {
        "name": name,
        "schedule": spec.schedule,
        "running": now.get("running"),
        "next_run": now.get("next_run"),
        "last_run": last[0] if last else None,
    }


def history(s: Settings, ep: Endpoints, name: str, limit: int) -> list[dict[str, Any]]:
    _spec(s, name)
    runs = RunLog(clients.trino(ep, admin=True), s.bucket)
    return [r.as_dict() for r in runs.history(name, limit)]

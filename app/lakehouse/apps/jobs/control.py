"""The CLI's side of `lakehouse jobs`: the job files, the scheduler's status file and answers, and
ops.job_runs through Trino. A run is asked for by a request file the scheduler picks up. Whether the
scheduler runs is the launcher's to say (`scheduler_up`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from lakehouse import clients
from lakehouse.apps.jobs.runs import RUNNING, Run, RunLog
from lakehouse.apps.jobs.scheduler import ANSWERS, REQUESTS, STATUS, LastRun, new_run_id, write_json
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


@dataclass(frozen=True)
class JobListing:
    """A job file and what the scheduler says of it: running (the run's id), next start (ISO,
    UTC), last run ended."""

    name: str
    description: str
    schedule: str | None
    entry: str
    timeout_s: float
    params: dict[str, Any]
    next_run: str | None
    running: str | None
    last_run: LastRun | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _last_run(seen: dict[str, Any]) -> LastRun | None:
    body = seen.get("last_run")
    return LastRun(**body) if body else None


def list_jobs(s: Settings, scheduler_up: bool) -> list[JobListing]:
    status = _status_file(s) if scheduler_up else {}
    return [
        JobListing(
            name=name,
            description=spec.description,
            schedule=spec.schedule,
            entry=spec.entry,
            timeout_s=spec.timeout_s,
            params=spec.params,
            next_run=status.get(name, {}).get("next_run"),
            running=status.get(name, {}).get("running"),
            last_run=_last_run(status.get(name, {})),
        )
        for name, spec in sorted(_specs(s).items())
    ]


@dataclass(frozen=True)
class RunAnswer:
    """The scheduler's answer to `jobs run`: the run's status (running, or how it ended), times
    (ISO), seconds, metrics or error."""

    run_id: str
    job: str
    status: str
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    s: Settings,
    scheduler_up: bool,
    name: str,
    wait_s: float,
    progress: Callable[[float], None] | None = None,
) -> RunAnswer:
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
    known = {f.name for f in fields(RunAnswer)} - {"run_id"}
    return RunAnswer(run_id=run_id, **{k: v for k, v in body.items() if k in known})


@dataclass(frozen=True)
class JobStatus:
    """`jobs status`: running (the run's id) or not, its next start (ISO, UTC), its last run as
    ops.job_runs holds it."""

    name: str
    schedule: str | None
    running: str | None
    next_run: str | None
    last_run: Run | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "last_run": self.last_run.as_dict() if self.last_run else None}


def status(s: Settings, ep: Endpoints, scheduler_up: bool, name: str) -> JobStatus:
    spec = _spec(s, name)
    _scheduler_up(scheduler_up)
    now = _status_file(s).get(name, {})
    last = history(s, ep, name, 1)
    return JobStatus(name, spec.schedule, now.get("running"), now.get("next_run"), last[0] if last else None)


def history(s: Settings, ep: Endpoints, name: str, limit: int) -> list[Run]:
    _spec(s, name)
    return RunLog(clients.trino(ep, admin=True), s.bucket).history(name, limit)

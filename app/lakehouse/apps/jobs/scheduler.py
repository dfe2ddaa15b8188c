"""The job scheduler (`python -m lakehouse.apps.jobs`): APScheduler runs each job of jobs/ on its crontab,
and on demand when `lakehouse jobs run` asks; every run is recorded in ops.job_runs and exported.

Requests and answers are files in the scheduler's state dir, so the CLI needs no port of its own:
the CLI writes `requests/<run>.json`; the scheduler answers in `answers/<run>.json` when the run
starts (or is refused) and again when it ends. `status.json` is each job's last and next run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lakehouse.apps.jobs.runner import run_job
from lakehouse.apps.jobs.runs import FAILED, MANUAL, RUNNING, SCHEDULE, RunLog
from lakehouse.apps.jobs.spec import JobSpec, load_jobs
from lakehouse.config.settings import Settings
from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse.jobs")

REQUESTS, ANSWERS, RESULTS, STATUS = "requests", "answers", "results", "status.json"
#: how many jobs may run at once (each is a process; a Spark job takes a JVM)
WORKERS = 2


def new_run_id(job: str) -> str:
    return f"{job}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class LastRun:
    run_id: str
    status: str
    ended_at: float  # epoch seconds
    seconds: float


def write_json(path: Path, body: dict[str, Any]) -> None:
    """Whole or not at all: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps(body, sort_keys=True))
    tmp.replace(path)


class Scheduler:
    def __init__(self, s: Settings, runs: RunLog, prepare: Callable[[], None] = lambda: None) -> None:
        self.s = s
        self.runs = runs
        #: at start, after the runs table: make the tables the jobs write (queries and charts on
        #: them work before a job's first run)
        self.prepare = prepare
        self.state = s.state("scheduler")
        self.logs = s.logs / "jobs"
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.specs: dict[str, JobSpec] = {}
        self.stamp: tuple[tuple[str, float], ...] | None = None
        self.last: dict[str, LastRun] = {}
        self.running: dict[str, str] = {}  # job → run id
        self.totals: Counter[tuple[str, str]] = Counter()
        self.ready = False
        self.aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(WORKERS)},
            # a start missed while the scheduler was down runs once when it is back (within a day)
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 86400},
        )

    # ---- the jobs folder
    def _folder_stamp(self) -> tuple[tuple[str, float], ...]:
        folder = self.s.jobs_folder
        files = sorted(folder.glob("*.yml")) if folder.is_dir() else []
        return tuple((p.name, p.stat().st_mtime) for p in files)

    def reload(self) -> bool:
        """Read jobs/ again if a file changed; a bad file keeps the jobs read before (logged)."""
        stamp = self._folder_stamp()
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            specs = load_jobs(self.s.jobs_folder)
        except LakehouseError as exc:
            log.error("jobs not reloaded, the ones read before stay: %s", exc)
            return False
        with self.lock:
            self.specs = specs
        for job in self.aps.get_jobs():
            if job.id.startswith("cron:"):
                job.remove()
        for spec in specs.values():
            trigger = spec.trigger()
            if trigger is not None:
                self.aps.add_job(
                    self._run,
                    trigger,
                    args=[spec.name, SCHEDULE, None],
                    id=f"cron:{spec.name}",
                    name=spec.name,
                )
        log.info(
            "jobs: %s",
            ", ".join(f"{n} ({s.schedule or 'on demand'})" for n, s in sorted(specs.items())) or "none",
        )
        return True

    def next_run(self, name: str) -> datetime | None:
        job = self.aps.get_job(f"cron:{name}")
        # a job added before APScheduler starts has no next run time yet
        at: datetime | None = getattr(job, "next_run_time", None)
        return at

    # ---- runs
    def request(self, name: str, run_id: str) -> str | None:
        """Start `name` now for the CLI; the reason it cannot, or None."""
        with self.lock:
            if name not in self.specs:
                known = ", ".join(sorted(self.specs)) or "none"
                return f"no job named {name!r} (jobs: {known})"
            if name in self.running:
                return f"{name} is already running (run {self.running[name]})"
        self.aps.add_job(self._run, args=[name, MANUAL, run_id], id=f"run:{run_id}", name=name)
        return None

    def _run(self, name: str, started_by: str, run_id: str | None) -> None:
        run_id = run_id or new_run_id(name)
        with self.lock:
            spec = self.specs.get(name)
            if spec is None or name in self.running:
                why = "no such job" if spec is None else f"already running (run {self.running[name]})"
                log.warning("%s run of %s skipped: %s", started_by, name, why)
                self._answer(run_id, {"job": name, "status": FAILED, "error": why})
                return
            self.running[name] = run_id
        started = datetime.now(UTC)
        recorded = self._record(lambda: self.runs.start(run_id, name, started_by, started))
        self._answer(run_id, {"job": name, "status": RUNNING, "started_at": started.isoformat()})
        log.info("run %s of %s started (%s)", run_id, name, started_by)
        try:
            outcome = run_job(
                spec, run_id, self.state / RESULTS, self.logs / f"{name}.log", cancel=self.cancel
            )
        finally:
            with self.lock:
                self.running.pop(name, None)
        ended = datetime.now(UTC)

        def finish() -> None:
            if not recorded:  # Trino was away when it started: the whole row now
                self.runs.start(run_id, name, started_by, started)
            self.runs.finish(
                run_id,
                status=outcome.status,
                at=ended,
                seconds=outcome.seconds,
                metrics=outcome.metrics,
                error=outcome.error,
            )

        self._record(finish)
        with self.lock:
            self.last[name] = LastRun(run_id, outcome.status, ended.timestamp(), outcome.seconds)
            self.totals[(name, outcome.status)] += 1
        self._answer(
            run_id,
            {
                "job": name,
                "started_at": started.isoformat(),
                "ended_at": ended.isoformat(),
                **asdict(outcome),
            },
        )
        log.info(
            "run %s of %s %s in %.1fs%s",
            run_id,
            name,
            outcome.status,
            outcome.seconds,
            f": {outcome.error}" if outcome.error else f" {json.dumps(outcome.metrics, sort_keys=True)}",
        )

    @staticmethod
    def _record(write: Any) -> bool:
        try:
            write()
            return True
        except LakehouseError as exc:
            log.warning("ops.job_runs not written: %s", str(exc).splitlines()[0])
            return False

    def _answer(self, run_id: str, body: dict[str, Any]) -> None:
        write_json(self.state / ANSWERS / f"{run_id}.json", body)

    def take_requests(self) -> None:
        folder = self.state / REQUESTS
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            run_id = path.stem
            try:
                name = str(json.loads(path.read_text())["job"])
            except (OSError, ValueError, KeyError):
                name = ""
            path.unlink(missing_ok=True)
            refused = self.request(name, run_id)
            if refused:
                log.warning("run of %r refused: %s", name, refused)
                self._answer(run_id, {"job": name, "status": FAILED, "error": refused})

    def status(self) -> dict[str, Any]:
        with self.lock:
            specs, last, running = dict(self.specs), dict(self.last), dict(self.running)
        out: dict[str, Any] = {}
        for name, spec in sorted(specs.items()):
            nxt = self.next_run(name)
            out[name] = {
                "schedule": spec.schedule,
                "description": spec.description,
                "running": running.get(name),
                "next_run": nxt.isoformat() if nxt else None,
                "last_run": asdict(last[name]) if name in last else None,
            }
        return out

    # ---- start, loop, stop
    def start(self) -> None:
        """Record the runs table, close runs a previous scheduler lost, then schedule."""
        self.runs.ensure()
        self.prepare()
        lost = self.runs.close_lost(datetime.now(UTC), "lost: the scheduler stopped during the run")
        if lost:
            log.warning("%d run(s) of a previous scheduler were still 'running': recorded as failed", lost)
        self.reload()
        for name in self.specs:
            for run in self.runs.history(name, 1):
                if run.ended_at is not None:
                    self.last[name] = LastRun(
                        run.run_id, run.status, run.ended_at.timestamp(), run.seconds or 0.0
                    )
        self.aps.start()
        self.ready = True

    def loop_once(self) -> None:
        self.take_requests()
        self.reload()
        write_json(self.state / STATUS, self.status())

    def stop(self) -> None:
        """Stop every running job's process group (each run is recorded as failed), then APScheduler."""
        self.cancel.set()
        self.aps.shutdown(wait=True)


class SchedulerCollector(Collector):
    """The scheduler's state as metric families, read at scrape time. Labelled `job_name`: `job`
    is the label Prometheus gives every target."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.sched = scheduler

    def collect(self) -> Iterator[Metric]:
        sch = self.sched
        ready = GaugeMetricFamily("lakehouse_scheduler_ready", "1 once the scheduler runs its jobs")
        ready.add_metric([], 1.0 if sch.ready else 0.0)
        yield ready
        with sch.lock:
            specs, last, running, totals = (
                dict(sch.specs),
                dict(sch.last),
                dict(sch.running),
                Counter(sch.totals),
            )
        labels = ["job_name"]
        runs = CounterMetricFamily(
            "lakehouse_job_runs", "runs ended since the scheduler started", labels=[*labels, "status"]
        )
        failed = GaugeMetricFamily(
            "lakehouse_job_last_run_failed", "1 if the job's last run failed", labels=labels
        )
        ended = GaugeMetricFamily(
            "lakehouse_job_last_run_timestamp_seconds", "when its last run ended", labels=labels
        )
        took = GaugeMetricFamily(
            "lakehouse_job_last_run_duration_seconds", "how long its last run took", labels=labels
        )
        busy = GaugeMetricFamily(
            "lakehouse_job_running", "1 while a run of the job is going on", labels=labels
        )
        nxt = GaugeMetricFamily(
            "lakehouse_job_next_run_timestamp_seconds", "its next scheduled start", labels=labels
        )
        for name in sorted(specs):
            for status in ("succeeded", FAILED):
                runs.add_metric([name, status], float(totals[(name, status)]))
            busy.add_metric([name], 1.0 if name in running else 0.0)
            if name in last:
                failed.add_metric([name], 1.0 if last[name].status == FAILED else 0.0)
                ended.add_metric([name], last[name].ended_at)
                took.add_metric([name], last[name].seconds)
            at = sch.next_run(name)
            if at is not None:
                nxt.add_metric([name], at.timestamp())
        yield from (runs, failed, ended, took, busy, nxt)


def serve(s: Settings, runs: RunLog, prepare: Callable[[], None], poll_s: float = 1.0) -> None:
    """Start (retrying while Trino is not there yet), then poll requests and jobs/ until SIGTERM."""
    from prometheus_client import REGISTRY, start_http_server

    sched = Scheduler(s, runs, prepare)
    REGISTRY.register(SchedulerCollector(sched))
    start_http_server(s.scheduler_metrics_port, addr=s.addr("scheduler"))
    log.info(
        "scheduler: serving http://%s:%d/metrics, jobs from %s",
        s.addr("scheduler"),
        s.scheduler_metrics_port,
        s.jobs_folder,
    )
    while True:
        try:
            sched.start()
            break
        except LakehouseError as exc:
            log.warning("not started yet (retrying in 5 s): %s", str(exc).splitlines()[0])
            time.sleep(5)
    try:
        while True:
            sched.loop_once()
            time.sleep(poll_s)
    finally:
        sched.stop()

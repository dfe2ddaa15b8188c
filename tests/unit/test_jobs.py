"""jobs/*.yml (issue 20): a job file loads into its spec, its crontab is read in UTC with week days
by name, and a bad file is refused with the file and the problem named."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from lakehouse.apps.jobs.control import list_jobs
from lakehouse.apps.jobs.runner import run_job
from lakehouse.apps.jobs.runs import FAILED, MANUAL, RUNNING, SUCCEEDED
from lakehouse.apps.jobs.scheduler import ANSWERS, REQUESTS, STATUS, Scheduler, SchedulerCollector, write_json
from lakehouse.apps.jobs.spec import DEFAULT_TIMEOUT_S, cron, load_job, load_jobs
from lakehouse.config.settings import Settings
from lakehouse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: nightly
description: a job
entry: json:loads
schedule: "15 0 * * *"
timeout_s: 60
params:
  top: 100
"""


def _file(folder: Path, text: str, name: str = "nightly") -> Path:
    path = folder / f"{name}.yml"
    path.write_text(text)
    return path


def test_a_job_file_loads_with_its_schedule_in_utc(tmp_path: Path) -> None:
    spec = load_job(_file(tmp_path, GOOD))
    assert (spec.name, spec.entry, spec.timeout_s) == ("nightly", "json:loads", 60.0)
    assert spec.params == {"top": 100}
    after = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert spec.next_run(after) == datetime(2026, 11, 27, 0, 15, tzinfo=UTC)
    assert load_jobs(tmp_path) == {"nightly": spec}
    assert load_jobs(tmp_path / "absent") == {}


def test_a_job_without_schedule_runs_on_demand_only(tmp_path: Path) -> None:
    spec = load_job(_file(tmp_path, "name: nightly\nentry: json:loads\n"))
    assert spec.schedule is None and spec.next_run(datetime.now(UTC)) is None
    assert spec.timeout_s == DEFAULT_TIMEOUT_S and spec.params == {}


def test_week_days_are_names_because_apscheduler_counts_from_monday() -> None:
    thursday = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    sunday = cron("0 9 * * sun").get_next_fire_time(None, thursday)
    assert sunday == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="by name"):
        cron("0 9 * * 0")  # cron's Sunday; APScheduler would run it on Monday
    with pytest.raises(ValueError, match="crontab line"):
        cron("0 9 * *")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- a list\n", "a mapping"),
        ("name: nightly\nentry: json:loads\nevery: 5\n", "unknown key(s) every"),
        ("name: nightly\n", "missing entry"),
        ("name: Nightly\nentry: json:loads\n", "name 'Nightly'"),
        ("name: other\nentry: json:loads\n", "differs from the file's name"),
        ("name: nightly\nentry: json.loads\n", "not `package.module:function`"),
        ("name: nightly\nentry: no_such_module_here:run\n", "no module no_such_module_here"),
        ("name: nightly\nentry: json:loads\nschedule: '0 9 * * 1'\n", "schedule: write week days by name"),
        ("name: nightly\nentry: json:loads\nschedule: 'every day'\n", "schedule:"),
        ("name: nightly\nentry: json:loads\ntimeout_s: 0\n", "timeout_s 0"),
        ("name: nightly\nentry: json:loads\ntimeout_s: true\n", "timeout_s True"),
        ("name: nightly\nentry: json:loads\nparams: [1]\n", "params is a mapping"),
        ("name: [nightly\n", "not YAML"),
    ],
)
def test_a_bad_job_file_is_refused_with_the_file_and_problem_named(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_job(path)
    assert str(e.value).startswith(f"{path}: ")
    assert problem in str(e.value)


# ---- a run: the real runner, a child process per run


def _job(folder: Path, name: str, entry: str, extra: str = "") -> Path:
    return _file(folder, f"name: {name}\nentry: tests.unit.job_entries:{entry}\n{extra}", name)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The child builds its Stack from settings: a home of its own (secrets are made there)."""
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(ROOT)  # the child imports tests.unit.job_entries from here
    return tmp_path / "home"


def test_a_run_returns_its_metrics(tmp_path: Path, home: Path) -> None:
    spec = load_job(_job(tmp_path, "fine", "ok", "params: {rows: 7}\n"))
    out = run_job(spec, "r1", tmp_path / "results", tmp_path / "fine.log")
    assert (out.status, out.error, out.metrics) == (SUCCEEDED, None, {"rows": 7.0, "seen_run": 1.0})
    assert "run r1 of fine" in (tmp_path / "fine.log").read_text()


def test_a_failing_run_is_failed_with_the_errors_last_line(tmp_path: Path, home: Path) -> None:
    spec = load_job(_job(tmp_path, "bad", "broken"))
    out = run_job(spec, "r2", tmp_path / "results", tmp_path / "bad.log")
    assert out.status == FAILED and out.error == "ValueError: its last line names it"
    assert "Traceback" in (tmp_path / "bad.log").read_text()


def test_a_run_past_its_timeout_is_stopped_with_its_process_group(tmp_path: Path, home: Path) -> None:
    spec = load_job(_job(tmp_path, "sleepy", "slow", "timeout_s: 2\n"))
    started = time.monotonic()
    out = run_job(spec, "r3", tmp_path / "results", tmp_path / "sleepy.log")
    assert out.status == FAILED and out.error == "timed out after 2 s"
    assert time.monotonic() - started < 30


# ---- the scheduler: requests, answers, its record of runs and its metrics


class RecordedRuns:
    """ops.job_runs as the scheduler writes it (Trino's table in the integration tier)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def ensure(self) -> None:
        pass

    def close_lost(self, at: datetime, reason: str) -> int:
        return 0

    def history(self, job: str, limit: int) -> list[Any]:
        return []

    def start(self, run_id: str, job: str, started_by: str, at: datetime) -> None:
        self.rows[run_id] = {"job": job, "started_by": started_by, "status": RUNNING}

    def finish(self, run_id: str, **end: Any) -> None:
        self.rows[run_id].update(end)


def _wait_answer(sched: Scheduler, run_id: str, done: bool = True) -> dict[str, Any]:
    path = sched.state / ANSWERS / f"{run_id}.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sched.loop_once()
        if path.is_file():
            body: dict[str, Any] = json.loads(path.read_text())
            if not done or body["status"] != RUNNING:
                return body
        time.sleep(0.1)
    raise AssertionError(f"no answer for {run_id}")


def test_the_scheduler_runs_requests_records_them_and_exports_them(tmp_path: Path, home: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    _job(jobs, "fine", "ok", "schedule: '0 3 * * *'\n")
    _job(jobs, "bad", "broken")
    _job(jobs, "sleepy", "slow", "params: {sleep_s: 30}\n")
    s = Settings(home=home, jobs_dir=jobs)
    runs = RecordedRuns()
    sched = Scheduler(s, runs)  # type: ignore[arg-type]
    sched.start()
    try:
        write_json(sched.state / REQUESTS / "x1.json", {"job": "nope"})
        assert "no job named 'nope'" in _wait_answer(sched, "x1")["error"]
        write_json(sched.state / REQUESTS / "x2.json", {"job": "fine"})
        assert _wait_answer(sched, "x2")["status"] == SUCCEEDED
        write_json(sched.state / REQUESTS / "x3.json", {"job": "bad"})
        assert _wait_answer(sched, "x3")["error"] == "ValueError: its last line names it"
        write_json(sched.state / REQUESTS / "x4.json", {"job": "sleepy"})
        assert _wait_answer(sched, "x4", done=False)["status"] == RUNNING
        write_json(sched.state / REQUESTS / "x5.json", {"job": "sleepy"})
        assert "already running (run x4)" in _wait_answer(sched, "x5")["error"]
        assert runs.rows["x2"]["status"] == SUCCEEDED and runs.rows["x2"]["metrics"]["rows"] == 3.0
        assert runs.rows["x3"]["status"] == FAILED and runs.rows["x3"]["started_by"] == MANUAL
        assert "x5" not in runs.rows
        status = json.loads((sched.state / STATUS).read_text())
        assert status["fine"]["next_run"].endswith("03:00:00+00:00") and status["sleepy"]["running"] == "x4"
        listed = {j.name: j for j in list_jobs(s, scheduler_up=True)}  # what `jobs list` reads of it
        assert listed["fine"].last_run is not None and listed["fine"].last_run.status == SUCCEEDED
        assert listed["sleepy"].running == "x4" and listed["bad"].as_dict()["last_run"]["status"] == FAILED
        text = generate_latest(_registry(sched)).decode()
        assert 'lakehouse_job_last_run_failed{job_name="bad"} 1.0' in text
        assert 'lakehouse_job_last_run_failed{job_name="fine"} 0.0' in text
        assert 'lakehouse_job_runs_total{job_name="fine",status="succeeded"} 1.0' in text
        assert 'lakehouse_job_running{job_name="sleepy"} 1.0' in text
        assert "lakehouse_scheduler_ready 1.0" in text
        assert 'lakehouse_job_next_run_timestamp_seconds{job_name="fine"}' in text
    finally:
        sched.stop()  # stops the sleeping run: recorded as failed
    assert runs.rows["x4"]["status"] == FAILED and "scheduler was shut down" in runs.rows["x4"]["error"]


def test_a_job_file_changed_while_running_is_read_again_and_a_bad_one_keeps_the_old(
    tmp_path: Path, home: Path
) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    path = _job(jobs, "fine", "ok", "schedule: '0 3 * * *'\n")
    sched = Scheduler(Settings(home=home, jobs_dir=jobs), RecordedRuns())  # type: ignore[arg-type]
    sched.reload()  # scraped while starting: jobs known, APScheduler not started yet
    assert "lakehouse_scheduler_ready 0.0" in generate_latest(_registry(sched)).decode()
    sched.start()
    try:
        path.write_text(path.read_text().replace("0 3 * * *", "30 4 * * *"))
        os.utime(path, (time.time() + 5, time.time() + 5))
        assert sched.reload()
        assert sched.status()["fine"]["next_run"].endswith("04:30:00+00:00")
        path.write_text("name: fine\n")  # no entry: refused, the jobs read before stay
        os.utime(path, (time.time() + 10, time.time() + 10))
        assert not sched.reload()
        assert sched.status()["fine"]["schedule"] == "30 4 * * *"
    finally:
        sched.stop()


def _registry(sched: Scheduler) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SchedulerCollector(sched))
    return registry


def test_the_shipped_jobs_load_and_the_recommenders_params_are_checked_before_spark() -> None:
    from lakehouse.apps.jobs.recommender import params

    shipped = load_jobs(ROOT / "jobs")
    assert {"recommender", "top-movies-daily"} <= set(shipped)
    p = params(shipped["recommender"].params)
    assert (p.seed, p.test_fraction, p.top_n) == (42, 0.25, 10) and p.ranks == (20, 30)
    with pytest.raises(ValueError, match="unknown parameter"):
        params({"rnk": 3})
    with pytest.raises(ValueError, match="test_fraction"):
        params({"test_fraction": 1.5})
    with pytest.raises(ValueError, match="ranks"):
        params({"ranks": []})

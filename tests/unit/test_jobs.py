"""jobs/*.yml (issue 20): a job file loads into its spec, its crontab is read in UTC with week days
by name, and a bad file is refused with the file and the problem named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse.errors import ConfigError
from lakehouse.jobs.spec import DEFAULT_TIMEOUT_S, cron, load_job, load_jobs

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

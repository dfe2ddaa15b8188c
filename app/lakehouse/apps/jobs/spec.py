"""jobs/*.yml: one file per batch job — its name, entry point, cron schedule, timeout and parameters.

Read and checked without running anything, so a bad file is refused with its name and field before
a scheduler starts. The schedule is a crontab line read by APScheduler, in UTC.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from apscheduler.triggers.cron import CronTrigger

from lakehouse.errors import ConfigError

#: a job's name: its file's stem, a metric label and a CLI argument
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
#: `package.module:function`
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_KEYS = {"name", "description", "entry", "schedule", "timeout_s", "params"}
_REQUIRED = ("name", "entry")
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class JobSpec:
    name: str
    entry: str  # `package.module:function`, called with (context, params)
    path: Path
    description: str = ""
    schedule: str | None = None  # crontab in UTC; None: run on demand only
    timeout_s: float = DEFAULT_TIMEOUT_S
    params: dict[str, Any] = field(default_factory=dict)

    def trigger(self) -> CronTrigger | None:
        return None if self.schedule is None else cron(self.schedule)

    def next_run(self, after: datetime) -> datetime | None:
        """The first scheduled start strictly after `after` (UTC), None for an on-demand job."""
        t = self.trigger()
        return None if t is None else t.get_next_fire_time(None, after.astimezone(UTC))


def cron(expr: str) -> CronTrigger:
    """A crontab line (UTC) as APScheduler's trigger. Week days must be names: APScheduler counts
    them from Monday = 0 where cron counts from Sunday = 0, so `* * * * 0` would run on the wrong
    day without a word."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r} is not a crontab line (minute hour day month weekday)")
    if re.search(r"\d", fields[4]):
        raise ValueError(f"write week days by name (mon, tue, … sun; mon-fri), not {fields[4]!r}")
    return CronTrigger.from_crontab(expr, timezone=UTC)


def load_job(path: Path) -> JobSpec:
    """One job file, checked; a ConfigError names the file and what is wrong with it."""

    def bad(what: str) -> ConfigError:
        return ConfigError(f"{path}: {what}")

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise bad(f"not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise bad("a job file is a mapping (name, entry, schedule, timeout_s, params)")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    missing = [k for k in _REQUIRED if not doc.get(k)]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    name = str(doc["name"])
    if not _NAME.match(name):
        raise bad(f"name {name!r}: lower-case letters, digits and '-', starting with a letter")
    if name != path.stem:
        raise bad(f"name {name!r} differs from the file's name ({path.name}): keep them equal")
    entry = str(doc["entry"])
    if not _ENTRY.match(entry):
        raise bad(f"entry {entry!r} is not `package.module:function`")
    module = entry.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        raise bad(f"entry {entry!r}: no module {module}")
    schedule = doc.get("schedule")
    if schedule is not None:
        schedule = str(schedule)
        try:
            cron(schedule)
        except ValueError as e:
            raise bad(f"schedule: {e}") from None
    timeout = doc.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise bad(f"timeout_s {timeout!r}: a number of seconds above 0")
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise bad("params is a mapping of parameter names to values")
    return JobSpec(
        name=name,
        entry=entry,
        path=path,
        description=str(doc.get("description") or ""),
        schedule=schedule,
        timeout_s=float(timeout),
        params=params,
    )


def load_jobs(folder: Path) -> dict[str, JobSpec]:
    """Every `*.yml` job of the folder by name (an absent folder holds no jobs)."""
    if not folder.is_dir():
        return {}
    return {spec.name: spec for spec in (load_job(p) for p in sorted(folder.glob("*.yml")))}

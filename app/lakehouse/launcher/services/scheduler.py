"""The job scheduler (python -m lakehouse.apps.jobs): runs jobs/*.yml on their crontab and on demand."""

from __future__ import annotations

import sys
from typing import ClassVar

from lakehouse.launcher.services.metrics import MetricsReadyService


class SchedulerService(MetricsReadyService):
    name = "scheduler"
    port_fields: ClassVar[tuple[str, ...]] = ("scheduler_metrics_port",)
    ready_line = "lakehouse_scheduler_ready 1.0"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.apps.jobs"]

    def fix_hint(self, log: str) -> str:
        if "jobs not reloaded" in log or ".yml:" in log:
            return "a job file in jobs/ is refused: the log names the file and the problem"
        return "it needs Trino up (it records runs in ops.job_runs); `lakehouse logs scheduler` says why"

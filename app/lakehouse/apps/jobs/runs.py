"""ops.job_runs: every run of every job — start, end, status, metrics — a Delta table written by the
scheduler through Trino (admin only, like the other ops tables), in `jobs/ops/job_runs` (layout.py):
outside silver's folders, so `reset-silver` keeps it (bronze cannot rebuild it).

A run is inserted as `running` when it starts and updated once when it ends. A run the scheduler
lost (it died meanwhile) is closed as `failed` with that reason when the scheduler starts again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakehouse.apps.jobs.tables import Output, ensure_output
from lakehouse.clients.trino_client import Trino
from lakehouse.config.names import OPS

JOB_RUNS = Output(
    OPS,
    "job_runs",
    "run_id varchar, job varchar, started_by varchar, started_at timestamp(3) with time zone, "
    "ended_at timestamp(3) with time zone, status varchar, seconds double, metrics varchar, error varchar",
)
TABLE = JOB_RUNS.qualified
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
#: how a run was started
SCHEDULE, MANUAL = "schedule", "manual"


@dataclass(frozen=True)
class Run:
    run_id: str
    job: str
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    seconds: float | None
    metrics: dict[str, Any]
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "status": self.status,
            "seconds": self.seconds,
            "metrics": self.metrics,
            "error": self.error,
        }


def _ts(value: datetime) -> str:
    return f"TIMESTAMP '{value.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC'"


class RunLog:
    def __init__(self, trino: Trino, bucket: str) -> None:
        self.trino = trino
        self.bucket = bucket

    def ensure(self) -> None:
        ensure_output(self.trino, JOB_RUNS, self.bucket)

    def start(self, run_id: str, job: str, started_by: str, at: datetime) -> None:
        self.trino.query(
            f"INSERT INTO {TABLE} (run_id, job, started_by, started_at, status) "
            f"VALUES (?, ?, ?, {_ts(at)}, ?)",
            [run_id, job, started_by, RUNNING],
        )

    def finish(
        self,
        run_id: str,
        *,
        status: str,
        at: datetime,
        seconds: float,
        metrics: dict[str, Any],
        error: str | None,
    ) -> None:
        self.trino.query(
            f"UPDATE {TABLE} SET status = ?, ended_at = {_ts(at)}, seconds = ?, metrics = ?, error = ? "
            "WHERE run_id = ?",
            [status, seconds, json.dumps(metrics, sort_keys=True), error, run_id],
        )

    def close_lost(self, at: datetime, reason: str) -> int:
        """Runs still `running` from a scheduler that is gone: failed, with the reason."""
        lost = int(self.trino.scalar(f"SELECT count(*) FROM {TABLE} WHERE status = ?", [RUNNING]))
        if lost:
            self.trino.query(
                f"UPDATE {TABLE} SET status = ?, ended_at = {_ts(at)}, error = ? WHERE status = ?",
                [FAILED, reason, RUNNING],
            )
        return lost

    def history(self, job: str, limit: int) -> list[Run]:
        """The job's newest runs first."""
        rows = self.trino.query(
            "SELECT run_id, job, started_by, started_at, ended_at, status, seconds, metrics, error "
            f"FROM {TABLE} WHERE job = ? ORDER BY started_at DESC LIMIT {int(limit)}",
            [job],
        ).rows
        return [
            Run(
                run_id=r[0],
                job=r[1],
                started_by=r[2],
                started_at=r[3],
                ended_at=r[4],
                status=r[5],
                seconds=r[6],
                metrics=json.loads(r[7]) if r[7] else {},
                error=r[8],
            )
            for r in rows
        ]

"""One run of one job, in a process of its own: `python -m lakehouse.apps.jobs.exec JOB_FILE RUN_ID RESULT`.

The entry point is called with its JobContext and returns its metrics (numbers by name); they, or
the error that stopped it, are written to RESULT as JSON for the scheduler. A process of its own
keeps a job's memory (Spark's JVM) and its crashes out of the scheduler, and lets a timeout stop it.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import traceback
from pathlib import Path

from lakehouse.apps.jobs.context import JobContext
from lakehouse.apps.jobs.spec import load_job
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import load_settings

log = logging.getLogger("lakehouse.jobs")


def describe(exc: BaseException) -> str:
    """The error's type and last line (a Spark error's first lines are its plan)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def main(argv: list[str]) -> int:
    job_file, run_id, result = Path(argv[0]), argv[1], Path(argv[2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spec = load_job(job_file)
    module, _, function = spec.entry.partition(":")
    log.info("run %s of %s: %s(%s)", run_id, spec.name, spec.entry, json.dumps(spec.params, sort_keys=True))
    try:
        entry = getattr(importlib.import_module(module), function)
        s = load_settings()
        ep = Endpoints.of(s, Secrets.load_or_create(s.home))
        metrics = entry(JobContext(s, ep, spec.name, run_id, dict(spec.params))) or {}
        body: dict[str, object] = {"metrics": {k: float(v) for k, v in metrics.items()}}
        code = 0
    except Exception as exc:  # the run fails with the error's last line; the log has all of it
        traceback.print_exc()
        body = {"error": describe(exc)}
        code = 1
    result.write_text(json.dumps(body))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

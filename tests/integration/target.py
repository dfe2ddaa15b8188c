"""Which stack the integration tier runs against.

Without `LAKEHOUSE_TEST_ENV`, a stack of its own: started by the session fixture on its own state
dir and ports (conftest.py), and torn down after. With `LAKEHOUSE_TEST_ENV=<a file that
`lakehouse env --json` wrote>`, a stack that is already up (`lakehouse up`, by you), left running.

The tier drives a stack with the launcher as well as through its endpoints (it stops, kills and
restarts services, runs the CLI in it), so it builds the `Stack` from this environment's settings
(`LAKEHOUSE_HOME`, the ports: those the stack was started with) and checks they name the very
endpoints the file does. A mismatch, a file that is not `env --json` output, or a service that is
not ready stops the session with what is wrong.

Some tests need what the tier sets up before its own stack starts: expectation rules on a probe
table, a jobs folder with a job that fails, a table with rows before the connector's first
start. A stack already up has them only if it was started that way:

    python -m tests.integration.target prepare      # before the stack's first `lakehouse up`
    . "$LAKEHOUSE_HOME/test-prepared/env.sh" && lakehouse up
    lakehouse env --json > /tmp/stack.json
    . "$LAKEHOUSE_HOME/test-prepared/env.sh" && LAKEHOUSE_TEST_ENV=/tmp/stack.json \\
        pytest -m integration

Without it, the tests that need them skip, each saying what is missing.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from lakehouse.apps.jobs.scheduler import STATUS
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.paths import repo_root
from lakehouse.config.settings import Settings, env_name, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.expectations import Expectations, in_force

from .session_setup import FAILING_JOB, PREEXISTING, PROBE, create_preexisting, probe_rules, session_jobs

#: the variable naming `lakehouse env --json` output of a stack that is already up
ENV_VAR = "LAKEHOUSE_TEST_ENV"


def named() -> Path | None:
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


def differences(a: dict[str, Any], b: dict[str, Any], at: str = "") -> list[str]:
    """The dotted keys where two `env --json` documents differ (names only: values hold secrets)."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y, where = a.get(key), b.get(key), f"{at}{key}"
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, f"{where}.")
        elif x != y:
            out.append(where)
    return out


def existing(path: Path) -> Stack:
    """The stack `path` describes, built from this environment's settings; LakehouseError when
    they do not describe the same stack or it is not up."""
    try:
        wanted = Endpoints.read(path)
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LakehouseError(f"{ENV_VAR}={path}: not the output of `lakehouse env --json` ({first})") from exc
    stack = Stack(load_settings())
    differ = differences(stack.endpoints.as_json(), wanted.as_json())
    if differ:
        raise LakehouseError(
            f"{ENV_VAR}={path} names another stack than this environment's settings do "
            f"(they differ in {', '.join(differ)}): run the tests with the LAKEHOUSE_* variables "
            f"the stack was started with (home {stack.s.home})"
        )
    down = [svc.name for svc in stack.services if not svc.ready()]
    if down:
        raise LakehouseError(
            f"the stack {ENV_VAR} names is not up: {', '.join(down)} not ready (`lakehouse up`, "
            "`lakehouse status`)"
        )
    return stack


# ---- what a stack already up may lack


def lacks(stack: Stack, *needs: str) -> None:
    """Skip the test when the stack lacks what it needs (of "preexisting", "probe_rules",
    "failing_job"), saying what; a stack of the tier's own has everything."""
    missing = [why for why in (_MISSING[n](stack) for n in needs) if why]
    if missing:
        pytest.skip(
            f"the stack {ENV_VAR} names lacks what this test needs: {'; '.join(missing)} "
            "(run `python -m tests.integration.target prepare` before its first `up`)"
        )


def _source_has(stack: Stack, table: str) -> bool:
    with psycopg.connect(stack.endpoints.source.dsn) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f"{stack.s.source_schema}.{table}",)).fetchone()
    return row is not None and row[0] is not None


def _preexisting(stack: Stack) -> str | None:
    return None if _source_has(stack, PREEXISTING) else f"no table {PREEXISTING} in the source"


def _probe_rules(stack: Stack) -> str | None:
    rules = Expectations.load(in_force(stack.s), schema=stack.s.source_schema)
    if not any(r.table == f"{stack.s.source_schema}.{PROBE}" for r in rules.rules):
        return f"silver was not started with the probe rules ({in_force(stack.s)})"
    if _source_has(stack, PROBE):  # the test creates it, and sees its rules fail before that
        return f"table {PROBE} exists already: the test ran against this stack before"
    return None


def _failing_job(stack: Stack) -> str | None:
    """The running scheduler knows the failing job, from the folder this environment names."""
    try:
        known = json.loads((stack.s.state("scheduler") / STATUS).read_text())
    except (OSError, ValueError):
        known = {}
    if FAILING_JOB not in known or not (Path(stack.s.jobs_folder) / f"{FAILING_JOB}.yml").is_file():
        return f"the scheduler was not started with the job {FAILING_JOB} ({stack.s.jobs_folder})"
    return None


_MISSING = {"preexisting": _preexisting, "probe_rules": _probe_rules, "failing_job": _failing_job}


# ---- `python -m tests.integration.target prepare`


def prepare(s: Settings) -> Path:
    """Write the probe rules and the jobs folder under the stack's home, create the table with
    rows before the connector's first start (Postgres must be up: `lakehouse up` starts it, or
    this starts it alone), and write `env.sh` exporting what `lakehouse up` and pytest must see."""
    folder = s.home / "test-prepared"
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "expectations.yml"
    rules.write_text(probe_rules(repo_root()))
    session_jobs(repo_root(), folder / "jobs")
    stack = Stack(s)
    if not stack.postgres.ready():
        stack.postgres.start()
    create_preexisting(stack)
    env = folder / "env.sh"
    env.write_text(
        f"export {env_name('expectations_file')}={shlex.quote(str(rules))}\n"
        f"export {env_name('jobs_dir')}={shlex.quote(str(folder / 'jobs'))}\n"
    )
    return env


def main(argv: list[str]) -> int:
    if argv != ["prepare"]:
        print("usage: python -m tests.integration.target prepare", file=sys.stderr)
        return 2
    try:
        env = prepare(load_settings())
    except LakehouseError as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    print(f"prepared; now: . {shlex.quote(str(env))} && lakehouse up")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`lakehouse jobs`: list, run, status and history of the batch jobs (jobs/*.yml)."""

from __future__ import annotations

import json

import click

from lakehouse.cli.base import (
    cli,
    json_option,
    open_stack,
    wait_option,
)


@cli.group()
def jobs() -> None:
    """Batch jobs (jobs/*.yml) run by the scheduler: list them, run one now, its status and runs."""


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


@jobs.command("list")
@json_option
def jobs_list(as_json: bool) -> None:
    """Each job: its schedule (crontab, UTC), next start and last run."""
    from lakehouse.apps.jobs.control import list_jobs

    stack = open_stack()
    out = list_jobs(stack.s, stack.scheduler.pid() is not None)
    if as_json:
        click.echo(json.dumps([j.as_dict() for j in out], indent=2))
        return
    if not out:
        click.echo("no jobs (jobs/*.yml)")
    for j in out:
        done = f"last {j.last_run.status} ({j.last_run.seconds:.0f}s)" if j.last_run else "never run"
        state = f"running {j.running}" if j.running else done
        click.echo(f"{j.name:<20} {j.schedule or 'on demand':<14} next {_when(j.next_run):<19}  {state}")


@jobs.command("run")
@click.argument("name")
@wait_option(3600.0, 0, "seconds to wait for the run to end (0: return once it started)")
@json_option
def jobs_run(name: str, wait_s: float, as_json: bool) -> None:
    """Run job NAME now (the scheduler runs it; one run of a job at a time). Exit 1 if it failed."""
    from lakehouse.apps.jobs.control import run
    from lakehouse.apps.jobs.runs import FAILED

    def shown(elapsed: float) -> None:
        if not as_json:
            click.echo(f"\r{name}: running {elapsed:.0f}s", nl=False, err=True)

    stack = open_stack()
    out = run(stack.s, stack.scheduler.pid() is not None, name, wait_s, progress=shown)
    if as_json:
        click.echo(json.dumps(out.as_dict(), indent=2))
    else:
        click.echo("", err=True)
        took = f" in {out.seconds:.1f}s" if out.seconds is not None else ""
        detail = out.error or json.dumps(out.metrics, sort_keys=True)
        click.echo(f"run {out.run_id} of {name}: {out.status}{took} {detail}")
    if out.status == FAILED:
        raise click.exceptions.Exit(1)


@jobs.command("status")
@click.argument("name")
@json_option
def jobs_status(name: str, as_json: bool) -> None:
    """Job NAME: running or not, its next start and its last run (from ops.job_runs)."""
    from lakehouse.apps.jobs.control import status

    stack = open_stack()
    out = status(stack.s, stack.endpoints, stack.scheduler.pid() is not None, name)
    if as_json:
        click.echo(json.dumps(out.as_dict(), indent=2))
        return
    last = out.last_run
    click.echo(f"{name}: {'running ' + out.running if out.running else 'idle'}, next {_when(out.next_run)}")
    if last:
        click.echo(
            f"last run {last.run_id}: {last.status}, started {_when(last.started_at.isoformat())}"
            + (f", {last.seconds:.1f}s" if last.seconds is not None else "")
            + (f" — {last.error}" if last.error else "")
        )


@jobs.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="newest runs")
@json_option
def jobs_history(name: str, limit: int, as_json: bool) -> None:
    """Job NAME's runs, newest first (ops.job_runs)."""
    from lakehouse.apps.jobs.control import history

    stack = open_stack()
    out = history(stack.s, stack.endpoints, name, limit)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in out], indent=2))
        return
    if not out:
        click.echo(f"{name} has not run yet")
    for r in out:
        took = f"{r.seconds:.1f}s" if r.seconds is not None else "-"
        detail = r.error or json.dumps(r.metrics, sort_keys=True)
        click.echo(f"{_when(r.started_at.isoformat())}  {r.status:<10} {took:>8}  {r.started_by:<8} {detail}")

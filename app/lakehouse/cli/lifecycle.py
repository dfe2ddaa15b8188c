"""Commands that set up, start, stop and describe the stack: install, up, down, status, logs, env,
serve/ready (what compose runs), compose, resnapshot."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click

from lakehouse.cli.base import (
    cli,
    open_stack,
)
from lakehouse.errors import LakehouseError, UsageError
from lakehouse.launcher.compose import INIT_STEPS
from lakehouse.launcher.status import ServiceStatus


@cli.command()
@click.option("--browser", is_flag=True, help="also Debian's chromium + chromium-driver (browser tests)")
@click.option("--compose", is_flag=True, help="also the `docker compose` CLI, built with Go (compose checks)")
@click.option("--only", default=None, metavar="STEP,…", help="just these steps (the compose images use this)")
@click.option("--test-java", is_flag=True, help="also run the S3 sink connector's Surefire tests (make test)")
def install(browser: bool, compose: bool, only: str | None, test_java: bool) -> None:
    """Fetch/build every service artifact into the cache (idempotent)."""
    from lakehouse.config.settings import load_settings
    from lakehouse.config.versions import Versions
    from lakehouse.launcher.artifacts import STEPS, ensure_browser, ensure_compose_cli, test_s3_sink
    from lakehouse.launcher.artifacts import install as do_install

    s = load_settings()
    versions = Versions.load(s.root / "versions.env")
    do_install(s, versions, [x.strip() for x in only.split(",")] if only else STEPS)
    if test_java:
        click.echo(f"s3-sink Surefire: {test_s3_sink(s, versions)}")
    if browser:
        ensure_browser()
    if compose:
        ensure_compose_cli(s.cache, versions)


@cli.command()
@click.argument("service")
def serve(service: str) -> None:
    """Run one service in the foreground (a compose container's main process)."""
    from lakehouse.launcher.compose import serve as do_serve

    do_serve(open_stack(), service)


@cli.command()
@click.argument("service")
def ready(service: str) -> None:
    """Exit 0 if SERVICE answers its readiness probe, 1 if not (compose healthchecks)."""
    ok = open_stack().service(service).ready()
    click.echo(f"{service} {'ready' if ok else 'not ready'}")
    sys.exit(0 if ok else 1)


@cli.group()
def compose() -> None:
    """The steps docker-compose.yml runs, and its validation."""


@compose.command("env")
@click.option("--path", type=click.Path(path_type=Path), default=None, help="[default: .env in the checkout]")
def compose_env(path: Path | None) -> None:
    """Write .env for docker compose: versions from versions.env, generated credentials (kept)."""
    from lakehouse.config.paths import repo_root
    from lakehouse.launcher.compose import write_env_file

    target = path or repo_root() / ".env"
    generated = write_env_file(repo_root(), target)
    what = f"generated {len(generated)} credentials" if generated else "kept the existing credentials"
    click.echo(f"wrote {target} ({what}); now: docker compose up -d")


@compose.command("config")
def compose_config() -> None:
    """(in compose) secrets and the configs the official images read, into the state volume."""
    from lakehouse.config.settings import load_settings
    from lakehouse.launcher.compose import secrets_from_env, write_configs
    from lakehouse.launcher.stack import Stack

    s = load_settings()
    secrets_from_env(s)
    for path in write_configs(Stack(s)):
        click.echo(f"wrote {path}")


@compose.command("init")
@click.argument("step", type=click.Choice(INIT_STEPS))
def compose_init(step: str) -> None:
    """(in compose) a one-shot job: postgres roles/schema, the bucket, or the connector."""
    from lakehouse.launcher.compose import init

    click.echo(init(open_stack(), step))


@compose.command("check")
def compose_check() -> None:
    """Validate docker-compose.yml with `docker compose config` (built by `install --compose`)."""
    from lakehouse.config.settings import load_settings
    from lakehouse.config.versions import Versions
    from lakehouse.launcher.compose import validate

    s = load_settings()
    click.echo(validate(s.root, s.cache, Versions.load(s.root / "versions.env")))


@cli.command()
@click.option(
    "--scale-out",
    is_flag=True,
    help="cluster mode until `down`: a Spark master + worker running silver, a Trino worker, "
    "partitioned topics (docs/scaling.md)",
)
def up(scale_out: bool) -> None:
    """Start the native stack and wait until every service and connector is ready."""
    open_stack(scale_out=scale_out).up()


@cli.command()
@click.argument("services", nargs=-1)
@click.option("--wipe", is_flag=True, help="also delete data, logs and generated secrets")
def down(services: tuple[str, ...], wipe: bool) -> None:
    """Stop what `up` started (by pid), or only the SERVICES named; data is kept unless --wipe.

    A stopped service stays stopped (it is not restarted) until the next `lakehouse up`."""
    if wipe and services:
        raise UsageError("--wipe stops and deletes everything; it takes no service names")
    stopped = open_stack().down(wipe=wipe, only=services)
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    if wipe:
        click.echo("state wiped")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(as_json: bool) -> None:
    """State of each service and connector (exit 1 unless all are ready/RUNNING)."""
    st = open_stack().status()
    if as_json:
        click.echo(json.dumps(st.as_dict(), indent=2))
    else:
        for name, svc in st.services.items():
            pid = f"pid {svc.pid}" if svc.pid else ""
            click.echo(f"{name:<12} {svc.state:<10} {pid:<11} {_restarts(svc)}".rstrip())
            if svc.error:
                click.echo(f"{'':<12} error: {svc.error}")
        for name, con in st.connectors.items():
            tasks = ",".join(con.tasks or [])
            click.echo(f"{name:<12} {con.state} {('tasks: ' + tasks) if tasks else ''}")
            if con.error:
                click.echo(f"{'':<12} error: {con.error}")
    sys.exit(0 if st.healthy else 1)


def _restarts(svc: ServiceStatus) -> str:
    """`restarted 2 times (last: killed by SIGKILL at 10:31:02)`; nothing for a service never restarted."""
    notes = []
    last = svc.restarts.last_exit if svc.restarts else None
    if svc.restarts and last:
        when = time.strftime("%H:%M:%S", time.localtime(last.at))
        notes.append(f"restarted {svc.restarts.restarts} times (last: {last.reason} at {when})")
    if svc.supervised is False and svc.pid:
        notes.append("unsupervised: its supervisor is gone, `lakehouse down` then `up` restores it")
    return "; ".join(notes)


@cli.command()
@click.argument("service")
@click.option("-n", "--lines", default=50, show_default=True, help="lines to show")
@click.option("-f", "--follow", is_flag=True, help="keep following the log")
def logs(service: str, lines: int, follow: bool) -> None:
    """Show a service's log (postgres, minio, kafka, connect, silver, …)."""
    path = open_stack().log_path(service)
    if not path.exists():
        raise LakehouseError(f"{service} has no log yet ({path}); has it been started?")
    args = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    sys.exit(subprocess.call(args))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def env(as_json: bool) -> None:
    """Connection strings and URLs of every service."""
    data = open_stack().env()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for section, values in data.items():
        for key, value in values.items():
            click.echo(f"{section}.{key} = {value}")


@cli.command()
@click.option("--yes", is_flag=True, help="confirm: the slot is dropped and every table is read again")
def resnapshot(yes: bool) -> None:
    """A fresh snapshot of every captured table: the recovery from a replication slot Postgres
    invalidated (`status` says when). Silver ends equal to the source, deletes included."""
    if not yes:
        raise click.UsageError(
            "resnapshot drops the replication slot and re-reads every captured table; pass --yes to confirm"
        )
    open_stack().resnapshot(say=click.echo)
    click.echo("snapshot started: `lakehouse verify` shows when silver equals the source again")

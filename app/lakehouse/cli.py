"""The `lakehouse` command line: launcher, status, env, logs, demo, verify, tables, bench."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lakehouse.benchmark import FLOOR_WRITES, FloorWrite
from lakehouse.errors import ConfigError, LakehouseError, UsageError
from lakehouse.launcher.compose import INIT_STEPS


def _stack(scale_out: bool = False) -> Any:
    from lakehouse.launcher.stack import Stack

    return Stack(scale_out=scale_out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lakehouse")
def cli() -> None:
    """Real-time CDC lakehouse: Postgres → Debezium → Kafka → bronze (MinIO) → …"""


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

    do_serve(_stack(), service)


@cli.command()
@click.argument("service")
def ready(service: str) -> None:
    """Exit 0 if SERVICE answers its readiness probe, 1 if not (compose healthchecks)."""
    ok = _stack().service(service).ready()
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

    click.echo(init(_stack(), step))


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
    _stack(scale_out=scale_out).up()


@cli.command()
@click.argument("services", nargs=-1)
@click.option("--wipe", is_flag=True, help="also delete data, logs and generated secrets")
def down(services: tuple[str, ...], wipe: bool) -> None:
    """Stop what `up` started (by pid), or only the SERVICES named; data is kept unless --wipe.

    A stopped service stays stopped (it is not restarted) until the next `lakehouse up`."""
    if wipe and services:
        raise UsageError("--wipe stops and deletes everything; it takes no service names")
    stopped = _stack().down(wipe=wipe, only=services)
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    if wipe:
        click.echo("state wiped")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(as_json: bool) -> None:
    """State of each service and connector (exit 1 unless all are ready/RUNNING)."""
    st = _stack().status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
    else:
        for name, svc in st["services"].items():
            pid = f"pid {svc['pid']}" if svc["pid"] else ""
            click.echo(f"{name:<12} {svc['state']:<10} {pid:<11} {_restarts(svc)}".rstrip())
            if svc.get("error"):
                click.echo(f"{'':<12} error: {svc['error']}")
        for name, con in st["connectors"].items():
            tasks = ",".join(con.get("tasks", []))
            click.echo(f"{name:<12} {con['state']} {('tasks: ' + tasks) if tasks else ''}")
            if con.get("error"):
                click.echo(f"{'':<12} error: {con['error']}")
    healthy = all(s["state"] == "ready" for s in st["services"].values()) and all(
        c["state"] == "RUNNING" and not c.get("error") for c in st["connectors"].values()
    )
    sys.exit(0 if healthy else 1)


def _restarts(svc: dict[str, Any]) -> str:
    """`restarted 2 times (last: killed by SIGKILL at 10:31:02)`; nothing for a service never restarted."""
    notes = []
    last = svc.get("last_exit")
    if last:
        when = time.strftime("%H:%M:%S", time.localtime(last["at"]))
        notes.append(f"restarted {svc.get('restarts', 0)} times (last: {last['reason']} at {when})")
    if svc.get("supervised") is False and svc["pid"]:
        notes.append("unsupervised: its supervisor is gone, `lakehouse down` then `up` restores it")
    return "; ".join(notes)


@cli.command()
@click.argument("service")
@click.option("-n", "--lines", default=50, show_default=True, help="lines to show")
@click.option("-f", "--follow", is_flag=True, help="keep following the log")
def logs(service: str, lines: int, follow: bool) -> None:
    """Show a service's log (postgres, minio, kafka, connect, silver, …)."""
    path = _stack().log_path(service)
    if not path.exists():
        raise LakehouseError(f"{service} has no log yet ({path}); has it been started?")
    args = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    sys.exit(subprocess.call(args))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def env(as_json: bool) -> None:
    """Connection strings and URLs of every service."""
    data = _stack().env()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for section, values in data.items():
        for key, value in values.items():
            click.echo(f"{section}.{key} = {value}")


def _rate_options(default_rate: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--rate and --duration, shared by `demo` and `generate`."""

    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        f = click.option(
            "--duration",
            type=click.FloatRange(1, 86_400),
            default=None,
            help="seconds to run [default: until Ctrl-C]",
        )(f)
        return click.option(
            "--rate",
            type=click.FloatRange(0.1, 100_000),
            default=default_rate,
            show_default=True,
            help="changes per second",
        )(f)

    return wrap


def _source_stack() -> Any:
    stack = _stack()
    if not stack.postgres.ready():
        raise LakehouseError("the source Postgres is not running — run `lakehouse up`")
    return stack


@cli.command()
@_rate_options(5.0)
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    default=None,
    help="MovieLens folder [default: ../shared/data/movielens-small]",
)
def demo(rate: float, duration: float | None, path: Path | None) -> None:
    """The main job: stack up, MovieLens loaded, gentle changes, the edit-a-row page.

    Ctrl-C stops the changes; the stack keeps running (`lakehouse down` stops it).
    """
    from lakehouse.demo.run import run

    run(_stack(), rate=rate, duration_s=duration, path=path)


_table_option = click.option("--table", "table", default=None, help="only this table (schema.table or table)")
_json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _wait_option(
    default: float, low: float, help: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--wait", "wait_s", default=default, show_default=True, type=click.FloatRange(low, 3600), help=help
    )


@cli.command()
@_table_option
@_wait_option(
    0.0, 0, "wait up to this many seconds for silver to catch up (a heartbeat newer than now), re-checking"
)
@_json_option
def verify(table: str | None, wait_s: float, as_json: bool) -> None:
    """Compare every captured source table with its silver table, row by row; exit 1 on any difference."""
    from lakehouse.pipeline.silver.commands import verify as run_verify

    stack = _stack()
    diffs = run_verify(stack.s, stack.endpoints, table, wait_s)
    if as_json:
        click.echo(json.dumps([d.as_dict() for d in diffs], indent=2))
    for d in diffs if not as_json else []:
        mark = "✓" if d.clean else "✗"
        click.echo(
            f"{mark} {d.source}: source {d.source_rows} rows, silver {d.silver_rows} rows — "
            f"missing {d.missing}, extra {d.extra}, different {d.different}, "
            f"duplicates {d.duplicates}, unconvertible {d.unconvertible}"
        )
        if d.missing_columns:
            click.echo(f"    columns missing in silver: {', '.join(d.missing_columns)}")
        if d.error:
            click.echo(f"    error: {d.error}")
        for kind, keys in d.examples.items():
            if keys:
                click.echo(f"    {kind}: {'; '.join(keys)}")
    if not all(d.clean for d in diffs):
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("table")
@click.argument("key")
@click.option(
    "--timeout",
    "timeout_s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="seconds to wait for the change to reach every hop",
)
@_json_option
def trace(table: str, key: str, timeout_s: float, as_json: bool) -> None:
    """Follow a row's latest change through every hop: Postgres → Kafka → bronze → silver → Trino.

    \b
    lakehouse trace movies 1
    lakehouse trace ratings user_id=1,movie_id=31 --json
    Exits 1, naming the hop it has not reached, if the change is not visible in Trino in time.
    """
    from lakehouse.apps.monitor.trace import render
    from lakehouse.apps.monitor.trace import trace as follow

    t = follow(_tracer(), table, key, timeout_s)
    click.echo(json.dumps(t.as_dict(), indent=2) if as_json else render(t))
    if t.hops["trino"].at is None:
        click.echo(
            f"lakehouse: not visible in Trino after {timeout_s:.0f}s: stuck before {t.pending()}", err=True
        )
        raise click.exceptions.Exit(1)


def _tracer() -> Any:
    from lakehouse.apps.monitor.trace import Tracer

    return Tracer.reading(_stack().endpoints)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def tables(as_json: bool) -> None:
    """Silver table per captured source table: location, Delta version, rows."""
    from lakehouse.pipeline.silver.commands import tables as list_tables

    stack = _stack()
    out = list_tables(stack.s, stack.endpoints)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for t in out:
        click.echo(
            f"{t['source']:<24} {t['silver'] or '-':<28} "
            f"v{t['version'] if t['version'] is not None else '-':<6} "
            f"{t['rows'] if t['rows'] is not None else '-':>10} rows  {t['location']}"
        )
        if t["blocked"]:
            b = t["blocked"]
            click.echo(
                f"    BLOCKED: {b['events']} event(s) refused — {b['reason']}\n"
                f"    fix the cause (for a value that does not fit its type: a column override to text in "
                f"spark_streaming/silver.json, then restart silver), then "
                f"`lakehouse quarantine replay --table {t['source']}`"
            )


@cli.group()
def quarantine() -> None:
    """Events silver refused: list them by table and reason, replay them after a fix."""


@quarantine.command("list")
@_table_option
@_json_option
def quarantine_list(table: str | None, as_json: bool) -> None:
    """Quarantined events per table and reason."""
    from lakehouse.pipeline.silver.commands import quarantine_list as do_list

    stack = _stack()
    out = do_list(stack.s, stack.endpoints, table)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    elif not out:
        click.echo("quarantine is empty")
    for q in out if not as_json else []:
        click.echo(f"{q['table'] or '(unparseable)':<28} {q['events']:>8}  {q['reason']}  (last {q['last']})")


@quarantine.command("replay")
@_table_option
@_wait_option(300.0, 1, "seconds to wait for the silver job to apply them")
@_json_option
def quarantine_replay(table: str | None, wait_s: float, as_json: bool) -> None:
    """Apply quarantined events again (after a fix), in source order; idempotent. Exit 1 if some
    are still refused."""
    from lakehouse.pipeline.silver.commands import quarantine_replay as do_replay

    stack = _stack()
    r = do_replay(stack.s, stack.endpoints, table, wait_s)
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        click.echo(
            f"replayed {r['replayed']} event(s) of {r['table'] or 'every table'}; "
            f"{r['still_quarantined']} still refused"
        )
    if r["still_quarantined"]:
        raise click.exceptions.Exit(1)


@cli.group()
def jobs() -> None:
    """Batch jobs (jobs/*.yml) run by the scheduler: list them, run one now, its status and runs."""


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


@jobs.command("list")
@_json_option
def jobs_list(as_json: bool) -> None:
    """Each job: its schedule (crontab, UTC), next start and last run."""
    from lakehouse.apps.jobs.control import list_jobs

    stack = _stack()
    out = list_jobs(stack.s, stack.scheduler.pid() is not None)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out:
        click.echo("no jobs (jobs/*.yml)")
    for j in out:
        last = j["last_run"]
        done = f"last {last['status']} ({last['seconds']:.0f}s)" if last else "never run"
        state = f"running {j['running']}" if j["running"] else done
        click.echo(
            f"{j['name']:<20} {j['schedule'] or 'on demand':<14} next {_when(j['next_run']):<19}  {state}"
        )


@jobs.command("run")
@click.argument("name")
@_wait_option(3600.0, 0, "seconds to wait for the run to end (0: return once it started)")
@_json_option
def jobs_run(name: str, wait_s: float, as_json: bool) -> None:
    """Run job NAME now (the scheduler runs it; one run of a job at a time). Exit 1 if it failed."""
    from lakehouse.apps.jobs.control import run
    from lakehouse.apps.jobs.runs import FAILED

    def shown(elapsed: float) -> None:
        if not as_json:
            click.echo(f"\r{name}: running {elapsed:.0f}s", nl=False, err=True)

    stack = _stack()
    out = run(stack.s, stack.scheduler.pid() is not None, name, wait_s, progress=shown)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo("", err=True)
        took = f" in {out['seconds']:.1f}s" if out.get("seconds") is not None else ""
        detail = out.get("error") or json.dumps(out.get("metrics") or {}, sort_keys=True)
        click.echo(f"run {out['run_id']} of {name}: {out['status']}{took} {detail}")
    if out["status"] == FAILED:
        raise click.exceptions.Exit(1)


@jobs.command("status")
@click.argument("name")
@_json_option
def jobs_status(name: str, as_json: bool) -> None:
    """Job NAME: running or not, its next start and its last run (from ops.job_runs)."""
    from lakehouse.apps.jobs.control import status

    stack = _stack()
    out = status(stack.s, stack.endpoints, stack.scheduler.pid() is not None, name)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    last = out["last_run"]
    click.echo(
        f"{name}: {'running ' + out['running'] if out['running'] else 'idle'}, next {_when(out['next_run'])}"
    )
    if last:
        click.echo(
            f"last run {last['run_id']}: {last['status']}, started {_when(last['started_at'])}"
            + (f", {last['seconds']:.1f}s" if last["seconds"] is not None else "")
            + (f" — {last['error']}" if last["error"] else "")
        )


@jobs.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="newest runs")
@_json_option
def jobs_history(name: str, limit: int, as_json: bool) -> None:
    """Job NAME's runs, newest first (ops.job_runs)."""
    from lakehouse.apps.jobs.control import history

    stack = _stack()
    out = history(stack.s, stack.endpoints, name, limit)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out:
        click.echo(f"{name} has not run yet")
    for r in out:
        took = f"{r['seconds']:.1f}s" if r["seconds"] is not None else "-"
        detail = r["error"] or json.dumps(r["metrics"], sort_keys=True)
        click.echo(f"{_when(r['started_at'])}  {r['status']:<10} {took:>8}  {r['started_by']:<8} {detail}")


@cli.command()
@_json_option
def expectations(as_json: bool) -> None:
    """Data-quality rules on silver (spark_streaming/expectations.yml): rows checked and failed
    per rule since the results began, and the last failing row; cross-table rules run now."""
    from lakehouse.pipeline.silver.commands import expectation_totals

    stack = _stack()
    out = expectation_totals(stack.s, stack.endpoints)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out:
        click.echo("no expectations declared (spark_streaming/expectations.yml)")
    for e in out:
        if e["action"] == "cross_table":
            found = f"{e['failing']:>8} failing now" if e["error"] is None else f"did not run: {e['error']}"
            click.echo(f"{e['table']:<24} {e['rule']:<30} cross-table {found}")
            if e["last_failing_row"]:
                click.echo(f"    a failing row: {e['last_failing_row']}")
            continue
        share = f"{100 * e['failed'] / e['checked']:.2f} %" if e["checked"] else "-"
        click.echo(
            f"{e['table']:<24} {e['rule']:<30} {e['action']:<5} "
            f"{e['checked']:>10} checked {e['failed']:>8} failed ({share})"
        )
        if e["last_failing_row"]:
            click.echo(f"    last failing row: {e['last_failing_row']}")


@cli.command("load-movielens")
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    default=None,
    help="folder with movies.csv, links.csv, ratings.csv, tags.csv [default: ../shared/data/movielens-small]",
)
def load_movielens(path: Path | None) -> None:
    """Load the MovieLens CSVs into the source Postgres (idempotent; reports row counts)."""
    from lakehouse.demo.movielens import check_folder, load

    folder = check_folder(path)  # a wrong path fails before anything else is looked at
    stack = _source_stack()
    for r in load(stack.postgres.app_dsn, stack.s.source_schema, folder):
        click.echo(
            f"{r.table:<8} {r.csv_rows:>7} rows in the CSV, {r.inserted:>7} inserted, "
            f"{r.total:>7} in the table"
        )


@cli.command()
@_rate_options(10.0)
@click.option(
    "--seed", type=int, default=42, show_default=True, help="same source state + seed = same changes"
)
@click.option(
    "--mix",
    default=None,
    help="weights, e.g. new_rating=0.5,rerating=0.2,delete_rating=0.1,tag=0.1,movie_edit=0.08,new_movie=0.02",
)
def generate(rate: float, duration: float | None, seed: int, mix: str | None) -> None:
    """Write realistic changes to the source (ratings, tags, movie edits) at a steady rate."""
    from lakehouse.demo.generator import parse_mix, run_until_interrupted

    weights = parse_mix(mix)
    stack = _source_stack()
    r = run_until_interrupted(
        stack.postgres.app_dsn, stack.s.source_schema, rate=rate, duration_s=duration, seed=seed, mix=weights
    )
    kinds = ", ".join(f"{k} {n}" for k, n in r.by_kind.items() if n)
    click.echo(
        f"{r.changes} changes in {r.seconds:.1f}s: achieved {r.achieved_rate:.1f}/s "
        f"(target {r.target_rate:g}/s) — {kinds}"
    )


@cli.command()
@click.argument("statement")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--user",
    type=click.Choice(["analyst", "admin"]),
    default="analyst",
    show_default=True,
    help="analyst reads silver and analytics; admin may also write and see ops (quarantine)",
)
def sql(statement: str, fmt: str, user: str) -> None:
    """Run one SQL statement on Trino (catalog `lakehouse`, schema `silver`; `-` reads it from stdin).

    \b
    lakehouse sql "SELECT * FROM analytics.top_movies ORDER BY rank LIMIT 5"
    lakehouse sql "SELECT * FROM ratings FOR VERSION AS OF 3 LIMIT 5" --format csv
    """
    from dataclasses import replace

    from lakehouse.clients import client_for
    from lakehouse.config.names import SILVER
    from lakehouse.config.secrets import Secrets
    from lakehouse.config.settings import load_settings
    from lakehouse.pipeline.query.output import FORMATS

    text = sys.stdin.read() if statement == "-" else statement
    text = text.strip().rstrip(";").strip()
    if not text:
        raise click.UsageError("empty SQL statement")
    s = load_settings()
    client = replace(client_for(s, Secrets.load_or_create(s.home), user), schema=SILVER)
    click.echo(FORMATS[fmt](client.query(text)))


@cli.command()
@click.option(
    "--service",
    "services",
    multiple=True,
    help="kill only this component (repeatable) [default: each of them in turn]",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1, max=2000),
    default=30.0,
    show_default=True,
    help="load, changes/s",
)
@click.option(
    "--outage",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="seconds a COMPONENT@outage fault keeps it stopped",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--out", default="artifacts/chaos/chaos.json", show_default=True, help="where the results go")
def chaos(services: tuple[str, ...], rate: float, outage: float, as_json: bool, out: str) -> None:
    """kill -9 each component under load; its supervisor restarts it; silver must equal the source.

    Exit 1 if any fault left a row missing, extra or different, or an event in quarantine."""
    from lakehouse.benchmark.report import write_json
    from lakehouse.chaos.matrix import Fault, Plan, choose, run

    chosen = choose(services)  # a wrong name fails before anything is killed
    stack = _stack()

    def show(f: Fault) -> None:
        if as_json:
            return
        alerts = ", ".join(f"{a} {t:.0f}s" for a, t in sorted(f.alerts.items(), key=lambda kv: kv[1]))
        click.echo(
            f"{f.service:<12} {'clean' if f.clean else 'NOT CLEAN':<9} back {f.back_s}s, caught up "
            f"{f.caught_up_s}s, peak freshness {f.peak_freshness_s}s, {f.changes} changes, "
            f"missing/extra/different/quarantined {f.missing}/{f.extra}/{f.different}/{f.quarantined}"
            + (f"; alerts: {alerts}" if alerts else "")
            + (f"; error: {f.error}" if f.error else "")
        )

    faults = run(stack, chosen, Plan(rate=rate, outage_s=outage), progress=show)
    doc = {"rate": rate, "faults": [f.as_dict() for f in faults]}
    write_json(Path(out), doc)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    sys.exit(0 if all(f.clean for f in faults) else 1)


@cli.command("reset-silver")
@click.option("--yes", is_flag=True, help="confirm: silver tables and the stream checkpoint are deleted")
def reset_silver(yes: bool) -> None:
    """Delete silver and its checkpoint so the next `up` rebuilds silver from bronze."""
    if not yes:
        raise click.UsageError("reset-silver deletes every silver table; pass --yes to confirm")
    from lakehouse.pipeline.silver.commands import reset_silver as do_reset

    stack = _stack()
    if stack.silver.pid() is not None or stack.silver.supervisor() is not None:
        raise LakehouseError("the silver job is running: `lakehouse down silver` first")
    deleted = do_reset(stack.s.storage, stack.minio.client())
    click.echo(f"deleted {deleted} objects; `lakehouse up` replays bronze into silver")


@cli.command()
@click.option("--yes", is_flag=True, help="confirm: the slot is dropped and every table is read again")
def resnapshot(yes: bool) -> None:
    """A fresh snapshot of every captured table: the recovery from a replication slot Postgres
    invalidated (`status` says when). Silver ends equal to the source, deletes included."""
    if not yes:
        raise click.UsageError(
            "resnapshot drops the replication slot and re-reads every captured table; pass --yes to confirm"
        )
    _stack().resnapshot(say=click.echo)
    click.echo("snapshot started: `lakehouse verify` shows when silver equals the source again")


@cli.group(invoke_without_command=True)
@click.option("--rate", type=click.FloatRange(1, 100_000), default=100.0, show_default=True, help="changes/s")
@click.option("--duration", type=click.FloatRange(5, 7_200), default=60.0, show_default=True, help="seconds")
@click.option(
    "--out", default="artifacts/bench", show_default=True, type=click.Path(), help="JSON + plots here"
)
@click.option("--json", "as_json", is_flag=True, help="print the result document")
@click.option(
    "--floor",
    is_flag=True,
    help="then the same load through the floor job (Kafka → MERGE, none of silver's rules), silver stopped",
)
@click.option(
    "--floor-write",
    type=click.Choice(FLOOR_WRITES),
    default="merge",
    show_default=True,
    help="how the floor job writes: MERGE (the tutorial job) or an append of each batch (the cheapest write)",
)
@click.pass_context
def bench(
    ctx: click.Context,
    *,
    rate: float,
    duration: float,
    out: str,
    as_json: bool,
    floor: bool,
    floor_write: FloorWrite,
) -> None:
    """Freshness through every hop under a steady change load (the stack must be up).

    Without a subcommand: the generator writes RATE changes/s for DURATION s while a marker row is
    followed from the Postgres commit to Kafka, bronze, the silver commit and a Trino query.
    Writes bench.json and freshness/CDF/hop plots to OUT. Subcommands measure one layer.
    With --floor, OUT/floor/ gets the floor job's run and OUT/comparison.json + .png the two side by side.
    """
    if ctx.invoked_subcommand is not None:
        return
    if floor_write != "merge" and not floor:
        raise click.UsageError("--floor-write is for the floor job: add --floor")
    from lakehouse.benchmark.run import run as run_bench

    if floor:
        from lakehouse.benchmark.compare import run_with_floor

        c = run_with_floor(_stack(), rate, duration, Path(out), write=floor_write)
        if as_json:
            click.echo(json.dumps(c, indent=2))
            return
        for name in ("silver", "floor"):
            v = c[name]
            click.echo(
                f"{name:<6} at {v['achieved_rate']}/s: commit → Trino p50 {v['p50']}s p95 {v['p95']}s; "
                f"lag bounded: {v['lag_bounded']}; markers visible {v['markers']['visible']} of "
                f"{v['markers']['written']}"
            )
        ratio = c["freshness_ratio"]
        click.echo(f"silver / floor: p50 {ratio['p50']} times, p95 {ratio['p95']} times")
        click.echo(f"→ {out}/comparison.json, comparison.png, bench.json, floor/bench.json")
        return
    r = run_bench(_stack(), rate, duration, Path(out))
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    f = r["freshness_s"]
    click.echo(
        f"{r['changes']} changes at {r['achieved_rate']}/s (target {rate:g}/s): commit → Trino "
        f"p50 {f['p50']:.2f}s p95 {f['p95']:.2f}s p99 {f['p99']:.2f}s max {f['max']:.2f}s; "
        f"bottleneck {r['bottleneck']}; lag bounded: {r['lag_bounded']}; "
        f"RSS {r['footprint']['total_rss_mib']:.0f} MiB"
    )
    for hop, h in r["hops_s"].items():
        if h["n"]:
            click.echo(f"  {hop:<26} p50 {h['p50']:.2f}s  p95 {h['p95']:.2f}s")
    click.echo(f"→ {out}/bench.json, freshness.png, cdf.png, hops.png")


def _bench_options(changes: int, interval: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        f = click.option("--out", default="artifacts/bench", show_default=True, type=click.Path())(f)
        f = click.option(
            "--interval", default=interval, show_default=True, type=click.FloatRange(0, 60), help="seconds"
        )(f)
        return click.option("--changes", default=changes, show_default=True, type=click.IntRange(5, 10_000))(
            f
        )

    return wrap


def _report(layer: str, r: dict[str, Any], setting: str, out: str) -> None:
    click.echo(
        f"commit → {layer} over {r['changes']} changes: p50 {r['p50_s']:.2f}s, p95 {r['p95_s']:.2f}s, "
        f"max {r['max_s']:.2f}s ({setting}) → {out}/{layer}-latency.*"
    )


@bench.command("bronze")
@_bench_options(changes=20, interval=0.5)
def bench_bronze(changes: int, interval: float, out: str) -> None:
    """Commit → bronze object latency (p50/p95) at light load; the stack must be up."""
    from lakehouse.benchmark.latency import bronze_latency

    r = bronze_latency(_stack(), changes, interval, Path(out))
    _report("bronze", r, f"flush interval {r['flush_interval_ms']} ms", out)


@bench.command("silver")
@_bench_options(changes=30, interval=2.0)
def bench_silver(changes: int, interval: float, out: str) -> None:
    """Commit → silver Delta commit latency (p50/p95) at light load; the stack must be up."""
    from lakehouse.benchmark.latency import silver_latency

    r = silver_latency(_stack(), changes, interval, Path(out))
    _report("silver", r, f"trigger {r['trigger']}", out)


@bench.command("trino")
@_bench_options(changes=50, interval=1.0)
def bench_trino(changes: int, interval: float, out: str) -> None:
    """Commit → visible in a Trino query (p50/p95), one row per change; the stack must be up."""
    from lakehouse.benchmark.latency import trino_latency

    r = trino_latency(_stack(), changes, interval, Path(out))
    _report("trino", r, f"trigger {r['trigger']}, poll {r['poll_s']:.2f}s", out)


@bench.command("snapshot")
@click.option("--path", type=click.Path(path_type=Path), default=None, help="MovieLens folder")
@click.option(
    "--live", is_flag=True, help="load while the stack streams (make demo's catch-up), not before it starts"
)
@click.option("--out", default="artifacts/bench", show_default=True, type=click.Path())
def bench_snapshot(path: Path | None, live: bool, out: str) -> None:
    """MovieLens as Debezium's initial snapshot → complete in silver, on a fresh scratch stack
    (ports +2000, wiped afterwards); also times a warm `up`."""
    from lakehouse.benchmark.snapshot import run as run_snapshot
    from lakehouse.demo.movielens import check_folder

    r = run_snapshot(check_folder(path), Path(out), live=live)
    what = "loaded while streaming" if live else "snapshot"
    click.echo(
        f"{what}: {sum(r['rows'].values())} rows → silver in {r['snapshot_to_silver_s']}s "
        f"(per table {r['per_table_s']}); up: cold {r['cold_up_s']}s, warm {r['warm_up_s']}s; "
        f"RSS {r['total_rss_mib']:.0f} MiB → {out}/{'catchup' if live else 'snapshot'}.json"
    )


@bench.command("throughput")
@click.option("--rates", default="250,500,1000,2000", show_default=True, help="comma-separated changes/s")
@click.option("--duration", type=click.FloatRange(10, 3_600), default=60.0, show_default=True)
@click.option("--out", default="artifacts/bench/throughput", show_default=True, type=click.Path())
def bench_throughput(rates: str, duration: float, out: str) -> None:
    """The freshness run at each rate; reports the highest rate with bounded lag."""
    from lakehouse.benchmark.throughput import run as run_throughput

    try:
        values = [float(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise click.UsageError(f"--rates: {rates!r} is not a comma-separated list of numbers") from None
    if not values or min(values) <= 0:
        raise click.UsageError("--rates: give at least one positive rate")
    r = run_throughput(_stack(), values, duration, Path(out))
    for s in r["steps"]:
        click.echo(
            f"  {s['target_rate']:>7g}/s → achieved {s['achieved_rate']}/s, p95 {s['freshness_s']['p95']}s, "
            f"{'sustained' if s['sustained'] else 'NOT sustained'}"
        )
    click.echo(f"max sustained: {r['max_sustained_rate']} changes/s → {out}/throughput.json")


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors meaning a service the command needs does not answer (the stack, or it, is down);
    imported only when an error happened, so the CLI starts fast."""
    import httpx
    import psycopg
    import urllib3

    return (ConnectionError, psycopg.OperationalError, httpx.TransportError, urllib3.exceptions.HTTPError)


def main(argv: list[str] | None = None) -> int:
    try:
        # standalone_mode=False: click *returns* the code of a `click.exceptions.Exit` raised in a
        # command instead of raising it, so the return value is the exit code
        code = cli.main(args=argv, prog_name="lakehouse", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        click.echo(f"lakehouse: error: {exc.format_message()} (see `lakehouse --help`)", err=True)
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except (ConfigError, UsageError) as exc:
        click.echo(f"lakehouse: error: {exc}", err=True)
        return 2
    except LakehouseError as exc:
        click.echo(f"lakehouse: error: {exc}", err=True)
        return 1
    except Exception as exc:
        if not isinstance(exc, _unreachable()):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"lakehouse: error: {first} — is the stack up? (`lakehouse status`)", err=True)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

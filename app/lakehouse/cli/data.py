"""Commands that look at and mend silver: verify, trace, tables, quarantine, compact, expectations,
sql, reset-silver."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from lakehouse.cli.base import (
    cli,
    json_option,
    open_stack,
    table_option,
    wait_option,
)
from lakehouse.errors import LakehouseError


@cli.command()
@table_option
@wait_option(
    0.0, 0, "wait up to this many seconds for silver to catch up (a heartbeat newer than now), re-checking"
)
@json_option
def verify(table: str | None, wait_s: float, as_json: bool) -> None:
    """Compare every captured source table with its silver table, row by row; exit 1 on any difference."""
    from lakehouse.pipeline.silver.commands import verify as run_verify

    stack = open_stack()
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
@json_option
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

    return Tracer.reading(open_stack().endpoints)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def tables(as_json: bool) -> None:
    """Silver table per captured source table: location, Delta version, rows."""
    from lakehouse.pipeline.silver.commands import tables as list_tables

    stack = open_stack()
    out = list_tables(stack.s, stack.endpoints)
    if as_json:
        click.echo(json.dumps([t.as_dict() for t in out], indent=2))
        return
    for t in out:
        click.echo(
            f"{t.source:<24} {t.silver or '-':<28} "
            f"v{t.version if t.version is not None else '-':<6} "
            f"{t.rows if t.rows is not None else '-':>10} rows  {t.location}"
        )
        if t.blocked:
            click.echo(
                f"    BLOCKED: {t.blocked.events} event(s) refused — {t.blocked.reason}\n"
                f"    fix the cause (for a value that does not fit its type: a column override to text in "
                f"spark_streaming/silver.json, then restart silver), then "
                f"`lakehouse quarantine replay --table {t.source}`"
            )


@cli.group()
def quarantine() -> None:
    """Events silver refused: list them by table and reason, replay them after a fix."""


@quarantine.command("list")
@table_option
@json_option
def quarantine_list(table: str | None, as_json: bool) -> None:
    """Quarantined events per table and reason."""
    from lakehouse.pipeline.silver.commands import quarantine_list as do_list

    stack = open_stack()
    out = do_list(stack.s, stack.endpoints, table)
    if as_json:
        click.echo(json.dumps([q.as_dict() for q in out], indent=2))
    elif not out:
        click.echo("quarantine is empty")
    for q in out if not as_json else []:
        click.echo(f"{q.table or '(unparseable)':<28} {q.events:>8}  {q.reason}  (last {q.last})")


@quarantine.command("replay")
@table_option
@wait_option(300.0, 1, "seconds to wait for the silver job to apply them")
@json_option
def quarantine_replay(table: str | None, wait_s: float, as_json: bool) -> None:
    """Apply quarantined events again (after a fix), in source order; idempotent. Exit 1 if some
    are still refused."""
    from lakehouse.pipeline.silver.commands import quarantine_replay as do_replay

    stack = open_stack()
    r = do_replay(stack.s, stack.endpoints, table, wait_s)
    if as_json:
        click.echo(json.dumps(r.as_dict(), indent=2))
    else:
        click.echo(
            f"replayed {r.replayed} event(s) of {r.table or 'every table'}; "
            f"{r.still_quarantined} still refused"
        )
    if r.still_quarantined:
        raise click.exceptions.Exit(1)


@cli.command()
@table_option
@wait_option(300.0, 1, "seconds to wait for the silver job to fold")
@json_option
def compact(table: str | None, wait_s: float, as_json: bool) -> None:
    """Fold a table's change log (every table's by default) into its base now, rather than when
    it is due: before reading the base directly (`silver_base`, delta-rs, Spark by path). Exit 1
    if a fold failed."""
    from lakehouse.pipeline.silver.commands import compact as do_compact

    stack = open_stack()
    r = do_compact(stack.s, stack.endpoints, table, wait_s)
    if as_json:
        click.echo(json.dumps(r.as_dict(), indent=2))
    else:
        for f in r.folded:
            click.echo(f"{f.table:<28} folded {f.keys:>8} key(s) in {f.seconds:.1f}s")
        if not r.folded and not r.error:
            click.echo("no change log to fold")
    if r.error:
        click.echo(f"error: {r.error}", err=True)
        raise click.exceptions.Exit(1)


@cli.command()
@json_option
def expectations(as_json: bool) -> None:
    """Data-quality rules on silver (spark_streaming/expectations.yml): rows checked and failed
    per rule since the results began, and the last failing row; cross-table rules run now."""
    from lakehouse.pipeline.silver.commands import expectation_totals
    from lakehouse.pipeline.silver.reports import CrossCheck

    stack = open_stack()
    out = expectation_totals(stack.s, stack.endpoints)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in out], indent=2))
        return
    if not out:
        click.echo("no expectations declared (spark_streaming/expectations.yml)")
    for e in out:
        if isinstance(e, CrossCheck):
            found = f"{e.failing:>8} failing now" if e.error is None else f"did not run: {e.error}"
            click.echo(f"{e.table:<24} {e.rule:<30} cross-table {found}")
            if e.last_failing_row:
                click.echo(f"    a failing row: {e.last_failing_row}")
            continue
        share = f"{100 * e.failed / e.checked:.2f} %" if e.checked else "-"
        click.echo(
            f"{e.table:<24} {e.rule:<30} {e.action:<5} {e.checked:>10} checked {e.failed:>8} failed ({share})"
        )
        if e.last_failing_row:
            click.echo(f"    last failing row: {e.last_failing_row}")


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


@cli.command("spark-sql")
@click.argument("statement")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def spark_sql(statement: str, fmt: str) -> None:
    """Run one Spark SQL statement in a local Spark session on the stack's catalog (the Hive
    metastore Trino uses: the same schemas and tables; `-` reads it from stdin). The session
    reads the bucket as its owner, like `verify`; Trino's live views are listed, not readable.

    \b
    lakehouse spark-sql "SHOW TABLES IN silver_base"
    lakehouse spark-sql "SELECT count(*) FROM silver_base.ratings"
    """
    from lakehouse.clients.trino_client import Result
    from lakehouse.config.endpoints import Endpoints
    from lakehouse.config.secrets import Secrets
    from lakehouse.config.settings import load_settings
    from lakehouse.pipeline.query.output import FORMATS
    from lakehouse.pipeline.silver.commands import spark_for

    text = sys.stdin.read() if statement == "-" else statement
    text = text.strip().rstrip(";").strip()
    if not text:
        raise click.UsageError("empty SQL statement")
    s = load_settings()
    ep = Endpoints.of(s, Secrets.load_or_create(s.home))
    with spark_for(s, ep, "lakehouse-spark-sql", catalog=True) as spark:
        df = spark.sql(text)
        result = Result(columns=list(df.columns), rows=[list(row) for row in df.collect()])
    click.echo(FORMATS[fmt](result))


@cli.command("reset-silver")
@click.option("--yes", is_flag=True, help="confirm: silver tables and the stream checkpoint are deleted")
def reset_silver(yes: bool) -> None:
    """Delete silver and its checkpoint so the next `up` rebuilds silver from bronze."""
    if not yes:
        raise click.UsageError("reset-silver deletes every silver table; pass --yes to confirm")
    from lakehouse.pipeline.silver.commands import reset_silver as do_reset

    stack = open_stack()
    if stack.silver.pid() is not None or stack.silver.supervisor() is not None:
        raise LakehouseError("the silver job is running: `lakehouse down silver` first")
    deleted = do_reset(stack.s.storage, stack.minio.client())
    click.echo(f"deleted {deleted} objects; `lakehouse up` replays bronze into silver")

"""Commands that measure or break the stack on purpose: `bench` (freshness, floors, throughput,
snapshot) and `chaos` (the fault matrix)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lakehouse.benchmark import FLOOR_WRITES, FloorWrite
from lakehouse.cli.base import (
    cli,
    open_stack,
)


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
    stack = open_stack()

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


@cli.group(invoke_without_command=True)
@click.option("--rate", type=click.FloatRange(1, 100_000), default=100.0, show_default=True, help="changes/s")
@click.option("--duration", type=click.FloatRange(5, 7_200), default=60.0, show_default=True, help="seconds")
@click.option(
    "--warmup",
    type=click.FloatRange(0, 3_600),
    default=60.0,
    show_default=True,
    help="seconds of the same load before each run, not measured (a job's first minute: code "
    "compiled, silver's first folds)",
)
@click.option(
    "--out", default="artifacts/bench", show_default=True, type=click.Path(), help="JSON + plots here"
)
@click.option("--json", "as_json", is_flag=True, help="print the result document")
@click.option(
    "--floor",
    is_flag=True,
    help="then the same load through each floor job (Kafka → Delta, none of silver's rules), silver stopped",
)
@click.option(
    "--floor-write",
    "floor_writes",
    type=click.Choice(FLOOR_WRITES),
    multiple=True,
    help="which floors (repeatable; default both): MERGE (the tutorial job), or an append of each "
    "batch (the cheapest write)",
)
@click.pass_context
def bench(
    ctx: click.Context,
    *,
    rate: float,
    duration: float,
    warmup: float,
    out: str,
    as_json: bool,
    floor: bool,
    floor_writes: tuple[FloorWrite, ...],
) -> None:
    """Freshness through every hop under a steady change load (the stack must be up).

    Without a subcommand: the generator writes RATE changes/s for DURATION s while a marker row is
    followed from the Postgres commit to Kafka, bronze, the silver commit and a Trino query.
    Writes bench.json and freshness/CDF/hop plots to OUT. Subcommands measure one layer.
    With --floor, OUT/floor-merge/ and OUT/floor-append/ get the floor jobs' runs and OUT/comparison.json
    + .png all side by side.
    """
    if ctx.invoked_subcommand is not None:
        return
    if floor_writes and not floor:
        raise click.UsageError("--floor-write is for the floor jobs: add --floor")
    from lakehouse.benchmark.run import run as run_bench

    if warmup and not as_json:
        click.echo(f"each run starts with {warmup:g} s of the same load, not measured (--warmup)")
    if floor:
        from lakehouse.benchmark.compare import FLOOR_NAMES, run_with_floors

        writes = tuple(dict.fromkeys(floor_writes)) or ("merge", "append")
        c = run_with_floors(open_stack(), rate, duration, Path(out), writes=writes, warmup_s=warmup)
        if as_json:
            click.echo(json.dumps(c, indent=2))
            return
        for name, v in (("silver", c["silver"]), *((FLOOR_NAMES[w], c["floors"][w]) for w in writes)):
            click.echo(
                f"{name:<18} at {v['achieved_rate']}/s: commit → Trino p50 {_secs(v['p50'])} "
                f"p95 {_secs(v['p95'])}; "
                f"lag bounded: {v['lag_bounded']}; markers visible {v['markers']['visible']} of "
                f"{v['markers']['written']}"
            )
        for w in writes:
            ratio = c["freshness_ratio"][w]
            click.echo(f"silver / {FLOOR_NAMES[w]}: p50 {ratio['p50']} times, p95 {ratio['p95']} times")
        click.echo(f"→ {out}/comparison.json, comparison.png, bench.json, floor-<write>/bench.json")
        return
    r = run_bench(open_stack(), rate, duration, Path(out), warmup_s=warmup)
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


def _secs(x: float | None) -> str:
    """A percentile of a run for people: one decimal, or `none` when no marker was seen."""
    return "none" if x is None else f"{x:.1f}s"


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

    r = bronze_latency(open_stack(), changes, interval, Path(out))
    _report("bronze", r, f"flush interval {r['flush_interval_ms']} ms", out)


@bench.command("silver")
@_bench_options(changes=30, interval=2.0)
def bench_silver(changes: int, interval: float, out: str) -> None:
    """Commit → silver Delta commit latency (p50/p95) at light load; the stack must be up."""
    from lakehouse.benchmark.latency import silver_latency

    r = silver_latency(open_stack(), changes, interval, Path(out))
    _report("silver", r, f"trigger {r['trigger']}", out)


@bench.command("trino")
@_bench_options(changes=50, interval=1.0)
def bench_trino(changes: int, interval: float, out: str) -> None:
    """Commit → visible in a Trino query (p50/p95), one row per change; the stack must be up."""
    from lakehouse.benchmark.latency import trino_latency

    r = trino_latency(open_stack(), changes, interval, Path(out))
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
    r = run_throughput(open_stack(), values, duration, Path(out))
    for s in r["steps"]:
        click.echo(
            f"  {s['target_rate']:>7g}/s → achieved {s['achieved_rate']}/s, p95 {s['freshness_s']['p95']}s, "
            f"{'sustained' if s['sustained'] else 'NOT sustained'}"
        )
    click.echo(f"max sustained: {r['max_sustained_rate']} changes/s → {out}/throughput.json")

"""`python -m tools.bench batch|merge|source`: one-off A/B probes of silver's parts, run from a
checkout against the stack or a scratch session; not part of the product (`lakehouse bench` is)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lakehouse.launcher.stack import Stack


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Probes of silver's micro-batch, its MERGE and its source."""


@cli.command("batch")
@click.option(
    "--from",
    "source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="folder of bronze .jsonl files (default: copy the running stack's bronze to OUT/bronze)",
)
@click.option("--lines", type=click.IntRange(1, 10_000_000), default=17_000, show_default=True)
@click.option("--out", default="artifacts/bench/batch", show_default=True, type=click.Path())
def bench_batch(source: Path | None, lines: int, out: str) -> None:
    """The silver micro-batch alone: bronze replayed through the job's own batch on a local
    SparkSession (the job's settings, a scratch silver), LINES lines per batch."""
    from .batch import capture, replay

    if source is None:
        stack = Stack()
        source = Path(out) / "bronze"
        n = capture(stack.minio.client(), stack.s.bucket, source)
        click.echo(f"copied {n} bronze objects to {source}")
    elif not source.is_dir():
        raise click.UsageError(f"--from: {source} is not a folder")
    r = replay(source, lines, Path(out), progress=click.echo)
    click.echo(
        f"{len(r['batches'])} batches: p50 {r['seconds']['p50']:.2f}s, max {r['seconds']['max']:.2f}s; "
        f"{r['lines_per_s']['p50']:.0f} lines/s (p50) → {out}/batch.json, batch.png"
    )


@cli.command("merge")
@click.option(
    "--rows", type=click.IntRange(1, 100_000_000), default=1_000, show_default=True, help="rows in the table"
)
@click.option(
    "--size", type=click.IntRange(1, 10_000_000), default=3, show_default=True, help="changes per MERGE"
)
@click.option(
    "--merges", type=click.IntRange(2, 10_000), default=20, show_default=True, help="MERGEs (3 warm-up)"
)
@click.option("--width", type=click.IntRange(1, 1_000), default=10, show_default=True, help="text columns")
@click.option(
    "--deletion-vectors/--no-deletion-vectors",
    default=None,
    help="the table with Delta deletion vectors [default: silver.json's setting]",
)
@click.option(
    "--conf", "confs", multiple=True, metavar="KEY=VALUE", help="a Spark/Delta setting on top (repeatable)"
)
@click.option("--out", default="artifacts/bench/merge", show_default=True, type=click.Path())
def bench_merge(
    *,
    rows: int,
    size: int,
    merges: int,
    width: int,
    deletion_vectors: bool | None,
    confs: tuple[str, ...],
    out: str,
) -> None:
    """Silver's MERGE alone, job by job: MERGES MERGEs of SIZE changes into a scratch table of ROWS
    rows through the job's own Store.merge, on a local SparkSession with the job's settings."""
    from lakehouse.pipeline.silver.launch import JobSetup

    from .merge import Shape, parse_conf
    from .merge import run as run_merge

    overrides = parse_conf(confs)
    setup = JobSetup.load()
    dv = setup.cfg.deletion_vectors if deletion_vectors is None else deletion_vectors
    shape = Shape(rows=rows, size=size, merges=merges, width=width, deletion_vectors=dv)
    shape.check()
    r = run_merge(setup.conf, setup.jars, shape, Path(out), overrides=overrides, progress=click.echo)
    parts = ", ".join(f"{k} {v:.2f}s" for k, v in r["median_seconds_by_kind"].items())
    click.echo(
        f"MERGE p50 {r['seconds']['p50']:.2f}s, p95 {r['seconds']['p95']:.2f}s, "
        f"{r['spark_jobs']['p50']:.0f} Spark jobs; median per MERGE: {parts} → {out}/merge.json, merge.png"
    )


@cli.command("source")
@click.option(
    "--repeat", type=click.IntRange(1, 10), default=2, show_default=True, help="runs per source (A B B A …)"
)
@click.option("--out", default="artifacts/bench/source", show_default=True, type=click.Path())
def bench_source(repeat: int, out: str) -> None:
    """Silver's stream from bronze files against Spark's Kafka source, on the same events: everything
    the stack holds, replayed through the job's own batch with silver stopped."""
    from .source import run as run_source

    r = run_source(Stack(), Path(out), repeat, progress=click.echo)
    for run in r["runs"]:
        click.echo(
            f"{run['source']}: {run['lines']} lines in {run['wall_s']}s, "
            f"batch p50 {run['batch_s']['p50']:.2f}s, loop p50 {run['loop_s']['p50']:.2f}s"
        )
    click.echo(f"→ {out}/source.json, source.png")


if __name__ == "__main__":
    sys.exit(cli())

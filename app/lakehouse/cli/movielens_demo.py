"""The demo's commands: `demo` (the whole path), `load-movielens`, `generate`."""

from __future__ import annotations

from pathlib import Path

import click

from lakehouse.cli.base import (
    cli,
    open_stack,
    rate_options,
    source_stack,
)


@cli.command()
@rate_options(5.0)
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

    run(open_stack(), rate=rate, duration_s=duration, path=path)


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
    stack = source_stack()
    for r in load(stack.postgres.app_dsn, stack.s.source_schema, folder):
        click.echo(
            f"{r.table:<8} {r.csv_rows:>7} rows in the CSV, {r.inserted:>7} inserted, "
            f"{r.total:>7} in the table"
        )


@cli.command()
@rate_options(10.0)
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
    stack = source_stack()
    r = run_until_interrupted(
        stack.postgres.app_dsn, stack.s.source_schema, rate=rate, duration_s=duration, seed=seed, mix=weights
    )
    kinds = ", ".join(f"{k} {n}" for k, n in r.by_kind.items() if n)
    click.echo(
        f"{r.changes} changes in {r.seconds:.1f}s: achieved {r.achieved_rate:.1f}/s "
        f"(target {r.target_rate:g}/s) — {kinds}"
    )

"""Load the MovieLens CSVs (GroupLens ml-latest-small layout) into the source Postgres.

Nothing is downloaded: the files are read from a folder the user has (default
`../shared/data/movielens-small` beside the checkout). Each CSV is COPYed into a temporary
staging table, then inserted in chunks of committed transactions with ON CONFLICT DO NOTHING,
so a rerun adds nothing and the CDC stream sees ordinary, moderately sized transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakehouse.config.paths import movielens_sample
from lakehouse.errors import LakehouseError

console = Console(stderr=True)

CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class CsvTable:
    file: str
    table: str
    header: tuple[str, ...]  # exactly as GroupLens writes it
    select: str  # staging columns (all text) → target columns, in target order
    columns: tuple[str, ...]


#: parents before children (ratings, tags and links reference movies)
TABLES = (
    CsvTable(
        "movies.csv", "movies", ("movieId", "title", "genres"),
        "c1::integer, c2, c3", ("movie_id", "title", "genres"),
    ),
    CsvTable(
        "links.csv", "links", ("movieId", "imdbId", "tmdbId"),
        "c1::integer, c2, nullif(c3, '')::integer", ("movie_id", "imdb_id", "tmdb_id"),
    ),
    CsvTable(
        "ratings.csv", "ratings", ("userId", "movieId", "rating", "timestamp"),
        "c1::integer, c2::integer, c3::numeric(2,1), to_timestamp(c4::bigint)",
        ("user_id", "movie_id", "rating", "rated_at"),
    ),
    CsvTable(
        "tags.csv", "tags", ("userId", "movieId", "tag", "timestamp"),
        "c1::integer, c2::integer, c3, to_timestamp(c4::bigint)",
        ("user_id", "movie_id", "tag", "tagged_at"),
    ),
)  # fmt: skip


def check_folder(path: Path | None) -> Path:
    """The folder with the four CSVs and the headers we expect, or an error saying what is wrong."""
    folder = (path or movielens_sample()).expanduser()
    expected = ", ".join(t.file for t in TABLES)
    hint = (
        f"put the GroupLens ml-latest-small files ({expected}) there, "
        "or pass --path to the folder that has them"
    )
    if not folder.is_dir():
        raise LakehouseError(f"MovieLens folder not found: {folder} — {hint}")
    missing = [t.file for t in TABLES if not (folder / t.file).is_file()]
    if missing:
        raise LakehouseError(f"{folder} has no {', '.join(missing)} — {hint}")
    for t in TABLES:
        with open(folder / t.file, encoding="utf-8") as fh:
            header = tuple(fh.readline().strip().split(","))
        if header != t.header:
            raise LakehouseError(
                f"{folder / t.file}: header {','.join(header)} is not the MovieLens one "
                f"({','.join(t.header)})"
            )
    return folder


@dataclass(frozen=True)
class Loaded:
    table: str
    csv_rows: int
    inserted: int
    total: int


def load(dsn: str, schema: str, path: Path | None = None) -> list[Loaded]:
    folder = check_folder(path)
    out = []
    with (
        psycopg.connect(dsn) as conn,
        Progress(
            TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):  # fmt: skip
        for t in TABLES:
            out.append(_load_one(conn, schema, folder / t.file, t, progress))
    return out


def _load_one(conn: psycopg.Connection, schema: str, file: Path, t: CsvTable, progress: Progress) -> Loaded:
    stage = sql.Identifier(f"stage_{t.table}")
    target = sql.Identifier(schema, t.table)
    cols = sql.SQL(", ").join(sql.Identifier(f"c{i + 1}") for i in range(len(t.header)))
    text_cols = sql.SQL(", ").join(
        sql.SQL("{} text").format(sql.Identifier(f"c{i + 1}")) for i in range(len(t.header))
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} (n bigserial, {}) ON COMMIT PRESERVE ROWS").format(stage, text_cols)
        )
        with (
            open(file, "rb") as fh,
            cur.copy(
                sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(stage, cols)
            ) as copy,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        rows = int(cur.execute(sql.SQL("SELECT count(*) FROM {}").format(stage)).fetchone()[0])  # type: ignore[index]
        conn.commit()
        task = progress.add_task(t.table, total=rows)
        inserted = 0
        insert = sql.SQL(
            "INSERT INTO {} ({}) SELECT "
            + t.select
            + " FROM {} WHERE n > %s AND n <= %s ON CONFLICT DO NOTHING"
        ).format(target, sql.SQL(", ").join(sql.Identifier(c) for c in t.columns), stage)
        for lo in range(0, rows, CHUNK_ROWS):
            cur.execute(insert, (lo, lo + CHUNK_ROWS))
            inserted += cur.rowcount
            conn.commit()
            progress.update(task, completed=min(lo + CHUNK_ROWS, rows))
        cur.execute(sql.SQL("DROP TABLE {}").format(stage))
        total = int(cur.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0])  # type: ignore[index]
        conn.commit()
    return Loaded(t.table, rows, inserted, total)

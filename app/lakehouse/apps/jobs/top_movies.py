"""top-movies-daily: today's analytics.top_movies, appended to analytics.top_movies_history.

The view holds the ranking logic (trino/views/top_movies.sql); the job only dates a copy of it, so
rank changes over days can be queried and charted. A second run on the same day replaces that
day's snapshot (a re-run after a fix must not double the day).
"""

from __future__ import annotations

from datetime import UTC, datetime

from lakehouse.apps.jobs.context import JobContext
from lakehouse.apps.jobs.tables import TOP_MOVIES_HISTORY, ensure_output
from lakehouse.config.names import ANALYTICS, CATALOG

TABLE = TOP_MOVIES_HISTORY.qualified


def run(ctx: JobContext) -> dict[str, float]:
    top = int(ctx.params.get("top", 100))
    if not 1 <= top <= 100:
        raise ValueError(f"top {top}: between 1 and 100 (the view ranks 100 movies)")
    trino = ctx.trino()
    ensure_output(trino, TOP_MOVIES_HISTORY, ctx.s.bucket)
    now = datetime.now(UTC)
    day = f"DATE '{now:%Y-%m-%d}'"
    trino.query(f"DELETE FROM {TABLE} WHERE snapshot_date = {day}")
    trino.query(
        f"INSERT INTO {TABLE} "
        f"SELECT {day}, rank, movie_id, title, genres, ratings, CAST(avg_rating AS double), "
        f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S} UTC' "
        f"FROM {CATALOG}.{ANALYTICS}.top_movies WHERE rank <= {top}"
    )
    rows = int(trino.scalar(f"SELECT count(*) FROM {TABLE} WHERE snapshot_date = {day}"))
    return {"rows": rows}

"""The Delta tables jobs write, made through Trino when missing.

A job's table lives outside silver's folders (`jobs/<schema>/<table>`, layout.py), so
`reset-silver` and the catalog sync leave it alone, and the scheduler makes it at start. A table
whose folder already holds a Delta log (a metastore that lost it) is registered again, data kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.config.layout import Storage, job_table
from lakehouse.config.names import ANALYTICS, CATALOG
from lakehouse.pipeline.query.catalog import literal

ML = "ml"


@dataclass(frozen=True)
class Output:
    """A table a job writes: made (empty) when the scheduler starts, so charts and queries on it
    work before the job's first run."""

    schema: str
    name: str
    columns: str  # Trino DDL

    @property
    def qualified(self) -> str:
        return f"{CATALOG}.{self.schema}.{self.name}"

    @property
    def key(self) -> str:
        """Its folder in the bucket (layout.py)."""
        return job_table(self.schema, self.name)


TOP_MOVIES_HISTORY = Output(
    ANALYTICS,
    "top_movies_history",
    "snapshot_date date, rank integer, movie_id integer, title varchar, genres varchar, "
    "ratings bigint, avg_rating double, taken_at timestamp(3) with time zone",
)
USER_RECOMMENDATIONS = Output(
    ML, "user_recommendations", "user_id integer, rank integer, movie_id integer, predicted_rating double"
)
MOVIE_RECOMMENDATIONS = Output(
    ML, "movie_recommendations", "movie_id integer, rank integer, user_id integer, predicted_rating double"
)
MODEL_RUNS = Output(
    ML,
    "model_runs",
    "run_id varchar, trained_at timestamp(3) with time zone, rmse double, baseline_global_rmse double, "
    "baseline_bias_rmse double, rank integer, reg_param double, train_rows bigint, test_rows bigint, "
    "seconds double",
)
OUTPUTS = (TOP_MOVIES_HISTORY, USER_RECOMMENDATIONS, MOVIE_RECOMMENDATIONS, MODEL_RUNS)


def exists(trino: Trino, schema: str, table: str) -> bool:
    n = trino.scalar(
        f"SELECT count(*) FROM {CATALOG}.information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    )
    return bool(n)


def ensure_table(trino: Trino, schema: str, table: str, columns: str, location: str) -> None:
    """`CATALOG.schema.table` with these columns (Trino DDL) at `location` (a Trino URI)."""
    trino.query(f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{schema}")
    if exists(trino, schema, table):
        return
    try:
        trino.query(
            f"CALL {CATALOG}.system.register_table(schema_name => {literal(schema)}, "
            f"table_name => {literal(table)}, table_location => {literal(location)})"
        )
        return
    except QueryError:
        pass  # no Delta log there yet: a new table
    trino.query(
        f"CREATE TABLE IF NOT EXISTS {CATALOG}.{schema}.{table} ({columns}) "
        f"WITH (location = {literal(location)})"
    )


def ensure_output(trino: Trino, out: Output, bucket: str) -> None:
    ensure_table(trino, out.schema, out.name, out.columns, Storage(bucket).trino(out.key))


def ensure_outputs(trino: Trino, bucket: str) -> None:
    for out in OUTPUTS:
        ensure_output(trino, out, bucket)

"""The Delta tables jobs write, made through Trino when missing.

A job's table lives outside silver's folders (`s3://bucket/jobs/…`), so `reset-silver` and the
catalog sync leave it alone; the runs table is the exception (ops.job_runs, under silver/ like the
other ops tables, so the catalog sync registers it again after a lost metastore). A table whose
folder already holds a Delta log (a metastore that lost it) is registered again, data kept.
"""

from __future__ import annotations

from ..query.catalog import literal
from ..query.client import QueryError, Trino
from ..query.names import CATALOG

#: where job output tables live, under the bucket
JOBS_PREFIX = "jobs"


def exists(trino: Trino, schema: str, table: str) -> bool:
    n = trino.scalar(
        f"SELECT count(*) FROM {CATALOG}.information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    )
    return bool(n)


def ensure_table(trino: Trino, schema: str, table: str, columns: str, location: str) -> None:
    """`CATALOG.schema.table` with these columns (Trino DDL) at `location` (s3://…)."""
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

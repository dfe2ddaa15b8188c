"""One catalog for Spark and Trino on the real stack: the Hive metastore holds what silver makes.

A table silver creates is listed by name in Trino and in a Spark session on the stack's catalog
(`lakehouse spark-sql`, a process of its own as a user runs it), and both read its rows; a column
added in the source shows in both. The metastore killed -9 under load is in the chaos matrix
(test_chaos.py), reset-silver's rebuild in test_silver.py.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from lakehouse.launcher.stack import Stack
from lakehouse.polling import wait_until

from .helpers import (
    VISIBLE_S,
    analyst,
    assert_one_catalog,
    catalog_tables,
    delta_schema,
    fold,
    lakehouse,
    source,
    spark_sql,
    wait_rows,
)

pytestmark = pytest.mark.integration

TABLE = "catalog_probe"


def _trino_columns(stack: Stack, schema: str, table: str) -> list[str]:
    rows = (
        analyst(stack)
        .query(
            "SELECT column_name FROM lakehouse.information_schema.columns"
            f" WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position"
        )
        .rows
    )
    return [r[0] for r in rows]


@pytest.mark.timeout(600)
def test_a_table_silver_creates_is_known_by_name_to_trino_and_spark_and_so_is_a_new_column(
    stack: Stack,
) -> None:
    schema = stack.s.source_schema
    with source(stack) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {schema}.{TABLE}")
        conn.execute(f"CREATE TABLE {schema}.{TABLE} (id int PRIMARY KEY, note text)")
        conn.execute(f"INSERT INTO {schema}.{TABLE} VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    trino = analyst(stack)
    wait_rows(trino, f"SELECT count(*) FROM silver.{TABLE}", [[3]])
    delta = delta_schema(trino, TABLE)  # silver_base with merge-on-read, else silver

    # the metastore's answer, through each engine: the same tables in every schema silver uses;
    # `lakehouse spark-sql` (a user's way in) lists silver's, and Spark reads the Delta table
    # Trino reads, by name
    assert TABLE in catalog_tables(stack)[delta]
    assert_one_catalog(stack)
    shown = lakehouse("spark-sql", "SHOW TABLES IN silver", "--format", "json")
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert TABLE in [r["tableName"] for r in json.loads(shown.stdout)], shown.stdout
    # the Delta table Trino reads, by name; with merge-on-read the base holds the rows once the
    # log is folded into it (up to a compaction interval later): fold it now
    fold(stack, TABLE)
    assert spark_sql(f"SELECT count(*) AS n FROM {delta}.{TABLE}") == [[{"n": 3}]]

    # a column added in the source: in Trino's live view and Delta table, and in Spark's table
    with source(stack) as conn:
        conn.execute(f"ALTER TABLE {schema}.{TABLE} ADD COLUMN rating numeric(3,1)")
        conn.execute(f"INSERT INTO {schema}.{TABLE} VALUES (4, 'four', 4.5)")
    wait_rows(trino, f"SELECT CAST(rating AS varchar) FROM silver.{TABLE} WHERE id = 4", [["4.5"]])
    assert "rating" in _trino_columns(stack, "silver", TABLE)
    assert wait_until(lambda: "rating" in _trino_columns(stack, delta, TABLE), timeout=VISIBLE_S)
    (described,) = spark_sql(f"DESCRIBE TABLE {delta}.{TABLE}")
    assert "rating" in [r["col_name"] for r in described], described


def test_the_metastore_runs_on_loopback_with_a_role_that_owns_only_its_database(stack: Stack) -> None:
    status = stack.metastore.status()
    assert status.ready and status.details["uri"] == stack.s.metastore_uri
    assert stack.s.metastore_uri.startswith(f"thrift://{stack.s.host}:")
    with psycopg.connect(stack.postgres.superuser_dsn) as conn:
        owned = conn.execute(
            "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = %s",
            [stack.s.metastore_role],
        ).fetchall()
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = %s",
            [stack.s.metastore_role],
        ).fetchone()
    assert owned == [(stack.s.metastore_db,)]
    assert role == (False, False, False, False)

"""Where silver shows up in Trino: one catalog, one schema per role."""

from __future__ import annotations

#: the catalog file is trino/etc/catalog/lakehouse.properties
CATALOG = "lakehouse"
SILVER = "silver"
#: merge-on-read (silver/live.py): a table's base and its change log; `silver.<table>` is then a
#: view of the two by the live rule. The base is what Delta readers by path see (time travel, the
#: change data feed); the log is silver's own.
SILVER_BASE = "silver_base"
SILVER_LOG = "silver_log"
ANALYTICS = "analytics"
#: operational tables (quarantine, expectation results): visible to the admin user only
OPS = "ops"
#: silver's operational Delta folders (silver/store.py Layout) → their table in OPS
OPS_TABLES = {"_quarantine": "quarantine", "_expectations": "expectation_results"}

ADMIN_USER = "admin"
ANALYST_USER = "analyst"


def silver_table(source: str, source_schema: str) -> str:
    """Trino table name of a source table `schema.table` (schema-qualified if not the captured one)."""
    schema, _, table = source.partition(".")
    return table if schema == source_schema else f"{schema}__{table}"


def qualified(schema: str, table: str) -> str:
    return f"{CATALOG}.{schema}.{table}"

"""Driver-side helpers behind `lakehouse verify | tables | reset-silver` (run against a running stack)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from ..artifacts import spark_jars
from ..errors import LakehouseError
from ..query.connect import admin_client
from ..query.names import CATALOG, SILVER, qualified, silver_table
from ..render import render_file
from .session import build, jars_in, read_conf, s3_credentials
from .store import Layout
from .verify import TableDiff, verify_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ..stack import Stack

CHECKPOINT_PREFIX = "_checkpoints/silver/"
#: the row Debezium's heartbeat rewrites every 10 s (postgres/schema.sql): never equal in silver
HEARTBEAT_TABLE = "pipeline_heartbeat"


def captured_tables(stack: Stack) -> dict[str, list[str]]:
    """`schema.table` → primary-key columns, for every table of the captured schema."""
    sql = """
        SELECT tc.table_schema || '.' || tc.table_name,
               array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position)
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
        WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = %s
        GROUP BY 1 ORDER BY 1"""
    with psycopg.connect(stack.postgres.app_dsn) as conn:
        return {t: list(k) for t, k in conn.execute(sql, (stack.s.source_schema,)).fetchall()}


@contextmanager
def spark_for(stack: Stack, app_name: str) -> Iterator[SparkSession]:
    s, sec = stack.s, stack.ctx.secrets
    tmp = s.state("silver") / "cli-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    conf_file = tmp / "spark-defaults.conf"
    values = {
        "driver_memory": "1g",
        "shuffle_partitions": 2,
        "local_dir": tmp,
        "s3_endpoint": s.minio_endpoint,
    }
    conf_file.write_text(render_file(s.root / "spark_streaming" / "spark-defaults.conf", values))
    conf = {**read_conf(conf_file), **s3_credentials(sec.minio_root_user, sec.minio_root_password)}
    spark = build("local[2]", conf, jars_in(spark_jars(s.cache, stack.ctx.versions)), app_name)
    try:
        yield spark
    finally:
        spark.stop()


def comparable_tables(stack: Stack) -> dict[str, list[str]]:
    """Captured tables whose silver copy can equal the source: all but the heartbeat."""
    return {t: k for t, k in captured_tables(stack).items() if t.rpartition(".")[2] != HEARTBEAT_TABLE}


def verify(stack: Stack, only: str | None, wait_s: float) -> list[TableDiff]:
    if only is None:
        tables = comparable_tables(stack)
    else:
        tables = captured_tables(stack)
        name = only if "." in only else f"{stack.s.source_schema}.{only}"
        if name not in tables:
            raise LakehouseError(f"no captured table {name} (captured: {', '.join(tables) or 'none'})")
        tables = {name: tables[name]}
    s, sec = stack.s, stack.ctx.secrets
    url = f"jdbc:postgresql://{s.addr('postgres')}:{s.postgres_port}/{s.source_db}"
    props = {"user": s.app_role, "password": sec.pg_app_password, "driver": "org.postgresql.Driver"}
    layout = Layout(f"s3a://{s.bucket}/silver")
    deadline = time.monotonic() + wait_s
    with spark_for(stack, "lakehouse-verify") as spark:
        while True:
            diffs = [verify_table(spark, layout, (url, props), t, keys) for t, keys in tables.items()]
            if all(d.clean for d in diffs) or time.monotonic() >= deadline:
                return diffs
            time.sleep(3)


def tables(stack: Stack) -> list[dict[str, Any]]:
    """Per source table: its Trino name, silver location, Delta version and rows.

    Live from Trino when it runs (tables it has registered); otherwise as last published by the
    silver job (`_state/tables.json`, refreshed every minute) and without a Trino name.
    """
    client = stack.minio.client()
    try:
        body = client.get_object(stack.s.bucket, "silver/_state/tables.json").read()
    except Exception:  # no status yet: the job has not written any table
        body = b'{"tables": []}'
    published = {t["source"]: t for t in json.loads(body)["tables"]}
    live = _live_from_trino(stack)
    out = []
    for source in captured_tables(stack):
        name = silver_table(source, stack.s.source_schema)
        t = {**published.get(source, {}), **live.get(name, {})}
        out.append(
            {
                "source": source,
                "silver": qualified(SILVER, name) if name in live else None,
                "location": t.get("location", f"s3://{stack.s.bucket}/silver/{source.replace('.', '/')}"),
                "version": t.get("version"),
                "rows": t.get("rows"),
            }
        )
    return out


def _live_from_trino(stack: Stack) -> dict[str, dict[str, Any]]:
    """Registered silver tables → current Delta version and row count, or {} if Trino is down."""
    if stack.trino.pid() is None:
        return {}
    trino = admin_client(stack.s, stack.ctx.secrets)
    try:
        names = trino.query(
            f"SELECT table_name FROM {CATALOG}.information_schema.tables "
            f"WHERE table_schema = '{SILVER}' AND table_type = 'BASE TABLE'"
        ).rows
        out: dict[str, dict[str, Any]] = {}
        for (name,) in names:
            version = trino.scalar(f'SELECT max(version) FROM {SILVER}."{name}$history"')
            rows = trino.scalar(f'SELECT count(*) FROM {SILVER}."{name}"')
            out[name] = {"version": version, "rows": rows}
        return out
    except LakehouseError:
        return {}


def reset_silver(stack: Stack) -> int:
    """Delete silver and its checkpoint (the job must be stopped); the next start replays bronze."""
    if stack.silver.pid() is not None:
        raise LakehouseError("the silver job is running: `lakehouse down` first (or stop only silver)")
    client = stack.minio.client()
    n = 0
    for prefix in ("silver/", CHECKPOINT_PREFIX):
        for obj in client.list_objects(stack.s.bucket, prefix=prefix, recursive=True):
            if obj.object_name:
                client.remove_object(stack.s.bucket, obj.object_name)
                n += 1
    return n

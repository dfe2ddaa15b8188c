"""Driver-side helpers behind `lakehouse verify | tables | reset-silver` (run against a running stack)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import psycopg
from minio.error import S3Error
from psycopg.conninfo import conninfo_to_dict

from lakehouse import clients
from lakehouse.config.layout import METASTORE_WAREHOUSE, Storage
from lakehouse.config.layout import silver_table as layout_silver_table
from lakehouse.config.names import CATALOG, OPS, SILVER, SILVER_BASE, qualified, silver_table
from lakehouse.config.render import render_file
from lakehouse.errors import LakehouseError, UsageError
from lakehouse.pipeline.silver.live_rows import read
from lakehouse.pipeline.silver.reports import (
    Blocked,
    Compacted,
    CrossCheck,
    QuarantineGroup,
    Replayed,
    RuleTotals,
    TableStatus,
)
from lakehouse.pipeline.silver.session import (
    build,
    catalog_conf,
    conf_values,
    jars_in,
    read_conf,
    s3_credentials,
)
from lakehouse.pipeline.silver.store import Layout, written_by_another
from lakehouse.pipeline.silver.verify import TableDiff, verify_table
from lakehouse.polling import wait_until

if TYPE_CHECKING:
    from minio import Minio
    from pyspark.sql import SparkSession

    from lakehouse.config.endpoints import Endpoints
    from lakehouse.config.settings import Settings

#: the bronze query's checkpoint (`…/silver/`) and each kafka epoch's (`…/silver-kafka-N/`)
CHECKPOINT_PREFIX = "_checkpoints/silver"
#: the row Debezium's heartbeat rewrites every 30 s (postgres/schema.sql): never equal in silver
HEARTBEAT_TABLE = "pipeline_heartbeat"


def captured_tables(ep: Endpoints) -> dict[str, list[str]]:
    """`schema.table` → primary-key columns, for every table of the captured schema (none for a
    table without a primary key: silver refuses it, and `verify` compares it as a multiset)."""
    sql = """
        SELECT t.table_schema || '.' || t.table_name,
               coalesce(array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position)
                        FILTER (WHERE kcu.column_name IS NOT NULL), '{}')
        FROM information_schema.tables t
        LEFT JOIN information_schema.table_constraints tc
          ON tc.table_schema = t.table_schema AND tc.table_name = t.table_name
         AND tc.constraint_type = 'PRIMARY KEY'
        LEFT JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
        WHERE t.table_schema = ANY(%s) AND t.table_type = 'BASE TABLE'
        GROUP BY 1 ORDER BY 1"""
    with psycopg.connect(ep.source.dsn) as conn:
        return {t: list(k) for t, k in conn.execute(sql, (ep.source.schemas,)).fetchall()}


@contextmanager
def spark_for(s: Settings, ep: Endpoints, app_name: str, catalog: bool = False) -> Iterator[SparkSession]:
    """A local Spark session with Delta and the stack's object store (as its root user); with
    `catalog`, also the catalog Trino uses (the Hive metastore), so tables resolve by name. Without
    it, tables are read by path only and the session works while the metastore is down, as the
    silver job's own does (docs/design.md)."""
    from lakehouse.config.versions import Versions, hive_client_jars, spark_jars

    tmp = s.state("silver") / "cli-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    conf_file = tmp / "spark-defaults.conf"
    values = conf_values("1g", tmp, ep.object_store.endpoint)
    conf_file.write_text(render_file(s.root / "spark_streaming" / "spark-defaults.conf", values))
    versions = Versions.load(s.root / "versions.env")
    conf = {**read_conf(conf_file), **s3_credentials(ep.object_store.access_key, ep.object_store.secret_key)}
    if catalog:
        conf |= catalog_conf(
            ep.spark.metastore,
            versions.hive,
            jars_in(hive_client_jars(s.cache, versions)),
            Storage(ep.object_store.bucket).spark(METASTORE_WAREHOUSE),
        )
    spark = build("local[2]", conf, jars_in(spark_jars(s.cache, versions)), app_name)
    try:
        yield spark
    finally:
        spark.stop()


def comparable_tables(ep: Endpoints) -> dict[str, list[str]]:
    """Captured tables whose silver copy can equal the source: all but the heartbeat."""
    return {t: k for t, k in captured_tables(ep).items() if t.rpartition(".")[2] != HEARTBEAT_TABLE}


def verify(
    s: Settings,
    ep: Endpoints,
    only: str | Sequence[str] | None,
    wait_s: float,
    spark: SparkSession | None = None,
) -> list[TableDiff]:
    """Diff each named captured table (a bare name is in the source schema; None: every comparable
    table) with silver, re-checking for up to `wait_s` while silver catches up. A caller that
    verifies often (the tests) passes its own Spark session; otherwise one is started and stopped."""
    if only is None:
        tables = comparable_tables(ep)
    else:
        captured = captured_tables(ep)
        tables = {}
        for one in [only] if isinstance(only, str) else only:
            name = one if "." in one else f"{s.source_schema}.{one}"
            if name not in captured:
                raise LakehouseError(f"no captured table {name} (captured: {', '.join(captured) or 'none'})")
            tables[name] = captured[name]
    dsn = conninfo_to_dict(ep.source.dsn)
    url = f"jdbc:postgresql://{dsn['host']}:{dsn['port']}/{dsn['dbname']}"
    props = {"user": str(dsn["user"]), "password": str(dsn["password"]), "driver": "org.postgresql.Driver"}
    layout = Layout.of(s.storage)
    deadline = time.monotonic() + wait_s
    with nullcontext(spark) if spark is not None else spark_for(s, ep, "lakehouse-verify") as session:
        if wait_s > 0:
            # one cheap probe instead of a full comparison every few seconds (which would take the
            # CPU the catching-up job needs): first wait until silver holds a heartbeat written
            # after now, then compare, and only then re-check while the last events land
            heartbeat = f"{s.source_schema}.{HEARTBEAT_TABLE}"
            watermark = _beat(ep, s.source_schema)
            wait_until(
                lambda: _applied_lsn(session, layout, heartbeat) >= watermark, timeout=wait_s, interval=2
            )
        while True:
            diffs = [verify_table(session, layout, (url, props), t, keys) for t, keys in tables.items()]
            if all(d.clean for d in diffs) or time.monotonic() >= deadline:
                return diffs
            time.sleep(3)


def _beat(ep: Endpoints, schema: str) -> int:
    """The source's current WAL position, as the integer silver's `_lsn` column holds, then a beat
    of the heartbeat row after it (the application role owns the table): silver's heartbeat passes
    the position one batch later instead of at Debezium's next heartbeat, up to 30 s away."""
    with psycopg.connect(ep.source.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").fetchone()
        conn.execute(
            f"INSERT INTO {schema}.{HEARTBEAT_TABLE} (id, beat_at) VALUES (1, now()) "
            "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at"
        )
    assert row is not None
    return int(row[0])


def _applied_lsn(spark: SparkSession, layout: Layout, heartbeat: str) -> int:
    """The newest change position of the heartbeat row in silver; -1 while there is none. The
    heartbeat is rewritten by `_beat` and every 30 s, so it passes any position within seconds of
    silver."""
    from pyspark.sql import functions as F

    if not written_by_another(spark, layout.table(heartbeat)):
        return -1
    newest = read(spark, layout, heartbeat).agg(F.max("_lsn")).first()
    return -1 if newest is None or newest[0] is None else int(newest[0])


def tables(s: Settings, ep: Endpoints) -> list[TableStatus]:
    """Per source table: its Trino name, silver location, Delta version and rows.

    Live from Trino when it runs (tables it has registered); otherwise as last published by the
    silver job (`_state/tables.json`, refreshed every minute) and without a Trino name.
    """
    client = clients.object_store(ep)
    try:
        body = client.get_object(s.bucket, "silver/_state/tables.json").read()
    except Exception:  # no status yet: the job has not written any table
        body = b'{"tables": []}'
    published = {t["source"]: t for t in json.loads(body)["tables"]}
    live = _live_from_trino(ep)
    blocked = _blocked(ep)
    out = []
    for source in captured_tables(ep):
        name = silver_table(source, s.source_schema)
        t = {**published.get(source, {}), **live.get(name, {})}
        out.append(
            TableStatus(
                source=source,
                silver=qualified(SILVER, name) if name in live else None,
                location=t.get("location", s.storage.trino(layout_silver_table(source))),
                version=t.get("version"),
                rows=t.get("rows"),
                blocked=blocked.get(source),
            )
        )
    return out


def _blocked(ep: Endpoints) -> dict[str, Blocked]:
    """Source tables with events waiting in quarantine → their count and latest reason; {} if
    Trino is down."""
    from lakehouse.pipeline.query.inventory import quarantine, registered

    trino = clients.trino(ep, admin=True)
    try:
        found = quarantine(trino)[1] if registered(trino).quarantine else []
    except LakehouseError:
        return {}
    return {b.source_table: Blocked(b.events, b.reason) for b in found}


def _live_from_trino(ep: Endpoints) -> dict[str, dict[str, Any]]:
    """Registered silver tables → current Delta version and row count, or {} if Trino is down."""
    from lakehouse.pipeline.query.inventory import registered

    trino = clients.trino(ep, admin=True)
    try:
        listed = registered(trino)
    except LakehouseError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name in listed.silver:
        # a live view's Delta versions are its base's (its log's are silver's own)
        where = SILVER_BASE if name in listed.bases else SILVER
        try:
            version = trino.scalar(f'SELECT max(version) FROM {where}."{name}$history"')
            rows = trino.scalar(f'SELECT count(*) FROM {SILVER}."{name}"')
        except LakehouseError:  # one table Trino cannot read now (a view being rewritten)
            version = rows = None
        out[name] = {"version": version, "rows": rows}
    return out


def reset_silver(storage: Storage, objects: Minio) -> int:
    """Delete silver and its checkpoints (the caller has checked the job is stopped); the next
    start replays bronze.

    Safe to interrupt (kill, a lost connection): a marker (job.RESET_MARKER, under the silver root)
    is written before anything is deleted and removed after everything else, and the job refuses to
    start while it is there (job.guard_checkpoint) — running the reset again finishes it. Whatever
    lets the stream resume goes first: the checkpoints, then the epoch state
    (`_state/source.json`), then the rest of silver. So even a reset that lost its marker (an older
    version's) never leaves a checkpoint beside partly deleted silver, which the job would resume
    from; silver without a checkpoint is refused too. Returns the objects deleted (the marker not
    counted)."""
    import io
    from datetime import UTC, datetime

    from lakehouse.pipeline.silver.checkpoint_guard import reset_marker

    client, bucket = objects, storage.bucket
    layout = Layout.of(storage)
    marker = storage.key(reset_marker(layout))
    body = json.dumps({"started": datetime.now(UTC).isoformat()}).encode()
    client.put_object(bucket, marker, io.BytesIO(body), len(body), content_type="application/json")
    n = 0
    for prefix in (CHECKPOINT_PREFIX, storage.key(layout.source_state), "silver/"):
        for obj in client.list_objects(bucket, prefix=prefix, recursive=True):
            if obj.object_name and obj.object_name != marker:
                client.remove_object(bucket, obj.object_name)
                n += 1
    client.remove_object(bucket, marker)
    return n


# ---- `lakehouse quarantine list | replay`


def _source_name(s: Settings, table: str | None) -> str | None:
    if table is None:
        return None
    name = table if "." in table else f"{s.source_schema}.{table}"
    if not re.fullmatch(r"[A-Za-z_][\w$]*\.[A-Za-z_][\w$]*", name):
        raise UsageError(f"--table {table!r}: expected schema.table or table")
    return name


def quarantine_list(s: Settings, ep: Endpoints, table: str | None) -> list[QuarantineGroup]:
    """Quarantined events per source table and reason (through Trino, as the admin)."""
    name = _source_name(s, table)
    where, params = ("WHERE source_table = ?", [name]) if name else ("", [])
    trino = clients.trino(ep, admin=True)
    rows = trino.query(
        f"SELECT source_table, reason, count(*), min(quarantined_at), max(quarantined_at), "
        f"min_by(offset, quarantined_at) FROM {CATALOG}.{OPS}.quarantine {where} "
        "GROUP BY 1, 2 ORDER BY 1, 3 DESC",
        params,
    ).rows
    return [QuarantineGroup(t, r, int(n), str(first), str(last), off) for t, r, n, first, last, off in rows]


EXPECTATION_TOTALS_SQL = f"""
    SELECT source_table, rule, action, sum(passed), sum(failed), max(checked_at),
           max_by(sample, batch_id) FILTER (WHERE failed > 0)
    FROM {CATALOG}.{OPS}.expectation_results
    GROUP BY 1, 2, 3"""


def expectation_totals(s: Settings, ep: Endpoints) -> list[RuleTotals | CrossCheck]:
    """Each rule of spark_streaming/expectations.yml with its totals since the results began and
    its last failing row (through Trino, as the admin). A rule that has checked nothing yet is
    listed with zeros. Cross-table rules are run now: the rows failing them, one of them, or the
    error of a query that did not run. LakehouseError when Trino cannot be asked."""
    from lakehouse.pipeline.query import checks
    from lakehouse.pipeline.silver.expectations import Expectations, in_force

    rules = Expectations.load(in_force(s), schema=s.source_schema)
    trino = clients.trino(ep, admin=True)
    found: dict[tuple[str, str], list[Any]] = {}
    written = trino.scalar(  # registered once silver wrote its first results
        f"SELECT count(*) FROM {CATALOG}.information_schema.tables "
        f"WHERE table_schema = '{OPS}' AND table_name = 'expectation_results'"
    )
    if written:
        found = {(r[0], r[1]): r for r in trino.query(EXPECTATION_TOTALS_SQL).rows}
    out: list[RuleTotals | CrossCheck] = []
    for r in rules.rules:
        row = found.get((r.table, r.name))
        passed, failed = (int(row[3]), int(row[4])) if row else (0, 0)
        out.append(
            RuleTotals(
                table=r.table,
                rule=r.name,
                action=r.action,
                expr=r.expr,
                checked=passed + failed,
                failed=failed,
                last_checked=str(row[5]) if row and row[5] is not None else None,
                last_failing_row=row[6] if row else None,
            )
        )
    for c in rules.cross:  # run now: their state is the tables' as they are
        result = checks.run(trino, c)
        out.append(CrossCheck(c.table, c.name, c.rows, result.failing, result.error, result.sample))
    return out


def ask_job(
    s: Settings, ep: Endpoints, name: str, body: dict[str, Any], *, wait_s: float, what: str
) -> dict[str, Any]:
    """Leave a request in the silver job's mailbox `name` (silver/mailbox.py) and wait for its
    answer. LakehouseError when one is already waiting, or when the job has not answered in time
    (the request stays, and the job takes it when it can)."""
    import io

    layout = Layout.of(s.storage)
    client, bucket = clients.object_store(ep), s.bucket
    request_key, result_key = s.storage.key(layout.request(name)), s.storage.key(layout.result(name))
    try:
        client.stat_object(bucket, request_key)
        raise LakehouseError(
            f"a {what} is already waiting for the silver job (is it running? `lakehouse status`)"
        )
    except S3Error as exc:
        if exc.code != "NoSuchKey":
            raise
    request_id = uuid.uuid4().hex
    data = json.dumps({**body, "id": request_id}).encode()
    client.put_object(bucket, request_key, io.BytesIO(data), len(data), content_type="application/json")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            answer = json.loads(client.get_object(bucket, result_key).read())
        except S3Error:
            answer = {}
        if answer.get("id") == request_id:
            return dict(answer)
        time.sleep(1)
    raise LakehouseError(
        f"the silver job has not answered the {what} within {wait_s:.0f}s; the request stays queued "
        "and the job takes it when it can (`lakehouse status`, `lakehouse logs silver`)"
    )


def quarantine_replay(s: Settings, ep: Endpoints, table: str | None, wait_s: float) -> Replayed:
    """Ask the silver job to apply a table's quarantined events again; wait for its answer."""
    from lakehouse.pipeline.silver.replay import NAME

    return Replayed.of(ask_job(s, ep, NAME, {"table": _source_name(s, table)}, wait_s=wait_s, what="replay"))


def compact(s: Settings, ep: Endpoints, table: str | None, wait_s: float) -> Compacted:
    """Ask the silver job to fold a table's change log (every table's when None) into its base now;
    wait for its answer."""
    from lakehouse.pipeline.silver.compaction import NAME
    from lakehouse.pipeline.silver.config import SilverConfig

    started = s.state("silver") / "silver.json"  # what the running job was started with
    if started.is_file() and not SilverConfig.load(started).merge_on_read:
        raise LakehouseError(
            'silver writes merge-on-write ("write" in spark_streaming/silver.json): its tables have '
            "no change log to fold"
        )
    return Compacted.of(
        ask_job(s, ep, NAME, {"table": _source_name(s, table)}, wait_s=wait_s, what="compaction")
    )

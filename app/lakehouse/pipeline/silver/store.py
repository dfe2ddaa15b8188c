"""Where silver keeps things, and the I/O for them (tables, tombstones, quarantine, held-back lines)."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config.layout import LOG_FOLDER, SILVER, Storage, silver_log_table, silver_table
from lakehouse.pipeline.silver.contract import widens
from lakehouse.pipeline.silver.debezium import ColumnSpec
from lakehouse.pipeline.silver.live import SEQ, live_sql
from lakehouse.pipeline.silver.position import Point, after_sql, before_point_sql, point, position
from lakehouse.pipeline.silver.rows import METADATA, key_json

log = logging.getLogger("lakehouse.silver")

KEY_PROPERTY = "lakehouse.primary_key"
SOURCE_PROPERTY = "lakehouse.source_table"
#: silver keeps a change data feed (Delta CDF): `table_changes` in Trino, incremental consumers
CHANGE_FEED_PROPERTY = "delta.enableChangeDataFeed"
#: deletes and updates mark rows in a deletion vector instead of rewriting whole files (Trino reads
#: them). `deletion.vectors` in silver.json: off by default, because a MERGE that writes them runs
#: about twice the Spark jobs, and rewriting the touched files of tables this size costs less
#: (docs/benchmarks.md, seventh round); on pays off once a MERGE touches a few rows of large files
DELETION_VECTORS_PROPERTY = "delta.enableDeletionVectors"


def table_properties(deletion_vectors: bool) -> dict[str, str]:
    """The properties every silver table carries (set on tables created without them, or with
    other values, at the next start)."""
    return {CHANGE_FEED_PROPERTY: "true", DELETION_VECTORS_PROPERTY: str(deletion_vectors).lower()}


#: where held lines that are in no bronze file are kept, under the silver root
HELD_LINES = "_state/held"

TOMBSTONE_SCHEMA = T.StructType(
    [
        T.StructField("table", T.StringType()),
        T.StructField("_key", T.StringType()),
        T.StructField("_commit_lsn", T.LongType()),
        T.StructField("_lsn", T.LongType()),
        T.StructField("deleted_at", T.TimestampType()),
    ]
)
QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("source_table", T.StringType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("reason", T.StringType()),
        T.StructField("raw", T.StringType(), True, {"comment": "the bronze line, unchanged"}),
        T.StructField("quarantined_at", T.TimestampType()),
        T.StructField("batch_id", T.LongType()),
    ]
)

#: `ops.expectation_results`: per batch, table and rule, the rows checked and failed (issue 19)
EXPECTATION_SCHEMA = T.StructType(
    [
        T.StructField("batch_id", T.LongType()),
        T.StructField("checked_at", T.TimestampType()),
        T.StructField("source_table", T.StringType()),
        T.StructField("rule", T.StringType()),
        T.StructField("action", T.StringType()),
        T.StructField("passed", T.LongType()),
        T.StructField("failed", T.LongType()),
        T.StructField(
            "sample", T.StringType(), True, {"comment": "one failing row as JSON, cut at 2,000 characters"}
        ),
    ]
)


@dataclass(frozen=True)
class Layout:
    """Paths under the silver root (layout.SILVER in the stack's bucket, a local dir in tests)."""

    root: str

    @classmethod
    def of(cls, storage: Storage) -> Layout:
        """The stack's silver, as Spark reads it."""
        return cls(storage.spark(SILVER))

    def table(self, source: str) -> str:
        return f"{self.root}/{silver_table(source).removeprefix(SILVER + '/')}"

    def log(self, source: str) -> str:
        """A table's change log (merge-on-read, live.py): under `_log/`, beside the base."""
        return f"{self.root}/{silver_log_table(source).removeprefix(SILVER + '/')}"

    @property
    def log_root(self) -> str:
        return f"{self.root}/{LOG_FOLDER}"

    def folded(self, source: str) -> str:
        """How far the compactor has folded a table's log (a small JSON object, compaction.py)."""
        name = silver_table(source).removeprefix(SILVER + "/").replace("/", ".")
        return f"{self.root}/_state/folded/{name}.json"

    @property
    def quarantine(self) -> str:
        return f"{self.root}/_quarantine"

    @property
    def expectation_results(self) -> str:
        return f"{self.root}/_expectations"

    @property
    def tombstones(self) -> str:
        return f"{self.root}/_state/tombstones"

    @property
    def pending(self) -> str:
        """Lines of held-back transactions as an older version kept them (Delta; migrated at start)."""
        return f"{self.root}/_state/pending"

    @property
    def held(self) -> str:
        """Held-back (transaction, table) groups and the files their lines are in (a small JSON
        object): the lines stay in bronze and are read again after a restart."""
        return f"{self.root}/_state/held.json"

    @property
    def held_lines(self) -> str:
        """Held lines that are in no bronze file (in-memory batches, a migrated state), as text."""
        return f"{self.root}/{HELD_LINES}"

    @staticmethod
    def held_lines_dir(file: str) -> str | None:
        """The `_state/held/` directory a line's file is in (a file URI or path), None for bronze."""
        marker = f"/{HELD_LINES}/"
        i = file.find(marker)
        return file[i + len(marker) :].split("/", maxsplit=1)[0] if i >= 0 else None

    @property
    def properties_checked(self) -> str:
        """Which table properties every silver table was last checked to carry (a small JSON object)."""
        return f"{self.root}/_state/table-properties.json"

    @property
    def pending_ends(self) -> str:
        """END entries still waiting for their events (a small JSON object)."""
        return f"{self.root}/_state/pending-ends.json"

    def request(self, name: str) -> str:
        """Where a CLI command asks the job (`replay`, `compact`; mailbox.py) ..."""
        return f"{self.root}/_state/{name}/request.json"

    def result(self, name: str) -> str:
        """... and where the job answers it."""
        return f"{self.root}/_state/{name}/result.json"

    @property
    def source_state(self) -> str:
        """Which source the stream reads and from where (silver/sources.py; a small JSON object)."""
        return f"{self.root}/_state/source.json"


def hadoop_path(spark: SparkSession, path: str) -> Any:
    """(Path, FileSystem) of the Hadoop file system behind `path` (S3A in the stack)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p, p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _is_commit(name: str) -> bool:
    """A Delta log entry that holds table state: a commit or a checkpoint (`00…01.json`, `….checkpoint…`)."""
    return name.endswith(".json") or ".checkpoint" in name


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small object's text, or None if it does not exist."""
    p, fs = hadoop_path(spark, path)
    if not fs.exists(p):
        return None
    stream = fs.open(p)
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, body: str) -> None:
    """Write (replace) a small object."""
    p, fs = hadoop_path(spark, path)
    out = fs.create(p, True)
    try:
        out.write(bytearray(body.encode()))
    finally:
        out.close()


def delete_object(spark: SparkSession, path: str) -> None:
    p, fs = hadoop_path(spark, path)
    fs.delete(p, False)


def written_by_another(spark: SparkSession, path: str) -> bool:
    """Whether a Delta table exists at `path`, for a reader in another process than its writer.

    `DeltaTable.isDeltaTable` answers from this session's cached DeltaLog snapshot, which it never
    refreshes: a session that looked while the writer was creating the table (`_delta_log/` there,
    no commit yet) would see "no table" for good. Loading the table refreshes the snapshot."""
    from pyspark.errors import AnalysisException

    log_dir, fs = hadoop_path(spark, path + "/_delta_log")
    if not fs.exists(log_dir):
        return False
    try:
        spark.read.format("delta").load(path).schema  # noqa: B018 - resolving the snapshot is the check
    except AnalysisException:
        return False
    return True


def tables_under(spark: SparkSession, under: str) -> list[str]:
    """The Delta tables `<under>/<schema>/<table>` (folders starting with `_` are not schemas)."""
    root, fs = hadoop_path(spark, under)
    if not fs.exists(root):
        return []
    out = []
    for schema in fs.listStatus(root):
        name = schema.getPath().getName()
        if not schema.isDirectory() or name.startswith("_"):
            continue
        for table in fs.listStatus(schema.getPath()):
            path = table.getPath().toString()
            if table.isDirectory() and DeltaTable.isDeltaTable(spark, path):
                out.append(path)
    return sorted(out)


def empty(spark: SparkSession, schema: T.StructType) -> DataFrame:
    """An empty DataFrame of `schema`, built in the JVM (no Python worker, unlike createDataFrame([]))."""
    return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields])


def logged_tables(spark: SparkSession, layout: Layout) -> list[str]:
    """The source tables (`schema.table`) that have a change log (merge-on-read)."""
    # the listing names `<log root>/<schema>/<table>` by qualified paths (with their scheme)
    return [".".join(p.rsplit("/", 2)[-2:]) for p in tables_under(spark, layout.log_root)]


def as_tombstones(
    deletes: DataFrame, source: str, keys: list[str], schema: T.StructType | None, deleted_at: Column
) -> DataFrame:
    """Rows of a table in silver's shape (a log's delete entries) as its tombstones (TOMBSTONE_SCHEMA)."""
    if schema is None:
        raise ValueError(f"{source}: no silver table to key its tombstones by")
    return tombstone_rows(deletes, source, key_json(keys, schema), deleted_at)


def tombstone_rows(deletes: DataFrame, source: str, key: Column, deleted_at: Column) -> DataFrame:
    """Delete events of `source` (with `_commit_lsn`, `_lsn`) as tombstones keyed by `key`."""
    return deletes.select(
        F.lit(source).alias("table"),
        key.alias("_key"),
        "_commit_lsn",
        "_lsn",
        deleted_at.cast("timestamp").alias("deleted_at"),
    )


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class Store:
    def __init__(
        self,
        spark: SparkSession,
        layout: Layout,
        properties: dict[str, str] | None = None,
        merge_on_read: bool = False,
    ) -> None:
        self.spark = spark
        self.layout = layout
        self.properties = properties if properties is not None else table_properties(False)
        #: batches append to each table's change log (live.py); the compactor folds it in
        self.merge_on_read = merge_on_read
        # tables are applied concurrently; two threads creating one state table would collide
        self._creating = threading.Lock()
        self._seq = 0

    # ---- generic
    def exists(self, path: str) -> bool:
        return bool(DeltaTable.isDeltaTable(self.spark, path))

    def read(self, path: str, schema: T.StructType) -> DataFrame:
        if self.exists(path):
            return self.spark.read.format("delta").load(path)
        return empty(self.spark, schema)

    def clear_unfinished(self, path: str) -> bool:
        """A creation that died before its first commit leaves `_delta_log/` without one (Delta 4
        makes `_delta_log/_staged_commits/` first): Delta then takes the folder for a table and
        fails to load it (DELTA_TABLE_NOT_FOUND), so a restarted job could never create it. Nothing
        was committed there: the folder goes. True if it was there."""
        log_dir, fs = hadoop_path(self.spark, path + "/_delta_log")
        if not fs.exists(log_dir) or self.exists(path):
            return False
        if any(_is_commit(str(st.getPath().getName())) for st in fs.listStatus(log_dir)):
            return False  # a table another reader cannot load: not ours to delete
        fs.delete(log_dir, True)
        return True

    def ensure(
        self,
        path: str,
        schema: T.StructType,
        properties: dict[str, str] | None = None,
        partitioned_by: tuple[str, ...] = (),
    ) -> None:
        """Create the table at `path` if it is not there (safe from the per-table threads)."""
        with self._creating:
            if not self.exists(path):
                self.clear_unfinished(path)
                b = DeltaTable.createIfNotExists(self.spark).location(path).addColumns(schema)
                if partitioned_by:
                    b = b.partitionedBy(*partitioned_by)
                for name, value in (properties or {}).items():
                    b = b.property(name, value)
                b.execute()

    # ---- silver tables
    def schema(self, source: str) -> tuple[T.StructType | None, list[str]]:
        path = self.layout.table(source)
        if not self.exists(path):
            return None, []
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.{quote(path)}").collect()[0]
        keys = (detail["properties"] or {}).get(KEY_PROPERTY, "")
        return self.spark.read.format("delta").load(path).schema, [k for k in keys.split(",") if k]

    def create(self, source: str, specs: list[ColumnSpec], keys: list[str]) -> None:
        if self.clear_unfinished(self.layout.table(source)):
            log.warning("%s: removed the empty Delta log an interrupted creation left", source)
        b = DeltaTable.createIfNotExists(self.spark).location(self.layout.table(source))
        for s in specs:
            b = b.addColumn(s.name, s.spark_type, nullable=True, comment=f"source type {s.source_type}")
        for f in METADATA.fields:
            b = b.addColumn(f.name, f.dataType, nullable=True, comment=f.metadata.get("comment"))
        b = b.property(KEY_PROPERTY, ",".join(keys)).property(SOURCE_PROPERTY, source)
        for name, value in self.properties.items():
            b = b.property(name, value)
        b.execute()
        if self.merge_on_read:
            self.ensure_log(source)

    def ensure_log(self, source: str) -> None:
        """The table's change log, with the table's columns and `_seq` (live.py), if it lacks one.
        Partitioned by `_seq`, one partition per append: a trim (compaction.py) drops whole
        appends without reading or rewriting a file, and Delta's conflict check of that DELETE
        looks at its partitions only, which the batches' appends (newer `_seq`s) never touch."""
        path = self.layout.log(source)
        if self.exists(path) or not self.exists(self.layout.table(source)):
            return
        base = self.spark.read.format("delta").load(self.layout.table(source)).schema
        schema = T.StructType([*base.fields, T.StructField(SEQ, T.LongType())])
        self.ensure(path, schema, partitioned_by=(SEQ,))

    def partition_log(self, source: str) -> bool:
        """Partition by `_seq` a change log an older version made without partitions (ensure_log):
        one overwrite of the log with the entries it holds, at the job's start, before any batch or
        fold. True if it did."""
        path = self.layout.log(source)
        if not self.exists(path) or self._partitioning(path) == [SEQ]:
            return False
        entries = self.spark.read.format("delta").load(path)
        entries.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy(
            SEQ
        ).save(path)
        return True

    def _partitioning(self, path: str) -> list[str]:
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.{quote(path)}").collect()[0]
        return list(detail["partitionColumns"] or [])

    def _evolved(self, source: str) -> list[str]:
        """The paths a schema change applies to: the table, and its log when it has one."""
        paths = [self.layout.table(source)]
        if self.exists(self.layout.log(source)):
            paths.append(self.layout.log(source))
        return paths

    def ensure_properties(self, paths: list[str]) -> list[str]:
        """Set `self.properties` where a table lacks them (an older version, another setting). Once done,
        a marker says so and later starts skip the check: it loads every table's state (~3 s a
        table on 2 cores), and tables created since carry the properties from their creation."""
        want = json.dumps(self.properties, sort_keys=True)
        if read_text(self.spark, self.layout.properties_checked) == want:
            return []
        changed = []
        for path in paths:
            have = self.spark.sql(f"DESCRIBE DETAIL delta.{quote(path)}").collect()[0]["properties"] or {}
            missing = {k: v for k, v in self.properties.items() if have.get(k) != v}
            if missing:
                props = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
                self.spark.sql(f"ALTER TABLE delta.{quote(path)} SET TBLPROPERTIES ({props})")
                changed.append(path)
        write_text(self.spark, self.layout.properties_checked, want)
        return changed

    def align_log(self, source: str) -> list[str]:
        """Give the table's log each column its base has and it lacks (NULL for the entries it
        holds: they predate the column), and the base's type where the log's differs: a schema
        change ALTERs the base, then the log, and a job killed between the two leaves the log as it
        was, which the live rule, reading the base's columns from both, cannot union. The columns
        mended (none without a log)."""
        log_path = self.layout.log(source)
        if not self.exists(log_path):
            return []
        base = self.spark.read.format("delta").load(self.layout.table(source)).schema
        have = {f.name: f.dataType for f in self.spark.read.format("delta").load(log_path).schema.fields}
        missing = [f for f in base.fields if f.name not in have]
        if missing:
            cols = ", ".join(f"{quote(f.name)} {f.dataType.simpleString()}" for f in missing)
            self.spark.sql(f"ALTER TABLE delta.{quote(log_path)} ADD COLUMNS ({cols})")
        retyped = [f for f in base.fields if f.name in have and have[f.name] != f.dataType]
        wider = [(f.name, f.dataType) for f in retyped if widens(have[f.name], f.dataType)]
        texts = [f.name for f in retyped if isinstance(f.dataType, T.StringType)]
        self._widen([log_path], wider)
        self._to_text([log_path], texts)
        done = {f.name for f in missing} | {n for n, _ in wider} | set(texts)
        return [f.name for f in base.fields if f.name in done]

    def add_columns(self, source: str, specs: list[ColumnSpec]) -> None:
        cols = ", ".join(f"{quote(s.name)} {s.spark_type.simpleString()}" for s in specs)
        for path in self._evolved(source):
            self.spark.sql(f"ALTER TABLE delta.{quote(path)} ADD COLUMNS ({cols})")

    def widen(self, source: str, changes: list[tuple[str, T.DataType]]) -> None:
        self._widen(self._evolved(source), changes)

    def _widen(self, paths: list[str], changes: list[tuple[str, T.DataType]]) -> None:
        for path in paths if changes else []:
            target = f"delta.{quote(path)}"
            self.spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
            for name, dt in changes:
                self.spark.sql(f"ALTER TABLE {target} ALTER COLUMN {quote(name)} TYPE {dt.simpleString()}")

    def to_text(self, source: str, columns: list[str]) -> None:
        """Rewrite silver's columns as text (a `column.overrides` entry for a column silver holds in
        another type): one overwrite of the table (and its log) with every value cast to its text form."""
        self._to_text(self._evolved(source), columns)

    def _to_text(self, paths: list[str], columns: list[str]) -> None:
        for path in paths if columns else []:
            df = self.spark.read.format("delta").load(path)
            df = df.select(
                *[
                    F.col(quote(c)).cast("string").alias(c) if c in columns else F.col(quote(c))
                    for c in df.columns
                ]
            )
            df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy(
                *self._partitioning(path)
            ).save(path)

    def table(self, source: str) -> DeltaTable:
        return DeltaTable.forPath(self.spark, self.layout.table(source))

    def merge(self, source: str, latest: DataFrame, columns: list[str], keys: list[str]) -> None:
        """Apply the latest event per key (`_op` d = delete) where it is newer than the stored row.
        (Delta materialises this small source and broadcasts it to the scan of the table.)"""
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        values: dict[str, str | Column] = {quote(c): f"s.{quote(c)}" for c in columns}
        newer = after_sql("s", "t")
        (
            self.table(source)
            .alias("t")
            .merge(latest.select(*columns).alias("s"), on)
            .whenMatchedDelete(condition=f"s._op = 'd' AND {newer}")
            .whenMatchedUpdate(condition=f"s._op <> 'd' AND {newer}", set=values)
            .whenNotMatchedInsert(condition="s._op <> 'd'", values=values)
            .execute()
        )

    def current(self, source: str, only: DataFrame | None = None) -> DataFrame:
        """The table's rows now: the table itself, or with merge-on-read its live rows (live.py);
        with `only` (a frame of key columns), just those keys' rows."""
        if self.merge_on_read:
            return self.live(source, only)
        rows = self.table(source).toDF()
        return rows if only is None else rows.join(F.broadcast(only), list(only.columns), "left_semi")

    def live(self, source: str, only: DataFrame | None = None) -> DataFrame:
        """The table's live rows: its base, with its log applied by the live rule when it has one.
        With `only` (a frame of key columns, few rows), the rows of those keys: the base and the
        log each meet the keys first, so that the rule's join reads no other row of the table (a
        table of wide rows went through the join whole, and a 1 GB heap ran out)."""
        base, log = self.layout.table(source), self.layout.log(source)

        def scan(path: str) -> DataFrame:
            rows = self.spark.read.format("delta").load(path)
            return rows if only is None else rows.join(F.broadcast(only), list(only.columns), "left_semi")

        if not self.exists(log):
            return scan(base)
        schema, keys = self.schema(source)
        if schema is None:
            raise ValueError(f"{source}: silver has a log but no base table at {base}")
        if only is not None and set(only.columns) != set(keys):
            raise ValueError(f"{source}: rows of keys ({', '.join(only.columns)}) asked, its key is {keys}")
        # the rule's text names its relations; pyspark's formatter binds them to the scans
        sql = live_sql("\x00base\x00", "\x00log\x00", keys, schema.fieldNames(), "spark")
        sql = (
            sql.replace("{", "{{")
            .replace("}", "}}")
            .replace("\x00base\x00", "{base}")
            .replace("\x00log\x00", "{log}")
        )
        return self.spark.sql(sql, base=scan(base), log=scan(log))

    def append_log(self, source: str, latest: DataFrame, columns: list[str]) -> int:
        """Append a batch's latest event per key, deletes included, to the table's change log, with
        a new `_seq`; returns it. A plain append: a re-run batch may append an entry again, and the
        live rule and the compactor take one of two entries at the same position (the same event).
        One file per append (the entries of a batch are few): every reader of the live rows opens
        each file of the log."""
        self.ensure_log(source)
        with self._creating:
            seq = self._seq = max(time.time_ns() // 1000, self._seq + 1)
        latest.select(*columns, F.lit(seq).cast("long").alias(SEQ)).coalesce(1).write.format("delta").mode(
            "append"
        ).option("mergeSchema", "false").save(self.layout.log(source))
        return seq

    def seq_above(self, seq: int) -> None:
        """Make every `_seq` this job gives from now on higher than `seq` (one an earlier run used)."""
        with self._creating:
            self._seq = max(self._seq, seq)

    def holds_any(self, source: str, rows: DataFrame, keys: list[str]) -> bool:
        """Whether the table holds a row for any key of `rows`: one scan of its key columns only,
        where a MERGE would read and rewrite every touched file whole."""
        stored = self.table(source).toDF().select(*[quote(k) for k in keys])
        return bool(rows.select(*[quote(k) for k in keys]).join(stored, keys, "left_semi").limit(1).count())

    def append(self, source: str, latest: DataFrame, columns: list[str]) -> None:
        """Insert the latest events of keys the table does not hold (it was created by this batch,
        or `holds_any` found none of them): what the MERGE would do, without reading the table."""
        latest.where("_op <> 'd'").select(*columns).write.format("delta").mode("append").save(
            self.layout.table(source)
        )

    # ---- tombstones: an append-only log of applied deletes (a key's newest one is what counts).
    # A row without a key is a cut (a TRUNCATE, or a snapshot replacing the table): every event of
    # the table at or before it is dropped.
    def newest_tombstones(self) -> tuple[dict[str, Point], dict[str, Point]]:
        """The tables that have tombstones, each with the position of its newest one; and the
        tables that were cut, each with its latest cut. With merge-on-read a delete is a tombstone
        from its log entry on (`tombstones`): the deletes in the logs count too."""
        newest: dict[str, Point] = {}
        cuts: dict[str, Point] = {}
        if self.exists(self.layout.tombstones):
            tombs = self.spark.read.format("delta").load(self.layout.tombstones)
            rows = tombs.groupBy("table").agg(
                F.max(position()).alias("newest"),
                F.max(F.when(F.col("_key").isNull(), position())).alias("cut"),
            )
            for r in rows.collect():
                if (p := point(r["newest"])) is not None:
                    newest[r["table"]] = p
                if (c := point(r["cut"])) is not None:
                    cuts[r["table"]] = c
        for source in logged_tables(self.spark, self.layout) if self.merge_on_read else []:
            logged = self.spark.read.format("delta").load(self.layout.log(source))
            row = logged.where(F.col("_op") == "d").agg(F.max(position()).alias("newest")).collect()[0]
            if (p := point(row["newest"])) is not None:
                newest[source] = max(newest.get(source, p), p)
        return newest, cuts

    def tombstones(self, source: str) -> DataFrame:
        """The table's per-key tombstones (cuts, which have no key, are kept apart: `newest_tombstones`).
        With merge-on-read, a delete's tombstone is written when the compactor folds it
        (compaction.py), and until then its log entry is the tombstone: both are read, the
        tombstones first — a fold writes them before its trim removes the entries from the log,
        and at least TRIM_AFTER later, so a delete is in one or the other.
        The log's entries are read here, at once: a log append computed from a read of the log
        in the same plan is not a blind append, and Delta fails it if a fold's trim removes what it
        read before it commits."""
        tombs = self.read(self.layout.tombstones, TOMBSTONE_SCHEMA).where(
            (F.col("table") == source) & F.col("_key").isNotNull()
        )
        if not self.merge_on_read or not self.exists(self.layout.log(source)):
            return tombs
        schema, keys = self.schema(source)
        logged = self.spark.read.format("delta").load(self.layout.log(source)).where(F.col("_op") == "d")
        deletes = as_tombstones(logged, source, keys, schema, F.col("_ingested_at"))
        return tombs.unionByName(deletes.localCheckpoint(eager=True))

    def add_tombstones(self, rows: DataFrame) -> None:
        """Append delete markers (TOMBSTONE_SCHEMA). A plain append, not an idempotent one: a re-run
        batch may hold other deletes than its first run (a replay, a held transaction released in
        between), and a tombstone written twice changes nothing (only a key's newest counts)."""
        self.ensure(self.layout.tombstones, TOMBSTONE_SCHEMA)
        rows.write.format("delta").mode("append").option("mergeSchema", "false").save(self.layout.tombstones)

    def add_cut(self, source: str, pos: Point, key: Column, now: Any) -> None:
        """Store a cut at `pos` (a tombstone without a key) with a tombstone at `pos` for each of
        the table's rows older than it (keyed by `key`), in one commit; `delete_older` then removes
        those rows. A crash between the two re-runs to the same end."""
        at = {"_commit_lsn": F.lit(pos[0]).cast("long"), "_lsn": F.lit(pos[1]).cast("long")}
        deleted_at = F.lit(now)
        one = self.spark.range(1).select(*(v.alias(k) for k, v in at.items()))
        cut = tombstone_rows(one, source, F.lit(None).cast("string"), deleted_at)
        if self.exists(self.layout.table(source)):
            gone = self.current(source).where(before_point_sql(*pos)).withColumns(at)
            cut = cut.unionByName(tombstone_rows(gone, source, key, deleted_at)).localCheckpoint(eager=True)
        self.add_tombstones(cut)

    def delete_older(self, source: str, pos: Point) -> None:
        """Delete the table's rows (and log entries) older than `pos` (a cut's, after `add_cut`)."""
        for path in (self.layout.table(source), self.layout.log(source)):
            if self.exists(path):
                DeltaTable.forPath(self.spark, path).delete(before_point_sql(*pos))

    # ---- appends that must not double on a replayed batch (Delta idempotent writes)
    def append_once(self, df: DataFrame, path: str, app: str, batch_id: int) -> None:
        (
            df.write.format("delta")
            .mode("append")
            .option("txnAppId", app)
            .option("txnVersion", batch_id)
            .option("mergeSchema", "false")
            .save(path)
        )

    # ---- quarantine
    def quarantined(self, table: str | None) -> DataFrame:
        """Quarantined events of one source table (all when None), as stored."""
        q = self.read(self.layout.quarantine, QUARANTINE_SCHEMA)
        return q if table is None else q.where(q["source_table"] == table)

    def add_quarantine(self, rows: DataFrame, batch_id: int) -> None:
        """The batch's quarantine rows, replacing any an earlier run of the same batch wrote: a
        re-run batch may refuse other lines than its first run (a replay picked up on the second
        run), and an idempotent append would keep the first run's rows and skip the second's."""
        self.ensure(self.layout.quarantine, QUARANTINE_SCHEMA)
        (
            rows.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"batch_id = {int(batch_id)}")
            .option("mergeSchema", "false")
            .save(self.layout.quarantine)
        )

    def clear_quarantine(self, table: str | None, keep_batch: int) -> None:
        """Remove the replayed rows: all of the table's but those this batch quarantined again."""
        if not self.exists(self.layout.quarantine):
            return
        cond = f"batch_id <> {int(keep_batch)}"
        if table is not None:
            cond += " AND source_table = '" + table.replace("'", "''") + "'"
        DeltaTable.forPath(self.spark, self.layout.quarantine).delete(cond)

    # ---- held-back transactions: where their lines can be read again (docs/design.md)
    def held_state(self) -> dict[str, Any] | None:
        text = read_text(self.spark, self.layout.held)
        return json.loads(text) if text else None

    def write_held_state(self, body: dict[str, Any]) -> None:
        write_text(self.spark, self.layout.held, json.dumps(body, sort_keys=True))

    def write_held_lines(self, lines: DataFrame, name: str) -> str:
        """Store held lines that have no bronze file (an in-memory batch, a migrated state) as text
        under `_state/held/`; the directory, which is what the held state names."""
        path = f"{self.layout.held_lines}/{name}"
        lines.select("line").coalesce(1).write.mode("overwrite").text(path)
        return path

    def read_lines(self, files: list[str]) -> DataFrame:
        """`(line, file)` of bronze files (or `_state/held/` directories), as the stream reads them."""
        return self.spark.read.text(files).select(
            F.col("value").alias("line"), F.input_file_name().alias("file")
        )

    def drop_held_lines(self, keep: set[str]) -> None:
        """Delete the `_state/held/` directories no held line is read from any more."""
        p, fs = hadoop_path(self.spark, self.layout.held_lines)
        if not fs.exists(p):
            return
        wanted = {self.layout.held_lines_dir(f) for f in keep}
        for status in fs.listStatus(p):
            if status.getPath().getName() not in wanted:
                fs.delete(status.getPath(), True)

    def older_pending(self) -> DataFrame | None:
        """Held lines as an older version stored them (a Delta table of whole lines), if any."""
        return (
            self.spark.read.format("delta").load(self.layout.pending)
            if self.exists(self.layout.pending)
            else None
        )

    def drop_older_pending(self) -> None:
        p, fs = hadoop_path(self.spark, self.layout.pending)
        fs.delete(p, True)

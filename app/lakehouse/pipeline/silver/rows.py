"""One table's events (one schema version) → typed silver rows, flags and errors (pure transforms)."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.pipeline.silver.debezium import ColumnSpec
from lakehouse.pipeline.silver.position import latest_first

# metadata columns every silver table carries, after the source columns
METADATA = T.StructType(
    [
        T.StructField("_op", T.StringType(), True, {"comment": "c insert, u update, r snapshot read"}),
        T.StructField(
            "_commit_lsn", T.LongType(), True, {"comment": "commit position of the source transaction"}
        ),
        T.StructField("_lsn", T.LongType(), True, {"comment": "WAL position of the change"}),
        T.StructField("_source_ts", T.TimestampType(), True, {"comment": "commit time at the source"}),
        T.StructField("_ingested_at", T.TimestampType(), True, {"comment": "when silver applied it"}),
    ]
)
# columns carried beside the row while it is being processed. Slim on purpose: the bronze line
# (~5 kB, most of it the Connect schema) is not among them, so it never rides through the row
# cache, the latest-per-key shuffle or the MERGE source; a quarantined row finds its line again
# by `_rid` (raw_lines). `_kkey` is the Kafka key's JSON text, to match a row with lines that are
# not decoded (held back, quarantined)
WORK = ["_key", "_unavail", "_errors", "_rid", "txid", "_kkey"]


#: timestamps in key text to the microsecond (to_json's default keeps milliseconds, which would
#: give two keys a µs apart one tombstone)
_KEY_JSON_OPTIONS = {
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
}


def _canonical(name: str, dt: T.DataType) -> Column:
    c = F.col(name)
    if isinstance(dt, T.DecimalType):
        # one text per number whatever the scale: silver widened to decimal(10,4) holds 1.5000
        # where the events of the older schema said 1.50
        text = c.cast("string")
        return F.when(text.contains("."), F.regexp_replace(text, r"\.?0+$", "")).otherwise(text).alias(name)
    return c.alias(name)


def key_json(keys: list[str], types: T.StructType | Mapping[str, T.DataType]) -> Column:
    """The primary key as canonical JSON text (tombstones are keyed by it): the same key value gives
    the same text whichever type it is held in (the event's schema version or silver's, widened)."""
    by_name = {f.name: f.dataType for f in types.fields} if isinstance(types, T.StructType) else types
    return F.to_json(F.struct(*[_canonical(k, by_name[k]) for k in keys]), _KEY_JSON_OPTIONS)


def decode(events: DataFrame, specs: list[ColumnSpec], keys: list[str]) -> DataFrame:
    """Typed source columns + `_unavail` (TOAST placeholders) + `_errors` (values that do not fit)."""
    typed = F.from_json("image", T.StructType([T.StructField(s.name, s.json_type) for s in specs]))
    raw = F.from_json("image", "map<string,string>")
    df = events.withColumn("_t", typed).withColumn("_r", raw)
    is_delete = F.col("op") == "d"
    values, unavail, errors = [], [], []
    for s in specs:
        r = F.col("_r")[s.name]
        v = s.convert(F.col("_t")[s.name])
        placeholder = r.isNotNull() & s.placeholder_check(r)
        bad = r.isNotNull() & ~placeholder & v.isNull()
        if s.name not in keys:
            bad = bad & ~is_delete  # a delete's before image only has to carry the key
        values.append(F.when(placeholder, F.lit(None)).otherwise(v).cast(s.spark_type).alias(s.name))
        unavail.append(F.when(placeholder & ~is_delete, F.lit(s.name)))
        errors.append(
            F.when(bad, F.lit(f"column {s.name}: value does not fit {s.spark_type.simpleString()}"))
        )
    for k in keys:
        errors.append(
            F.when(F.col("_t").isNull() | F.col("_t")[k].isNull(), F.lit(f"missing key column {k}"))
        )
    errors.append(F.when(F.col("_t").isNull(), F.lit("row image is not a JSON object")))
    return df.select(
        *values,
        F.when(is_delete, F.lit("d")).otherwise(F.col("op")).alias("_op"),
        F.col("commit_lsn").alias("_commit_lsn"),
        F.col("lsn").alias("_lsn"),
        F.col("source_ts").alias("_source_ts"),
        F.array_compact(F.array(*unavail)).alias("_unavail"),
        F.array_compact(F.array(*errors)).alias("_errors"),
        F.struct("topic", "partition", "offset").alias("_rid"),
        "txid",
        F.col("key_json").alias("_kkey"),
    ).withColumn("_key", key_json(keys, {s.name: s.spark_type for s in specs}))


def raw_lines(rows: DataFrame, reason: Column, events: DataFrame) -> DataFrame:
    """Decoded `rows` (few: those being quarantined) with their bronze line again, looked up by
    `_rid` in the parsed `events` they came from: `(topic, partition, offset, table, line, _reason)`,
    one row per event even if a line was read twice."""
    bad = rows.select(
        F.col("_rid.topic").alias("topic"),
        F.col("_rid.partition").alias("partition"),
        F.col("_rid.offset").alias("offset"),
        reason.alias("_reason"),
    )
    rid = ["topic", "partition", "offset"]
    return events.select(*rid, "table", "line").join(F.broadcast(bad), rid).dropDuplicates(rid)


def project(rows: DataFrame, silver: T.StructType, ingested_at: Column) -> DataFrame:
    """Rows in silver's column order; columns silver has but the event lacks (dropped upstream) are NULL."""
    have = set(rows.columns)
    out: list[Column] = []
    for f in silver.fields:
        if f.name == "_ingested_at":
            out.append(ingested_at.alias(f.name))
        elif f.name in have:
            out.append(F.col(f.name).cast(f.dataType).alias(f.name))
        else:
            out.append(F.lit(None).cast(f.dataType).alias(f.name))
    return rows.select(*out, *[c for c in WORK if c in have])


def latest_per_key(rows: DataFrame, keys: list[str]) -> DataFrame:
    """Per key, the event with the highest source position (position.py)."""
    from pyspark.sql.window import Window

    w = Window.partitionBy(*keys).orderBy(*latest_first(F.col("_rid").desc()))
    return rows.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")

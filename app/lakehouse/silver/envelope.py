"""Bronze lines → Debezium envelope columns, and the reasons a line cannot be used (pure transforms).

A bronze line is `{"topic", "partition", "offset", "timestamp", "key", "value", …}` with the raw
Debezium envelope (schema + payload) as `key`/`value` (see bronze/format.py). Row images stay JSON
text here; they are typed per table from the schema each event carries (rows.py).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

S = T.StringType()
L = T.LongType()

_SOURCE = T.StructType(
    [
        T.StructField("lsn", L),
        T.StructField("sequence", S),
        T.StructField("ts_ms", L),
        T.StructField("ts_us", L),
        T.StructField("txId", L),
        T.StructField("schema", S),
        T.StructField("table", S),
        T.StructField("snapshot", S),
    ]
)
_PAYLOAD = T.StructType(
    [
        T.StructField("before", S),
        T.StructField("after", S),
        T.StructField("op", S),
        T.StructField("source", _SOURCE),
        T.StructField(
            "transaction",
            T.StructType(
                [
                    T.StructField("id", S),
                    T.StructField("total_order", L),
                    T.StructField("data_collection_order", L),
                ]
            ),
        ),
        # transaction-topic records (BEGIN/END)
        T.StructField("status", S),
        T.StructField("id", S),
        T.StructField("event_count", L),
        T.StructField(
            "data_collections",
            T.ArrayType(T.StructType([T.StructField("data_collection", S), T.StructField("event_count", L)])),
        ),
    ]
)
LINE_SCHEMA = T.StructType(
    [
        T.StructField("topic", S),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", L),
        T.StructField("key", T.StructType([T.StructField("schema", S), T.StructField("payload", S)])),
        T.StructField(
            "value", T.StructType([T.StructField("schema", S), T.StructField("payload", _PAYLOAD)])
        ),
        T.StructField("key_raw_b64", S),
        T.StructField("value_raw_b64", S),
    ]
)

DATA_OPS = ("c", "u", "d", "r", "t")


def _reason(kind: Column, p: Column, e: Column) -> Column:
    """Why a line cannot be applied (NULL when it can)."""
    data = kind == "data"
    op = p["op"]
    return (
        F.when(e.isNull() | e["topic"].isNull(), F.lit("unparseable: not a JSON bronze line"))
        .when(e["value_raw_b64"].isNotNull(), F.lit("unparseable: record value is not JSON"))
        .when(e["value"].isNull() | p.isNull(), F.lit("unparseable: record has no Debezium payload"))
        .when(
            data & (op.isNull() | ~op.isin(*DATA_OPS)),
            F.concat(F.lit("unknown op "), F.coalesce(op, F.lit("NULL"))),
        )
        .when(
            data & (p["source"]["lsn"].isNull() | p["source"]["table"].isNull()),
            F.lit("no source position/table"),
        )
        .when(
            data & (op != "t") & e["key"]["payload"].isNull(),
            F.lit("missing key: the table has no primary key"),
        )
        .when(data & op.isin("c", "u", "r") & p["after"].isNull(), F.lit("missing after image"))
        .when(data & (op == "d") & p["before"].isNull(), F.lit("missing before image"))
        .when(
            ~data & (p["status"].isNull() | p["id"].isNull()),
            F.lit("unparseable: transaction record without status/id"),
        )
    )


def schema_id(value_schema: Column, key_schema: Column) -> Column:
    """An event's schema version as a short id: two non-cryptographic hashes (xxHash64 and
    Murmur3, 96 bits together) of the value and key schema texts, and the value schema's length.
    Every line of a batch is hashed; SHA-256 over the ~5 kB texts cost 0.3-0.9 s per 26,000
    lines, these a tenth of that. Nothing adversarial chooses the texts (Debezium writes them), and
    a table has a handful of versions: two of them colliding in all three parts is not a risk."""
    k = F.coalesce(key_schema, F.lit(""))
    return F.concat_ws(
        "-",
        F.hex(F.xxhash64(value_schema, k)),
        F.hex(F.hash(value_schema, k)),
        F.length(value_schema).cast("string"),
    )


def parse(lines: DataFrame, transaction_topic: str) -> DataFrame:
    """`lines(line string, first_seen timestamp, replayed boolean)` → one row per line with envelope
    columns and `reason`. A replayed line (`lakehouse quarantine replay`) was released from its
    transaction when it was first seen, so it carries no transaction id: it is not held back again."""
    e = F.from_json("line", LINE_SCHEMA)
    df = lines.withColumn("_e", e)
    e = F.col("_e")
    p = e["value"]["payload"]
    kind = F.when(e["topic"] == transaction_topic, F.lit("txn")).otherwise(F.lit("data"))
    src = p["source"]
    seq0 = F.try_element_at(F.from_json(src["sequence"], T.ArrayType(S)), F.lit(1)).try_cast(L)
    return df.select(
        *lines.columns,  # line, first_seen, replayed and what the caller carries along (file)
        kind.alias("kind"),
        e["topic"].alias("topic"),
        e["partition"].alias("partition"),
        e["offset"].alias("offset"),
        F.concat_ws(".", src["schema"], src["table"]).alias("table"),
        p["op"].alias("op"),
        # a read of a blocking snapshot (initial, or taken again after the slot was lost): the
        # table as the snapshot saw it replaces what silver held before (docs/cdc-semantics.md).
        # Incremental snapshots read chunks between changes: they replace nothing.
        ((p["op"] == "r") & (src["snapshot"] != "incremental")).alias("snapshot_read"),
        # Position: the previous commit's LSN orders transactions by commit; the change LSN orders
        # events within one (docs/cdc-semantics.md, "Ordering").
        F.coalesce(seq0, src["lsn"]).alias("commit_lsn"),
        src["lsn"].alias("lsn"),
        F.when(p["transaction"].isNotNull() & ~F.col("replayed"), src["txId"]).alias("txid"),
        p["transaction"]["data_collection_order"].alias("dco"),
        F.coalesce(F.timestamp_micros(src["ts_us"]), F.timestamp_millis(src["ts_ms"])).alias("source_ts"),
        e["key"]["schema"].alias("key_schema"),
        e["key"]["payload"].alias("key_json"),
        e["value"]["schema"].alias("value_schema"),
        # one id per (value schema, key schema): the ~5 kB schema text is resolved once per id on
        # the driver and never carried through caches or shuffles
        F.when(kind == "data", schema_id(e["value"]["schema"], e["key"]["schema"])).alias("schema_id"),
        F.when(p["op"] == "d", p["before"]).otherwise(p["after"]).alias("image"),
        p["status"].alias("txn_status"),
        F.split(p["id"], ":").getItem(0).try_cast(L).alias("txn_id"),
        p["data_collections"].alias("txn_collections"),
        _reason(kind, p, e).alias("reason"),
    )

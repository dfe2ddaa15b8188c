"""Bronze lines → Debezium envelope columns, and the reasons a line cannot be used (pure transforms).

A bronze line is `{"topic", "partition", "offset", "timestamp", "key", "value", …}` with the raw
Debezium envelope (schema + payload) as `key`/`value` (see bronze/format.py). Row images stay JSON
text here; they are typed per table from the schema each event carries (rows.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

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
        T.StructField("timestamp", L),  # the Kafka record's, in ms
        T.StructField("key", T.StructType([T.StructField("schema", S), T.StructField("payload", S)])),
        T.StructField(
            "value", T.StructType([T.StructField("schema", S), T.StructField("payload", _PAYLOAD)])
        ),
        T.StructField("key_raw_b64", S),
        T.StructField("value_raw_b64", S),
    ]
)

DATA_OPS = ("c", "u", "d", "r", "t")
#: the reason of an event of a table without a primary key (docs/cdc-semantics.md, rule 10)
MISSING_KEY = "missing key: the table has no primary key"


def _reason(kind: Column, p: Column, e: Column, key: Column) -> Column:
    """Why a line cannot be applied (NULL when it can); `key`: the record key's payload."""
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
            data & (op != "t") & key.isNull(),
            F.lit(MISSING_KEY),
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


def commit_fallback(previous_commit: Column, lsn: Column) -> Column:
    """An event's commit position while its transaction's END is not known: one past the LSN of the
    commit before it. No commit LSN lies between the previous commit and this transaction's own,
    so the stand-in sorts like the real one against every other transaction. Without a previous
    commit (a snapshot read, the first transaction after the connector started) the change LSN."""
    return F.coalesce(previous_commit + 1, lsn)


def _rekeyed(
    table: Column, image: Column, key: Column, key_schema: Column, keys: Mapping[str, list[str]]
) -> tuple[Column, Column]:
    """(key payload, key schema) of a replayed event whose table had no primary key when it was
    sent, by the key the table has now (`keys`, per table): rule 10's remedy — add a key at the
    source, then replay. The schema names the key columns (what silver reads of it); the payload
    holds their values as text (silver decodes the key from the row image)."""
    if not keys:
        return key, key_schema
    values = F.from_json(image, "map<string,string>")
    payload, schema = F.lit(None).cast(S), F.lit(None).cast(S)
    for t, cols in sorted(keys.items()):
        fields = ",".join(f'{{"type":"string","optional":false,"field":{json.dumps(c)}}}' for c in cols)
        payload = F.when(table == t, F.to_json(F.struct(*[values[c].alias(c) for c in cols]))).otherwise(
            payload
        )
        schema = F.when(table == t, F.lit(f'{{"type":"struct","fields":[{fields}]}}')).otherwise(schema)
    missing = key.isNull() & table.isin(sorted(keys))
    return F.when(missing, payload).otherwise(key), F.when(missing, schema).otherwise(key_schema)


def parse(
    lines: DataFrame, transaction_topic: str, rekey: Mapping[str, list[str]] | None = None
) -> DataFrame:
    """`lines(line string, first_seen timestamp, replayed boolean)` → one row per line with envelope
    columns and `reason`. A replayed line (`lakehouse quarantine replay`) was released from its
    transaction when it was first seen, so it carries no transaction id: it is not held back again.
    `rekey`: per table, the primary key that replayed events sent without a key get (rule 10)."""
    e = F.from_json("line", LINE_SCHEMA)
    df = lines.withColumn("_e", e)
    e = F.col("_e")
    p = e["value"]["payload"]
    kind = F.when(e["topic"] == transaction_topic, F.lit("txn")).otherwise(F.lit("data"))
    src = p["source"]
    seq0 = F.try_element_at(F.from_json(src["sequence"], T.ArrayType(S)), F.lit(1)).try_cast(L)
    table = F.concat_ws(".", src["schema"], src["table"])
    image = F.when(p["op"] == "d", p["before"]).otherwise(p["after"])
    key, key_schema = e["key"]["payload"], e["key"]["schema"]
    if rekey:
        replayed_data = F.col("replayed") & (kind == "data") & (p["op"] != "t")
        k2, s2 = _rekeyed(table, image, key, key_schema, rekey)
        key, key_schema = (
            F.when(replayed_data, k2).otherwise(key),
            F.when(replayed_data, s2).otherwise(key_schema),
        )
    return df.select(
        *lines.columns,  # line, first_seen, replayed and what the caller carries along (file)
        kind.alias("kind"),
        e["topic"].alias("topic"),
        e["partition"].alias("partition"),
        e["offset"].alias("offset"),
        table.alias("table"),
        p["op"].alias("op"),
        # a read of a blocking snapshot (initial, or taken again after the slot was lost): the
        # table as the snapshot saw it replaces what silver held before (docs/cdc-semantics.md).
        # Incremental snapshots read chunks between changes: they replace nothing.
        ((p["op"] == "r") & (src["snapshot"] != "incremental")).alias("snapshot_read"),
        # Position (docs/cdc-semantics.md, "Ordering"): the transaction's commit LSN, then the
        # change LSN. The commit LSN comes from the transaction's END record once the batch has it
        # (batch.py); this is the stand-in until then: just after the previous commit's LSN
        # (`sequence[0]`), which is after every earlier transaction and before every later one.
        commit_fallback(seq0, src["lsn"]).alias("commit_lsn"),
        src["lsn"].alias("lsn"),
        F.when(p["transaction"].isNotNull() & ~F.col("replayed"), src["txId"]).alias("txid"),
        p["transaction"]["data_collection_order"].alias("dco"),
        F.coalesce(F.timestamp_micros(src["ts_us"]), F.timestamp_millis(src["ts_ms"])).alias("source_ts"),
        F.timestamp_millis(e["timestamp"]).alias("kafka_ts"),
        key_schema.alias("key_schema"),
        key.alias("key_json"),
        e["value"]["schema"].alias("value_schema"),
        # one id per (value schema, key schema): the ~5 kB schema text is resolved once per id on
        # the driver and never carried through caches or shuffles
        F.when(kind == "data", schema_id(e["value"]["schema"], key_schema)).alias("schema_id"),
        image.alias("image"),
        p["status"].alias("txn_status"),
        F.split(p["id"], ":").getItem(0).try_cast(L).alias("txn_id"),
        # an END record's id is `<txid>:<LSN of the commit>` (the next transaction's sequence[0])
        F.when(p["status"] == "END", F.split(p["id"], ":").getItem(1).try_cast(L)).alias("txn_commit"),
        p["data_collections"].alias("txn_collections"),
        _reason(kind, p, e, key).alias("reason"),
    )

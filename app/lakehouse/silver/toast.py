"""Unchanged TOASTed values: keep what silver (or an earlier event of the batch) already has.

Debezium sends `__debezium_unavailable_value` for a large value that an UPDATE did not change
(REPLICA IDENTITY DEFAULT does not log it). The right value is the latest *available* one for the
same row before this event: from an earlier event of the same batch or from silver. When the
same UPDATE also changed the primary key, Debezium emits a delete of the old key and a create of
the new key at the same position; the create is then filled from the old key. Pure transforms.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .position import after


def fill(rows: DataFrame, current: DataFrame, keys: list[str], columns: list[str]) -> DataFrame:
    """`rows`: decoded events of one table (with `_unavail`); `current`: silver rows of the keys involved."""
    key = F.struct(*[F.col(k) for k in keys])
    need = rows.where(F.size("_unavail") > 0)
    old_keys = rows.where(F.col("_op") == "d").select(
        "_commit_lsn", "_lsn", key.alias("_old"), F.col("txid").alias("_otx")
    )
    need = need.join(old_keys, ["_commit_lsn", "_lsn"], "left").select(
        "_rid",
        F.col("_commit_lsn").alias("_nc"),
        F.col("_lsn").alias("_nl"),
        F.when((F.col("_op") == "c") & F.col("_old").isNotNull(), F.col("_old")).otherwise(key).alias("_src"),
    )
    sources = (
        rows.where(F.col("_op") != "d")
        .select(
            key.alias("_vkey"),
            F.col("_commit_lsn").alias("_vc"),
            F.col("_lsn").alias("_vl"),
            "_unavail",
            *columns,
        )
        .unionByName(
            current.select(
                key.alias("_vkey"),
                F.col("_commit_lsn").alias("_vc"),
                F.col("_lsn").alias("_vl"),
                F.array().cast("array<string>").alias("_unavail"),
                *columns,
            )
        )
    )
    before = after(F.col("_nc"), F.col("_nl"), F.col("_vc"), F.col("_vl"))
    joined = need.join(sources, (F.col("_vkey") == F.col("_src")) & before)
    position = F.struct("_vc", "_vl")
    found = joined.groupBy("_rid").agg(
        *[
            F.max_by(F.struct(F.col(c).alias("v")), F.when(~F.array_contains("_unavail", c), position)).alias(
                f"_f_{c}"
            )
            for c in columns
        ]
    )
    out = rows.join(found, "_rid", "left")
    still = [F.when(F.array_contains("_unavail", c) & F.col(f"_f_{c}").isNull(), F.lit(c)) for c in columns]
    return out.select(
        *[
            F.when(F.array_contains("_unavail", c), F.col(f"_f_{c}.v")).otherwise(F.col(c)).alias(c)
            if c in columns
            else F.col(c)
            for c in rows.columns
            if c != "_unavail"
        ],
        F.array_compact(F.array(*still)).alias("_unavail"),
    )

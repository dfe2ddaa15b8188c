"""Unchanged TOASTed values: keep what silver (or an earlier event of the batch) already has.

Debezium sends `__debezium_unavailable_value` for a large value that an UPDATE did not change
(REPLICA IDENTITY DEFAULT does not log it). The right value is the one of the row's newest version
before this event — an earlier event of the same batch, or silver's row — walked in position
order: a delete ends the row (nothing before it may fill), and a version whose own value is a
placeholder has the value of the version before it, so the newest earlier version that has the
value fills, however many placeholders lie between (a busy row's updates in one batch). When the
same UPDATE also changed the primary key, Debezium emits a delete of the old key and a create of
the new key at the same position; the create is then filled from the old key's versions, and the
new key's later versions from the create once it is filled (the next pass). Pure transforms.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.pipeline.silver.position import after


def _sources(rows: DataFrame, keys: list[str]) -> DataFrame:
    """Per event that has placeholders: `_rid`, its position (`_nc`, `_nl`) and the key whose
    versions it is filled from (`_src`: the old key for the create of a key change)."""
    key = F.struct(*[F.col(k) for k in keys])
    old_keys = rows.where(F.col("_op") == "d").select("_commit_lsn", "_lsn", key.alias("_old"))
    need = rows.where(F.size("_unavail") > 0)
    return need.join(old_keys, ["_commit_lsn", "_lsn"], "left").select(
        "_rid",
        F.col("_commit_lsn").alias("_nc"),
        F.col("_lsn").alias("_nl"),
        F.when((F.col("_op") == "c") & F.col("_old").isNotNull(), F.col("_old")).otherwise(key).alias("_src"),
    )


def _before(need: DataFrame, versions: DataFrame) -> DataFrame:
    """Each placeholder event joined with every version of its source key strictly before it."""
    earlier = after(F.col("_nc"), F.col("_nl"), F.col("_vc"), F.col("_vl"))
    return need.join(versions, (F.col("_vkey") == F.col("_src")) & earlier)


def fill(rows: DataFrame, current: DataFrame, keys: list[str], columns: list[str]) -> DataFrame:
    """One pass. `rows`: decoded events of one table (with `_unavail`); `current`: silver rows of
    the keys involved. A placeholder takes the value of the newest earlier version that has it,
    among the versions after the newest earlier delete; with none (a key change's create not
    filled yet: the next pass), or none at all, it stays."""
    key = F.struct(*[F.col(k) for k in keys])
    versions = rows.select(
        key.alias("_vkey"),
        F.col("_commit_lsn").alias("_vc"),
        F.col("_lsn").alias("_vl"),
        (F.col("_op") == "d").alias("_vdel"),
        F.col("_unavail").alias("_vun"),
        *columns,
    ).unionByName(
        current.select(
            key.alias("_vkey"),
            F.col("_commit_lsn").alias("_vc"),
            F.col("_lsn").alias("_vl"),
            F.lit(False).alias("_vdel"),
            F.array().cast("array<string>").alias("_vun"),
            *columns,
        )
    )
    earlier = _before(_sources(rows, keys), versions)
    position = F.struct("_vc", "_vl")
    # the newest delete before each event ends what came before it
    ended = earlier.groupBy("_rid").agg(F.max(F.when(F.col("_vdel"), position)).alias("_end"))
    alive = (
        earlier.join(ended, "_rid")
        .where(
            F.col("_end").isNull() | after(F.col("_vc"), F.col("_vl"), F.col("_end._vc"), F.col("_end._vl"))
        )
        .where(~F.col("_vdel"))
    )

    def has(c: str) -> Column:
        """The version's position where it has a value of `c`, else null (max and max_by skip it)."""
        return F.when(~F.array_contains("_vun", c), position)

    newest = alive.groupBy("_rid").agg(
        *[F.max(has(c)).isNotNull().alias(f"_has_{i}") for i, c in enumerate(columns)],
        *[F.max_by(F.col(c), has(c)).alias(f"_val_{i}") for i, c in enumerate(columns)],
    )
    out = rows.join(newest, "_rid", "left")
    index = {c: i for i, c in enumerate(columns)}
    filled = {
        c: F.array_contains("_unavail", c) & F.coalesce(F.col(f"_has_{index[c]}"), F.lit(False))
        for c in columns
    }
    still = [F.when(F.array_contains("_unavail", c) & ~filled[c], F.lit(c)) for c in columns]
    return out.select(
        *[
            F.when(filled[c], F.col(f"_val_{index[c]}")).otherwise(F.col(c)).alias(c)
            if c in columns
            else F.col(c)
            for c in rows.columns
            if c != "_unavail"
        ],
        F.array_compact(F.array(*still)).alias("_unavail"),
    )


def newest_before(rows: DataFrame, versions: DataFrame, keys: list[str]) -> DataFrame:
    """Per placeholder event (`_rid`), the position of the newest of `versions(_vkey, _vc, _vl)`
    before it, as `_vpos` — e.g. of a change not applied yet, that a fill must wait for."""
    found = _before(_sources(rows, keys), versions)
    return found.groupBy("_rid").agg(F.max(F.struct("_vc", "_vl")).alias("_vpos"))

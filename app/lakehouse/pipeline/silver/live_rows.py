"""Read a silver table as it is now, in Spark: the jobs, `verify`, a user's notebook."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from lakehouse.pipeline.silver.store import Layout, Store


def read(spark: SparkSession, layout: Layout, source: str) -> DataFrame:
    """Source table `source`'s live rows in silver: its base, with its change log applied by the
    live rule (live.py) when it has one. The same rows as Trino's `silver.<table>` view."""
    return Store(spark, layout).live(source)

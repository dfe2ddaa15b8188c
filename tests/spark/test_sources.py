"""Silver's sources (silver/sources.py): which bronze objects a bronze epoch after Kafka skips."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.pipeline.bronze.format import object_key
from lakehouse.pipeline.silver.sources import covered_column

T = "cdc.movielens.movies"


def test_a_bronze_epoch_after_kafka_skips_only_objects_wholly_applied(spark: SparkSession) -> None:
    def obj(partition: int, first: int, last: int) -> str:
        return "s3a://lakehouse/" + object_key("bronze", T, partition, first, last)

    files = [obj(0, 0, 9), obj(0, 10, 19), obj(0, 20, 29), obj(1, 0, 9)]
    files.append(f"s3a://lakehouse/bronze/{T}/partition=0/poison-test.jsonl")
    df = spark.createDataFrame([(f,) for f in files], "file string")

    def skipped(skip: dict[str, dict[int, int]]) -> list[str]:
        rows = df.where(covered_column(F.col("file"), skip)).collect()
        return [r["file"] for r in rows]

    assert skipped({T: {0: 19}}) == files[:2]
    assert skipped({T: {0: 15}}) == files[:1]  # an object straddling the point is read again
    assert skipped({T: {1: 9}, "other": {0: 100}}) == [files[3]]
    assert skipped({}) == []

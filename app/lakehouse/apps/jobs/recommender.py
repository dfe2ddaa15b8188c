"""recommender: ALS on silver.ratings (read as Delta), its RMSE on a seeded hold-out beside two
baselines, and the top N per user and per movie, written to the `ml` tables Trino serves:
ml.user_recommendations and ml.movie_recommendations (replaced each run) and ml.model_runs (a row
per run). The model itself is lakehouse.apps.jobs.als; this module reads and writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.apps.jobs import als
from lakehouse.apps.jobs.context import JobContext
from lakehouse.apps.jobs.tables import (
    MODEL_RUNS,
    MOVIE_RECOMMENDATIONS,
    USER_RECOMMENDATIONS,
    Output,
    ensure_output,
)
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.silver.live_rows import read
from lakehouse.pipeline.silver.store import Layout, written_by_another

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

OUTPUTS: tuple[Output, ...] = (USER_RECOMMENDATIONS, MOVIE_RECOMMENDATIONS, MODEL_RUNS)


@dataclass(frozen=True)
class Paths:
    silver: Layout  # where silver is
    ratings: str  # the ratings' source table (`schema.ratings`), read through silver's live rule
    tables: dict[Output, str]  # ml table → its location (as Spark writes it)


def params(raw: dict[str, Any]) -> als.Params:
    """The job file's params, checked before Spark starts."""
    known = set(als.Params.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values = dict(raw)
    for name in ("ranks", "reg_params"):
        if name in values:
            values[name] = tuple(values[name])
    return als.Params(**values)


def train_and_write(spark: SparkSession, paths: Paths, p: als.Params, run_id: str) -> dict[str, float]:
    """Train on the ratings, write the three tables; the run's metrics."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    started = time.monotonic()
    where = paths.silver.table(paths.ratings)
    if not written_by_another(spark, where):
        raise LakehouseError(f"silver has no ratings table at {where} yet: load MovieLens first")
    ratings = (
        read(spark, paths.silver, paths.ratings)
        .select(F.col(als.USER).cast("int"), F.col(als.ITEM).cast("int"), F.col(als.RATING).cast("double"))
        .cache()
    )
    train_set, test = als.split(ratings, p.test_fraction, p.seed)
    train_set, test = train_set.cache(), test.cache()
    trained = als.train(train_set, p)
    error = als.rmse(als.predict(trained.biases, trained.model, test))
    global_rmse, bias_rmse = als.baseline_rmse(train_set, test)
    by_user, by_movie = als.top_n(trained, ratings, p.top_n)
    by_user.write.format("delta").mode("overwrite").save(paths.tables[USER_RECOMMENDATIONS])
    by_movie.write.format("delta").mode("overwrite").save(paths.tables[MOVIE_RECOMMENDATIONS])
    seconds = time.monotonic() - started
    counts = {"train_rows": train_set.count(), "test_rows": test.count()}
    row = spark.createDataFrame(
        [
            (
                run_id,
                datetime.now(UTC),
                error,
                global_rmse,
                bias_rmse,
                trained.rank,
                trained.reg_param,
                counts["train_rows"],
                counts["test_rows"],
                seconds,
            )
        ],
        T.StructType(
            [
                T.StructField("run_id", T.StringType()),
                T.StructField("trained_at", T.TimestampType()),
                T.StructField("rmse", T.DoubleType()),
                T.StructField("baseline_global_rmse", T.DoubleType()),
                T.StructField("baseline_bias_rmse", T.DoubleType()),
                T.StructField("rank", T.IntegerType()),
                T.StructField("reg_param", T.DoubleType()),
                T.StructField("train_rows", T.LongType()),
                T.StructField("test_rows", T.LongType()),
                T.StructField("seconds", T.DoubleType()),
            ]
        ),
    )
    row.write.format("delta").mode("append").save(paths.tables[MODEL_RUNS])
    return {
        "rmse": error,
        "baseline_global_rmse": global_rmse,
        "baseline_bias_rmse": bias_rmse,
        "rank": float(trained.rank),
        "reg_param": trained.reg_param,
        "validation_rmse": trained.validation_rmse,
        "train_rows": float(counts["train_rows"]),
        "test_rows": float(counts["test_rows"]),
        "users": float(by_user.select(als.USER).distinct().count()),
    }


def run(ctx: JobContext) -> dict[str, float]:
    p = params(ctx.params)
    s = ctx.s
    trino = ctx.trino()
    for out in OUTPUTS:
        ensure_output(trino, out, s.bucket)
    paths = Paths(
        silver=Layout.of(s.storage),
        ratings=f"{s.source_schema}.ratings",
        tables={out: s.storage.spark(out.key) for out in OUTPUTS},
    )
    with ctx.spark() as spark:
        return train_and_write(spark, paths, p, ctx.run_id)

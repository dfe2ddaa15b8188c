"""The recommender's model, as Spark transforms without I/O: a user + item bias baseline, ALS (Spark
ML) on what the biases leave, a small grid chosen on a validation split, RMSE on the hold-out, and
the top N movies per user and users per movie.

Ratings in: (user_id, movie_id, rating). The split is seeded, so the same ratings give the same
hold-out and the same RMSE.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

USER, ITEM, RATING = "user_id", "movie_id", "rating"
#: ratings are on MovieLens' scale: predictions are clipped to it
LOW, HIGH = 0.5, 5.0
#: shrinkage of the bias terms (a count of pseudo-ratings at the mean)
BIAS_REG = 5.0


@dataclass(frozen=True)
class Params:
    seed: int = 42
    test_fraction: float = 0.25
    ranks: tuple[int, ...] = (20, 30)
    reg_params: tuple[float, ...] = (0.15, 0.25)
    max_iter: int = 10
    top_n: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction {self.test_fraction}: between 0 and 1")
        if not self.ranks or any(r < 1 for r in self.ranks):
            raise ValueError(f"ranks {list(self.ranks)}: one or more ranks of 1 or more")
        if not self.reg_params or any(r <= 0 for r in self.reg_params):
            raise ValueError(f"reg_params {list(self.reg_params)}: one or more values above 0")
        if not 1 <= self.max_iter <= 50:
            raise ValueError(f"max_iter {self.max_iter}: between 1 and 50")
        if not 1 <= self.top_n <= 100:
            raise ValueError(f"top_n {self.top_n}: between 1 and 100")


@dataclass(frozen=True)
class Biases:
    mean: float
    users: DataFrame  # user_id, b_user
    items: DataFrame  # movie_id, b_item

    def predict(self, pairs: DataFrame) -> DataFrame:
        """`pairs` with `baseline`: mean + user bias + item bias (0 for one not seen in training)."""
        return (
            pairs.join(self.users, USER, "left")
            .join(self.items, ITEM, "left")
            .withColumn(
                "baseline",
                F.lit(self.mean) + F.coalesce("b_user", F.lit(0.0)) + F.coalesce("b_item", F.lit(0.0)),
            )
            .drop("b_user", "b_item")
        )


@dataclass(frozen=True)
class Trained:
    biases: Biases
    model: ALSModel
    rank: int
    reg_param: float
    validation_rmse: float


def _clip(c: Column) -> Column:
    return F.least(F.lit(HIGH), F.greatest(F.lit(LOW), c))


def rmse(scored: DataFrame, prediction: str = "prediction") -> float:
    """Root mean squared error of `prediction` against `rating` over every row."""
    row = scored.select(F.sqrt(F.avg(F.pow(F.col(prediction) - F.col(RATING), 2))).alias("e")).first()
    return float(row["e"]) if row is not None and row["e"] is not None else float("nan")


def split(ratings: DataFrame, fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """(the rest, `fraction` of the ratings), chosen by a seeded hash of each rating's key: the same
    ratings give the same split however silver's files hold them (randomSplit depends on the
    partitioning it is given)."""
    bucket = F.pmod(F.xxhash64(USER, ITEM, F.lit(seed)), F.lit(10_000))
    held = bucket < F.lit(round(fraction * 10_000))
    return ratings.where(~held), ratings.where(held)


def fit_biases(train: DataFrame) -> Biases:
    """Regularised user and item biases around the mean (items first, then users on what is left)."""
    mean = float(train.agg(F.avg(RATING)).first()[0])  # type: ignore[index]
    items = train.groupBy(ITEM).agg((F.sum(F.col(RATING) - mean) / (F.count("*") + BIAS_REG)).alias("b_item"))
    users = (
        train.join(items, ITEM)
        .groupBy(USER)
        .agg((F.sum(F.col(RATING) - mean - F.col("b_item")) / (F.count("*") + BIAS_REG)).alias("b_user"))
    )
    return Biases(mean, users.cache(), items.cache())


def _als(rank: int, reg: float, p: Params) -> ALS:
    return ALS(
        rank=rank,
        regParam=reg,
        maxIter=p.max_iter,
        seed=p.seed,
        userCol=USER,
        itemCol=ITEM,
        ratingCol="residual",
        coldStartStrategy="nan",  # a user or movie unseen in training keeps its baseline
        nonnegative=False,
    )


def _residuals(biases: Biases, ratings: DataFrame) -> DataFrame:
    return biases.predict(ratings).withColumn("residual", F.col(RATING) - F.col("baseline"))


def predict(trained_biases: Biases, model: ALSModel, pairs: DataFrame) -> DataFrame:
    """`pairs` (user_id, movie_id, …) with `score` (baseline + ALS on the residual; a pair ALS has
    not seen keeps its baseline) and `prediction`, the score clipped to the rating scale."""
    scored = model.transform(trained_biases.predict(pairs))
    als = F.col("prediction")
    residual = F.when(als.isNull() | F.isnan(als), F.lit(0.0)).otherwise(als)
    return scored.withColumn("score", F.col("baseline") + residual).withColumn(
        "prediction", _clip(F.col("score"))
    )


def train(train_set: DataFrame, p: Params) -> Trained:
    """Pick rank and regularisation on a seeded validation split of the training set, then fit the
    chosen pair on the whole training set."""
    fit_part, validation = split(train_set, 0.1, p.seed + 1)
    fit_part, validation = fit_part.cache(), validation.cache()
    biases = fit_biases(fit_part)
    residuals = _residuals(biases, fit_part).cache()
    best: tuple[float, int, float] | None = None
    for rank, reg in itertools.product(p.ranks, p.reg_params):
        model = _als(rank, reg, p).fit(residuals)
        error = rmse(predict(biases, model, validation))
        if best is None or error < best[0]:
            best = (error, rank, reg)
    assert best is not None
    residuals.unpersist()
    full_biases = fit_biases(train_set)
    model = _als(best[1], best[2], p).fit(_residuals(full_biases, train_set))
    return Trained(full_biases, model, best[1], best[2], best[0])


def baseline_rmse(train_set: DataFrame, test: DataFrame) -> tuple[float, float]:
    """RMSE on the hold-out of the global mean and of mean + user + item biases."""
    biases = fit_biases(train_set)
    scored = biases.predict(test).withColumn("global", F.lit(biases.mean))
    return rmse(scored, "global"), rmse(scored.withColumn("bias", _clip(F.col("baseline"))), "bias")


def top_n(trained: Trained, ratings: DataFrame, n: int) -> tuple[DataFrame, DataFrame]:
    """The N best unrated movies per user and the N users who would rate each movie best, by the
    same prediction as the RMSE (baseline + ALS): (user_id, rank, movie_id, predicted_rating) and
    (movie_id, rank, user_id, predicted_rating)."""
    users = ratings.select(USER).distinct()
    items = ratings.select(ITEM).distinct()
    pairs = users.crossJoin(items).join(ratings.select(USER, ITEM), [USER, ITEM], "left_anti")
    scored = predict(trained.biases, trained.model, pairs).select(
        USER, ITEM, "score", F.col("prediction").alias("predicted_rating")
    )
    scored = scored.cache()

    def ranked(by: str, other: str) -> DataFrame:
        # by the unclipped score: several predictions above the scale's top would tie at 5.0
        order = Window.partitionBy(by).orderBy(F.desc("score"), F.asc(other))
        return (
            scored.withColumn("rank", F.row_number().over(order).cast("int"))
            .where(F.col("rank") <= n)
            .select(by, "rank", other, "predicted_rating")
        )

    return ranked(USER, ITEM), ranked(ITEM, USER)

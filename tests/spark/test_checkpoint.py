"""A missing checkpoint next to existing silver is an error naming the path, never a silent restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.pipeline.silver.batch import BatchProcessor
from lakehouse.pipeline.silver.checkpoint_guard import CheckpointError, guard_checkpoint
from lakehouse.pipeline.silver.sources import Epoch

from .events import end, event, movie_row


def test_missing_checkpoint_with_existing_silver_is_an_error(silver: BatchProcessor, tmp_path: Path) -> None:
    checkpoint = Epoch(0, "bronze", str(tmp_path / "checkpoint"))
    guard_checkpoint(silver.spark, checkpoint, silver.store.layout)  # nothing yet: a first start is fine
    df = silver.spark.createDataFrame(
        [(event("c", movie_row(1, "a"), 10, txid=3, dco=1),), (end(3, {"movielens.movies": 1}),)],
        "value string",
    )
    silver.process(df, 0)
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint is missing.*reset-silver"):
        guard_checkpoint(silver.spark, checkpoint, silver.store.layout)
    (tmp_path / "checkpoint" / "offsets").mkdir(parents=True)
    guard_checkpoint(silver.spark, checkpoint, silver.store.layout)


def test_a_kafka_epoch_needs_its_checkpoint_once_it_has_run(silver: BatchProcessor, tmp_path: Path) -> None:
    epoch = Epoch(1, "kafka", str(tmp_path / "checkpoint-kafka-1"))
    guard_checkpoint(silver.spark, epoch, silver.store.layout)  # not run yet: starts at its hand-over
    epoch.ran = True
    with pytest.raises(CheckpointError, match=r"checkpoint-kafka-1 is missing"):
        guard_checkpoint(silver.spark, epoch, silver.store.layout)
    (tmp_path / "checkpoint-kafka-1" / "offsets").mkdir(parents=True)
    guard_checkpoint(silver.spark, epoch, silver.store.layout)

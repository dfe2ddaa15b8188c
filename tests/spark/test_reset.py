"""`reset-silver` is safe to interrupt: at whatever object it stops, the job's next start refuses
with the fix (run the reset again) instead of resuming its checkpoint over partly deleted silver.
And a checkpoint whose silver tables are gone is refused like silver without its checkpoint."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.layout import Storage
from lakehouse.config.paths import repo_root
from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.checkpoint_guard import CheckpointError, guard_checkpoint
from lakehouse.pipeline.silver.commands import reset_silver
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.expectation_log import ExpectationLog
from lakehouse.pipeline.silver.maintenance import Maintenance
from lakehouse.pipeline.silver.sources import BRONZE, KAFKA, Epoch, Epochs
from lakehouse.pipeline.silver.store import EXPECTATION_SCHEMA, QUARANTINE_SCHEMA, Layout
from lakehouse.pipeline.silver.table_status import StatusWriter

from .events import TXN_TOPIC, event, movie_row

if TYPE_CHECKING:
    from minio import Minio

BUCKET = "lake"
OTHER = "movielens.other"


class Interrupted(Exception):
    """The reset's process died here (kill -9, a lost connection to the object store)."""


@dataclass
class _Object:
    object_name: str


def _listing(root: Path) -> list[str]:
    """A local folder's keys as S3 lists them, in lexicographic order: its files, and each empty
    folder as the marker object S3A's mkdirs leaves (`…/_delta_log/_staged_commits/`)."""
    keys = []
    for p in root.rglob("*"):
        if p.is_file():
            keys.append(p.relative_to(root).as_posix())
        elif p.is_dir() and not any(p.iterdir()):
            keys.append(p.relative_to(root).as_posix() + "/")
    return sorted(keys)


class LocalBucket:
    """The MinIO client calls `reset_silver` makes, over a local folder as the bucket: keys listed
    as S3 does (`_listing`), no folder left behind once its last object is deleted (S3 has none),
    and the process dying before its `stop_after`-th removal."""

    def __init__(self, root: Path, stop_after: int | None = None) -> None:
        self.root, self.stop_after = root, stop_after
        self.calls: list[tuple[str, str]] = []

    def _file(self, bucket: str, key: str) -> Path:
        assert bucket == BUCKET
        return self.root / key

    def list_objects(self, bucket: str, prefix: str = "", recursive: bool = False) -> Iterator[_Object]:
        assert bucket == BUCKET and recursive
        return iter([_Object(k) for k in _listing(self.root) if k.startswith(prefix)])

    def remove_object(self, bucket: str, key: str) -> None:
        removed = sum(1 for op, _ in self.calls if op == "remove")
        if self.stop_after is not None and removed >= self.stop_after:
            raise Interrupted(key)
        path = self._file(bucket, key)
        if key.endswith("/"):
            path.rmdir()
        else:
            path.unlink()
        self.calls.append(("remove", key))
        folder = path.parent
        while folder != self.root and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent

    def put_object(
        self, bucket: str, key: str, data: io.BytesIO, length: int, content_type: str | None = None
    ) -> None:
        path = self._file(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.read(length))
        self.calls.append(("put", key))


def _reset(client: LocalBucket) -> int:
    """`reset_silver` over the local bucket (the CLI has checked that the job is down)."""
    return reset_silver(Storage(BUCKET), cast("Minio", client))


def _paths(bucket: Path) -> tuple[Layout, str]:
    return Layout(str(bucket / "silver")), str(bucket / "_checkpoints" / "silver")


def _run(silver: BatchProcessor, *lines: str, batch_id: int) -> None:
    silver.process(silver.spark.createDataFrame([(line,) for line in lines], "value string"), batch_id)


def _checkpoint(folder: Path, batches: int, sources: bool) -> None:
    """The files of a streaming checkpoint that committed `batches` batches (what the guard reads
    are their names; Spark's own content is not needed)."""
    (folder / "metadata").parent.mkdir(parents=True, exist_ok=True)
    (folder / "metadata").write_text('{"id":"00000000-0000-0000-0000-000000000000"}\n')
    for b in range(batches):
        for log in ("offsets", "commits"):
            (folder / log).mkdir(exist_ok=True)
            (folder / log / str(b)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')
        if sources:
            (folder / "sources" / "0").mkdir(parents=True, exist_ok=True)
            (folder / "sources" / "0" / str(b)).write_text("v1\n")


def _silver_that_ran(spark: SparkSession, bucket: Path, source: str) -> None:
    """The bucket a silver job leaves behind after some batches: two tables, tombstones, the
    quarantine and results it creates at start, `_state/tables.json`, its source state and
    checkpoints (a kafka epoch after a bronze one, or only the bronze one), and bronze."""
    layout, checkpoint = _paths(bucket)
    silver = BatchProcessor(spark, layout, Rules(TXN_TOPIC))
    silver.store.ensure(layout.quarantine, QUARANTINE_SCHEMA)  # as the job's start does
    silver.store.ensure(layout.expectation_results, EXPECTATION_SCHEMA)
    _run(silver, event("c", movie_row(1, "a"), 10), event("c", movie_row(2, "b"), 11), batch_id=0)
    _run(silver, event("d", {"movie_id": 2}, 12), event("c", movie_row(7, "x"), 13, table=OTHER), batch_id=1)
    cfg = SilverConfig.load(repo_root() / "spark_streaming" / "silver.json")
    maintenance = Maintenance(spark, layout, cfg, datetime.now(UTC))
    StatusWriter(spark, layout, maintenance, ExpectationLog(spark, silver.store)).refresh()
    published = json.loads((bucket / "silver" / "_state" / "tables.json").read_text())["tables"]
    assert sorted(t["source"] for t in published) == ["movielens.movies", OTHER]
    _checkpoint(Path(checkpoint), batches=2, sources=True)
    applied = {"cdc.movielens.movies": {0: 3}, "cdc.movielens.other": {0: 4}}
    if source == KAFKA:
        _checkpoint(Path(f"{checkpoint}-kafka-1"), batches=1, sources=False)
        epoch = Epoch(1, KAFKA, f"{checkpoint}-kafka-1", base=2, applied=applied, ran=True)
    else:
        epoch = Epoch(0, BRONZE, checkpoint, applied=applied)
    Epochs(spark, layout, checkpoint).save(epoch)
    sunk = bucket / "bronze" / "cdc.movielens.movies" / "partition=0" / "cdc.movielens.movies+0+0000.json.gz"
    sunk.parent.mkdir(parents=True)
    sunk.write_bytes(b"kept")


def _guard(spark: SparkSession, bucket: Path) -> None:
    """What the job does first at start (job.run)."""
    layout, checkpoint = _paths(bucket)
    guard_checkpoint(spark, Epochs(spark, layout, checkpoint).current(), layout)


@dataclass
class Saved:
    """A bucket a job left (`saved`), put back at `work` before each case: where it was written,
    since the source state names its checkpoint by its full path, as in the stack."""

    work: Path
    saved: Path

    def restore(self) -> Path:
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.saved, self.work)
        return self.work


@pytest.fixture(scope="module", params=[BRONZE, KAFKA])
def pristine(
    request: pytest.FixtureRequest, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Saved:
    bucket = tmp_path_factory.mktemp(f"bucket-{request.param}") / BUCKET
    _silver_that_ran(spark, bucket, str(request.param))
    _guard(spark, bucket)  # the state a running job leaves is accepted
    saved = bucket.with_name("saved")
    shutil.copytree(bucket, saved)
    return Saved(bucket, saved)


def _keys(bucket: Path, *prefixes: str) -> list[str]:
    return [k for k in _listing(bucket) if k.startswith(prefixes)]


def test_a_reset_interrupted_at_any_object_is_refused_at_the_next_start(
    spark: SparkSession, pristine: Saved
) -> None:
    work = pristine.work
    deleted = _keys(pristine.saved, "silver/", "_checkpoints/silver")
    assert len(deleted) > 20
    resumed: dict[int, str] = {}
    messages: set[str] = set()
    for stop in range(len(deleted)):
        client = LocalBucket(pristine.restore(), stop_after=stop)
        with pytest.raises(Interrupted):
            _reset(client)
        try:
            _guard(spark, work)
        except CheckpointError as exc:
            messages.add(str(exc).replace(str(work), "<bucket>"))
        else:  # the job would have resumed over what this reset left
            left = _keys(work, "silver/", "_checkpoints/")
            resumed[stop] = f"{len(left)} objects left, first {left[:1]}"
    assert not resumed, f"the job resumes after a reset interrupted at these removals: {resumed}"
    for message in messages:  # one line, naming the fix
        assert "lakehouse reset-silver --yes" in message and "\n" not in message, message


def test_a_reset_deletes_what_lets_the_stream_resume_first_and_the_job_then_starts_afresh(
    spark: SparkSession, pristine: Saved
) -> None:
    work = pristine.work
    deleted = _keys(pristine.saved, "silver/", "_checkpoints/silver")
    client = LocalBucket(pristine.restore())
    assert _reset(client) == len(deleted)
    assert _keys(work, "silver/", "_checkpoints/") == []
    assert _keys(work, "bronze/") != []
    _guard(spark, work)  # everything is gone, bronze is kept: a first start
    # what lets the stream resume goes first: the checkpoints, then the source state, then silver
    removed = [key for op, key in client.calls if op == "remove"]
    checkpoints = [k for k in removed if k.startswith("_checkpoints/")]
    assert sorted(checkpoints) == sorted(k for k in deleted if k.startswith("_checkpoints/"))
    firsts = removed[: len(checkpoints) + 1]
    assert firsts[:-1] == checkpoints, firsts
    assert firsts[-1] == "silver/_state/source.json"
    # a marker is written before anything is deleted and removed after everything else
    assert client.calls[0][0] == "put"
    assert client.calls[-1] == ("remove", client.calls[0][1])


@pytest.mark.parametrize(
    "gone",
    [
        "silver",  # the whole silver root
        "silver/_quarantine",  # the table every start creates before its first batch
        "silver/movielens/other",  # a table `_state/tables.json` lists
    ],
)
def test_a_checkpoint_whose_silver_is_gone_is_refused(
    spark: SparkSession, pristine: Saved, gone: str
) -> None:
    """As an older reset-silver (silver first) or a hand-made delete leaves it: the checkpoint says
    batches were applied, silver does not hold them."""
    work = pristine.restore()
    shutil.rmtree(work / gone)
    with pytest.raises(CheckpointError) as refused:
        _guard(spark, work)
    message = str(refused.value)
    assert "lakehouse reset-silver --yes" in message and "\n" not in message, message
    assert str(work / "_checkpoints" / "silver") in message

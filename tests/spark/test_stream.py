"""The real streaming job (silver/job.py `run`: file source, checkpoint, foreachBatch) over bronze
files of what the pinned Debezium wrote, one file per micro-batch, stopped half-way and started
again from its checkpoint: silver ends equal to the source, as a rebuild after `reset-silver` must
(transactions split across batches, END records before and after their events)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.config.paths import repo_root
from lakehouse.pipeline.bronze.format import object_key
from lakehouse.pipeline.silver.batch import Rules
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.job import run
from lakehouse.pipeline.silver.store import Layout

from .. import typematrix as tm
from .test_captured import FIXTURES, TABLE, _expected

LINES_PER_FILE = 8


def _bronze_files(bronze: Path) -> list[tuple[Path, str]]:
    """The captured events as the bronze sink connector lays them out — per topic and partition, objects named
    by first offset, a few records each — in the order the sink would have written them."""
    records = [json.loads(x) for x in (FIXTURES / "type_matrix.jsonl").read_text().splitlines()]
    files: list[tuple[int, Path, str]] = []
    for topic in sorted({r["topic"] for r in records}):
        mine = sorted((r for r in records if r["topic"] == topic), key=lambda r: int(r["offset"]))
        for i in range(0, len(mine), LINES_PER_FILE):
            chunk = mine[i : i + LINES_PER_FILE]
            first, last = int(chunk[0]["offset"]), int(chunk[-1]["offset"])
            name = bronze.parent / object_key(bronze.name, topic, int(chunk[0]["partition"]), first, last)
            body = "".join(json.dumps(r) + "\n" for r in chunk)
            files.append((int(chunk[-1]["timestamp"]), name, body))
    return [(name, body) for _, name, body in sorted(files, key=lambda f: (f[0], str(f[1])))]


def _write(files: list[tuple[Path, str]], first_mtime: float) -> None:
    # the file source takes new files in modification-time order: one second apart, in sink order
    for i, (path, body) in enumerate(files):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(body.encode()))  # as the sink connector writes them
        os.utime(path, (first_mtime + i, first_mtime + i))


def _commits(checkpoint: Path) -> int:
    folder = checkpoint / "commits"
    return sum(1 for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else 0


def _stream_until(spark: SparkSession, done: Callable[[], bool], job: dict[str, Any]) -> None:
    """Run the job in a thread until `done()` holds (or 240 s pass), then stop its query."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(spark, **job)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="silver-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 240
    try:
        while not done() and time.monotonic() < deadline and not errors:
            time.sleep(1)
    finally:
        for q in spark.streams.active:
            if q.name == "silver":
                q.stop()
        thread.join(timeout=60)
    assert not errors, errors
    assert done(), "the stream did not get there in 240 s"


def test_stream_over_many_batches_with_a_restart_rebuilds_silver_exactly(
    spark: SparkSession, tmp_path: Path
) -> None:
    bronze, checkpoint = tmp_path / "bronze", tmp_path / "checkpoint"
    layout = Layout(str(tmp_path / "silver"))
    files = _bronze_files(bronze)
    assert len(files) >= 6
    prefix = json.loads(files[0][1].splitlines()[0])["topic"].split(".")[0]
    # the repo's silver.json, with batches below one file: each micro-batch takes exactly one
    cfg = dataclasses.replace(
        SilverConfig.load(repo_root() / "spark_streaming" / "silver.json"), max_bytes_per_trigger=1
    )
    job: dict[str, Any] = {
        "bronze_dirs": f"{bronze}/{prefix}.*/partition=*",
        "checkpoint": str(checkpoint),
        "layout": layout,
        "rules": Rules(f"{prefix}.transaction"),
        "cfg": cfg,
    }
    half = len(files) // 2
    start = time.time() - 3600
    _write(files[:half], start)
    _stream_until(spark, lambda: _commits(checkpoint) == half, job)

    # half-way, the table's events are partly applied and partly held for their END records
    path = layout.table(TABLE)
    partial = tm.mismatches(_expected(), tm.silver_rendered(spark, path)) if Path(path).exists() else ["none"]
    assert partial, "the first half alone already equals the source: the split proves nothing"

    _write(files[half:], start + half)

    def equal() -> bool:
        return _commits(checkpoint) == len(files) and not tm.mismatches(
            _expected(), tm.silver_rendered(spark, path)
        )

    _stream_until(spark, equal, job)
    assert _commits(checkpoint) == len(files)  # one batch per file, none re-run after the restart
    # the bronze epoch knows the last offset it applied per partition: where Kafka would take over
    state = json.loads(Path(layout.source_state).read_text())
    records = [json.loads(line) for _, body in files for line in body.splitlines()]
    last: dict[str, dict[str, int]] = {}
    for r in records:
        mine = last.setdefault(r["topic"], {})
        mine[str(r["partition"])] = max(int(r["offset"]), mine.get(str(r["partition"]), -1))
    assert (state["source"], state["applied"]) == ("bronze", last)

"""`lakehouse bench merge`: silver's MERGE alone, taken apart job by job.

Every micro-batch that changes a table pays one Delta MERGE, and on two cores that MERGE is most
of an idle batch (docs/benchmarks.md). This measures it without the stack: a scratch table of
`rows` rows (silver's metadata columns, `width` text columns) on local disk, then `merges` MERGEs
of `size` changes each (updates, plus an insert and a delete when `size` ≥ 3) through silver's own
`Store.merge` — the position-guarded MERGE the job runs — with the job's Spark settings and any
`--conf` on top. Per MERGE it records the wall time, the Spark jobs and each job's span and
description, so the seconds split into what Delta does (rebuilding the snapshot, finding the
touched files, rewriting them) and the driver's time between jobs; a setting is compared A/B by
running it twice with and without `--conf`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.benchmark.footprint import machine
from lakehouse.benchmark.report import write_json
from lakehouse.benchmark.stats import summary
from lakehouse.errors import UsageError

SOURCE = "bench.merge"
#: what a job did, from the description Delta gives it (first match wins); the rest is "other"
KINDS = (
    ("snapshot", "compute snapshot"),
    ("checkpoint", "checkpoint"),
    ("materialize source", "materialize source"),
    ("find touched files", "scanning files for matches"),
    ("rewrite", "writing modified data"),
    ("rewrite", "rewriting"),
    ("deletion vectors", "deletion vector"),
)
DRIVER = "driver, between jobs"


def kind(description: str) -> str:
    """The part of a MERGE a Spark job belongs to, from its description."""
    text = description.lower()
    return next((k for k, needle in KINDS if needle in text), "other")


def parse_conf(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--conf key=value` pairs; a pair without `=` or with an empty key is a usage error."""
    conf: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf wants KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


@dataclass(frozen=True)
class Shape:
    rows: int = 1_000
    size: int = 3
    merges: int = 20
    warmup: int = 3
    width: int = 10
    deletion_vectors: bool = False

    def check(self) -> None:
        if self.rows < 1 or self.size < 1 or self.width < 1:
            raise UsageError("--rows, --size and --width must be at least 1")
        if self.size > self.rows:
            raise UsageError(f"--size ({self.size}) cannot exceed --rows ({self.rows})")
        if self.merges <= self.warmup:
            raise UsageError(f"--merges ({self.merges}) must exceed the {self.warmup} warm-up MERGEs")


def _columns(width: int) -> list[str]:
    return [f"c{i}" for i in range(width)]


def table_rows(spark: SparkSession, shape: Shape) -> DataFrame:
    """The table as the snapshot left it: keys 0..rows-1, read at position (1, key)."""
    key = F.col("id")
    return spark.range(shape.rows).select(
        key,
        *[F.concat(F.lit(f"{c}-"), key.cast("string")).alias(c) for c in _columns(shape.width)],
        F.lit("r").alias("_op"),
        F.lit(1).cast("long").alias("_commit_lsn"),
        key.alias("_lsn"),
        F.current_timestamp().alias("_source_ts"),
        F.current_timestamp().alias("_ingested_at"),
    )


def changes(spark: SparkSession, shape: Shape, i: int) -> DataFrame:
    """MERGE `i`'s source, as silver's latest-per-key rows: `size` changes in one transaction at
    commit position i + 2 (after the snapshot): updates of spread-out keys, and when size ≥ 3 the
    last two are the delete of a key and the insert of a new one."""
    n, rows = shape.size, shape.rows
    j = F.col("id")
    spread = ((j * 7_919 + F.lit(i * 104_729)) % rows).cast("long")
    fresh = F.lit(rows + i).cast("long")  # never a stored key: an insert
    op = F.lit("u")
    key = spread
    if n >= 3:
        op = F.when(j == n - 2, "d").when(j == n - 1, "c").otherwise("u")
        key = F.when(j == n - 1, fresh).otherwise(spread)
    return (
        spark.range(n)
        .select(
            key.alias("id"),
            *[F.lit(f"{c}-changed-{i}").alias(c) for c in _columns(shape.width)],
            op.alias("_op"),
            F.lit(i + 2).cast("long").alias("_commit_lsn"),
            j.alias("_lsn"),
            F.current_timestamp().alias("_source_ts"),
            F.current_timestamp().alias("_ingested_at"),
        )
        .dropDuplicates(["id"])
    )


def _job_spans(spark: SparkSession, first: int, end: int, started_ms: float) -> list[dict[str, Any]]:
    """Jobs `first`..`end`-1 as {start_s, end_s, what, kind}, seconds from `started_ms`."""
    store = spark.sparkContext._jsc.sc().statusStore()
    spans = []
    for job_id in range(first, end):
        try:
            job = store.job(job_id)
        except Py4JJavaError:  # a job the status store has already let go of
            continue
        if not (job.submissionTime().isDefined() and job.completionTime().isDefined()):
            continue
        what = str(job.description().get() if job.description().isDefined() else job.name())
        spans.append(
            {
                "start_s": round((job.submissionTime().get().getTime() - started_ms) / 1000, 3),
                "end_s": round((job.completionTime().get().getTime() - started_ms) / 1000, 3),
                "what": what[:160],
                "kind": kind(what),
            }
        )
    return sorted(spans, key=lambda s: s["start_s"])


def measure(
    spark: SparkSession, shape: Shape, root: Path, *, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Create the scratch table under `root`, run the MERGEs, return one record per MERGE."""
    from lakehouse.pipeline.silver.store import KEY_PROPERTY, Layout, Store, table_properties

    shape.check()
    store = Store(spark, Layout(str(root)), table_properties(shape.deletion_vectors))
    data = table_rows(spark, shape)
    path = store.layout.table(SOURCE)
    store.ensure(path, data.schema, {KEY_PROPERTY: "id", **store.properties})
    data.write.format("delta").mode("append").save(path)
    columns = data.columns
    scheduler = spark.sparkContext._jsc.sc().dagScheduler()
    records = []
    for i in range(shape.merges):
        source = changes(spark, shape, i).localCheckpoint(eager=True)
        first = int(scheduler.nextJobId())
        started = time.time()
        store.merge(SOURCE, source, columns, ["id"])
        seconds = time.time() - started
        jobs = _job_spans(spark, first, int(scheduler.nextJobId()), started * 1000)
        in_jobs = sum(s["end_s"] - s["start_s"] for s in jobs)
        records.append(
            {
                "merge": i,
                "warmup": i < shape.warmup,
                "seconds": round(seconds, 3),
                "spark_jobs": len(jobs),
                "job_seconds": round(in_jobs, 3),
                "jobs": jobs,
            }
        )
        progress(f"merge {i}: {seconds:.2f}s, {len(jobs)} Spark jobs ({in_jobs:.2f}s in jobs)")
    return records


def _median(values: list[float]) -> float:
    p50 = summary(values)["p50"]
    return round(float(p50), 3) if p50 is not None else 0.0


def breakdown(records: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per MERGE in each kind of job, and between jobs, over the measured MERGEs."""
    measured = [r for r in records if not r["warmup"]]
    kinds = sorted({s["kind"] for r in measured for s in r["jobs"]})
    out: dict[str, float] = {}
    for k in kinds:
        per = [sum(s["end_s"] - s["start_s"] for s in r["jobs"] if s["kind"] == k) for r in measured]
        out[k] = _median(per)
    out[DRIVER] = _median([max(0.0, r["seconds"] - r["job_seconds"]) for r in measured])
    return out


def run(
    conf: dict[str, str],
    jars: list[str],
    shape: Shape,
    out_dir: Path,
    *,
    overrides: dict[str, str] | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """A local[2] session with the job's `conf` (+ `overrides`), the MERGEs, `merge.json` and
    `merge.png` in `out_dir`."""
    from lakehouse.pipeline.silver.session import build

    shape.check()
    scratch = Path(tempfile.mkdtemp(prefix="lakehouse-bench-merge-"))
    session_conf = {**conf, **(overrides or {}), "spark.local.dir": str(scratch / "tmp")}
    spark = build("local[2]", session_conf, jars, "bench-merge")
    try:
        records = measure(spark, shape, scratch / "silver", progress=progress)
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    measured = [r for r in records if not r["warmup"]]
    doc = {
        "shape": shape.__dict__,
        "overrides": overrides or {},
        "machine": machine(),
        "seconds": summary([r["seconds"] for r in measured]),
        "spark_jobs": summary([float(r["spark_jobs"]) for r in measured]),
        "job_seconds": summary([r["job_seconds"] for r in measured]),
        "median_seconds_by_kind": breakdown(records),
        "merges": records,
    }
    write_json(out_dir / "merge.json", doc)
    _plot(records, out_dir / "merge.png")
    return doc


def _plot(records: list[dict[str, Any]], path: Path) -> None:
    from lakehouse.benchmark.plots import _finish, _plt

    plt = _plt()
    kinds = [*sorted({s["kind"] for r in records for s in r["jobs"]}), DRIVER]
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = [r["merge"] for r in records]
    bottom = [0.0] * len(records)
    for k in kinds:
        if k == DRIVER:
            ys = [max(0.0, r["seconds"] - r["job_seconds"]) for r in records]
        else:
            ys = [sum(s["end_s"] - s["start_s"] for s in r["jobs"] if s["kind"] == k) for r in records]
        ax.bar(xs, ys, bottom=bottom, label=k)
        bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
    warm = [r["merge"] for r in records if r["warmup"]]
    if warm:
        ax.axvspan(min(warm) - 0.5, max(warm) + 0.5, color="grey", alpha=0.15, label="warm-up (not counted)")
    title = "one silver MERGE, by Spark job (local Spark, nothing else running)"
    _finish(fig, ax, ("MERGE", "seconds"), title, path, legend="upper right")

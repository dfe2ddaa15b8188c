"""`lakehouse bench batch`: the silver micro-batch alone, on bronze the stack really wrote.

The stack's bronze objects (or a folder of them) are replayed, in the order they were written,
through the silver job's own `BatchProcessor` on a local SparkSession with the job's rendered
`spark-defaults.conf` and `silver.json`, into a scratch silver on local disk. Nothing else runs
beside it, so a change to the batch can be measured A/B on the same events without the noise of
eight services sharing the cores (on the stack the same batch takes about twice as long).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lakehouse.benchmark.footprint import machine
from lakehouse.benchmark.report import save, write_json
from lakehouse.benchmark.stats import summary
from lakehouse.config.layout import BRONZE
from lakehouse.errors import UsageError
from lakehouse.pipeline.bronze.format import is_object, lines_of


def capture(client: Any, bucket: str, dest: Path, prefix: str = BRONZE) -> int:
    """Every bronze object under `prefix` in `bucket`, oldest first, as numbered `.jsonl` files in
    `dest` (uncompressed)."""
    objects = sorted(
        (o.last_modified, o.object_name)
        for o in client.list_objects(bucket, prefix=prefix + "/", recursive=True)
        if is_object(o.object_name)
    )
    dest.mkdir(parents=True, exist_ok=True)
    for i, (_, name) in enumerate(objects):
        resp = client.get_object(bucket, name)
        try:
            (dest / f"{i:06d}.jsonl").write_bytes(b"\n".join(lines_of(name, resp.read())) + b"\n")
        finally:
            resp.close()
            resp.release_conn()
    return len(objects)


def chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive batches of `size` non-empty lines (the last one may be shorter)."""
    if size < 1:
        raise UsageError(f"--lines must be at least 1, got {size}")
    batch: list[str] = []
    for line in lines:
        if line.strip():
            batch.append(line.rstrip("\n"))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def _lines(files: list[Path]) -> Iterator[str]:
    for f in files:
        with f.open() as fh:
            yield from fh


def replay(folder: Path, lines_per_batch: int, out_dir: Path, *, progress: Any = print) -> dict[str, Any]:
    """Each batch of `lines_per_batch` lines through `BatchProcessor.process`; per batch its lines,
    seconds, Spark jobs, code compilations and seconds per phase. Writes `batch.json` and
    `batch.png` to `out_dir`."""
    from lakehouse.pipeline.silver.batch import BatchProcessor
    from lakehouse.pipeline.silver.launch import JobSetup
    from lakehouse.pipeline.silver.phases import CompileCounter, JobCounter
    from lakehouse.pipeline.silver.session import build
    from lakehouse.pipeline.silver.store import Layout

    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise UsageError(f"{folder}: no .jsonl bronze files")
    setup = JobSetup.load()
    cfg = setup.cfg
    batches = chunks(_lines(files), lines_per_batch)  # read as they are replayed
    scratch = Path(tempfile.mkdtemp(prefix="lakehouse-bench-batch-"))
    conf = {**setup.conf, "spark.local.dir": str(scratch / "tmp")}
    spark = build("local[2]", conf, setup.jars, "bench-batch")
    rows: list[dict[str, Any]] = []
    try:
        rules = setup.rules()
        processor = BatchProcessor(spark, Layout(str(scratch / "silver")), rules)
        jobs = JobCounter(spark)
        compilations = CompileCounter(spark)
        for i, batch in enumerate(batches):
            path = scratch / "in" / f"{i:06d}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(batch) + "\n")
            started = time.monotonic()
            result = processor.process(spark.read.text(str(path)), i)
            seconds = time.monotonic() - started
            row = {
                "batch": i,
                "lines": len(batch),
                "seconds": round(seconds, 3),
                "spark_jobs": jobs.take(),
                "compilations": compilations.take(),
                "phases_s": {k: round(v, 3) for k, v in result.phases.items()},
                "applied": dict(result.applied),
                "quarantined": dict(result.quarantined),
                "pending": result.pending,
            }
            rows.append(row)
            progress(
                f"batch {i}: {row['lines']} lines in {seconds:.2f}s, {row['spark_jobs']} Spark jobs, "
                f"{row['compilations']} code compilations"
            )
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    doc = {
        "source": str(folder),
        "lines_per_batch": lines_per_batch,
        "settings": {
            "deletion.vectors": cfg.deletion_vectors,
            "driver": conf.get("spark.driver.memory"),
        },
        "machine": machine(),
        "batches": rows,
        "seconds": summary([r["seconds"] for r in rows]),
        "lines_per_s": summary([r["lines"] / r["seconds"] for r in rows if r["seconds"] > 0]),
    }
    write_json(out_dir / "batch.json", doc)
    _plot(rows, out_dir / "batch.png")
    return doc


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    from lakehouse.benchmark.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    xs = [r["batch"] for r in rows]
    ax.bar(xs, [r["seconds"] for r in rows], color="tab:blue", label="seconds per batch")
    ax.set_xlabel("micro-batch")
    ax.set_ylabel("seconds")
    twin = ax.twinx()
    twin.plot(xs, [r["lines"] / max(r["seconds"], 1e-9) for r in rows], color="tab:orange", marker="o")
    twin.set_ylabel("bronze lines per second", color="tab:orange")
    twin.set_ylim(bottom=0)
    ax.set_title("silver micro-batch on replayed bronze (local Spark, nothing else running)")
    save(fig, path)

"""`lakehouse bench source`: silver's stream read from bronze files or from Kafka, on the same events.

Silver reads bronze, the objects the sink lands in MinIO. The alternative is Spark's Kafka source
on the same topics (`failOnDataLoss=true`), with each record turned into the bronze line it would
have become (silver/kafka_lines.py), so the batch itself is the same code. Both read everything
the stack holds now: every bronze object, and every record of the topics bronze subscribes to.

With silver stopped (it is started again afterwards), one SparkSession with the job's settings
runs a streaming query per source, `availableNow`, into a scratch silver on local disk: the file
source bounded by the job's `max.bytes.per.trigger`, the Kafka source by as many records as that
many bronze bytes hold on average. Per micro-batch: lines, the batch's own seconds and Spark jobs,
and Spark's loop around it (finding new input, planning, the checkpoint's logs). The runs go
A B B A (`--repeat 2`) after an untimed warm-up, so that a JVM warmed by the first run does not
favour one source.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lakehouse.benchmark.footprint import machine
from lakehouse.benchmark.report import save, write_json
from lakehouse.benchmark.stats import summary
from lakehouse.config.layout import BRONZE, bronze_glob
from lakehouse.errors import UsageError
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.bronze.format import GLOB, is_object

SOURCES = ("bronze", "kafka")
#: Spark's steps of a micro-batch outside foreachBatch (StreamingQueryProgress.durationMs)
LOOP = ("latestOffset", "getBatch", "queryPlanning", "walCommit", "commitOffsets")


def bronze_bytes(stack: Stack) -> int:
    """Bytes of every bronze object (what the file source will read)."""
    prefix = f"{BRONZE}/"
    return sum(
        o.size or 0
        for o in stack.minio.client().list_objects(stack.s.bucket, prefix=prefix, recursive=True)
        if is_object(o.object_name)
    )


def kafka_records(bootstrap: str, pattern: str) -> int:
    """Records held in the topics matching `pattern` (end minus beginning offsets)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakehouse-bench-source"})
    try:
        topics = [t for t in consumer.list_topics(timeout=10).topics if re.match(pattern, t)]
        total = 0
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high - low
        return total
    finally:
        consumer.close()


def per_trigger(records: int, total_bytes: int, max_bytes: int) -> int:
    """Kafka records per trigger that match a file batch of `max_bytes` bronze bytes."""
    if records <= 0 or total_bytes <= 0:
        raise UsageError("nothing to read: bronze or the topics are empty (load some data first)")
    return max(1, math.ceil(records * max_bytes / total_bytes))


def _one(spark: Any, source: str, scratch: Path, options: dict[str, Any], progress: Any) -> dict[str, Any]:
    """One streaming query over everything `source` holds, `availableNow`."""
    from lakehouse.pipeline.silver.batch import BatchProcessor
    from lakehouse.pipeline.silver.kafka_lines import as_bronze_lines
    from lakehouse.pipeline.silver.phases import JobCounter
    from lakehouse.pipeline.silver.store import Layout

    work = Path(tempfile.mkdtemp(prefix=f"{source}-", dir=scratch))
    processor = BatchProcessor(spark, Layout(str(work / "silver")), options["rules"])
    jobs = JobCounter(spark)
    batches: dict[int, dict[str, Any]] = {}
    lock = threading.Lock()

    def each(df: Any, batch_id: int) -> None:
        started = time.monotonic()
        result = processor.process(df, batch_id)
        seconds = time.monotonic() - started
        row = {
            "batch": batch_id,
            "lines": result.lines,
            "seconds": round(seconds, 3),
            "spark_jobs": jobs.take(),
            "applied": sum(result.applied.values()),
            "quarantined": sum(result.quarantined.values()),
        }
        with lock:
            batches[batch_id] = row
        progress(f"  {source} batch {batch_id}: {result.lines} lines in {seconds:.2f}s")

    if source == "bronze":
        reader = (
            spark.readStream.format("text")
            .option("maxBytesPerTrigger", options["max_bytes"])
            .option("pathGlobFilter", GLOB)
            .load(options["bronze_dirs"])
        )
    else:
        reader = as_bronze_lines(
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", options["bootstrap"])
            .option("subscribePattern", options["pattern"])
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", "true")
            .option("maxOffsetsPerTrigger", options["max_records"])
            .load()
        )
    started = time.monotonic()
    query = (
        reader.writeStream.foreachBatch(each)
        .option("checkpointLocation", str(work / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    wall = time.monotonic() - started
    if query.exception() is not None:
        raise UsageError(f"the {source} run failed: {str(query.exception())[:500]}")
    for p in query.recentProgress:
        row = batches.get(int(p["batchId"]))
        if row is not None and p["numInputRows"]:
            d = p["durationMs"]
            row["loop_s"] = {k: round(d.get(k, 0) / 1000, 3) for k in LOOP}
            row["trigger_s"] = round(d.get("triggerExecution", 0) / 1000, 3)
    rows = [batches[k] for k in sorted(batches)]
    shutil.rmtree(work, ignore_errors=True)
    lines = sum(r["lines"] for r in rows)
    loops = [sum(r.get("loop_s", {}).values()) for r in rows]
    return {
        "source": source,
        "wall_s": round(wall, 1),
        "lines": lines,
        "lines_per_s": round(lines / wall, 1) if wall else None,
        "batches": rows,
        "batch_s": summary([r["seconds"] for r in rows]),
        "loop_s": summary(loops),
        "loop_s_by_step": {k: round(sum(r.get("loop_s", {}).get(k, 0) for r in rows), 2) for k in LOOP},
    }


#: bronze lines of the untimed batch that warms the JVM first (class loading, JIT, Delta's first
#: reads: a cold first run took twice as long as the same run warm)
WARMUP_LINES = 30_000


def _warm_up(spark: Any, scratch: Path, options: dict[str, Any], progress: Any) -> None:
    from lakehouse.pipeline.silver.batch import BatchProcessor
    from lakehouse.pipeline.silver.store import Layout

    progress(f"warm-up: {WARMUP_LINES} bronze lines through the batch, not counted")
    work = Path(tempfile.mkdtemp(prefix="warm-up-", dir=scratch))
    lines = spark.read.option("pathGlobFilter", GLOB).text(options["bronze_dirs"]).limit(WARMUP_LINES)
    BatchProcessor(spark, Layout(str(work / "silver")), options["rules"]).process(lines, 0)
    shutil.rmtree(work, ignore_errors=True)


def run(stack: Stack, out_dir: Path, repeat: int, *, progress: Any = print) -> dict[str, Any]:
    """A warm-up, then both sources, A B B A …, `repeat` times each; writes `source.json` and
    `source.png`."""
    from lakehouse.pipeline.silver.launch import JobSetup

    if stack.s.service_hostnames:
        raise UsageError("bench source needs the native launcher: it stops silver while it runs")
    setup = JobSetup.load()
    s, cfg = setup.settings, setup.cfg
    pattern = setup.topics_regex
    total_bytes = bronze_bytes(stack)
    records = kafka_records(s.kafka_bootstrap, pattern)
    options = {
        "rules": setup.rules(),
        "max_bytes": cfg.max_bytes_per_trigger,
        "max_records": per_trigger(records, total_bytes, cfg.max_bytes_per_trigger),
        "bronze_dirs": s.storage.spark(bronze_glob(s.topic_prefix)),
        "bootstrap": s.kafka_bootstrap,
        "pattern": pattern,
    }
    progress(
        f"bronze: {total_bytes / 2**20:.0f} MiB; Kafka: {records} records → "
        f"{options['max_records']} records per trigger against {cfg.max_bytes_per_trigger / 2**20:.0f} MiB"
    )
    order = [src for i in range(repeat) for src in (SOURCES if i % 2 == 0 else SOURCES[::-1])]
    silver = stack.service("silver")
    silver.stop()
    scratch = Path(tempfile.mkdtemp(prefix="lakehouse-bench-source-"))
    runs: list[dict[str, Any]] = []
    try:
        spark = setup.session("bench-source", {"spark.local.dir": str(scratch / "tmp")})
        try:
            _warm_up(spark, scratch, options, progress)
            for source in order:
                progress(f"{source}: replaying everything through the silver batch")
                runs.append(_one(spark, source, scratch, options, progress))
                r = runs[-1]
                progress(f"{source}: {r['lines']} lines in {r['wall_s']}s ({r['lines_per_s']} lines/s)")
        finally:
            spark.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        silver.start()
    doc = {
        "bronze_mib": round(total_bytes / 2**20, 1),
        "kafka_records": records,
        "max_bytes_per_trigger": cfg.max_bytes_per_trigger,
        "max_offsets_per_trigger": options["max_records"],
        "machine": machine(),
        "runs": runs,
    }
    write_json(out_dir / "source.json", doc)
    _plot(runs, out_dir / "source.png")
    return doc


def _plot(runs: list[dict[str, Any]], path: Path) -> None:
    from itertools import accumulate

    from lakehouse.benchmark.plots import _plt

    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"bronze": "tab:blue", "kafka": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    for i, r in enumerate(runs):
        b = r["batches"]
        spent = list(accumulate(x["seconds"] + sum(x.get("loop_s", {}).values()) for x in b))
        style = dict(color=colors[r["source"]], linestyle=styles[i // 2 % len(styles)])
        ax.plot(
            [0, *spent],
            [0, *accumulate(x["lines"] for x in b)],
            marker=".",
            **style,
            label=f"{r['source']} (run {i + 1}): {r['lines_per_s']:.0f} lines/s",
        )
        bx.plot(range(len(b)), [sum(x.get("loop_s", {}).values()) for x in b], marker=".", **style)
    ax.set_xlabel("seconds")
    ax.set_ylabel("bronze lines applied")
    ax.legend(fontsize=8)
    bx.set_xlabel("micro-batch")
    bx.set_ylabel("seconds in Spark's loop around the batch")
    bx.set_ylim(bottom=0)
    fig.suptitle("silver's stream: bronze files against the Kafka source, same events")
    save(fig, path)

"""Where a micro-batch spends its time: seconds per named phase, Spark jobs and code compilations
per batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession


class Phases:
    """Seconds per phase of one batch (thread-safe: tables are merged concurrently, so the phases
    of a batch can add up to more than its wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + elapsed


class _Counter:
    """A running count read from the driver, as increments: `take()` is what it grew by since the
    last `take()` (or since construction)."""

    def __init__(self) -> None:
        self._last = self._count()

    def _count(self) -> int:
        raise NotImplementedError

    def take(self) -> int:
        now = self._count()
        n, self._last = now - self._last, now
        return n


class JobCounter(_Counter):
    """Spark jobs started since the last `take()` (from the driver's status tracker)."""

    def __init__(self, spark: SparkSession) -> None:
        self._sc = spark.sparkContext._jsc.sc()
        super().__init__()

    def _count(self) -> int:
        # the scheduler numbers jobs 0, 1, 2, …; its counter is the next job's id
        return int(self._sc.dagScheduler().nextJobId())


class CompileCounter(_Counter):
    """Code compilations (Spark's whole-stage and expression codegen) since the last `take()`: a
    batch whose plans are the same as the last one's compiles nothing (docs/design.md)."""

    def __init__(self, spark: SparkSession) -> None:
        metrics = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics  # type: ignore[union-attr]
        self._histogram = metrics.METRIC_COMPILATION_TIME()
        super().__init__()

    def _count(self) -> int:
        return int(self._histogram.getCount())

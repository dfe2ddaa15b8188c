"""The silver Spark job (python -m lakehouse.pipeline.silver); ready once its query has triggered."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from lakehouse.config.render import render_file
from lakehouse.errors import ServiceError
from lakehouse.launcher.services.metrics import MetricsReadyService
from lakehouse.launcher.services.spark import SILVER_APP, spark_home
from lakehouse.pipeline.silver.expectations import RENDERED
from lakehouse.pipeline.silver.session import conf_values
from lakehouse.polling import wait_until

#: how long `wait_ready` asks whether a job that is not ready yet runs its stream
STREAMING_PROBE_S = 20.0


class SilverService(MetricsReadyService):
    name = "silver"
    port_fields: ClassVar[tuple[str, ...]] = ("silver_metrics_port",)
    ready_line = "lakehouse_silver_ready 1.0"
    streaming_line = "lakehouse_silver_streaming 1.0"

    def wait_ready(self) -> str:
        """Ready is a first trigger done. A stream whose first batch is a long backlog (a rebuild
        from bronze after `reset-silver`, a long outage) is still running it when the wait ends:
        that is not a failure, and `up` says so instead of raising. One probe may miss a busy
        job's answer, so it is asked for a while before the wait counts as failed."""
        try:
            return super().wait_ready()
        except ServiceError:
            if (
                wait_until(
                    lambda: self.metric_line(self.streaming_line),
                    timeout=STREAMING_PROBE_S,
                    interval=1.0,
                    still_running=lambda: self.pid() is not None,
                )
                and self.pid() is not None
            ):
                return "streaming, still applying its first batch (a backlog): nothing to fix"
            raise

    overlaps = True  # its first micro-batch takes a while; Trino and the rest start meanwhile

    def templates(self) -> dict[str, dict[str, object]]:
        return {
            "spark_streaming/spark-defaults.conf": conf_values(
                self.s.spark_driver_memory,
                self.data_dir / "tmp",
                self.s.minio_endpoint,
                executor_memory=self.s.spark_executor_memory,
                # a shuffle partition per core: local[2]'s two, or what the scale-out worker offers
                shuffle_partitions=self.s.spark_worker_cores if self.s.scale_out else 2,
            ),
            "spark_streaming/silver.json": {},
        }

    def prepare(self) -> None:
        (self.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
        for rel, values in self.templates().items():
            (self.data_dir / rel.rsplit("/", 1)[1]).write_text(render_file(self.s.root / rel, values))
        # the rules as checked by `up`'s preflight, under the one name the job reads
        (self.data_dir / RENDERED).write_text(self.s.expectations.read_text())

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lakehouse.pipeline.silver"]

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.s.scale_out:
            # The job is submitted to the scale-out master by spark-submit in client mode: pyspark
            # runs spark-submit with these arguments (plus the job's conf and jars) to start the
            # driver's JVM, so this Python process stays the service's process and its stop
            # signal ends the stream cleanly (a SIGTERM to a spark-submit launched from the shell
            # stops its JVM and leaves the Python driver running). Executors run on the worker and
            # read the jars from the driver and the checkpoint from the bucket.
            env.update(
                {
                    "LAKEHOUSE_SCALE_OUT": "true",  # the job reads its master from settings
                    "SPARK_HOME": str(spark_home()),
                    "PYSPARK_PYTHON": sys.executable,
                    "PYSPARK_SUBMIT_ARGS": f"--master {self.s.spark_cluster_url} --deploy-mode client "
                    f"--name {SILVER_APP} pyspark-shell",
                }
            )
            if not self.s.service_hostnames:
                env["SPARK_LOCAL_IP"] = self.s.host
        return env

    def fix_hint(self, log: str) -> str:
        if "CheckpointError" in log or "the streaming checkpoint" in log:
            return "see the checkpoint message above (only then: `lakehouse reset-silver` rebuilds silver)"
        if "(action fail) failed on" in log:
            return (
                "a `fail` expectation stopped the stream (the message above names the rule and a "
                "row): change the rule in the expectations file or correct the source row, then "
                "`lakehouse up`; nothing of the batch was written"
            )
        if "ERROR lakehouse.silver" in log and ".yml: " in log and "expectations" in log:
            return "fix the rule the message above names in the expectations file, then `lakehouse up`"
        if "a micro-batch failed" in log:
            return "a micro-batch raised an error (traceback above); the job re-runs it when restarted"
        if "lakehouse.silver batch " in log and self.pid() is not None:
            return (
                "nothing to fix: the job runs and is catching up (its first batches apply what arrived "
                "while it was down); `lakehouse status` shows it ready once it has"
            )
        if "no jars" in log:
            return "run `lakehouse install` to resolve the Delta/S3A jars"
        return "the Spark job needs MinIO and bronze; `lakehouse logs silver` shows the whole driver log"

    def details(self) -> dict[str, Any]:
        return {**super().details(), "master": self.s.silver_master}

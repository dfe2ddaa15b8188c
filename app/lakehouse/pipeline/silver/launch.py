"""What a Spark job of this stack reads before it starts: settings, secrets, silver's configs
(rendered by the launcher into its state dir) and the cached jars. Used by the silver job and by
the benchmark's floor job, so both run with the same Spark settings."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType

from pyspark.sql import SparkSession

from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings, load_settings
from lakehouse.config.versions import Versions, spark_jars
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.bronze.connector import SinkSettings
from lakehouse.pipeline.silver.batch import Rules
from lakehouse.pipeline.silver.config import SilverConfig
from lakehouse.pipeline.silver.expectations import RENDERED, Expectations
from lakehouse.pipeline.silver.session import build, jars_in, read_conf, s3_credentials


@dataclass(frozen=True)
class JobSetup:
    settings: Settings
    secrets: Secrets
    cfg: SilverConfig
    conf: dict[str, str]
    jars: list[str]
    #: the topics bronze is landed from (connect/bronze-sink.json), silver's live source
    topics_regex: str
    #: spark_streaming/expectations.yml as rendered beside silver.json
    expectations: Expectations

    @classmethod
    def load(cls) -> JobSetup:
        """Raises LakehouseError (a missing or invalid config, no jars) before any JVM starts."""
        s = load_settings()
        return cls(
            settings=s,
            secrets=Secrets.load_or_create(s.home),
            cfg=SilverConfig.load(s.state("silver") / "silver.json"),
            conf=read_conf(s.state("silver") / "spark-defaults.conf"),
            jars=jars_in(spark_jars(s.cache, Versions.load(s.root / "versions.env"))),
            topics_regex=SinkSettings.of(s).topics_regex,
            # read from the copy `up` made; messages name the file a user edits
            expectations=replace(
                Expectations.load(s.state("silver") / RENDERED, schema=s.source_schema), path=s.expectations
            ),
        )

    def rules(self) -> Rules:
        """The batch's rules as the job runs them: silver.json's knobs and the expectations."""
        return Rules.from_config(self.cfg, self.settings.topic_prefix, self.expectations)

    def session(
        self,
        app_name: str | None = None,
        overrides: dict[str, str] | None = None,
        master: str | None = None,
    ) -> SparkSession:
        """The job's session with the install's S3 credentials (`overrides` win over the job's conf);
        on LAKEHOUSE_SPARK_MASTER unless `master` says otherwise."""
        creds = s3_credentials(self.secrets.minio_root_user, self.secrets.minio_root_password)
        conf = {**self.conf, **(overrides or {}), **creds}
        return build(master or self.settings.spark_master, conf, self.jars, app_name)


def _leave(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def start(name: str, on_stop: Callable[[], None] | None = None) -> JobSetup | None:
    """Logging, setup and stop signal of a job's process; None (after saying why on stderr) when
    it cannot start. SIGTERM (the launcher's stop) then calls `on_stop`, for a job that stops
    itself between calls into Spark, or else unwinds the job so `finally` blocks run. (Unwinding
    from inside a py4j call leaves that call's answer unread on the gateway connection: the
    `spark.stop()` after it read the wrong answer and the job exited 1 on every `down`.)"""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # a line per foreachBatch callback otherwise
    try:
        setup = JobSetup.load()
    except LakehouseError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return None
    signal.signal(signal.SIGTERM, _leave if on_stop is None else lambda signum, frame: on_stop())
    return setup

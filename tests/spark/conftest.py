"""A local SparkSession with the cached Delta jars, once per session; a fresh silver root per test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.render import render_file
from lakehouse.config.settings import load_settings
from lakehouse.config.versions import Versions, spark_jars
from lakehouse.pipeline.silver.batch import BatchProcessor, Rules
from lakehouse.pipeline.silver.session import build, conf_values, jars_in, read_conf
from lakehouse.pipeline.silver.store import Layout

from .events import TXN_TOPIC


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    settings = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="lakehouse-spark-"))
    try:
        conf_text = render_file(
            settings.root / "spark_streaming" / "spark-defaults.conf",
            conf_values("1g", tmp, "unused"),
        )
        (tmp / "spark-defaults.conf").write_text(conf_text)
        conf = read_conf(tmp / "spark-defaults.conf")
        session = build(
            "local[2]", conf, jars_in(spark_jars(settings.cache, Versions.load())), "lakehouse-tests"
        )
        try:
            yield session
        finally:
            session.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def silver(spark: SparkSession, tmp_path: Path) -> BatchProcessor:
    return BatchProcessor(spark, Layout(str(tmp_path / "silver")), Rules(transaction_topic=TXN_TOPIC))

"""The silver job's spark-defaults.conf, rendered as `lakehouse up` renders it."""

from __future__ import annotations

from pathlib import Path

from lakehouse.config.paths import repo_root
from lakehouse.config.render import render_file
from lakehouse.pipeline.silver.session import conf_values, read_conf

VALUES = conf_values("1g", "/tmp/x", "http://h:1", shuffle_partitions=3)


def _conf(tmp_path: Path) -> dict[str, str]:
    out = tmp_path / "spark-defaults.conf"
    out.write_text(render_file(repo_root() / "spark_streaming" / "spark-defaults.conf", VALUES))
    return read_conf(out)


def test_file_listing_runs_in_as_many_tasks_as_a_shuffle(tmp_path: Path) -> None:
    """Spark's default listing parallelism (10,000 tasks) made each VACUUM stall the stream for
    about a minute per table on two cores (docs/benchmarks.md, fifth round)."""
    conf = _conf(tmp_path)
    assert conf["spark.sql.shuffle.partitions"] == "3"
    assert conf["spark.sql.sources.parallelPartitionDiscovery.parallelism"] == "3"

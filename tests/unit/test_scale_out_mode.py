"""Scale-out mode as the launcher builds it: which services, in which order, with which settings;
the mode kept from `up --scale-out` until `down` (no processes started here)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from lakehouse.config.render import load_connector
from lakehouse.config.settings import Settings
from lakehouse.errors import UsageError
from lakehouse.launcher.services.spark import SILVER_APP, spark_home
from lakehouse.launcher.stack import SCALE_OUT_MARK, Stack


def _names(stack: Stack) -> list[str]:
    return [svc.name for svc in stack.services]


def test_single_process_mode_has_no_cluster(tmp_path: Path) -> None:
    stack = Stack(Settings(home=tmp_path))
    assert not {"spark-master", "spark-worker", "trino-worker"} & set(_names(stack))
    assert "PYSPARK_SUBMIT_ARGS" not in stack.silver.env()
    assert stack.trino.env()["TRINO_INCLUDE_COORDINATOR"] == "true"
    assert stack.env()["spark"] == {"master": "local[2]", "ui": None, "metastore": "thrift://127.0.0.1:29183"}
    assert stack.s.topic_partitions == 1


def test_scale_out_starts_the_cluster_before_silver_and_the_worker_after_trino(tmp_path: Path) -> None:
    names = _names(Stack(Settings(home=tmp_path, scale_out=True)))
    assert names.index("spark-master") < names.index("spark-worker") < names.index("silver")
    assert names.index("trino") < names.index("trino-worker") < names.index("catalog-sync")


def test_silver_is_submitted_to_the_master_in_client_mode(tmp_path: Path) -> None:
    stack = Stack(Settings(home=tmp_path, scale_out=True))
    env = stack.silver.env()
    args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    assert args[args.index("--master") + 1] == "spark://127.0.0.1:27077" == stack.s.silver_master
    assert args[args.index("--deploy-mode") + 1] == "client"
    assert args[args.index("--name") + 1] == SILVER_APP
    assert args[-1] == "pyspark-shell"
    assert env["LAKEHOUSE_SCALE_OUT"] == "true"  # the job's own settings name the same master
    assert Path(env["SPARK_HOME"]) == spark_home() and (spark_home() / "bin" / "spark-class").exists()
    # the service's process stays the Python job, which handles the stop signal itself
    assert stack.silver.argv()[1:] == ["-m", "lakehouse.pipeline.silver"]
    conf = stack.silver.templates()["spark_streaming/spark-defaults.conf"]
    assert conf["executor_memory"] == "1g" and conf["shuffle_partitions"] == stack.s.spark_worker_cores


def test_the_worker_registers_with_the_master_and_trino_leaves_work_to_its_worker(tmp_path: Path) -> None:
    stack = Stack(Settings(home=tmp_path, scale_out=True, spark_worker_cores=4))
    worker = stack.spark_worker.argv()
    assert worker[-1] == stack.s.spark_cluster_url
    assert worker[worker.index("--cores") + 1] == "4"
    assert stack.trino.env()["TRINO_INCLUDE_COORDINATOR"] == "false"
    w = stack.trino_worker.env()
    assert (w["TRINO_COORDINATOR_ADDRESS"], w["TRINO_COORDINATOR_HTTP_PORT"]) == ("127.0.0.1", "28080")
    assert w["TRINO_HTTP_PORT"] == "28082"
    assert stack.trino_worker.argv()[-2:] == ["--config", str(stack.s.root / "trino/etc/worker.properties")]


def test_topics_get_partitions_and_the_sink_a_task_per_partition(tmp_path: Path) -> None:
    for settings, want in (
        (Settings(home=tmp_path, scale_out=True), 3),
        (Settings(home=tmp_path, scale_out=True, kafka_partitions=6), 6),
        (Settings(home=tmp_path, kafka_partitions=2), 2),
    ):
        stack = Stack(settings)
        (source, values), (sink, sink_values) = stack.connectors()
        _, config = load_connector(stack.s.root / source, values)
        assert config["topic.creation.default.partitions"] == str(want)
        _, config = load_connector(stack.s.root / sink, sink_values)
        assert config["tasks.max"] == str(want)


def test_the_mode_is_kept_until_down(tmp_path: Path) -> None:
    Stack(Settings(home=tmp_path), scale_out=True)  # asking for it marks nothing: `up` does
    assert not (tmp_path / SCALE_OUT_MARK).exists()
    (tmp_path / SCALE_OUT_MARK).write_text("up --scale-out\n")
    later = Stack(Settings(home=tmp_path))  # `status`, `logs`, … without the flag
    assert later.s.scale_out and "spark-worker" in _names(later)
    later.down()
    assert not (tmp_path / SCALE_OUT_MARK).exists()
    assert not Stack(Settings(home=tmp_path)).s.scale_out


def test_scale_out_on_a_running_single_process_stack_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(Settings(home=tmp_path), scale_out=True)
    monkeypatch.setattr(stack.silver, "pid", lambda: 4242)  # silver runs, on local[2]
    monkeypatch.setattr(stack, "preflight", lambda: None)
    monkeypatch.setattr("lakehouse.launcher.artifacts.install", lambda *a, **k: None)
    with pytest.raises(UsageError, match="single-process mode: `lakehouse down`"):
        stack.up()


def test_env_json_names_the_master_and_its_ui(tmp_path: Path) -> None:
    spark = Stack(Settings(home=tmp_path, scale_out=True)).env()["spark"]
    assert json.loads(json.dumps(spark)) == {
        "master": "spark://127.0.0.1:27077",
        "ui": "http://127.0.0.1:28180",
        "metastore": "thrift://127.0.0.1:29183",
    }

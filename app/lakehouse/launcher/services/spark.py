"""The scale-out Spark cluster: a standalone master and one worker, started from the Spark that
pyspark ships (no second Spark download). Silver is submitted to the master with spark-submit
(services/silver.py); the worker runs its executors."""

from __future__ import annotations

import importlib.util
import sys
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import httpx

from lakehouse.errors import ServiceError
from lakehouse.launcher.services.base import Service

#: the name silver's application has on the master (spark_streaming/spark-defaults.conf)
SILVER_APP = "lakehouse-silver"


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package (bin/, jars/)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ServiceError("pyspark is not installed in this environment — run `make install`")
    return Path(spec.origin).parent


def spark_bin(tool: str) -> str:
    return str(spark_home() / "bin" / tool)


def master_state(ui: str, timeout: float = 3) -> dict[str, Any] | None:
    """The master's own view (`/json/`: status, workers, active applications), None if it does not answer."""
    try:
        r = httpx.get(f"{ui}/json/", timeout=timeout)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


class _SparkDaemon(Service):
    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            {
                "SPARK_HOME": str(spark_home()),
                # the daemons only keep books; executors get their memory from the worker's offer
                "SPARK_DAEMON_MEMORY": "256m",
                "SPARK_LOCAL_IP": self.s.host if not self.s.service_hostnames else "0.0.0.0",
                "SPARK_NO_DAEMONIZE": "1",
                # executors run the job's Python (the same environment as the driver's)
                "PYSPARK_PYTHON": sys.executable,
            }
        )
        return env

    def cmd_marker(self) -> str:
        return self.main_class

    main_class: ClassVar[str]

    def argv(self) -> list[str]:
        """spark-class running the daemon on this host, with its own options."""
        return [spark_bin("spark-class"), self.main_class, "--host", self.host, *self.options()]

    @abstractmethod
    def options(self) -> list[str]: ...


class SparkMasterService(_SparkDaemon):
    name = "spark-master"
    port_fields: ClassVar[tuple[str, ...]] = ("spark_master_port", "spark_master_ui_port")
    main_class = "org.apache.spark.deploy.master.Master"

    def options(self) -> list[str]:
        return ["--port", str(self.s.spark_master_port), "--webui-port", str(self.s.spark_master_ui_port)]

    def ready(self) -> bool:
        state = master_state(self.s.spark_master_ui)
        return state is not None and state.get("status") == "ALIVE"

    def fix_hint(self, log: str) -> str:
        return "the master is Spark's own (pyspark's bin/spark-class on Java 17); see its log above"

    def details(self) -> dict[str, Any]:
        return {"master": self.s.spark_cluster_url, "ui": self.s.spark_master_ui}


class SparkWorkerService(_SparkDaemon):
    name = "spark-worker"
    port_fields: ClassVar[tuple[str, ...]] = ("spark_worker_ui_port",)
    main_class = "org.apache.spark.deploy.worker.Worker"

    def prepare(self) -> None:
        (self.data_dir / "work").mkdir(parents=True, exist_ok=True)

    def options(self) -> list[str]:
        return [
            "--cores",
            str(self.s.spark_worker_cores),
            "--memory",
            self.s.spark_worker_memory,
            "--webui-port",
            str(self.s.spark_worker_ui_port),
            "--work-dir",
            str(self.data_dir / "work"),
            self.s.spark_cluster_url,
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SPARK_LOCAL_DIRS"] = str(self.data_dir / "tmp")  # executors' shuffle and spill files
        return env

    def ui(self) -> str:
        return f"http://{self.host}:{self.s.spark_worker_ui_port}"

    def registered(self) -> dict[str, Any] | None:
        """This worker as the master lists it, if registered and ALIVE."""
        state = master_state(self.s.spark_master_ui)
        for worker in (state or {}).get("workers", []):
            if worker.get("state") == "ALIVE" and str(worker.get("webuiaddress", "")).endswith(
                f":{self.s.spark_worker_ui_port}"
            ):
                return dict(worker)
        return None

    def ready(self) -> bool:
        return self.registered() is not None

    def fix_hint(self, log: str) -> str:
        return "the worker registers with spark-master: check that it is ready (`lakehouse status`)"

    def details(self) -> dict[str, Any]:
        worker = self.registered() or {}
        return {"ui": self.ui(), "cores": worker.get("cores"), "memory_mb": worker.get("memory")}

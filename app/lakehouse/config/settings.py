"""Typed settings, read once from LAKEHOUSE_* environment variables, validated before anything starts.

Secrets are not settings: they are generated per install (see secrets.py).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.config import layout
from lakehouse.config.paths import repo_root
from lakehouse.errors import ConfigError

ENV_PREFIX = "LAKEHOUSE_"
# Environment variables with the prefix that are not settings but are still ours.
#: LAKEHOUSE_* variables that are not settings: where the checkout is (paths.repo_root), the
#: stack the integration tier runs against (tests/integration/target.py), and the silver job's
#: fault-injection hook (pipeline/silver/faults.py, read there)
_NOT_SETTINGS = {"LAKEHOUSE_ROOT", "LAKEHOUSE_TEST_ENV", "LAKEHOUSE_SILVER_CRASH_AT"}


def _default_home() -> Path:
    return repo_root() / ".lakehouse"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lakehouse"


PORT_FIELDS = (
    "postgres_port",
    "minio_port",
    "minio_console_port",
    "kafka_port",
    "kafka_controller_port",
    "connect_port",
    "silver_metrics_port",
    "trino_http_port",
    "trino_https_port",
    "catalog_sync_metrics_port",
    "web_port",
    "monitor_metrics_port",
    "scheduler_metrics_port",
    "kafka_jmx_port",
    "connect_jmx_port",
    "prometheus_port",
    "alertmanager_port",
    "superset_port",
    "grafana_port",
    "spark_master_port",
    "spark_master_ui_port",
    "spark_worker_ui_port",
    "trino_worker_http_port",
    "metastore_port",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    home: Path = Field(default_factory=_default_home, description="runtime state: data, logs, pids")
    cache: Path = Field(default_factory=_default_cache, description="downloaded/built artifacts")

    host: str = "127.0.0.1"
    service_hostnames: bool = Field(
        False,
        description="each service listens on, and is reached at, its own name (compose's network)",
    )
    postgres_port: int = Field(25432, ge=1, le=65535)
    minio_port: int = Field(29000, ge=1, le=65535)
    minio_console_port: int = Field(29001, ge=1, le=65535)
    kafka_port: int = Field(29092, ge=1, le=65535)
    kafka_controller_port: int = Field(29093, ge=1, le=65535)
    connect_port: int = Field(28083, ge=1, le=65535)
    silver_metrics_port: int = Field(29102, ge=1, le=65535)
    trino_http_port: int = Field(28080, ge=1, le=65535)
    trino_https_port: int = Field(28443, ge=1, le=65535)
    catalog_sync_metrics_port: int = Field(29103, ge=1, le=65535)
    web_port: int = Field(28800, ge=1, le=65535)
    monitor_metrics_port: int = Field(29104, ge=1, le=65535)
    scheduler_metrics_port: int = Field(29107, ge=1, le=65535)
    kafka_jmx_port: int = Field(29105, ge=1, le=65535)
    connect_jmx_port: int = Field(29106, ge=1, le=65535)
    prometheus_port: int = Field(29090, ge=1, le=65535)
    alertmanager_port: int = Field(29095, ge=1, le=65535)
    superset_port: int = Field(28088, ge=1, le=65535)
    grafana_port: int = Field(28300, ge=1, le=65535)
    spark_master_port: int = Field(27077, ge=1, le=65535)
    spark_master_ui_port: int = Field(28180, ge=1, le=65535)
    spark_worker_ui_port: int = Field(28181, ge=1, le=65535)
    trino_worker_http_port: int = Field(28082, ge=1, le=65535)
    metastore_port: int = Field(29183, ge=1, le=65535)

    source_db: str = Field("movielens", pattern=r"^[a-z_][a-z0-9_]*$")
    source_schema: str = Field("movielens", pattern=r"^[a-z_][a-z0-9_]*$")
    app_role: str = Field("lakehouse_app", pattern=r"^[a-z_][a-z0-9_]*$")
    cdc_role: str = Field("lakehouse_cdc", pattern=r"^[a-z_][a-z0-9_]*$")
    #: the Hive metastore's role and database on the stack's Postgres (it owns nothing else)
    metastore_role: str = Field("lakehouse_metastore", pattern=r"^[a-z_][a-z0-9_]*$")
    metastore_db: str = Field("metastore", pattern=r"^[a-z_][a-z0-9_]*$")
    topic_prefix: str = Field("cdc", pattern=r"^[a-z][a-z0-9_-]*$")
    bucket: str = Field("lakehouse", pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")

    ready_timeout_s: float = Field(180.0, gt=0)
    kafka_heap: str = Field("512m", pattern=r"^\d+[mg]$")
    connect_heap: str = Field("768m", pattern=r"^\d+[mg]$")
    spark_master: str = Field("local[2]", pattern=r"^(local(\[(\d+|\*)\])?|(spark|k8s|yarn)\S*)$")
    spark_driver_memory: str = Field("2g", pattern=r"^\d+[mg]$")
    scale_out: bool = Field(
        False,
        description="cluster mode (`lakehouse up --scale-out` keeps it until `down`): silver on a Spark "
        "standalone master and worker, a Trino worker beside the coordinator, topics with several "
        "partitions read by as many bronze sink tasks",
    )
    spark_worker_cores: int = Field(2, ge=1, le=1024, description="cores the scale-out Spark worker offers")
    spark_worker_memory: str = Field("2g", pattern=r"^\d+[mg]$")
    spark_executor_memory: str = Field("1g", pattern=r"^\d+[mg]$")
    kafka_partitions: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="partitions of each topic Debezium creates (default 1, 3 with scale-out); topics "
        "that exist keep theirs",
    )
    catalog_sync_interval_s: float = Field(
        2.0, gt=0, description="how often new silver tables are looked for (seconds)"
    )
    monitor_interval_s: float = Field(
        10.0, ge=1, description="how often the monitor reads slots, connectors, lag and restarts (seconds)"
    )
    expectations_file: Path | None = Field(
        None,
        description="data-quality rules on silver rows (default: spark_streaming/expectations.yml in "
        "the checkout)",
    )
    jobs_dir: Path | None = Field(
        None, description="the job files the scheduler runs (default: jobs/ in the checkout)"
    )
    monitor_trino_interval_s: float = Field(
        30.0,
        ge=1,
        description="how often the monitor asks Trino for silver's freshness, rows and quarantine "
        "(seconds): each ask costs Trino about a CPU second (measured idle on 2 cores: 20 % of a core "
        "at 10 s, 11 % at 30 s)",
    )

    @field_validator("expectations_file", "jobs_dir", "kafka_partitions", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        seen: dict[int, str] = {}
        for name in PORT_FIELDS:
            port = getattr(self, name)
            if port in seen:
                raise ValueError(
                    f"{env_name(name)} and {env_name(seen[port])} are both {port}; "
                    "every service needs its own port"
                )
            seen[port] = name
        return self

    def addr(self, service: str) -> str:
        """Where `service` listens and is reached: LAKEHOUSE_HOST natively (one machine), its own
        service name on a compose network (LAKEHOUSE_SERVICE_HOSTNAMES=true)."""
        return service if self.service_hostnames else self.host

    @cached_property
    def root(self) -> Path:
        return repo_root()

    def state(self, service: str) -> Path:
        return self.home / service

    @property
    def expectations(self) -> Path:
        """The expectations file silver is started with (`up` copies it beside silver.json)."""
        return self.expectations_file or self.root / "spark_streaming" / "expectations.yml"

    @property
    def jobs_folder(self) -> Path:
        """The job files the scheduler reads (jobs/*.yml)."""
        return self.jobs_dir or self.root / "jobs"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.addr('kafka')}:{self.kafka_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.addr('connect')}:{self.connect_port}"

    @property
    def minio_endpoint(self) -> str:
        return f"http://{self.addr('minio')}:{self.minio_port}"

    @property
    def connect_secrets_file(self) -> Path:
        """Secrets for connector configs, referenced as ${file:<path>:<key>} (FileConfigProvider)
        so passwords never sit in Connect's config topic or REST output."""
        return self.state("connect") / "secrets.properties"

    @property
    def storage(self) -> layout.Storage:
        """The object store's layout in this stack's bucket (layout.py)."""
        return layout.Storage(self.bucket)

    @property
    def bronze_prefix(self) -> str:
        """The key prefix bronze objects are stored under (the sink connector's `file.name.prefix`)."""
        return layout.BRONZE

    @property
    def bronze_uri(self) -> str:
        return self.storage.trino(layout.BRONZE)

    @property
    def silver_uri(self) -> str:
        return self.storage.trino(layout.SILVER)

    @property
    def web_url(self) -> str:
        return f"http://{self.addr('web')}:{self.web_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.addr('prometheus')}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.addr('alertmanager')}:{self.alertmanager_port}"

    @property
    def superset_url(self) -> str:
        return f"http://{self.addr('superset')}:{self.superset_port}"

    @property
    def grafana_url(self) -> str:
        return f"http://{self.addr('grafana')}:{self.grafana_port}"

    @property
    def metastore_uri(self) -> str:
        """The Hive metastore's Thrift address, for Trino's catalog and Spark's sessions."""
        return f"thrift://{self.addr('metastore')}:{self.metastore_port}"

    @property
    def trino_url(self) -> str:
        return f"https://{self.addr('trino')}:{self.trino_https_port}"

    @property
    def topic_partitions(self) -> int:
        """Partitions of each topic Debezium creates, and the bronze sink's tasks."""
        return self.kafka_partitions or (3 if self.scale_out else 1)

    @property
    def spark_cluster_url(self) -> str:
        """The scale-out Spark master silver is submitted to."""
        return f"spark://{self.addr('spark-master')}:{self.spark_master_port}"

    @property
    def spark_master_ui(self) -> str:
        return f"http://{self.addr('spark-master')}:{self.spark_master_ui_port}"

    @property
    def silver_master(self) -> str:
        """The master silver runs on: the scale-out cluster's, else LAKEHOUSE_SPARK_MASTER."""
        return self.spark_cluster_url if self.scale_out else self.spark_master


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings() -> Settings:
    """Read settings, failing fast with the variable's name on anything unknown or invalid."""
    known = {env_name(f) for f in Settings.model_fields} | _NOT_SETTINGS
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise ConfigError(f"unknown setting {', '.join(unknown)} (see .env.example for the list)")
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = env_name(loc) if loc else "settings"
        raise ConfigError(f"{where}: {first['msg']}") from None

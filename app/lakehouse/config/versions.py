"""The one pinned versions file (versions.env), read by every launcher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lakehouse.config.paths import repo_root
from lakehouse.errors import ConfigError

REQUIRED = (
    "POSTGRES_MAJOR",
    "POSTGRES_IMAGE",
    "KAFKA_VERSION",
    "SCALA_BINARY_VERSION",
    "DEBEZIUM_VERSION",
    "MINIO_MODULE",
    "MINIO_VERSION",
    "SPARK_BINARY_VERSION",
    "DELTA_VERSION",
    "HADOOP_VERSION",
    "AWS_SDK_VERSION",
    "POSTGRES_JDBC_VERSION",
    "TRINO_VERSION",
    "HIVE_VERSION",
    "SUPERSET_VERSION",
    "PROMETHEUS_VERSION",
    "ALERTMANAGER_VERSION",
    "JMX_EXPORTER_VERSION",
    "PYTHON_IMAGE",
    "GO_IMAGE",
    "GRAFANA_VERSION",
    "COMPOSE_VERSION",
)


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (comments and blanks allowed) — the format compose and make read."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE, got {raw!r}")
        if key in values:
            raise ConfigError(f"{path}:{lineno}: {key} is set twice")
        values[key] = value.strip()
    return values


@dataclass(frozen=True)
class Versions:
    postgres_major: str
    postgres_image_ref: str
    kafka: str
    scala_binary: str
    debezium: str
    minio_module: str
    minio: str
    spark_binary: str
    delta: str
    hadoop: str
    aws_sdk: str
    postgres_jdbc: str
    trino: str
    hive: str
    superset: str
    prometheus: str
    alertmanager: str
    jmx_exporter: str
    python_image_ref: str
    go_image_ref: str
    grafana: str
    compose: str

    @classmethod
    def load(cls, path: Path | None = None) -> Versions:
        path = path or repo_root() / "versions.env"
        if not path.is_file():
            raise ConfigError(f"versions file not found: {path}")
        values = parse_env_file(path)
        missing = [k for k in REQUIRED if not values.get(k)]
        if missing:
            raise ConfigError(f"{path}: missing {', '.join(missing)}")
        unknown = sorted(set(values) - set(REQUIRED))
        if unknown:
            raise ConfigError(f"{path}: unknown key {', '.join(unknown)}")
        for key, value in values.items():
            if value.lower() in {"latest", "master", "main"}:
                raise ConfigError(f"{path}: {key}={value} is not a pinned version")
        return cls(
            postgres_major=values["POSTGRES_MAJOR"],
            postgres_image_ref=values["POSTGRES_IMAGE"],
            kafka=values["KAFKA_VERSION"],
            scala_binary=values["SCALA_BINARY_VERSION"],
            debezium=values["DEBEZIUM_VERSION"],
            minio_module=values["MINIO_MODULE"],
            minio=values["MINIO_VERSION"],
            spark_binary=values["SPARK_BINARY_VERSION"],
            delta=values["DELTA_VERSION"],
            hadoop=values["HADOOP_VERSION"],
            aws_sdk=values["AWS_SDK_VERSION"],
            postgres_jdbc=values["POSTGRES_JDBC_VERSION"],
            trino=values["TRINO_VERSION"],
            hive=values["HIVE_VERSION"],
            superset=values["SUPERSET_VERSION"],
            prometheus=values["PROMETHEUS_VERSION"],
            alertmanager=values["ALERTMANAGER_VERSION"],
            jmx_exporter=values["JMX_EXPORTER_VERSION"],
            python_image_ref=values["PYTHON_IMAGE"],
            go_image_ref=values["GO_IMAGE"],
            grafana=values["GRAFANA_VERSION"],
            compose=values["COMPOSE_VERSION"],
        )


def spark_jars(cache: Path, v: Versions) -> Path:
    """The jars Spark sessions of the stack load (Delta, hadoop-aws), as `lakehouse install` left them."""
    return cache / f"spark-jars-delta-{v.delta}-hadoop-{v.hadoop}"


def hive_client_jars(cache: Path, v: Versions) -> Path:
    """The Hive metastore client Spark sessions of the stack talk to the metastore with
    (spark.sql.hive.metastore.jars.path), as `lakehouse install` left them."""
    return cache / f"hive-client-{v.hive}-hadoop-{v.hadoop}"

"""SparkSession for the silver job, `lakehouse verify` and tests: pyspark + the cached Delta/S3A jars."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.config.layout import on_object_store
from lakehouse.errors import ConfigError


def read_conf(path: Path) -> dict[str, str]:
    """Parse spark-defaults.conf (`key value` per line, `#` comments)."""
    conf: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if not value.strip():
            raise ConfigError(f"{path}:{lineno}: expected `key value`, got {raw!r}")
        conf[key] = value.strip()
    return conf


def conf_values(
    driver_memory: str,
    local_dir: object,
    s3_endpoint: str,
    executor_memory: str = "1g",
    shuffle_partitions: int = 2,
) -> dict[str, object]:
    """What spark_streaming/spark-defaults.conf's placeholders are filled with (by default two
    cores' worth of partitions: see the file)."""
    return {
        "driver_memory": driver_memory,
        "executor_memory": executor_memory,
        "shuffle_partitions": shuffle_partitions,
        "local_dir": local_dir,
        "s3_endpoint": s3_endpoint,
    }


def jars_in(directory: Path) -> list[str]:
    jars = sorted(str(p) for p in directory.glob("*.jar"))
    if not jars:
        raise ConfigError(
            f"no jars in {directory} — run `lakehouse install` (resolves spark_streaming/pom.xml)"
        )
    return jars


def s3_credentials(access_key: str, secret_key: str) -> dict[str, str]:
    """S3A credentials as session settings (given at run time from the per-install secrets, never
    written to a config file). Session settings rather than environment variables, because the JVM
    behind pyspark is started once per Python process and keeps the environment it started with."""
    provider = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return {
        "spark.hadoop.fs.s3a.aws.credentials.provider": provider,
        "spark.hadoop.fs.s3a.access.key": access_key,
        "spark.hadoop.fs.s3a.secret.key": secret_key,
    }


def catalog_conf(
    metastore_uri: str, hive_version: str, client_jars: list[str], warehouse: str
) -> dict[str, str]:
    """Session settings for the stack's catalog: the Hive metastore Trino uses too, reached with
    the Hive client of the server's version (its jars from the install, in a class loader of
    their own). Names resolve through it (`spark.table("silver_base.ratings")`, Spark SQL), and
    Trino's table locations (scheme s3) open with S3A like Spark's own. `warehouse`: where
    a schema Spark makes gets its folder, the metastore's own (layout.py)."""
    return {
        "spark.sql.warehouse.dir": warehouse,
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.hive.metastore.uris": metastore_uri,
        "spark.sql.hive.metastore.version": hive_version,
        "spark.sql.hive.metastore.jars": "path",
        "spark.sql.hive.metastore.jars.path": ",".join(client_jars),
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    }


#: spark-hadoop-cloud's manager: a checkpoint file is one abortable S3 upload, not a file written
#: aside and renamed (S3A renames by copy and delete, two more requests per file)
ABORTABLE_CHECKPOINTS = "org.apache.spark.internal.io.cloud.AbortableStreamBasedCheckpointFileManager"
CHECKPOINT_MANAGER = "spark.sql.streaming.checkpointFileManagerClass"


def use_checkpoint_manager_for(spark: SparkSession, checkpoint: str) -> None:
    """The streaming checkpoint's file manager for where it lives: the abortable one on the object
    store, Spark's default elsewhere (it needs a file system that can abort a stream; a local one
    cannot)."""
    if on_object_store(checkpoint):
        spark.conf.set(CHECKPOINT_MANAGER, ABORTABLE_CHECKPOINTS)
    else:
        spark.conf.unset(CHECKPOINT_MANAGER)


def build(master: str, conf: dict[str, str], jars: list[str], app_name: str | None = None) -> SparkSession:
    """A new session with exactly this configuration (an active one is stopped: getOrCreate would
    silently keep its old S3 endpoint and credentials)."""
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: bind the driver to loopback
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    b = SparkSession.builder.master(master).config("spark.jars", ",".join(jars))
    for key, value in conf.items():
        b = b.config(key, value)
    if app_name:
        b = b.appName(app_name)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark

"""Where everything lives in the object store: one definition of every path, for Spark and Trino.

A *key* names a folder inside the stack's bucket (no scheme, no bucket); `Storage` turns it into
the URI an engine reads — `s3a://<bucket>/<key>` for Spark (Hadoop's S3A file system),
`s3://<bucket>/<key>` for Trino and the S3 API — and back.

    bronze/<topic>/partition=<p>/…jsonl.gz    raw Debezium events, one folder per topic (the sink)
    silver/<schema>/<table>                   silver's Delta tables (silver/store.py: Layout)
    silver/_log/<schema>/<table>              each table's change log (merge-on-read)
    silver/_quarantine, _expectations, _state  silver's own tables and state
    _checkpoints/<job>                        streaming checkpoints
    jobs/<schema>/<table>                     tables the batch jobs write (analytics, ml, ops)
    _metastore/warehouse/<schema>.db          the folder the Hive metastore gives a schema (empty:
                                              every table is registered at its own location)
"""

from __future__ import annotations

from dataclasses import dataclass

BRONZE = "bronze"
SILVER = "silver"
#: the change logs' folder under SILVER
LOG_FOLDER = "_log"
CHECKPOINTS = "_checkpoints"
JOBS = "jobs"
#: the Hive metastore's warehouse: where a schema made without a location gets its folder
METASTORE_WAREHOUSE = "_metastore/warehouse"

SPARK_SCHEME = "s3a"
TRINO_SCHEME = "s3"


def bronze_topic(topic: str) -> str:
    """The key prefix of one topic's bronze objects (the sink's `file.name.prefix` + topic)."""
    return f"{BRONZE}/{topic}/"


def bronze_glob(topic_prefix: str) -> str:
    """Every source topic's bronze partitions, as a Hadoop glob (silver's file source)."""
    return f"{BRONZE}/{topic_prefix}.*/partition=*"


def silver_table(source: str) -> str:
    """A source table `schema.table`'s silver folder."""
    schema, _, name = source.partition(".")
    return f"{SILVER}/{schema}/{name}"


def silver_log_table(source: str) -> str:
    """A source table `schema.table`'s change log folder (merge-on-read: silver/live.py)."""
    return f"{SILVER}/{LOG_FOLDER}/{silver_table(source).removeprefix(SILVER + '/')}"


def checkpoint(job: str) -> str:
    return f"{CHECKPOINTS}/{job}"


def job_table(schema: str, name: str) -> str:
    return f"{JOBS}/{schema}/{name}"


def on_object_store(path: str) -> bool:
    """Whether a Spark path is in the object store (else a local one, as in tests)."""
    return path.startswith(f"{SPARK_SCHEME}://")


def as_trino(path: str) -> str:
    """A Spark path as Trino names it (a local one unchanged)."""
    return f"{TRINO_SCHEME}://{path.removeprefix(f'{SPARK_SCHEME}://')}" if on_object_store(path) else path


@dataclass(frozen=True)
class Storage:
    bucket: str

    def spark(self, key: str = "") -> str:
        return f"{SPARK_SCHEME}://{self.bucket}/{key}".rstrip("/")

    def trino(self, key: str = "") -> str:
        return f"{TRINO_SCHEME}://{self.bucket}/{key}".rstrip("/")

    def key(self, uri: str) -> str:
        """The key of a URI in this bucket, whichever scheme it has."""
        for scheme in (SPARK_SCHEME, TRINO_SCHEME):
            head = f"{scheme}://{self.bucket}/"
            if uri.startswith(head):
                return uri[len(head) :]
        raise ValueError(f"{uri} is not in the bucket {self.bucket}")

"""The stack in scale-out mode (`lakehouse up --scale-out`), once per session, on its own state
dir and ports, torn down in finally. It starts the data path only — Postgres, MinIO, Kafka,
Connect with both connectors, the Spark master and worker, silver, the Hive metastore, Trino's
coordinator and worker, the catalog sync — since dashboards and alerts do not change with the
mode. `make test` runs this tier in a pytest session of its own, after the others, so the two
stacks never share the machine's two cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakehouse.launcher.scratch import scratch_stack
from lakehouse.launcher.stack import Stack

#: test ports: 2000 above the defaults (the integration stack's are 1000 above)
PORT_OFFSET = 2000

DATA_PATH = (
    "postgres", "minio", "kafka", "connect", "spark-master", "spark-worker", "silver",
    "metastore", "trino", "trino-worker", "catalog-sync",
)  # fmt: skip


@pytest.fixture(scope="session")
def cluster() -> Iterator[Stack]:
    with scratch_stack(PORT_OFFSET, prefix="lakehouse-scale-out-", scale_out=True) as stack:
        stack.up(only=DATA_PATH)
        yield stack

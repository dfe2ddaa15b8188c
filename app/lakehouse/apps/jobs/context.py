"""What a job's entry point is given: the stack's settings and endpoints, clients made from
them, its run and its parameters.

Data-plane endpoints come from the settings and the secrets (as for every other part), never
from the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse import clients
from lakehouse.clients.trino_client import Trino

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.config.endpoints import Endpoints
    from lakehouse.config.settings import Settings


@dataclass
class JobContext:
    s: Settings
    endpoints: Endpoints
    job: str
    run_id: str
    params: dict[str, Any] = field(default_factory=dict)

    def trino(self) -> Trino:
        """Trino as the admin user (jobs write tables; the analyst only reads)."""
        return clients.trino(self.endpoints, admin=True)

    @contextmanager
    def spark(self) -> Iterator[SparkSession]:
        """A local Spark session with Delta, the stack's object store and its catalog (tables by
        name, as in Trino), stopped afterwards."""
        from lakehouse.pipeline.silver.commands import spark_for

        with spark_for(self.s, self.endpoints, f"lakehouse-job-{self.job}", catalog=True) as session:
            yield session

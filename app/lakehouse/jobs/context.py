"""What a job's entry point is given: the stack's settings and clients, its run and its parameters.

Data-plane endpoints come from the settings (as for every other part), never from the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..query.client import Trino
from ..query.connect import admin_client

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ..stack import Stack


@dataclass
class JobContext:
    stack: Stack
    job: str
    run_id: str
    params: dict[str, Any] = field(default_factory=dict)

    def trino(self) -> Trino:
        """Trino as the admin user (jobs write tables; the analyst only reads)."""
        return admin_client(self.stack.s, self.stack.ctx.secrets)

    @contextmanager
    def spark(self) -> Iterator[SparkSession]:
        """A local Spark session with Delta and the stack's object store, stopped afterwards."""
        from ..silver.ops import spark_for

        with spark_for(self.stack, f"lakehouse-job-{self.job}") as session:
            yield session

"""One real native stack per test session, on its own state dir and ports, torn down in finally;
the MovieLens sample loaded into it once, by the tests that ask for it (any order, any subset)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lakehouse.config.paths import movielens_sample, repo_root
from lakehouse.demo.movielens import Loaded, load
from lakehouse.errors import LakehouseError
from lakehouse.launcher.artifacts import install
from lakehouse.launcher.scratch import scratch_stack
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.commands import spark_for

from . import target
from .helpers import BULK_S, analyst, lakehouse, source, wait_rows
from .session_setup import create_preexisting, probe_rules, session_jobs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Test ports sit 1000 above the defaults so a developer's own `make up` stack keeps running.
PORT_OFFSET = 1000

#: rows tests write on their own use movie ids from here up; below it is the sample
OWN_IDS_FROM = 9_000_000


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The session's stack: its own (below), or the one `LAKEHOUSE_TEST_ENV` names (target.py)."""
    named = target.named()
    if named is not None:
        try:
            up = target.existing(named)
        except LakehouseError as exc:
            pytest.exit(str(exc), returncode=2)
        yield up  # not ours: left running
        return
    rules = Path(tempfile.mkdtemp(prefix="lakehouse-test-rules-")) / "expectations.yml"
    rules.write_text(probe_rules(repo_root()))
    os.environ["LAKEHOUSE_EXPECTATIONS_FILE"] = str(rules)
    session_jobs(repo_root(), rules.parent / "jobs")
    os.environ["LAKEHOUSE_JOBS_DIR"] = str(rules.parent / "jobs")
    try:
        with scratch_stack(PORT_OFFSET, prefix="lakehouse-test-") as stack:
            stack.preflight()
            install(stack.s, stack.ctx.versions, only=("postgres",))
            stack.postgres.start()
            create_preexisting(stack)
            stack.up()
            yield stack
    finally:
        os.environ.pop("LAKEHOUSE_EXPECTATIONS_FILE", None)
        os.environ.pop("LAKEHOUSE_JOBS_DIR", None)
        shutil.rmtree(rules.parent, ignore_errors=True)


@dataclass(frozen=True)
class MovieLens:
    """The sample as the session's one load left it."""

    loaded: dict[str, Loaded]  # what the loader reported, per table
    sample_rows: dict[str, int]  # rows of sample movies in the source right after the load


@pytest.fixture(scope="session")
def movielens(stack: Stack) -> MovieLens:
    """Load the sample once and wait until silver holds every rating. Outside CI a checkout
    without the sample skips the tests that need it; in CI (`CI` set) that is a failure: the
    loader says which folder it did not find."""
    if not movielens_sample().is_dir() and not os.environ.get("CI"):
        pytest.skip("the MovieLens sample is not beside the checkout")
    loaded = {r.table: r for r in load(stack.postgres.app_dsn, stack.s.source_schema)}
    schema = stack.s.source_schema
    with source(stack) as conn:
        sample = {
            table: conn.execute(
                f"SELECT count(*) FROM {schema}.{table} WHERE movie_id < {OWN_IDS_FROM}"
            ).fetchone()[0]  # type: ignore[index]
            for table in ("movies", "ratings")
        }
        ratings = conn.execute(f"SELECT count(*) FROM {schema}.ratings").fetchone()[0]  # type: ignore[index]
    wait_rows(analyst(stack), "SELECT count(*) FROM silver.ratings", [[ratings]], timeout=BULK_S)
    return MovieLens(loaded, sample)


@pytest.fixture(scope="session")
def job_outputs(movielens: MovieLens) -> dict[str, dict[str, Any]]:
    """The two shipped jobs run once over the loaded sample, by request as a user runs them: what
    the dashboard's "top movies history" and "recommender RMSE" charts draw, and what the
    recommender's own test checks. Job name → its run (`jobs run --json`)."""
    runs = {}
    for name in ("top-movies-daily", "recommender"):
        ran = lakehouse("jobs", "run", name, "--json")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        runs[name] = json.loads(ran.stdout)
    return runs


class _SparkOnDemand:
    """One Spark session (against the test stack's MinIO) for every integration test that reads
    silver: started at first use, started again if something stopped it (a Spark-tier fixture
    builds its own session and stops the active one), stopped at the end of the session."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._cm: AbstractContextManager[SparkSession] | None = None
        self._session: SparkSession | None = None

    def get(self) -> SparkSession:
        if self._session is None or self._session.sparkContext._jsc is None:
            self.close()
            self._cm = spark_for(self._stack.s, self._stack.endpoints, "lakehouse-integration-tests")
            self._session = self._cm.__enter__()
        return self._session

    def close(self) -> None:
        cm, self._cm, self._session = self._cm, None, None
        if cm is not None:
            cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def _spark_holder(stack: Stack) -> Iterator[_SparkOnDemand]:
    holder = _SparkOnDemand(stack)
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture
def spark(_spark_holder: _SparkOnDemand) -> SparkSession:
    """The session's Spark, for reading silver and for `verify(..., spark=spark)`."""
    return _spark_holder.get()

"""The short chaos matrix on the session's stack: kill -9 every component but silver once under
a steady load of hard-type changes (TOAST, NaN, 24:00, key changes); each comes back under its
supervisor, and silver equals the source with nothing quarantined. `lakehouse chaos` runs the
full matrix from the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from lakehouse.chaos.matrix import COMPONENTS, OFF_PATH, Plan, run
from lakehouse.config.paths import repo_root
from lakehouse.launcher.stack import Stack

from .helpers import assert_one_catalog, catalog_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

#: one fault per component but silver (the crash points are in the full matrix, `lakehouse chaos`;
#: the spark tier's tests/spark/test_faults.py crashes at every one of them in-process, and
#: test_silver.py's crash test kills the running silver job with kill -9 mid-load and checks its
#: restart and catch-up: here it would add 6-7 minutes of a cold restart under load). Those off
#: the data path first: each is only checked to come back, and the data path's faults after them
#: verify the whole table, the changes made during theirs included
SHORT = [*OFF_PATH, *(c for c in COMPONENTS if c not in (*OFF_PATH, "silver"))]


@pytest.mark.timeout(2400)
def test_each_component_killed_under_load_comes_back_and_loses_nothing(
    stack: Stack, spark: SparkSession
) -> None:
    plan = Plan(rate=20, lead_s=5, after_s=5)
    registered = catalog_tables(stack)
    faults = run(stack, SHORT, plan, seed=11, spark=spark, check_off_path=False)
    out = repo_root() / "artifacts" / "chaos" / "short.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([f.as_dict() for f in faults], indent=2))
    assert [f.service for f in faults] == SHORT
    # clean: back, caught up, ended the way the fault ends a process as its supervisor saw it
    # (killed by SIGKILL / exited with the crash code), and 0 missing, extra, different or
    # quarantined rows of the load's table
    bad = [f.as_dict() for f in faults if not f.clean]
    assert not bad, bad
    assert all(f.changes > 0 and f.back_s is not None for f in faults)
    # every fault's changes were compared: the unverified ones are followed by a verified one
    assert [f.service for f in faults if not f.verified] == list(OFF_PATH) and faults[-1].verified
    # the catalog lost nothing (the metastore's kill -9 included): every table registered before
    # is still there, and Spark and Trino list the same ones
    after = catalog_tables(stack)
    assert {s: [t for t in tables if t not in after[s]] for s, tables in registered.items()} == {
        s: [] for s in registered
    }
    assert_one_catalog(stack)

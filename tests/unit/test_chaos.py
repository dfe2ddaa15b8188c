"""The chaos matrix's own rules: which faults exist, when a fault counts as clean, the load's rows."""

import random

import pytest

from lakehouse.chaos.matrix import COMPONENTS, CRASHES, OFF_PATH, PIPELINE, STACK_FAULTS, Fault, choose
from lakehouse.chaos.workload import ddl, row
from lakehouse.errors import UsageError
from lakehouse.pipeline.silver.faults import POINTS

pytestmark = pytest.mark.unit


def test_the_full_matrix_is_every_component_then_every_crash_point() -> None:
    assert choose(()) == [*COMPONENTS, *CRASHES]
    left_out = {"silver@after-quarantine", "silver@after-cut"}
    assert set(CRASHES) == {f"silver@{p}" for p in POINTS} - left_out
    assert choose(("kafka", "silver@after-merge")) == ["kafka", "silver@after-merge"]
    assert choose(("minio@outage",)) == ["minio@outage"]  # long: only when asked for
    assert not any(f.endswith("@outage") for f in choose(()))
    # faults of the whole stack, also on request only
    assert choose(("pipeline@outage", "stack@cycles")) == ["pipeline@outage", "stack@cycles"]
    assert not set(STACK_FAULTS) & set(choose(()))
    assert set(PIPELINE) < set(COMPONENTS) and "postgres" not in PIPELINE
    assert set(OFF_PATH) < set(COMPONENTS) and not set(OFF_PATH) & {*PIPELINE, "postgres", "minio"}
    with pytest.raises(UsageError, match="--service 'kafak': one of silver, kafka"):
        choose(("kafak",))


def _done(**kw: object) -> Fault:
    f = Fault("kafka", back_s=3.0, caught_up_s=30.0, exit_seen="killed by SIGKILL")
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def test_a_fault_is_clean_only_if_back_caught_up_ended_as_expected_and_nothing_lost() -> None:
    assert _done().clean
    assert not _done(back_s=None).clean
    assert not _done(caught_up_s=None).clean
    assert not _done(exit_seen="exited with code 1").clean  # something else ended it
    for field in ("missing", "extra", "different", "duplicates", "quarantined"):
        assert not _done(**{field: 1}).clean, field
    assert not _done(rows=(3, 4)).clean  # silver holds a row more than the source
    assert not _done(error="the load committed no change").clean
    # a fault left to the next fault's verify (off the data path) needs no catch-up of its own
    assert _done(caught_up_s=None, verified=False).clean
    assert not _done(caught_up_s=None, verified=False, back_s=None).clean
    assert _done().as_dict()["clean"] is True


def test_the_load_rows_fit_the_table_and_keep_the_hard_values() -> None:
    rng = random.Random(1)
    columns = [line for line in ddl("s.t").splitlines()[1:-1] if line.strip()]
    rows = [row(rng, i) for i in range(200)]
    assert all(len(r) == len(columns) for r in rows)
    bodies = [r[2] for r in rows]
    assert any(len(b) > 2000 for b in bodies), "no TOASTed value"
    ratios = {repr(r[8]) for r in rows}
    assert {"nan", "inf", "-inf"} <= ratios
    assert any(r[14] == "24:00:00" for r in rows)

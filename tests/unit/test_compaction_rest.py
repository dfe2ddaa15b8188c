"""The compactor's rest between folds (silver/compaction.py): folds take at most `share` of the
time, so under load the batches keep the rest of the cores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from lakehouse.pipeline.silver.compaction import Compactor, TableLocks

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def compactor(share: float) -> Compactor:
    # due(), appended() and rest() keep to the compactor's own state: no store is read
    return Compactor(cast(Any, None), TableLocks(), timedelta(seconds=60), 1000, share=share)


def test_after_a_fold_none_is_due_until_folding_took_at_most_its_share_of_the_time() -> None:
    c = compactor(0.25)
    c.appended("movielens.ratings", 10, T0)
    c.appended("movielens.tags", 10, T0)
    assert c.due(T0 + timedelta(seconds=59)) == []
    assert c.due(T0 + timedelta(seconds=60)) == ["movielens.ratings", "movielens.tags"]
    # a fold of 40 s ended at 100 s: folding may take a quarter of the time, so it rests 120 s
    c.rest(40, T0 + timedelta(seconds=100))
    assert c.due(T0 + timedelta(seconds=219)) == []
    assert c.due(T0 + timedelta(seconds=220)) == ["movielens.ratings", "movielens.tags"]


def test_a_share_of_one_never_rests_and_a_rest_does_not_make_a_young_log_due() -> None:
    c = compactor(1.0)
    c.appended("movielens.ratings", 10, T0)
    c.rest(40, T0)
    assert c.due(T0 + timedelta(seconds=60)) == ["movielens.ratings"]
    c = compactor(0.5)
    c.appended("movielens.ratings", 10, T0)
    c.rest(5, T0)  # rests 5 s; the log is still too young after it
    assert c.due(T0 + timedelta(seconds=30)) == []
    c.appended("movielens.tags", 1000, T0)  # a log of `rows` entries is due at once ...
    assert c.due(T0 + timedelta(seconds=4)) == []  # ... but not during the rest
    assert c.due(T0 + timedelta(seconds=5)) == ["movielens.tags"]


def test_one_fold_per_round_the_longest_waiting_first_and_none_during_the_rest() -> None:
    c = compactor(0.25)
    clock = [T0]
    c.clock = lambda: clock[0]
    folded: list[str] = []

    def fold(table: str) -> None:  # what Compactor.fold does to the state: 40 s of MERGE
        with c._state:
            c._unfolded.pop(table)
        folded.append(table)
        c.rest(40, c.clock())

    c.fold = fold  # type: ignore[method-assign]
    c.appended("movielens.tags", 10, T0)
    c.appended("movielens.movies", 10, T0 + timedelta(seconds=5))
    c.appended("movielens.ratings", 10, T0 + timedelta(seconds=1))
    clock[0] = T0 + timedelta(seconds=100)
    assert c.fold_due() == "movielens.tags"
    # both others are due, but the fold's rest (120 s) holds them back
    assert c.fold_due() is None
    clock[0] += timedelta(seconds=120)
    c.appended("movielens.tags", 10, clock[0])
    assert c.fold_due() == "movielens.ratings"
    clock[0] += timedelta(seconds=120)
    assert [c.fold_due(), folded] == [
        "movielens.movies",
        ["movielens.tags", "movielens.ratings", "movielens.movies"],
    ]


def test_the_chore_runs_when_no_fold_is_due_and_the_compactor_rests_after_it_too() -> None:
    """An OPTIMIZE (maintenance.py's chore) shares the cores as a fold does: never during a
    rest, never before a due fold, and followed by a rest of its own."""
    c = compactor(0.25)
    clock = [T0]
    c.clock = lambda: clock[0]
    ran: list[datetime] = []

    def optimize() -> bool:  # 20 s of fold and OPTIMIZE
        ran.append(clock[0])
        clock[0] += timedelta(seconds=20)
        return True

    c.chore = optimize
    c.rest(10, T0)  # a fold of 10 s just ended: a 30 s rest
    assert not c.do_chore() and ran == []
    clock[0] = T0 + timedelta(seconds=30)
    assert c.do_chore() and ran == [T0 + timedelta(seconds=30)]
    # it took 20 s: none again for 60 s after it ended, chore or fold
    c.appended("movielens.tags", 1000, clock[0])
    assert c.due(clock[0] + timedelta(seconds=59)) == []
    clock[0] += timedelta(seconds=59)
    assert not c.do_chore() and len(ran) == 1
    clock[0] += timedelta(seconds=1)
    assert c.due(clock[0]) == ["movielens.tags"]
    # a chore with nothing to do does not rest
    c.chore = lambda: False
    assert not c.do_chore() and not c.resting(clock[0])

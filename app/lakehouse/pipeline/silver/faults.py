"""Deterministic fault injection: the silver job exits hard at a named point of a micro-batch.

Start the job with `LAKEHOUSE_SILVER_CRASH_AT=<point>` in its environment (a hook for the tests
and `lakehouse chaos`, not a setting) and it calls `os._exit` when a batch that applies at least
one event reaches that point — no `finally`, no flush, as if the machine lost power. Tests use it
to prove that a restarted job re-running the batch leaves silver equal to the source
(docs/reliability.md). Off unless set.

"Applies at least one event": the batch writes one to silver, the tombstones (a delete, a cut) or
the quarantine, or is about to. Each point of the batch says whether it has (`reach(point, work)`);
a batch of transaction records only (BEGIN/END) does none, and passes every point.

The job fires it once: it writes `FIRED` into its state folder first, and a job that finds that
file does not crash again — so its supervisor's restart re-runs the batch instead of crashing in a
loop. Deleting the file arms it again (`lakehouse chaos` does, per crash point).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from lakehouse.errors import ConfigError

log = logging.getLogger("lakehouse.silver")

#: the environment variable that arms a crash point
CRASH_AT_ENV = "LAKEHOUSE_SILVER_CRASH_AT"
#: in the order a batch reaches them
POINTS = (
    "after-cut",  # a TRUNCATE or snapshot cut and its tombstones are committed, its rows not deleted
    # a table's delete markers are committed, its MERGE is not (merge-on-read: the compactor's
    # fold commits them, on its own thread, before its MERGE)
    "after-tombstones",
    "after-merge",  # a table's MERGE (merge-on-read: log append) is committed, the rest of the batch not
    "after-quarantine",  # the batch's quarantine rows are committed
    "after-pending",  # the held-back transaction state is committed
    "before-commit",  # the batch is applied; the streaming checkpoint has not recorded it
    # merge-on-read's compactor (compaction.py), beside the batches rather than in one:
    "after-fold",  # a log's entries are MERGEd into the base, not trimmed from the log
)
#: points reached beside the batches, on another thread (and `after-tombstones` with merge-on-read)
BESIDE = ("after-fold",)
EXIT_CODE = 86
#: written (with the point's name) just before the crash; while it exists the job does not crash
FIRED = "crash-fired"


def _exit(point: str) -> None:
    log.error("fault injection: exiting hard at %s", point)
    os._exit(EXIT_CODE)


class Faults:
    """`reach(point, work)` does nothing unless `point` is the configured crash point and the batch
    has work (see the module's docstring)."""

    def __init__(
        self,
        crash_at: str | None = None,
        action: Callable[[str], None] = _exit,
        fired: Path | None = None,
    ) -> None:
        """`fired`: the once-only marker (None: crash every time the point is reached)."""
        if crash_at is not None and crash_at not in POINTS:
            raise ValueError(f"unknown crash point {crash_at!r}; one of {', '.join(POINTS)}")
        self.crash_at = crash_at
        self.action = action
        self.fired = fired
        #: what the last point reached said of its batch's work (True until one says)
        self.work = True

    @classmethod
    def from_env(cls, fired: Path) -> Faults:
        """The faults `CRASH_AT_ENV` arms (none when unset or empty); ConfigError on a point that
        does not exist, naming the variable."""
        point = os.environ.get(CRASH_AT_ENV) or None
        if point is not None and point not in POINTS:
            raise ConfigError(f"{CRASH_AT_ENV}={point!r}: not a crash point; one of {', '.join(POINTS)}")
        return cls(point, fired=fired)

    def reach(self, point: str, work: bool | None = None) -> None:
        """`work`: whether the batch has applied, or is about to apply, at least one event. None:
        what the last point reached said — the job's `before-commit` comes after the batch's last
        point, `after-pending`, which says it for the whole batch."""
        assert point in POINTS, point
        if work is None:
            work = self.work
        elif point not in BESIDE:  # the compactor's thread says nothing of a batch
            self.work = work
        if point != self.crash_at or not work:
            return
        if self.fired is not None:
            if self.fired.exists():
                return
            self.fired.parent.mkdir(parents=True, exist_ok=True)
            self.fired.write_text(point)
        self.action(point)

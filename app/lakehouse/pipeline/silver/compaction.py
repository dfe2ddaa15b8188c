"""Merge-on-read's compactor: folds each table's change log into its base, off the freshness path.

Batches only append to a table's log (store.append_log); the compactor, a thread of the same job
in its own scheduler pool, folds a log once its oldest unfolded entry is `compaction.age.s` old or
it holds `compaction.rows` unfolded entries, and always before OPTIMIZE, which it runs too, one
table per round, when no fold is due (maintenance.py). Folds share the cores with the batches, so
the compactor rests after each one: folding takes at most `compaction.share.pct` of the time (a
fold of d seconds, then none due for d * (100 - pct) / pct); so does an OPTIMIZE with its fold.
Under load a fold of a large table takes longer and the logs are folded less often — each fold
folds more, and the batches keep the rest of the cores. A fold:

1. reads the log's entries after those an earlier fold covered, up to its newest `_seq` S, and
   takes each key's newest (the live rule's order, position.py; two entries at one position are
   the same event appended twice);
2. writes the tombstones of the deletes among them, then MERGEs them into the base with the
   position guard (store.merge: equal positions never update, so folding the same entries again
   changes nothing), or appends them when they are all creates of keys the base lacks (a bulk
   load, a snapshot);
3. is trimmed from the log `TRIM_AFTER` after it ends, not at once: a reader that pinned the base
   before this fold's MERGE and the log after it would otherwise miss its entries. Folded entries
   left in the log are outranked by the base (live.py); they only cost every reader a scan. The
   log is partitioned by `_seq`, one partition per append (store.ensure_log), so a trim drops
   whole partitions: a metadata-only DELETE, no file read or rewritten, and Delta's conflict
   check (Serializable, the only isolation open-source Delta gives a DELETE) looks only at the
   partitions it drops, which a batch's append, with a newer `_seq`, never writes. The compactor
   trims a fold's entries as soon as they are `TRIM_AFTER` old, between folds too (`trim_due`).

After its MERGE a fold records how far it got (`_state/folded/<table>.json`: the `_seq` and the
folded entries not trimmed yet), so a restarted job reads only newer entries and trims the older
ones in its turn. A crash before the record folds the same entries again: nothing is lost or
doubled.
`lakehouse compact` asks for a fold now (mailbox.py, `_state/compact/`): before reading the base
directly, or in a test that checks what the base holds.
Until its fold writes a delete's tombstone (step 2), the delete's log entry is its tombstone
(store.tombstones): a batch commits none. Schema changes and cuts, which write the base and the
log too, take the table's lock, as a fold does (`TableLocks`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from lakehouse.pipeline.silver.faults import Faults
from lakehouse.pipeline.silver.live import SEQ
from lakehouse.pipeline.silver.mailbox import Mailbox
from lakehouse.pipeline.silver.position import latest_first
from lakehouse.pipeline.silver.store import Store, as_tombstones, read_text, write_text

log = logging.getLogger("lakehouse.silver")

#: the mailbox `lakehouse compact` asks in (`_state/compact/`)
NAME = "compact"
#: the scheduler pool folds run in: they share the cores with batches, never block them
POOL = "silver-compaction"
#: how long the entries of a fold stay in the log after it (see the module's docstring, step 3)
TRIM_AFTER = timedelta(seconds=10)


class TableLocks:
    """One lock per table, for the writes a fold must not overlap (schema changes, cuts, folds);
    re-entrant: maintenance holds it across a fold and the OPTIMIZE after it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}

    @contextmanager
    def held(self, table: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(table, threading.RLock())
        with lock:
            yield


@dataclass
class Unfolded:
    """A log's entries appended since its last fold, as the job saw them."""

    since: datetime
    rows: int = 0


@dataclass
class Fold:
    """What one fold did."""

    table: str
    upto: int | None = None
    #: keys whose newest entry was folded
    keys: int = 0
    appended: bool = False
    trimmed_upto: int | None = None
    seconds: float = 0.0
    #: seconds per step (read, write, trim), for the log
    steps: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "keys": self.keys, "upto": self.upto, "seconds": round(self.seconds, 2)}


@dataclass
class Compactor:
    store: Store
    locks: TableLocks
    age: timedelta
    rows: int
    faults: Faults = field(default_factory=Faults)
    #: tables with an age of their own (`compaction.table.age.s`)
    ages: dict[str, timedelta] = field(default_factory=dict)
    #: the share of the time folds may take (1.0: no rest between them)
    share: float = 1.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _unfolded: dict[str, Unfolded] = field(default_factory=dict)
    #: per table, the folds whose entries are still in the log: (`_seq` folded up to, when, entries)
    _folded: dict[str, list[tuple[int, datetime, int]]] = field(default_factory=dict)
    #: per table, the `_seq` its last fold (of this run, or recorded by the last) folded up to
    _upto: dict[str, int] = field(default_factory=dict)
    _state: threading.Lock = field(default_factory=threading.Lock)
    #: run when no fold is due and the compactor is not resting (the OPTIMIZE of a table,
    #: maintenance.py): whether it did anything, so that the compactor rests after it too
    chore: Callable[[], bool] | None = None
    #: no fold is due before this (the rest after the last fold, `share`)
    _rest_until: datetime | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    failures: int = 0
    folds: int = 0

    # ---- what is waiting
    def appended(self, table: str, rows: int, now: datetime) -> None:
        """A batch appended `rows` entries to the table's log."""
        with self._state:
            u = self._unfolded.setdefault(table, Unfolded(now))
            u.rows += rows

    def recover(self, tables: list[str]) -> None:
        """At the job's start: logs that may hold entries a stopped job did not fold are waiting
        from now, so they are folded `age` after the start — not all at once, beside the first
        batch (which may have a restart's backlog to apply)."""
        now = self.clock()
        for table in tables:
            if self.store.exists(self.store.layout.log(table)):
                self._recorded(table, now)
                with self._state:
                    self._unfolded.setdefault(table, Unfolded(now))

    def _recorded(self, table: str, now: datetime) -> None:
        """Take up the fold an earlier run recorded for the table (once): its entries count as
        folded `now`, and this job's `_seq`s are above them."""
        if table in self._folded:
            return
        body = read_text(self.store.spark, self.store.layout.folded(table))
        folded = self._folded.setdefault(table, [])
        if body is not None:
            record = json.loads(body)
            self.store.seq_above(int(record["upto"]))
            self._upto[table] = int(record["upto"])
            if record["untrimmed"]:  # otherwise the log holds no entry up to it
                folded.append((int(record["upto"]), now, int(record["untrimmed"])))

    def _record(self, table: str) -> None:
        """What `_recorded` takes up: how far the table's folds got, and the folded entries still
        in the log."""
        body = {"upto": self._upto[table], "untrimmed": sum(n for _, _, n in self._folded.get(table, []))}
        write_text(self.store.spark, self.store.layout.folded(table), json.dumps(body))

    def due(self, now: datetime) -> list[str]:
        """The tables whose logs are old or large enough to fold, the longest waiting first; none
        while the compactor rests."""
        if self.resting(now):
            return []
        with self._state:
            return [
                t
                for t, u in sorted(self._unfolded.items(), key=lambda tu: (tu[1].since, tu[0]))
                if u.rows >= self.rows or now - u.since >= self.ages.get(t, self.age)
            ]

    def resting(self, now: datetime) -> bool:
        with self._state:
            return self._rest_until is not None and now < self._rest_until

    def rest(self, seconds: float, now: datetime) -> None:
        """After a fold of `seconds`: none is due until folding has taken no more than `share` of
        the time since it began."""
        with self._state:
            self._rest_until = now + timedelta(seconds=seconds * (1 - self.share) / self.share)

    def behind(self, now: datetime) -> dict[str, float]:
        """Per table, how long its oldest unfolded entry has waited (the base's lag), in seconds."""
        with self._state:
            return {t: max(0.0, (now - u.since).total_seconds()) for t, u in self._unfolded.items()}

    # ---- folding
    def fold(self, table: str) -> Fold:
        """Fold the table's log into its base (the module's docstring)."""
        started = time.monotonic()
        out = Fold(table)
        now = self.clock()
        with self.locks.held(table):
            with self._state:
                waiting = self._unfolded.pop(table, None)
            try:
                self._fold(table, out, now, waiting.rows if waiting else 0)
            except BaseException:
                if waiting is not None:  # still waiting: the next round tries again
                    with self._state:
                        self._unfolded.setdefault(table, waiting)
                raise
        out.seconds = time.monotonic() - started
        self.folds += 1
        self.rest(out.seconds, self.clock())
        log.info(
            "%s: folded the newest log entries of %d keys up to _seq %s into the base (%.1fs: %s)%s",
            table,
            out.keys,
            out.upto,
            out.seconds,
            " ".join(f"{k} {v:.1f}" for k, v in out.steps.items()),
            f", trimmed up to _seq {out.trimmed_upto}" if out.trimmed_upto is not None else "",
        )
        return out

    def _fold(self, table: str, out: Fold, now: datetime, appended: int) -> None:
        store = self.store
        path = store.layout.log(table)
        if not store.exists(path):
            return
        step = time.monotonic()
        schema, keys = store.schema(table)
        assert schema is not None, f"{table}: a log without a base"
        columns = schema.fieldNames()
        # one read of the log's snapshot: each key's newest entry, kept while it is folded. Entries
        # an earlier fold covered (of this run, or recorded by the last) are in the base already:
        # only newer ones are read (their partitions: the log is partitioned by `_seq`)
        order = Window.partitionBy(*keys).orderBy(*latest_first(F.col(SEQ).desc()))
        entries = store.spark.read.format("delta").load(path)
        self._recorded(table, now)
        if (done := self._upto.get(table)) is not None:
            entries = entries.where(F.col(SEQ) > done)
        latest = (
            entries.withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")
        ).localCheckpoint(eager=True)
        row = latest.agg(
            F.count("*").alias("n"),
            F.count_if(F.col("_op").isin("u", "d")).alias("changes"),
            F.count_if(F.col("_op") == "d").alias("deletes"),
            # what this fold covers: every entry up to it was in the snapshot read (one table's
            # appends commit in `_seq` order), and an entry above it is folded again next time
            F.max(SEQ).alias("upto"),
        ).collect()[0]
        out.steps["read"] = time.monotonic() - step
        if row["upto"] is None:
            return
        out.upto, out.keys = int(row["upto"]), int(row["n"])
        if row["deletes"]:
            # the deletes' tombstones (store.tombstones), before the MERGE removes their rows and
            # a trim their log entries; a fold done again writes them again, which changes nothing
            step = time.monotonic()
            deletes = latest.where(F.col("_op") == "d")
            store.add_tombstones(as_tombstones(deletes, table, keys, schema, F.lit(now)))
            out.steps["tombstones"] = time.monotonic() - step
            self.faults.reach("after-tombstones", work=True)
        step = time.monotonic()
        latest = latest.drop(SEQ)
        if not row["changes"] and not store.holds_any(table, latest, keys):
            store.append(table, latest, columns)
            out.appended = True
        else:
            store.merge(table, latest, columns, keys)
        out.steps["write"] = time.monotonic() - step
        self.faults.reach("after-fold", work=out.keys > 0)
        # counted from the end of this fold: its tombstones are TRIM_AFTER old before a trim
        # removes its entries from the log (store.tombstones reads both)
        self._folded.setdefault(table, []).append((out.upto, self.clock(), max(appended, out.keys)))
        self._upto[table] = out.upto
        self._record(table)
        step = time.monotonic()
        if (trimmed := self._trim_ripe(table, now)) is not None:
            out.trimmed_upto = trimmed
            out.steps["trim"] = time.monotonic() - step

    def _trim_ripe(self, table: str, now: datetime) -> int | None:
        """Drop from the log the entries of the table's folds that ended `TRIM_AFTER` before
        `now`: whole partitions (the module's docstring, step 3). The `_seq` trimmed up to, None
        when no fold's entries were ripe."""
        folded = self._folded.get(table, [])
        ripe = [b for b, at, _ in folded if now - at >= TRIM_AFTER]
        if not ripe:
            return None
        upto = max(ripe)
        DeltaTable.forPath(self.store.spark, self.store.layout.log(table)).delete(F.col(SEQ) <= upto)
        folded[:] = [f for f in folded if f[0] > upto]
        self._record(table)
        return upto

    def trim_due(self) -> list[str]:
        """Trim each log whose folded entries are `TRIM_AFTER` old now, without waiting for its
        next fold (a trim is one metadata-only commit); the tables trimmed."""
        now = self.clock()
        ripe = [t for t, f in self._folded.items() if any(now - at >= TRIM_AFTER for _, at, _ in f)]
        trimmed = []
        for table in ripe:
            try:
                with self.locks.held(table):
                    upto = self._trim_ripe(table, self.clock())
            except Exception:  # the next round tries again; the metric and log say so
                self.failures += 1
                log.exception("%s: trim failed (retried at the next round)", table)
                continue
            if upto is not None:
                trimmed.append(table)
                log.info("%s: trimmed the log up to _seq %s", table, upto)
        return trimmed

    def fold_all(self, tables: list[str]) -> None:
        """Fold these tables now (before OPTIMIZE, at a graceful stop)."""
        for table in tables:
            if self.store.exists(self.store.layout.log(table)):
                self.fold(table)

    # ---- the thread
    def start(self, every: float = 1.0) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(every,), name="silver-compactor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def _loop(self, every: float) -> None:
        self.store.spark.sparkContext.setLocalProperty("spark.scheduler.pool", POOL)
        requests = Mailbox(self.store.spark, self.store.layout, NAME)
        while not self._stop.wait(every):
            try:
                request = requests.poll()
            except Exception:  # the object store is away: the next round looks again
                log.exception("could not look for a compaction request")
                request = None
            if request is not None:
                self._answer(requests, request)
            if not self._stop.is_set() and self.fold_due() is None and not self.trim_due():
                self.do_chore()

    def do_chore(self) -> bool:
        """The chore, if the compactor is not resting; then a rest as long as after a fold of that
        time. Whether it did anything."""
        if self.chore is None or self.resting(self.clock()):
            return False
        started = self.clock()
        try:
            did = self.chore()
        except Exception:  # the next round tries again; the metric and log say so
            self.failures += 1
            log.exception("maintenance failed (retried at the next round)")
            did = True
        if did:
            ended = self.clock()
            self.rest((ended - started).total_seconds(), ended)
        return did

    def fold_due(self) -> str | None:
        """Fold the table that has waited longest, if one is due; one per round, so that the rest
        after it holds back the next."""
        for table in self.due(self.clock())[:1]:
            try:
                self.fold(table)
            except Exception:  # the next round tries again; the metric and log say so
                self.failures += 1
                log.exception("%s: fold failed (retried at the next round)", table)
            return table
        return None

    def _answer(self, requests: Mailbox, request: dict[str, object]) -> None:
        """`lakehouse compact`: fold the table asked for (every table with a log when none) now."""
        table = request.get("table")
        tables = [str(table)] if table else self.logged()
        folded: list[dict[str, object]] = []
        error = None
        try:
            for t in tables:
                if self.store.exists(self.store.layout.log(t)):
                    folded.append(self.fold(t).as_dict())
        except Exception as exc:  # answered, so the command says why rather than waiting
            self.failures += 1
            error = f"{type(exc).__name__}: {exc}"
            log.exception("compaction asked for by `lakehouse compact` failed")
        requests.answer(str(request["id"]), {"table": table, "folded": folded, "error": error})

    def logged(self) -> list[str]:
        """The tables the job knows to have a log (waiting, or folded since the start)."""
        with self._state:
            return sorted(set(self._unfolded) | set(self._folded))

"""Random changes over hard Postgres types: TOASTed text, NaN/±inf, numeric(38,10), 24:00:00,
arrays, jsonb, uuid; partial updates that leave the TOASTed column unchanged, primary-key changes,
deletes, multi-statement transactions. One definition for the silver tests and `lakehouse chaos`.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

_COLUMNS = """
  id int PRIMARY KEY,
  title text,
  body text,
  amount numeric(38,10),
  seen_at timestamptz,
  doc jsonb,
  tags text[],
  votes int,
  ratio double precision,
  score real,
  small smallint,
  ref uuid,
  label varchar(40),
  happened timestamp,
  at_time time"""
_WIDTH = len(_COLUMNS.strip().splitlines())

_FLOATS = [float("nan"), float("inf"), float("-inf"), -0.0, 0.1, 1e308, 5e-324, 3.4e38, 1.5]


def ddl(table: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} ({_COLUMNS}\n)"


def _text(rng: random.Random, n: int) -> str:
    alphabet = string.ascii_letters + string.digits + "éßøü\u2013漢字🙂 "
    return "".join(rng.choice(alphabet) for _ in range(n))


def _timestamp(rng: random.Random) -> str:
    day = f"{rng.randint(1900, 2100):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return f"{day} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.random() * 59:09.6f}"


def _maybe(rng: random.Random, value: Any) -> Any:
    return value if rng.random() > 0.1 else None


def row(rng: random.Random, i: int) -> tuple[Any, ...]:
    clock = ["00:00:00", "24:00:00", f"{rng.randint(0, 23)}:{rng.randint(0, 59)}:{rng.random() * 59:.6f}"]
    return (
        i,
        _maybe(rng, _text(rng, 12)),
        _text(rng, 3000) if rng.random() > 0.5 else _text(rng, 40),  # > 2 kB: TOASTed
        _maybe(rng, f"{rng.randint(-(10**27), 10**27)}.{rng.randint(0, 10**10 - 1):010d}"),
        _maybe(rng, "2026-01-02T03:04:05.123456+00:00"),
        _maybe(rng, json.dumps({"k": rng.randint(0, 9), "s": _text(rng, 5)})),
        _maybe(rng, [_text(rng, 4) for _ in range(rng.randint(0, 3))]),
        rng.randint(0, 1000),
        _maybe(rng, rng.choice(_FLOATS)),
        _maybe(rng, rng.choice([*_FLOATS[:5], 1.17549435e-38, 3.4028235e38])),
        _maybe(rng, rng.randint(-32768, 32767)),
        _maybe(rng, str(uuid.UUID(int=rng.getrandbits(128)))),
        _maybe(rng, _text(rng, rng.randint(0, 40))),
        _maybe(rng, _timestamp(rng)),
        _maybe(rng, rng.choice(clock)),
    )


@dataclass
class Workload:
    """One table's random changes; `transaction` commits 1-5 statements or none (on error)."""

    table: str
    seed: int
    #: this workload's keys are first_id and up (other writers of the table stay below)
    first_id: int
    rng: random.Random = field(init=False)
    next_id: int = field(init=False)
    ids: list[int] = field(default_factory=list)
    changes: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.next_id = self.first_id

    def create(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(ddl(self.table))
        conn.commit()

    def reload_ids(self, conn: psycopg.Connection[Any]) -> None:
        """The keys as the source has them (after a transaction that may not have committed)."""
        rows = conn.execute(f"SELECT id FROM {self.table} WHERE id >= %s ORDER BY id", [self.first_id])
        self.ids = [r[0] for r in rows]

    def transaction(self, conn: psycopg.Connection[Any]) -> int:
        """Run one transaction of 1-5 changes and commit it; the number of changes."""
        rng, n = self.rng, 0
        for _ in range(rng.randint(1, 5)):
            roll = rng.random()
            if roll < 0.4 or len(self.ids) < 5:
                conn.execute(
                    f"INSERT INTO {self.table} VALUES ({','.join(['%s'] * _WIDTH)})", row(rng, self.next_id)
                )
                self.ids.append(self.next_id)
                self.next_id += 1
            elif roll < 0.75:  # the TOASTed body is not touched: Debezium sends a placeholder
                conn.execute(
                    f"UPDATE {self.table} SET votes = votes + 1, title = %s, ratio = %s, at_time = %s "
                    "WHERE id = %s",
                    (
                        _text(rng, 8),
                        rng.choice(_FLOATS),
                        rng.choice(["24:00:00", "12:00:01.5"]),
                        rng.choice(self.ids),
                    ),
                )
            elif roll < 0.85:  # a primary-key change: a delete and a create in one event pair
                old = self.ids.pop(rng.randrange(len(self.ids)))
                conn.execute(f"UPDATE {self.table} SET id = %s WHERE id = %s", (self.next_id, old))
                self.ids.append(self.next_id)
                self.next_id += 1
            else:
                conn.execute(
                    f"DELETE FROM {self.table} WHERE id = %s", (self.ids.pop(rng.randrange(len(self.ids))),)
                )
            n += 1
        conn.commit()
        self.changes += n
        return n


def run(dsn: str, table: str, seed: int, changes: int, first_id: int) -> int:
    """Commit at least `changes` changes as fast as one connection goes; the next unused id."""
    work = Workload(table, seed, first_id)
    with psycopg.connect(dsn) as conn:
        work.create(conn)
        while work.changes < changes:
            work.transaction(conn)
    return work.next_id


class Load(threading.Thread):
    """A steady `rate` of changes per second until `stop()`, riding out a source that goes away:
    a transaction that fails is rolled back, the keys are read again, and it carries on."""

    def __init__(self, dsn: str, work: Workload, rate: float) -> None:
        super().__init__(name=f"load-{work.table}", daemon=True)
        self.dsn, self.work, self.rate = dsn, work, rate
        self._halt = threading.Event()
        self.failed_transactions = 0
        self.last_error: str | None = None

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=60)

    def _connect(self) -> psycopg.Connection[Any] | None:
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=5)
            self.work.reload_ids(conn)
            conn.commit()
            return conn
        except psycopg.Error as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: BaseException) -> None:
        self.failed_transactions += 1
        self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._halt.wait(0.5)

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        started, base = time.monotonic(), self.work.changes
        while not self._halt.is_set():
            if conn is None or conn.closed:
                conn = self._connect()
                continue
            try:
                self.work.transaction(conn)
            except psycopg.Error as exc:
                self._failed(exc)
                try:
                    conn.rollback()
                    self.work.reload_ids(conn)
                    conn.commit()
                except psycopg.Error:
                    conn.close()
                continue
            due = started + (self.work.changes - base) / self.rate
            self._halt.wait(max(0.0, due - time.monotonic()))
        if conn is not None:
            conn.close()

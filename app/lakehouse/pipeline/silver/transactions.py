"""Hold back events of source transactions that are not complete yet.

Debezium's transaction metadata (`provide.transaction.metadata=true`) gives every data event
`transaction.data_collection_order` and every transaction an END record with the number of events
per table. Events of one transaction can arrive in two micro-batches; applying the first half
alone would leave silver half-updated. A (transaction, table) group is released when all of its
events are there, or — so the stream never blocks on a record that will not come — when it has
waited `timeout` (counted in a metric).

The decision is made on the driver from a per-group summary (a few rows per transaction), so a
batch costs no joins for it. The held lines stay in Spark's memory; what is stored is where they
can be read again after a restart (the bronze files they are in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Group:
    """The events of one transaction for one table seen so far (this batch and held)."""

    txid: int
    table: str
    events: int  # distinct data_collection_order values
    lines: int  # bronze lines (duplicates included)
    oldest: datetime  # first_seen of its earliest line


@dataclass(frozen=True)
class End:
    """One table of an END record: how many events the transaction wrote to it."""

    txid: int
    collection: str
    expected: int
    first_seen: datetime
    #: the LSN of the transaction's commit (from the END record's id): the events' commit position
    commit: int | None = None


@dataclass
class Decision:
    held: set[tuple[int, str]] = field(default_factory=set)  # (txid, table) groups kept back
    held_lines: int = 0
    timed_out: int = 0  # groups released without their END being complete
    ends: list[End] = field(default_factory=list)  # END entries still waiting for their events
    #: txid → commit LSN of every transaction whose END is known (released groups included)
    commits: dict[int, int] = field(default_factory=dict)
    #: every END entry known, per (txid, table): a released group held back again keeps its own
    known: dict[tuple[int, str], End] = field(default_factory=dict)

    def hold_again(self, group: tuple[int, str], lines: int) -> None:
        """Hold back a group this decision released (its events must wait for another's)."""
        if group in self.held:
            return
        self.held.add(group)
        self.held_lines += lines
        if group in self.known and self.known[group] not in self.ends:
            self.ends.append(self.known[group])


def decide(
    groups: list[Group], ends: list[End], now: datetime, timeout: timedelta, end_ttl: timedelta
) -> Decision:
    """Which groups to hold back, and which END entries to keep for a later batch."""
    merged: dict[tuple[int, str], End] = {}
    for e in ends:
        k = (e.txid, e.collection)
        prior = merged.get(k)
        if prior is None:
            merged[k] = e
        else:
            merged[k] = End(
                e.txid,
                e.collection,
                max(prior.expected, e.expected),
                min(prior.first_seen, e.first_seen),
                prior.commit if prior.commit is not None else e.commit,
            )
    out = Decision(
        commits={e.txid: e.commit for e in merged.values() if e.commit is not None}, known=dict(merged)
    )
    released: set[tuple[int, str]] = set()
    for g in groups:
        k = (g.txid, g.table)
        end = merged.get(k)
        complete = end is not None and g.events >= end.expected
        old = g.oldest < now - timeout
        if complete or old:
            released.add(k)
            out.timed_out += int(not complete)
        else:
            out.held.add(k)
            out.held_lines += g.lines
    out.ends = [
        e
        for k, e in sorted(merged.items())
        if k not in released and e.expected > 0 and e.first_seen >= now - end_ttl
    ]
    return out

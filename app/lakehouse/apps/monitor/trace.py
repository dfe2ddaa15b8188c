"""Follow one change of one row through every hop of the pipeline, by the change's own identity.

A change is found by its table, its key and, when known, its transaction id (the page knows the
edit's; `lakehouse trace` takes the row's current `xmin` from the source). Its Debezium event in
Kafka gives the rest of its identity: the change LSN, the commit time, and where it is in Kafka
(topic, partition, offset). Every later hop is then asked whether it holds *that change or a newer
one of the same key* — for one key, a later change always has a higher change LSN, since it waits
for the earlier transaction's commit:

    postgres  committed (source.ts of the event; the commit LSN once silver has the row)
    kafka     the event's topic, partition, offset and broker timestamp
    bronze    the object holding that offset (beside the path: silver reads Kafka)
    silver    the first Delta commit of the change log (merge-on-read) or table that holds it
    base      merge-on-read only: the first commit of the base table that holds it (the fold)
              (both: the commits listed in the object store, each new one asked through Trino)
    trino     a Trino query on `silver.<table>` answers with it

Readers: Postgres as the page's role (the row's `xmin` and the table's key), Kafka's consumer
API, the object store's listing, Trino as the analyst. Nothing is written anywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse import clients
from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.config.layout import bronze_topic, silver_log_table
from lakehouse.config.layout import silver_table as layout_silver_table
from lakehouse.config.names import SILVER, SILVER_BASE, SILVER_LOG
from lakehouse.errors import UsageError
from lakehouse.pipeline.bronze.format import object_range
from lakehouse.pipeline.query.catalog import commit_name, commit_objects, commit_version, literal

if TYPE_CHECKING:
    from lakehouse.config.endpoints import Endpoints

#: in the order a change passes them (bronze is a branch beside kafka → silver)
HOPS = ("postgres", "kafka", "bronze", "silver", "base", "trino")
#: the hops a change takes to a Trino query (the slowest of them is marked)
PATH = ("postgres", "kafka", "silver", "trino")
#: Debezium's txId is Postgres's 32-bit xid; `xmin` and pg_current_xact_id() may carry the epoch
XID_MASK = (1 << 32) - 1
#: records read per step when a partition is searched backwards from its end
CHUNK = 5000
#: how far back a search goes before it gives up (per partition)
SEARCH_LIMIT = 2_000_000
#: Delta commits asked through Trino per hop and call (a change in flight is in one of the first few)
SCAN_LIMIT = 200


class TraceError(UsageError):
    """The row cannot be traced at all: an unknown table, a malformed key (exit 2)."""


@dataclass(frozen=True)
class Change:
    """A change as its Debezium event in Kafka says."""

    table: str
    key: dict[str, str]
    op: str
    txid: int | None
    lsn: int
    committed_at: float  # the source's commit time, epoch seconds
    topic: str
    partition: int
    offset: int
    kafka_at: float  # the broker's timestamp of the record

    def holds_sql(self) -> str:
        """A predicate on silver rows of this key: the row is this change or a newer one."""
        return f"{key_sql(self.key)} AND _lsn >= {int(self.lsn)}"


@dataclass(frozen=True)
class Found:
    """The first commit of a Delta table that holds a change."""

    table: str
    version: int
    at: float
    commit_lsn: int | None  # the row's `_commit_lsn` (None for a delete's absence)


@dataclass
class Hop:
    name: str
    at: float | None = None  # epoch seconds
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    table: str
    key: dict[str, str]
    merge_on_read: bool
    #: the transaction to find the change by: the edit's own (`exact`), or the row's `xmin`, its
    #: last writer, when the row is traced from the command line (None: the row is gone)
    txid: int | None = None
    exact: bool = False
    #: neither a row nor any event of the key: nothing to trace
    unknown: bool = False
    change: Change | None = None
    hops: dict[str, Hop] = field(default_factory=dict)
    #: per Delta table, the first commit not asked yet (Tracer.first_commit)
    cursor: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.expected():
            self.hops.setdefault(name, Hop(name))

    def expected(self) -> tuple[str, ...]:
        return tuple(h for h in HOPS if h != "base" or self.merge_on_read)

    def pending(self) -> str | None:
        """The first hop (in order) the change has not reached yet; None once it reached every one."""
        return next((h for h in self.expected() if self.hops[h].at is None), None)

    def complete(self) -> bool:
        return self.pending() is None

    def slowest(self) -> str | None:
        """The hop of the path to Trino that took longest (named by where it ends), once the change
        reached Trino."""
        times = [t for t in (self.hops[h].at for h in PATH) if t is not None]
        if len(times) < len(PATH):
            return None
        steps = {h: b - a for h, a, b in zip(PATH[1:], times, times[1:], strict=False)}
        return max(steps, key=lambda h: steps[h])

    def after_s(self, hop: str) -> float | None:
        """Seconds from the commit in the source to `hop`."""
        at, start = self.hops[hop].at, self.hops["postgres"].at
        return None if at is None or start is None else round(at - start, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "write_mode": "merge-on-read" if self.merge_on_read else "merge-on-write",
            "op": self.change.op if self.change else None,
            "lsn": self.change.lsn if self.change else None,
            "txid": self.change.txid if self.change else None,
            "complete": self.complete(),
            "pending": self.pending(),
            "slowest": self.slowest(),
            "hops": [
                {
                    "hop": h,
                    "at": self.hops[h].at,
                    "after_s": self.after_s(h),
                    **self.hops[h].detail,
                }
                for h in self.expected()
            ],
        }


def key_sql(key: dict[str, str]) -> str:
    """Silver rows of one key, the values compared as text (any key type, no type lookup)."""
    return " AND ".join(
        f'CAST("{c.replace(chr(34), chr(34) * 2)}" AS varchar) = {literal(v)}' for c, v in key.items()
    )


def parse_key(text: str, columns: Sequence[str]) -> dict[str, str]:
    """`KEY` as typed: `42` for a one-column key, else `col=value,col=value` naming every column."""
    if "=" not in text:
        if len(columns) != 1:
            raise TraceError(f"the key has {len(columns)} columns ({', '.join(columns)}): give col=value,...")
        return {columns[0]: text}
    pairs = dict(part.split("=", 1) for part in text.split(",") if part)
    pairs = {k.strip(): v.strip() for k, v in pairs.items()}
    if set(pairs) != set(columns):
        raise TraceError(f"the key is ({', '.join(columns)}); got {', '.join(pairs) or 'nothing'}")
    return {c: pairs[c] for c in columns}


def _key_of(raw: bytes | None) -> dict[str, str] | None:
    """A Kafka record key (Debezium's JSON, with or without its schema) as column → text."""
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if not isinstance(payload, dict):
        return None
    return {k: str(v) for k, v in payload.items()}


def _change_of(table: str, key: dict[str, str], msg: Any) -> Change | None:
    """The change a Kafka record carries (None: a tombstone, or not an event)."""
    if not msg.value():
        return None
    doc = json.loads(msg.value())
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if not isinstance(payload, dict) or "source" not in payload:
        return None
    source = payload["source"]
    ts = source.get("ts_us")
    committed = ts / 1e6 if ts is not None else source.get("ts_ms", 0) / 1e3
    return Change(
        table=table,
        key=key,
        op=str(payload.get("op")),
        txid=None if source.get("txId") is None else int(source["txId"]),
        lsn=int(source["lsn"]),
        committed_at=float(committed),
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        kafka_at=msg.timestamp()[1] / 1e3,
    )


class Tracer:
    """The readers a trace needs; `follow` fills a `Trace` in as far as the change has come."""

    def __init__(
        self,
        *,
        dsn: str,
        bootstrap: str,
        topic_prefix: str,
        schema: str,
        objects: Any,
        bucket: str,
        trino: Trino,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`schema`: the source schema a table name without one is in."""
        self.dsn, self.bootstrap, self.topic_prefix, self.schema = dsn, bootstrap, topic_prefix, schema
        self.objects, self.bucket, self.trino, self.clock = objects, bucket, trino, clock

    @classmethod
    def reading(cls, ep: Endpoints) -> Tracer:
        """The stack's tracer: the source as the application role, Kafka, bronze as the object
        store's read-only user, and Trino as the analyst."""
        return cls(
            dsn=ep.source.dsn,
            bootstrap=ep.kafka.bootstrap,
            topic_prefix=ep.kafka.topic_prefix,
            schema=ep.source.schemas[0],
            objects=clients.object_store(ep, reader=True),
            bucket=ep.object_store.bucket,
            trino=clients.trino(ep, schema=ep.trino.silver_schema),
        )

    # ---- the source
    def key_columns(self, table: str) -> list[str]:
        """The source table's primary key; TraceError for a table the source does not have."""
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
                raise TraceError(f"no table {table} in the source")
            rows = conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)",
                (table,),
            ).fetchall()
        if not rows:
            raise TraceError(
                f"{table} has no primary key: silver refuses its changes (docs/cdc-semantics.md)"
            )
        return [r[0] for r in rows]

    def row_txid(self, table: str, key: dict[str, str]) -> int | None:
        """The transaction that last wrote the row (its `xmin`), None if the row does not exist."""
        import psycopg
        from psycopg import sql

        where = sql.SQL(" AND ").join(sql.SQL("{}::text = %s").format(sql.Identifier(c)) for c in key)
        schema, _, name = table.partition(".")
        query = (
            sql.SQL("SELECT xmin::text FROM {}.{} WHERE ").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            + where
        )
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(query, list(key.values())).fetchone()
        return None if row is None else int(row[0])

    # ---- Kafka
    def find(self, table: str, key: dict[str, str], txid: int | None) -> Change | None:
        """The newest event of the key in its topic (of transaction `txid`, when given): each
        partition is read backwards from its end, CHUNK records at a time."""
        from confluent_kafka import Consumer, TopicPartition

        topic = f"{self.topic_prefix}.{table}"
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": f"lakehouse-trace-{time.time_ns()}",
             "enable.auto.commit": False, "enable.partition.eof": True}
        )  # fmt: skip
        try:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                return None
            best: Change | None = None
            for p in sorted(meta.partitions):  # a key stays on one; each is searched
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                end, here = high, None
                while here is None and end > low and high - end < SEARCH_LIMIT:
                    start = max(low, end - CHUNK)
                    here = self._scan(consumer, TopicPartition(topic, p, start), end, (table, key, txid))
                    end = start
                if here is not None and (best is None or here.lsn > best.lsn):
                    best = here
            return best
        finally:
            consumer.close()

    @staticmethod
    def _scan(
        consumer: Any, tp: Any, end: int, want: tuple[str, dict[str, str], int | None]
    ) -> Change | None:
        """The newest matching change (`want`: table, key, txid) in offsets [tp.offset, end) of one
        partition."""
        table, key, txid = want
        consumer.assign([tp])
        newest: Change | None = None
        offset = tp.offset
        while offset < end:
            msgs = consumer.consume(num_messages=1000, timeout=5)
            if not msgs:
                break
            for msg in msgs:
                if msg.error() is not None:
                    continue
                offset = msg.offset() + 1
                if msg.offset() >= end or _key_of(msg.key()) != key:
                    continue
                change = _change_of(table, key, msg)
                if change is None or (txid is not None and (change.txid or 0) & XID_MASK != txid & XID_MASK):
                    continue
                newest = change
        return newest

    def _event(self, trace: Trace) -> Change | None:
        """The change's event, once Kafka has it. Traced by its row's `xmin`, the newest event of
        the key is the change when its transaction is that one or a later one (a snapshot's read
        of a row written before it); an older one means the row's last change is still on its way
        (xids compared as 32-bit numbers, as Debezium gives them). A row that is gone was deleted:
        its newest event must be the delete."""
        if trace.exact:
            return self.find(trace.table, trace.key, trace.txid)
        newest = self.find(trace.table, trace.key, None)
        trace.unknown = newest is None and trace.txid is None
        if newest is None:
            return None
        if trace.txid is None:  # the row is gone: its change is the delete
            return newest if newest.op == "d" else None
        if (newest.txid or 0) & XID_MASK < trace.txid & XID_MASK:
            return None
        return newest

    # ---- bronze
    def bronze_object(self, change: Change) -> tuple[str, float] | None:
        """The bronze object holding the change's offset and when it was written."""
        prefix = f"{bronze_topic(change.topic)}partition={change.partition}/"
        for obj in self.objects.list_objects(self.bucket, prefix=prefix, recursive=True):
            found = object_range(obj.object_name)
            if found is not None and found[2] <= change.offset <= found[3]:
                return obj.object_name, obj.last_modified.timestamp()
        return None

    # ---- silver, through Trino
    def merge_on_read(self, table: str) -> bool:
        """Whether silver keeps the table as base + change log (catalog-sync registered both)."""
        name = table.partition(".")[2]
        try:
            self.trino.query(f'SELECT 1 FROM {SILVER_BASE}."{name}" LIMIT 0')
        except QueryError:
            return False
        return True

    def commits(self, folder: str, first: int) -> list[tuple[int, float]]:
        """The Delta table's commits numbered `first` and on (folder: its key, ending in `/`),
        oldest first, each with when it was written: a listing of its `_delta_log/` in the object
        store, so that following a change asks Trino nothing until a commit may hold it."""
        after = commit_name(folder, first - 1) if first > 0 else None
        return [
            (commit_version(o.object_name), o.last_modified.timestamp())
            for o in commit_objects(self.objects, self.bucket, folder, after)
        ]

    def first_commit(self, schema: str, name: str, c: Change, cursor: dict[str, int]) -> Found | None:
        """The first Delta commit of `schema.name` made after the event reached Kafka that holds
        the change (`Change.holds_sql`; for a delete in a table, not a log: no older row of the
        key left). Commits are listed from the object store and each one made after the event is
        asked through Trino, oldest first, at most SCAN_LIMIT per call; `cursor` keeps where the
        last call stopped, so following a change in flight lists and asks each commit once."""
        where = f"{schema}.{name}"
        folder = (silver_log_table if schema == SILVER_LOG else layout_silver_table)(c.table) + "/"
        absent = c.op == "d" and schema != SILVER_LOG
        asked = 0
        for version, ts in self.commits(folder, cursor.get(where, 0)):
            if ts < c.kafka_at - 1:  # written before the event reached Kafka: cannot hold it
                cursor[where] = version + 1
                continue
            if asked == SCAN_LIMIT:
                break
            asked += 1
            at = f'{schema}."{name}" FOR VERSION AS OF {version}'
            try:
                if absent:
                    older = f"{key_sql(c.key)} AND _lsn < {int(c.lsn)}"
                    held = not self.trino.query(f"SELECT 1 FROM {at} WHERE {older} LIMIT 1").rows
                    commit_lsn = None
                else:
                    commit_lsn = self.trino.scalar(f"SELECT max(_commit_lsn) FROM {at} WHERE {c.holds_sql()}")
                    held = commit_lsn is not None
            except QueryError:  # not registered in Trino yet: ask again on the next call
                return None
            if held:
                return Found(where, version, ts, None if commit_lsn is None else int(commit_lsn))
            cursor[where] = version + 1
        return None

    def visible(self, change: Change) -> bool:
        """Whether a query on `silver.<table>` (the live view, or the table) answers with the change."""
        name = change.table.partition(".")[2]
        if change.op == "d":
            older = f"{key_sql(change.key)} AND _lsn < {int(change.lsn)}"
            return not self.trino.query(f'SELECT 1 FROM {SILVER}."{name}" WHERE {older} LIMIT 1').rows
        return bool(
            self.trino.query(f'SELECT 1 FROM {SILVER}."{name}" WHERE {change.holds_sql()} LIMIT 1').rows
        )

    # ---- all hops
    def start(self, table: str, key_text: str) -> Trace:
        """A trace of the row's latest change."""
        if "." not in table:
            table = f"{self.schema}.{table}"
        key = parse_key(key_text, self.key_columns(table))
        return Trace(table, key, self.merge_on_read(table), txid=self.row_txid(table, key))

    def follow(self, trace: Trace, ask_trino: bool = True) -> Trace:
        """Fill in every hop the change has reached by now (the ones already known stay). Without
        `ask_trino`, the trino hop is left to the caller (the page times it with its own query)."""
        if trace.change is None:
            trace.change = self._event(trace)
            if trace.change is None:
                return trace
        c, hops = trace.change, trace.hops
        name = c.table.partition(".")[2]
        hops["postgres"].at = c.committed_at
        hops["postgres"].detail = {"txid": c.txid, "lsn": c.lsn, "op": c.op, **hops["postgres"].detail}
        hops["kafka"].at = c.kafka_at
        hops["kafka"].detail = {"topic": c.topic, "partition": c.partition, "offset": c.offset}
        if hops["bronze"].at is None:
            obj = self.bronze_object(c)
            if obj is not None:
                hops["bronze"].at, hops["bronze"].detail = obj[1], {"object": obj[0]}
        steps = [("silver", SILVER_LOG if trace.merge_on_read else SILVER)]
        if trace.merge_on_read:
            steps.append(("base", SILVER_BASE))
        for hop, schema in steps:
            if hops[hop].at is not None:
                continue
            found = self.first_commit(schema, name, c, trace.cursor)
            if found is None:
                break  # the base cannot have what the log has not
            hops[hop].at = found.at
            hops[hop].detail = {"table": found.table, "version": found.version}
            if found.commit_lsn is not None:
                hops["postgres"].detail["commit_lsn"] = found.commit_lsn
        if ask_trino and hops["trino"].at is None and hops["silver"].at is not None:
            if self.visible(c):
                # seen now; a change already visible when first asked was so from its silver commit
                asked = hops["trino"].detail.get("asked", False)
                hops["trino"].at = self.clock() if asked else hops["silver"].at
                hops["trino"].detail = {"query": f"{SILVER}.{name}"}
            else:
                hops["trino"].detail = {"asked": True}
        return trace


def trace(tracer: Tracer, table: str, key_text: str, timeout_s: float, poll_s: float = 1.0) -> Trace:
    """Follow the row's latest change until it is visible in Trino (and, with merge-on-read, folded
    into the base) or `timeout_s` passed. TraceError for a key with neither a row nor an event."""
    t = tracer.start(table, key_text)
    deadline = time.monotonic() + timeout_s
    while True:
        tracer.follow(t)
        if t.unknown:
            raise TraceError(f"{t.table} has no row {key_text} and its topic no change of it")
        if t.complete() or time.monotonic() >= deadline:
            return t
        time.sleep(poll_s)


def lsn_text(lsn: int) -> str:
    """An LSN as Postgres writes it (`16/B374D848`)."""
    return f"{lsn >> 32:X}/{lsn & XID_MASK:X}"


#: what each hop's line names
_WHERE: dict[str, Callable[[dict[str, Any]], str]] = {
    "postgres": lambda d: (
        f"txid {d.get('txid')}, change LSN {lsn_text(d['lsn'])}"
        + (f", commit LSN {lsn_text(d['commit_lsn'])}" if d.get("commit_lsn") else "")
    ),
    "kafka": lambda d: f"{d['topic']} partition {d['partition']} offset {d['offset']}",
    "bronze": lambda d: f"{d['object']} (beside the path: silver reads Kafka)",
    "silver": lambda d: f"{d['table']} version {d['version']}",
    "base": lambda d: f"{d['table']} version {d['version']}",
    "trino": lambda d: f"SELECT … FROM {d['query']}",
}
_OPS = {"c": "insert", "u": "update", "d": "delete", "r": "snapshot read"}


def describe(hop: str, detail: dict[str, Any]) -> str:
    """Where a hop has the change, in words (empty while it has not)."""
    try:
        return _WHERE[hop](detail)
    except KeyError:  # not reached yet: its detail is not filled in
        return ""


def render(t: Trace) -> str:
    """The trace as lines for a terminal: one per hop, its time since the commit, the slowest marked."""
    key = ", ".join(f"{k}={v}" for k, v in t.key.items())
    op = _OPS.get(t.change.op, t.change.op) if t.change else "change"
    lines = [f"{t.table} {key}: {op} ({'merge-on-read' if t.merge_on_read else 'merge-on-write'} silver)"]
    slowest = t.slowest()
    for h in t.expected():
        hop = t.hops[h]
        if hop.at is None:
            note = "not folded yet (off the freshness path)" if h == "base" else "not yet"
            lines.append(f"  {h:<9} {'':>9}  {note}")
            continue
        after = t.after_s(h)
        mark = "  ← slowest hop" if h == slowest else ""
        lines.append(f"  {h:<9} {after:>+8.2f}s  {describe(h, hop.detail)}{mark}")
    return "\n".join(lines)

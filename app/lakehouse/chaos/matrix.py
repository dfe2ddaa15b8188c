"""The chaos matrix: under a steady load of hard-type changes, kill -9 one component at a time, let
its supervisor bring it back, and prove silver equals the source with nothing quarantined.

Per fault it measures what an operator would want to know: how long until the component was
ready again, how long until silver had caught up (verify clean), which alerts fired and after how
long, and the worst end-to-end freshness seen meanwhile (the heartbeat's age in silver).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from lakehouse.chaos.workload import Load, Workload
from lakehouse.clients import admin_client
from lakehouse.errors import UsageError
from lakehouse.launcher import connectors
from lakehouse.launcher.services.base import Service
from lakehouse.launcher.services.postgres import SLOT
from lakehouse.pipeline.query import inventory
from lakehouse.pipeline.silver.faults import CRASH_AT_ENV, EXIT_CODE, FIRED, POINTS
from lakehouse.polling import wait_until

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakehouse.launcher.stack import Stack

#: what `lakehouse chaos` kills, one at a time, in this order (the slowest to come back last);
#: `connect@task` ends the connector task's replication session instead of a process; killing
#: `connect` also kills the bronze sink (a connector in the same worker)
COMPONENTS = (
    "silver", "kafka", "connect", "connect@task", "postgres", "minio", "catalog-sync", "monitor",
    "metastore", "trino",
)  # fmt: skip
#: the silver job exiting hard at each point of a micro-batch (silver/faults.py), once. Not
#: `after-quarantine` nor `after-cut`: only a batch that quarantines something, or that holds a
#: TRUNCATE or a snapshot, reaches them, and the load is valid changes only
#: (tests/spark/test_faults.py kills a job at both, with a poison event and a TRUNCATE).
#: `after-fold` is merge-on-read's compactor (a fold within `compaction.age.s` of the load's
#: start); a merge-on-write silver never reaches it, and the fault is skipped with that reason
CRASHES = tuple(f"silver@{point}" for point in POINTS if point not in ("after-quarantine", "after-cut"))
#: longer faults, on request only (`--service minio@outage --outage 300`)
OUTAGES = tuple(f"{c}@outage" for c in COMPONENTS if "@" not in c)
#: the data path between the source and silver, away together while the source keeps writing
PIPELINE = ("kafka", "connect", "silver")
#: components no change passes through on its way to silver: killing one cannot lose a change, so
#: a short run may leave their check to the next fault's verify (it compares the whole table,
#: changes made during the earlier faults included). The metastore is one: silver reads and writes
#: its tables by path, and the catalog sync registers what it makes once the metastore is back
OFF_PATH = ("catalog-sync", "monitor", "metastore", "trino")
#: faults of the whole stack, on request only: the pipeline away for `--outage` seconds (the
#: source's slot holds the WAL meanwhile), and `down`/`up` of everything CYCLES times under load
STACK_FAULTS = ("pipeline@outage", "stack@cycles")
CYCLES = 5
TABLE = "chaos"
HEARTBEAT_FRESHNESS = 'lakehouse_silver_freshness_seconds{table="pipeline_heartbeat"}'
SLOT_WAL = f'lakehouse_postgres_slot_retained_wal_bytes{{slot="{SLOT}"}}'


@dataclass
class Fault:
    """What one kill did."""

    service: str
    killed_pid: int | None = None
    #: kill → the component answering its readiness probe again (a new process)
    back_s: float | None = None
    #: kill → silver equal to the source again
    caught_up_s: float | None = None
    #: alert → seconds after the kill Alertmanager first held it active
    alerts: dict[str, float] = field(default_factory=dict)
    #: the heartbeat's age in silver, the worst the monitor reported during the fault
    peak_freshness_s: float | None = None
    #: the most WAL the source held for the connector's slot meanwhile
    peak_slot_wal_bytes: float | None = None
    #: how the supervisor saw the process end, and the exit this fault should cause
    exit_seen: str | None = None
    exit_expected: str = "killed by SIGKILL"
    changes: int = 0
    #: False: silver was not compared after this fault; a later fault's verify covered its changes
    verified: bool = True
    #: source transactions of the load that failed (the source itself down) and were not committed
    failed_transactions: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    #: keys silver (or the source) holds more than once, and the two sides' row counts
    duplicates: int = 0
    rows: tuple[int, int] = (0, 0)
    quarantined: int = 0
    error: str | None = None

    @property
    def clean(self) -> bool:
        return (
            self.error is None
            and self.back_s is not None
            and (self.caught_up_s is not None or not self.verified)
            and self.exit_seen == self.exit_expected
            and self.missing == self.extra == self.different == self.duplicates == self.quarantined == 0
            and self.rows[0] == self.rows[1]
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


class Watch(threading.Thread):
    """Polls Alertmanager and Prometheus every 2 s from `since` (before the fault): alerts first
    seen (their time.monotonic()), peak heartbeat freshness, peak WAL held for the slot."""

    def __init__(self, stack: Stack, since: float) -> None:
        super().__init__(name="chaos-watch", daemon=True)
        self.stack, self.since = stack, since
        self.since_wall = time.time() - (time.monotonic() - since)
        self.alerts: dict[str, float] = {}
        self.peak: float | None = None
        self.peak_wal: float | None = None
        self._halt = threading.Event()

    def _max(self, http: httpx.Client, query: str, now: float | None) -> float | None:
        """The larger of `now` and the query's current value (unchanged when Prometheus is away)."""
        try:
            got = http.get(f"{self.stack.s.prometheus_url}/api/v1/query", params={"query": query})
            for series in got.raise_for_status().json()["data"]["result"]:
                value = float(series["value"][1])
                now = value if now is None else max(now, value)
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        return now

    def run(self) -> None:
        s = self.stack.s
        with httpx.Client(trust_env=False, timeout=3) as http:
            while not self._halt.wait(2):
                try:
                    for alert in http.get(f"{s.alertmanager_url}/api/v2/alerts").raise_for_status().json():
                        labels = alert["labels"]
                        about = labels.get("service") or labels.get("job") or labels.get("table")
                        name = labels["alertname"] + (f"({about})" if about else "")
                        began = datetime.fromisoformat(alert["startsAt"]).timestamp()
                        fresh = began >= self.since_wall - 1  # not one that was firing already
                        if alert["status"]["state"] == "active" and fresh and name not in self.alerts:
                            self.alerts[name] = time.monotonic()
                except (httpx.HTTPError, ValueError, KeyError):
                    pass  # Alertmanager is one of the things that can be down
                self.peak = self._max(http, HEARTBEAT_FRESHNESS, self.peak)
                self.peak_wal = self._max(http, SLOT_WAL, self.peak_wal)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def quarantined(stack: Stack, table: str) -> int:
    """Events of `table` waiting in quarantine (through Trino, as the admin)."""
    trino = admin_client(stack.s, stack.ctx.secrets)
    if not inventory.registered(trino).quarantine:
        return 0
    _, blocked = inventory.quarantine(trino)
    return sum(b.events for b in blocked if b.source_table == table)


@dataclass(frozen=True)
class Plan:
    rate: float = 30.0
    #: load before the kill, and after the component is back
    lead_s: float = 10.0
    after_s: float = 10.0
    #: generous: a killed silver job restarts a JVM and re-runs its batch cold (about 2 minutes
    #: on an idle 2-core stack, 3.5-5.5 under the chaos load); this bounds a hang, it does not
    #: grade speed (`back_s` measures that)
    back_timeout_s: float = 480.0
    #: how long a `<component>@outage` fault keeps the component away
    outage_s: float = 300.0
    catch_up_timeout_s: float = 420.0


class _Skipped(Exception):
    """The fault could not be injected (the message says why)."""


@dataclass
class Injected:
    """A fault that happened: the process (or connection) it ended, when, how to tell it is back."""

    victim: int
    at: float  # time.monotonic()
    back: Callable[[], bool]
    #: how the victim's end was observed (the supervisor's record, or the connector's new session)
    ended: Callable[[], str | None]


def _last_exit(svc: Service) -> str | None:
    r = svc.restarts()
    return r.last_exit.reason if r and r.last_exit else None


def _supervised(svc: Service, victim: int, at: float) -> Injected:
    return Injected(
        victim,
        at,
        back=lambda: svc.pid() not in (None, victim) and svc.ready(),
        ended=lambda: _last_exit(svc),
    )


def _kill(svc: Service, plan: Plan) -> Injected:
    """kill -9 the running service after the lead time."""
    time.sleep(plan.lead_s)
    pid = svc.pid()
    if pid is None:
        raise _Skipped(f"{svc.name} was not running")
    os.kill(pid, signal.SIGKILL)
    return _supervised(svc, pid, time.monotonic())


def _crash(svc: Service, point: str, plan: Plan) -> Injected:
    """Start silver armed to exit hard once at `point` (silver/faults.py) and wait until it does."""
    fired = svc.data_dir / FIRED
    svc.stop()
    fired.unlink(missing_ok=True)
    os.environ[CRASH_AT_ENV] = point  # what the service's environment is built from
    try:
        svc.launch()
    finally:
        del os.environ[CRASH_AT_ENV]
    pid = svc.pid()
    if pid is None or not wait_until(fired.exists, timeout=plan.back_timeout_s, interval=0.2):
        raise _Skipped(f"silver did not reach {point} within {plan.back_timeout_s:.0f}s")
    return _supervised(svc, pid, time.monotonic() - max(0.0, time.time() - fired.stat().st_mtime))


SLOT_SESSION = "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s"


def _task(stack: Stack, plan: Plan) -> Injected:
    """End the Debezium task's replication session from the source side (pg_terminate_backend,
    as a failover or an idle-session killer would); Debezium treats it as retriable and the task
    opens a new one."""
    time.sleep(plan.lead_s)

    def session() -> int | None:
        with psycopg.connect(stack.postgres.superuser_dsn, autocommit=True) as conn:
            row = conn.execute(SLOT_SESSION, [SLOT]).fetchone()
        return None if row is None else row[0]

    victim = session()
    if victim is None:
        raise _Skipped("the replication slot has no active session")
    with psycopg.connect(stack.postgres.superuser_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [victim])
    at = time.monotonic()
    name = stack.source_connector_name()

    streams: list[int] = []  # the new sessions seen, one entry per poll

    def back() -> bool:
        """A new session seen on two polls in a row, the task RUNNING: Debezium's start opens and
        closes short-lived replication connections (checking the slot) before the one that streams,
        so one sighting can be a session that is gone at the next look."""
        now = session()
        if now in (None, victim):
            streams.clear()
            return False
        streams.append(now)
        if streams[-2:] != [now, now]:
            return False
        st = connectors.status(stack.s.connect_url, name) or {}
        return [t["state"] for t in st.get("tasks", [])] == ["RUNNING"]

    return Injected(victim, at, back, ended=lambda: TASK_ENDED if len(streams) >= 2 else None)


TASK_ENDED = "replication session terminated; a new one streams"


OUTAGE_ENDED = "stopped for the outage, started again"


def _outage(svc: Service, plan: Plan) -> Injected:
    """The component away for `plan.outage_s` (stopped, as a lost host or a network partition
    would make it), then started again; the rest of the stack rides it out."""
    time.sleep(plan.lead_s)
    victim = svc.pid()
    if victim is None:
        raise _Skipped(f"{svc.name} was not running")
    svc.stop()
    at = time.monotonic()
    time.sleep(plan.outage_s)
    svc.start()
    return Injected(
        victim, at, back=lambda: svc.pid() is not None and svc.ready(), ended=lambda: OUTAGE_ENDED
    )


def _pipeline_outage(stack: Stack, plan: Plan) -> Injected:
    """Kafka, Connect (with the bronze sink connector) and silver away for `plan.outage_s` while the
    source keeps writing (Postgres, the monitor and the alerting stay up to see it), then `up` again."""
    time.sleep(plan.lead_s)
    victim = stack.silver.pid()
    if victim is None:
        raise _Skipped("silver was not running")
    stack.down(only=PIPELINE)
    at = time.monotonic()
    time.sleep(plan.outage_s)
    stack.up()
    return Injected(victim, at, back=lambda: _all_ready(stack), ended=lambda: OUTAGE_ENDED)


CYCLES_ENDED = f"{CYCLES} times down and up"


def _cycles(stack: Stack, plan: Plan) -> Injected:
    """`lakehouse down` and `lakehouse up` of the whole stack CYCLES times under load (the load's
    transactions fail while Postgres is down and are counted, not committed)."""
    victim = stack.silver.pid()
    if victim is None:
        raise _Skipped("silver was not running")
    at = time.monotonic()
    for _ in range(CYCLES):
        time.sleep(plan.lead_s)
        stack.down()
        stack.up()
    return Injected(victim, at, back=lambda: _all_ready(stack), ended=lambda: CYCLES_ENDED)


def _all_ready(stack: Stack) -> bool:
    return all(svc.pid() is not None and svc.ready() for svc in stack.services)


def one(
    stack: Stack, spark: SparkSession, work: Workload, fault_name: str, plan: Plan, *, check: bool = True
) -> Fault:
    """Inject one fault under load (kill -9 a component, a silver crash point, the connector
    task's session); verify the load's table once it is back (unless `check` is False)."""
    from lakehouse.pipeline.silver.commands import verify

    service, _, point = fault_name.partition("@")
    whole = fault_name in STACK_FAULTS
    svc = stack.silver if whole else stack.service(service)
    expected = {
        "": "killed by SIGKILL",
        "task": TASK_ENDED,
        "outage": OUTAGE_ENDED,
        "cycles": CYCLES_ENDED,
    }.get(point, f"exited with code {EXIT_CODE}")
    fault = Fault(fault_name, exit_expected=expected)
    source = f"{stack.s.source_schema}.{TABLE}"
    before = quarantined(stack, source)
    load = Load(stack.postgres.app_dsn, work, plan.rate)
    changes_before = work.changes
    load.start()
    watch = Watch(stack, time.monotonic())
    watch.start()
    hit: Injected | None = None
    try:
        try:
            if fault_name == "pipeline@outage":
                hit = _pipeline_outage(stack, plan)
            elif fault_name == "stack@cycles":
                hit = _cycles(stack, plan)
            elif point == "task":
                hit = _task(stack, plan)
            elif point == "outage":
                hit = _outage(svc, plan)
            elif point:
                hit = _crash(svc, point, plan)
            else:
                hit = _kill(svc, plan)
        except _Skipped as exc:
            fault.error = str(exc)
            return fault
        fault.killed_pid = hit.victim
        if not wait_until(hit.back, timeout=plan.back_timeout_s, interval=0.5):
            now = svc.status().as_dict()
            fault.error = f"{service} was not back within {plan.back_timeout_s:.0f}s: {now}"
            return fault
        fault.back_s = round(time.monotonic() - hit.at, 1)
        fault.exit_seen = hit.ended()
        time.sleep(plan.after_s)
        load.stop()
        if not check:
            fault.verified = False
            return fault
        (diff,) = verify(stack.s, stack.endpoints, [source], wait_s=plan.catch_up_timeout_s, spark=spark)
        fault.missing, fault.extra, fault.different = diff.missing, diff.extra, diff.different
        fault.duplicates, fault.rows = diff.duplicates, (diff.source_rows, diff.silver_rows)
        if diff.error is not None:
            fault.error = diff.error
        elif diff.clean:
            fault.caught_up_s = round(time.monotonic() - hit.at, 1)
        fault.quarantined = quarantined(stack, source) - before
        return fault
    finally:
        load.stop()
        fault.changes = work.changes - changes_before
        fault.failed_transactions = load.failed_transactions
        if fault.changes == 0 and fault.error is None:
            fault.error = f"the load committed no change (last error: {load.last_error})"
        watch.stop()
        if hit is not None:  # alerts: seconds after the fault began
            fault.alerts = {k: round(max(0.0, t - hit.at), 1) for k, t in watch.alerts.items()}
            fault.peak_freshness_s, fault.peak_slot_wal_bytes = watch.peak, watch.peak_wal
        if point in POINTS:  # silver runs on, disarmed; start it again without the setting
            svc.stop()
            svc.start()


def choose(services: tuple[str, ...]) -> list[str]:
    known = (*COMPONENTS, *CRASHES, *OUTAGES, *STACK_FAULTS)
    unknown = [s for s in services if s not in known]
    if unknown:
        raise UsageError(f"--service {unknown[0]!r}: one of {', '.join(known)}")
    return list(services) or [*COMPONENTS, *CRASHES]


def run(
    stack: Stack,
    services: list[str],
    plan: Plan,
    *,
    seed: int = 7,
    spark: SparkSession | None = None,
    check_off_path: bool = True,
    progress: Callable[[Fault], None] = lambda f: None,
) -> list[Fault]:
    """Every chosen fault in turn, on one table of hard-type changes (ids from 50,000,000 up).
    With `check_off_path` False, a fault of an OFF_PATH component is not verified on its own
    unless it is the last: the next fault's verify covers its changes."""
    work = Workload(f"{stack.s.source_schema}.{TABLE}", seed, first_id=50_000_000)
    with psycopg.connect(stack.postgres.app_dsn) as conn:
        work.create(conn)
        work.reload_ids(conn)
        if work.ids:
            work.next_id = max(work.ids) + 1
    results = []
    from lakehouse.pipeline.silver.commands import spark_for

    with (
        nullcontext(spark)
        if spark is not None
        else spark_for(stack.s, stack.endpoints, "lakehouse-chaos") as session
    ):
        for i, service in enumerate(services):
            check = check_off_path or service not in OFF_PATH or i == len(services) - 1
            fault = one(stack, session, work, service, plan, check=check)
            progress(fault)
            results.append(fault)
    return results

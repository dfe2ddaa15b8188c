"""What `lakehouse status` reports: each service's state and each connector's, typed. `as_dict`
is the `--json` form: a service's own details (its URLs, the replication slot, …) beside its
state, fields it does not have left out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

READY = "ready"
RUNNING = "RUNNING"


@dataclass(frozen=True)
class LastExit:
    """How the supervised process last ended: `killed by SIGKILL`, `exit 1`, …; when (epoch
    seconds), after how long a run."""

    reason: str
    at: float
    ran_s: float


@dataclass(frozen=True)
class Restarts:
    """What a service's supervisor counted since `up`."""

    restarts: int = 0
    last_exit: LastExit | None = None
    restart_at: float | None = None  # when the next start is due (epoch seconds), while backing off

    @classmethod
    def of(cls, state: dict[str, Any] | None) -> Restarts | None:
        """From the supervisor's state file (None: it has written none)."""
        if state is None:
            return None
        last = state.get("last_exit")
        return cls(
            restarts=int(state.get("restarts", 0)),
            last_exit=LastExit(last["reason"], float(last["at"]), float(last["ran_s"])) if last else None,
            restart_at=state.get("restart_at"),
        )


@dataclass(frozen=True)
class ServiceStatus:
    """ready, starting, restarting (its supervisor is bringing it back), stopped, down (compose:
    the probe fails) or error (running, but broken: `error` says how)."""

    state: str
    pid: int | None
    log: str  # its log file, or the command that shows it
    supervised: bool | None = None  # None: compose runs it
    restarts: Restarts | None = None
    error: str | None = None
    #: what the service adds when ready: its URLs, the replication slot, …
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == READY

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "pid": self.pid}
        if self.supervised is not None:
            out["supervised"] = self.supervised
        out["log"] = self.log
        if self.restarts is not None:
            out.update({k: v for k, v in asdict(self.restarts).items() if v is not None})
        if self.error is not None:
            out["error"] = self.error
        return {**out, **self.details}


@dataclass(frozen=True)
class ConnectorStatus:
    """A Kafka Connect connector: RUNNING, PAUSED, FAILED, UNREGISTERED, or UNKNOWN while Connect
    is down; its tasks' states; what is wrong beyond that (a lost replication slot)."""

    state: str
    tasks: list[str] | None = None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.state == RUNNING and not self.error

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class StackStatus:
    services: dict[str, ServiceStatus]
    connectors: dict[str, ConnectorStatus]

    @property
    def healthy(self) -> bool:
        """Every service ready and every connector running."""
        return all(s.ready for s in self.services.values()) and all(
            c.healthy for c in self.connectors.values()
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "services": {n: s.as_dict() for n, s in self.services.items()},
            "connectors": {n: c.as_dict() for n, c in self.connectors.items()},
        }

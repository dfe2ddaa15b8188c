"""What every native service has: pid/log files, a readiness probe, a bounded wait, a likely fix."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lakehouse.config.run_state import read_state
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings, env_name
from lakehouse.config.versions import Versions
from lakehouse.errors import ServiceError
from lakehouse.launcher import procs
from lakehouse.launcher.status import READY, Restarts, ServiceStatus
from lakehouse.polling import wait_until

#: native service → its compose service: the same name, except the web page, which is `app`
#: (that container is also where you run the CLI: `docker compose exec app lakehouse …`)
RENAMED = {"web": "app"}


def twin(native: str) -> str:
    """The compose service that runs what the native `native` service runs."""
    return RENAMED.get(native, native)


@dataclass
class Context:
    settings: Settings
    secrets: Secrets
    versions: Versions
    notes: list[str] = field(default_factory=list)


class Service(ABC):
    name: ClassVar[str]
    port_fields: ClassVar[tuple[str, ...]] = ()
    #: signal that asks the service for a clean, quick shutdown
    stop_signal: ClassVar[int] = 15
    #: slow to get ready, and nothing later in the start order needs it ready: `up` spawns it,
    #: starts the services after it meanwhile, and waits for it at the end
    overlaps: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.s = ctx.settings

    # -- files ---------------------------------------------------------------------------
    @property
    def files(self) -> procs.ProcFiles:
        return procs.ProcFiles(self.s.run / f"{self.name}.pid", self.s.logs / f"{self.name}.log")

    @property
    def host(self) -> str:
        """Where this service listens and is reached (see Settings.addr)."""
        return self.s.addr(self.name)

    @property
    def data_dir(self) -> Path:
        return self.s.state(self.name)

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    def argv(self) -> list[str]: ...

    @abstractmethod
    def ready(self) -> bool: ...

    def prepare(self) -> None:  # noqa: B027  (optional hook)
        """One-time or every-start preparation before the process is spawned."""

    def after_ready(self) -> None:  # noqa: B027  (optional hook)
        """One-shot jobs that need the service up (buckets, roles, connectors)."""

    def templates(self) -> dict[str, dict[str, object]]:
        """Repo-relative config templates this service renders, with their values (preflight)."""
        return {}

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def run_as(self) -> str | None:
        return None

    def cmd_marker(self) -> str | None:
        """What the running process's command line contains, if argv[0] execs something else."""
        return None

    def fix_hint(self, log: str) -> str:
        return f"see the log above; `lakehouse logs {self.name}` shows all of it"

    def details(self) -> dict[str, Any]:
        return {}

    # -- lifecycle -----------------------------------------------------------------------
    def pid(self) -> int | None:
        """The service's own process, if it runs."""
        return procs.alive(self.files.pidfile)

    def supervisor(self) -> int | None:
        """The supervisor that restarts the service when it dies, if it runs."""
        return procs.supervisor(self.files)

    def restarts(self) -> Restarts | None:
        """How often the supervisor restarted the service since `up`, and how it last ended."""
        return Restarts.of(read_state(self.files.statefile))

    def _port_hint(self, log: str) -> str | None:
        lowered = log.lower()
        if "address already in use" in lowered or "bindexception" in lowered:
            ports = ", ".join(f"{getattr(self.s, f)} ({env_name(f)})" for f in self.port_fields)
            return f"a port is taken: {ports}; stop what uses it or set that variable to a free port"
        return None

    def start(self) -> str:
        """Spawn the process unless it runs, and wait until it is ready."""
        if self.launch():
            return self.wait_ready()
        if self.ready():
            self.after_ready()
            return "already running"
        return self._wait("was running but not ready")

    def launch(self) -> bool:
        """Spawn the process without waiting for it; False if it runs already."""
        if self.pid() is not None:
            return False
        if self.supervisor() is not None:  # waiting to restart it: start it afresh, now
            self.stop()
        for f in self.port_fields:
            port = getattr(self.s, f)
            if not procs.port_free(self.host, port):
                raise ServiceError(
                    f"{self.name}: port {port} on {self.host} is taken by another process — "
                    f"stop it or set {env_name(f)} to a free port"
                )
        self.prepare()
        procs.spawn(
            self.files,
            self.argv(),
            env=self.env(),
            user=self.run_as(),
            marker=self.cmd_marker(),
            stop_signal=self.stop_signal,
        )
        return True

    def wait_ready(self) -> str:
        """After `launch`: wait until ready, or raise with the log's tail and the likely fix."""
        return self._wait("did not become ready")

    def _wait(self, why: str) -> str:
        ok = wait_until(
            self.ready,
            timeout=self.s.ready_timeout_s,
            still_running=lambda: self.pid() is not None,
        )
        if not ok:
            log = procs.tail(self.files.logfile, 60)
            reason = why if self.pid() is not None else "exited during start-up"
            if self.pid() is None:  # it would only fail again: `up` names it instead of looping
                self.stop()
            fix = self._port_hint(log) or self.fix_hint(log)
            procs.raise_not_ready(self.name, self.files.logfile, reason, fix)
        self.after_ready()
        return "started"

    def stop(self) -> bool:
        return procs.stop(self.files, self.stop_signal)

    def status(self) -> ServiceStatus:
        if self.s.service_hostnames:  # compose runs the processes: no pid files, the probe decides
            ready = self.ready()
            logs = f"docker compose logs {twin(self.name)}"
            details = self.details() if ready else {}
            return ServiceStatus(READY if ready else "down", None, logs, details=details)
        pid, supervised = self.pid(), self.supervisor() is not None
        if pid is None:
            state = "restarting" if supervised else "stopped"
        else:
            state = READY if self.ready() else "starting"
        return ServiceStatus(
            state,
            pid,
            str(self.files.logfile),
            supervised=supervised,
            restarts=self.restarts(),
            details=self.details() if state == READY else {},
        )
        pid, supervised = self.pid(), self.supervisor() is not None
        if pid is None:
            state = "restarting" if supervised else "stopped"
        else:
            state = "ready" if self.ready() else "starting"
        out = {"state": state, "pid": pid, "supervised": supervised, "log": str(self.files.logfile)}
        out.update(self.restarts())
        if state == "ready":
            out.update(self.details())
        return out

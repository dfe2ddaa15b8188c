"""Keep one native service running, as compose's `restart: unless-stopped` does for a container.

`lakehouse up` starts every native service through this small process
(`python -m lakehouse.launcher.supervisor … -- <service command>`). It starts the service, records the
service's own pid in the pid file (so `kill -9 $(cat kafka.pid)` kills Kafka, not the
supervisor), and when the service exits without having been asked to — a crash, `Java heap
space`, the OOM killer, kill -9 — it logs how the service ended and starts it again after a
backoff: 1 s, doubling up to 30 s, back to 1 s once a run has lasted 60 s.

The restart count and the last exit are kept in `<name>.state.json` beside the pid file:
`lakehouse status` shows them and the monitor exports them (`lakehouse_service_restarts_total`,
alert `LakehouseServiceFlapping`). SIGTERM asks the supervisor to stop: it passes the service's
own stop signal on, waits for the service to exit, and ends without restarting it.

Standard library only: it stays small (one per service) and starts in a few milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from lakehouse.launcher.procs import ProcFiles


@dataclass(frozen=True)
class Policy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    #: a run at least this long counts as healthy: the next restart waits first_delay_s again
    stable_after_s: float = 60.0

    def next_delay(self, delay: float, ran_s: float) -> float:
        """The wait before the restart after this one."""
        if ran_s >= self.stable_after_s:
            return self.first_delay_s
        return min(delay * 2, self.max_delay_s)


@dataclass
class Exit:
    at: float
    code: int | None  # exit status, None when a signal ended it
    signal: str | None
    ran_s: float

    @property
    def reason(self) -> str:
        if self.signal is not None:
            return f"killed by {self.signal}"
        return f"exited with code {self.code}"


def describe(returncode: int, at: float, ran_s: float) -> Exit:
    """Popen's returncode (negative: the signal that ended it) as an Exit."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return Exit(at, None, name, round(ran_s, 1))
    return Exit(at, returncode, None, round(ran_s, 1))


@dataclass
class State:
    """What `<name>.state.json` holds; `restarts` counts since this supervisor started."""

    supervisor_pid: int
    pid: int | None = None
    started_at: float | None = None
    restarts: int = 0
    last_exit: Exit | None = None
    #: set while waiting to restart the service
    restart_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.last_exit is not None:
            out["last_exit"]["reason"] = self.last_exit.reason
        return out


class Supervisor:
    def __init__(
        self,
        files: ProcFiles,
        argv: list[str],
        *,
        marker: str,
        stop_signal: int,
        user: str | None,
        policy: Policy = Policy(),
    ) -> None:
        self.files, self.argv, self.marker = files, argv, marker
        self.stop_signal, self.user, self.policy = stop_signal, user, policy
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None
        self.state = State(supervisor_pid=os.getpid())

    def _say(self, text: str) -> None:
        print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} supervisor: {text}", flush=True)

    def _save(self) -> None:
        tmp = self.files.statefile.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state.as_dict()))
        tmp.replace(self.files.statefile)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._signal_child()

    def _signal_child(self) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, self.stop_signal)

    def _start(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, user=self.user, start_new_session=True)
        self.files.pidfile.with_suffix(".cmd").write_text(self.marker)
        self.files.pidfile.write_text(f"{child.pid}\n")
        return child

    def _backoff(self, delay: float) -> bool:
        """Wait `delay` seconds; False if asked to stop meanwhile."""
        deadline = time.monotonic() + delay
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return not self.stopping

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        delay = self.policy.first_delay_s
        while True:
            started = time.monotonic()
            try:
                self.child = self._start()
            except OSError as exc:  # the command itself cannot run: restarting will not help
                self._say(f"cannot start {self.argv[0]}: {exc}")
                self.files.statefile.unlink(missing_ok=True)
                return 127
            if self.stopping:  # asked to stop while the service was being started
                self._signal_child()
            self.state.pid, self.state.started_at, self.state.restart_at = self.child.pid, time.time(), None
            self._save()
            returncode = self.child.wait()
            ended = describe(returncode, time.time(), time.monotonic() - started)
            self.state.pid = None
            if self.stopping:  # asked to: not an exit to report as the last failure
                self._save()
                self._say(f"stopped ({ended.reason})")
                return 0
            self.state.last_exit = ended
            self.state.restart_at = time.time() + delay
            self._save()
            self._say(
                f"{self.argv[0]} {ended.reason} after {ended.ran_s:.0f}s; "
                f"restart #{self.state.restarts + 1} in {delay:.0f}s"
            )
            if not self._backoff(delay):
                self._save()
                return 0
            delay = self.policy.next_delay(delay, ended.ran_s)
            self.state.restarts += 1


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lakehouse.launcher.supervisor", description=__doc__.splitlines()[0])
    p.add_argument("--pidfile", type=Path, required=True, help="where the service's pid goes")
    p.add_argument("--logfile", type=Path, required=True)
    p.add_argument("--marker", required=True, help="what the service's command line contains")
    p.add_argument("--stop-signal", type=int, default=signal.SIGTERM)
    p.add_argument("--user", default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    ns = p.parse_args(args)
    argv = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not argv:
        p.error("no command to supervise (put it after --)")
    files = ProcFiles(ns.pidfile, ns.logfile)
    sup = Supervisor(files, argv, marker=ns.marker, stop_signal=ns.stop_signal, user=ns.user)
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())

"""Start, probe and stop native service processes by pid file — `down` stops only what `up` started.

Every service runs under its own supervisor (lakehouse/supervisor.py), which restarts it when it
dies: the service's pid file holds the service's pid, `<name>.supervisor.pid` the supervisor's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config.run_state import STATE_SUFFIX
from lakehouse.errors import ServiceError

# Children started by this process, kept so they can be reaped (no zombies in a long-lived
# test session) and so their Popen objects are not garbage-collected while still running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcFiles:
    pidfile: Path
    logfile: Path

    @property
    def supervisor(self) -> Path:
        """The supervisor's pid file."""
        return self.pidfile.with_name(f"{self.pidfile.stem}.supervisor.pid")

    @property
    def statefile(self) -> Path:
        """Restarts and the last exit, written by the supervisor."""
        return self.pidfile.with_name(f"{self.pidfile.stem}{STATE_SUFFIX}")


SUPERVISOR_MARKER = "lakehouse.launcher.supervisor"


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _reap(pid: int) -> None:
    """Collect an exited child of ours, so it does not linger as a zombie that still `kill -0`s
    (a service's own launcher would then think its old pid is running)."""
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _CHILDREN[pid] = child


def alive(pidfile: Path) -> int | None:
    """The pid recorded in `pidfile` if that process still runs the command we started."""
    pid = read_pid(pidfile)
    if pid is None:
        return None
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    marker = pidfile.with_suffix(".cmd")
    expected = marker.read_text() if marker.exists() else ""
    state = Path(f"/proc/{pid}/stat")
    if state.exists() and state.read_text().split()[2] == "Z":
        _reap(pid)
        return None
    cmdline = _cmdline(pid)
    # an empty command line is a process between fork and exec (or exiting): not evidence of reuse
    if expected and cmdline and expected not in cmdline:
        return None  # pid reused by someone else's process
    return pid


def spawn(
    files: ProcFiles,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    marker: str | None = None,
    stop_signal: int = signal.SIGTERM,
    start_timeout: float = 15.0,
) -> int:
    """Start `argv` detached under a supervisor that restarts it when it dies; the service's pid.

    `marker` is what its command line contains once running (default argv[0]); `stop_signal` is
    what the supervisor passes on when asked to stop."""
    files.pidfile.parent.mkdir(parents=True, exist_ok=True)
    files.logfile.parent.mkdir(parents=True, exist_ok=True)
    for stale in (files.pidfile, files.statefile):
        stale.unlink(missing_ok=True)
    command = [sys.executable, "-I", "-m", SUPERVISOR_MARKER, "--pidfile", str(files.pidfile)]
    command += ["--logfile", str(files.logfile), "--marker", marker or argv[0]]
    command += ["--stop-signal", str(int(stop_signal))] + (["--user", user] if user else [])
    with open(files.logfile, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {argv[0]}\n".encode())
        log.flush()
        sup = subprocess.Popen(
            [*command, "--", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    _CHILDREN[sup.pid] = sup
    files.supervisor.write_text(f"{sup.pid}\n")
    files.supervisor.with_suffix(".cmd").write_text(SUPERVISOR_MARKER)
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        pid = read_pid(files.pidfile)
        if pid is not None:
            return pid
        if sup.poll() is not None:
            break
        time.sleep(0.02)
    stop(files, timeout=5)
    raise ServiceError(f"{argv[0]} could not be started:\n{tail(files.logfile, 10)}")


def supervisor(files: ProcFiles) -> int | None:
    """The pid of the service's supervisor, if it runs."""
    return alive(files.supervisor)


def _wait_gone(pidfile: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pidfile) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop(files: ProcFiles, sig: int = signal.SIGTERM, timeout: float = 60.0) -> bool:
    """Stop the service and its supervisor: the supervisor passes the service's stop signal on
    (`sig` goes straight to a service running without one); SIGKILL after `timeout`. True if
    something was stopped."""
    sup, pid = alive(files.supervisor), alive(files.pidfile)
    if sup is None and pid is None:
        for leftover in (files.pidfile, files.supervisor):
            leftover.unlink(missing_ok=True)
        return False
    if sup is not None:
        os.kill(sup, signal.SIGTERM)  # no restart from here on; it signals the service
    elif pid is not None:
        os.kill(pid, sig)
    if pid is not None and not _wait_gone(files.pidfile, timeout):
        os.killpg(pid, signal.SIGKILL)
        _wait_gone(files.pidfile, 30)
    if sup is not None:
        if not _wait_gone(files.supervisor, 10):
            os.kill(sup, signal.SIGKILL)
            _wait_gone(files.supervisor, 10)
        _reap(sup)
    if pid is not None:
        _reap(pid)
    for leftover in (files.pidfile, files.supervisor):
        leftover.unlink(missing_ok=True)
    return True


def tail(logfile: Path, lines: int = 30) -> str:
    try:
        content = logfile.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(content[-lines:])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a JVM under a Python launcher counts)."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += _children(p)
    return seen


def _address(hex_addr: str) -> str:
    """/proc/net/tcp{,6}'s `0100007F:1F90` → `127.0.0.1:8080` (IPv6 in brackets)."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"


def listening(pid: int) -> list[str]:
    """TCP addresses `pid` or a descendant listens on, read from /proc (as `ss -ltnp` does)."""
    inodes: set[str] = set()
    for p in tree(pid):
        try:
            for fd in Path(f"/proc/{p}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                out.append(_address(cols[1]))
    return sorted(set(out))


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def raise_not_ready(service: str, logfile: Path, why: str, fix: str) -> None:
    raise ServiceError(
        f"{service} {why}.\n--- last lines of {logfile} ---\n{tail(logfile)}\n---\nLikely fix: {fix}"
    )

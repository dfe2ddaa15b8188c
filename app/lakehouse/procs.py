"""Start, probe and stop native service processes by pid file — `down` stops only what `up` started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ServiceError

# Children started by this process, kept so they can be reaped (no zombies in a long-lived
# test session) and so their Popen objects are not garbage-collected while still running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcFiles:
    pidfile: Path
    logfile: Path


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
    if expected and expected not in _cmdline(pid):
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
) -> int:
    """Start `argv` detached; `marker` is what its command line contains once running (default argv[0])."""
    files.pidfile.parent.mkdir(parents=True, exist_ok=True)
    files.logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(files.logfile, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {argv[0]}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            user=user,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    files.pidfile.write_text(f"{proc.pid}\n")
    files.pidfile.with_suffix(".cmd").write_text(marker or argv[0])
    return proc.pid


def stop(pidfile: Path, sig: int = signal.SIGTERM, timeout: float = 60.0) -> bool:
    """Signal the recorded process, wait for it, escalate to SIGKILL. True if something was stopped."""
    pid = alive(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive(pidfile) is None:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
        while alive(pidfile) is not None:
            time.sleep(0.1)
    _reap(pid)
    pidfile.unlink(missing_ok=True)
    return True


def tail(logfile: Path, lines: int = 30) -> str:
    try:
        content = logfile.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(content[-lines:])


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(
    probe: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    still_running: Callable[[], bool] | None = None,
) -> bool:
    """Poll `probe` until true; False on timeout or as soon as the process has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        if still_running is not None and not still_running():
            return probe()
        time.sleep(interval)
    return False


def raise_not_ready(service: str, logfile: Path, why: str, fix: str) -> None:
    raise ServiceError(
        f"{service} {why}.\n--- last lines of {logfile} ---\n{tail(logfile)}\n---\nLikely fix: {fix}"
    )

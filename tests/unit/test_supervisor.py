"""The supervisor restarts a service that dies, counts it, and lets `stop` end both for good."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from lakehouse.config.run_state import read_state
from lakehouse.launcher import procs
from lakehouse.launcher.status import Restarts
from lakehouse.launcher.supervisor import Policy, describe

pytestmark = pytest.mark.unit

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]


def _wait(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_backoff_doubles_to_a_cap_and_resets_after_a_stable_run() -> None:
    policy = Policy(first_delay_s=1, max_delay_s=30, stable_after_s=60)
    delays = [1.0]
    for _ in range(6):
        delays.append(policy.next_delay(delays[-1], ran_s=2))
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert policy.next_delay(30, ran_s=61) == 1


def test_exit_reasons_name_the_signal_or_the_code() -> None:
    assert describe(-signal.SIGKILL, 0, 1).reason == "killed by SIGKILL"
    assert describe(137, 0, 1).reason == "exited with code 137"
    assert describe(0, 0, 1).reason == "exited with code 0"


def test_a_killed_service_comes_back_and_stop_ends_it_for_good(tmp_path: Path) -> None:
    files = procs.ProcFiles(tmp_path / "svc.pid", tmp_path / "svc.log")
    first = procs.spawn(files, SLEEPER)
    try:
        assert procs.alive(files.pidfile) == first
        sup = procs.supervisor(files)
        assert sup is not None and sup != first
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: procs.alive(files.pidfile) not in (None, first)), procs.tail(files.logfile)
        second = procs.alive(files.pidfile)
        state = read_state(files.statefile)
        assert state is not None
        assert state["restarts"] == 1 and state["pid"] == second
        assert state["last_exit"]["reason"] == "killed by SIGKILL"
        counted = Restarts.of(state)  # as `lakehouse status` reads it
        assert counted is not None and counted.restarts == 1
        assert counted.last_exit is not None and counted.last_exit.reason == "killed by SIGKILL"
        assert "killed by SIGKILL after 0s; restart #1 in 1s" in procs.tail(files.logfile)
        assert procs.supervisor(files) == sup  # the same supervisor, still watching

        assert procs.stop(files, timeout=10)
        time.sleep(1.5)  # longer than the first backoff: nothing comes back
        assert procs.alive(files.pidfile) is None and procs.supervisor(files) is None
        assert not Path(f"/proc/{second}").exists() and not Path(f"/proc/{sup}").exists()
        assert "stopped (killed by SIGTERM)" in procs.tail(files.logfile)
        after = read_state(files.statefile)  # being stopped is not a failure to report
        assert after is not None and after["last_exit"]["reason"] == "killed by SIGKILL"
    finally:
        procs.stop(files, timeout=5)


def test_a_service_that_keeps_dying_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    files = procs.ProcFiles(tmp_path / "bad.pid", tmp_path / "bad.log")
    procs.spawn(files, [sys.executable, "-c", "import sys; sys.exit(3)"])
    try:
        # exits at once, again after 1 s, again after 2 s more: three exits within ~5 s
        assert _wait(lambda: (read_state(files.statefile) or {}).get("restarts", 0) >= 2, timeout=8)
        state = read_state(files.statefile)
        assert state is not None and state["last_exit"]["reason"] == "exited with code 3"
        log = procs.tail(files.logfile)
        assert "restart #1 in 1s" in log and "restart #2 in 2s" in log
    finally:
        assert procs.stop(files, timeout=5)
    assert procs.supervisor(files) is None


def test_a_command_that_cannot_run_is_reported_not_retried(tmp_path: Path) -> None:
    files = procs.ProcFiles(tmp_path / "none.pid", tmp_path / "none.log")
    with pytest.raises(Exception, match="could not be started"):
        procs.spawn(files, ["/nonexistent/binary"], start_timeout=5)
    assert procs.supervisor(files) is None
    assert "cannot start /nonexistent/binary" in procs.tail(files.logfile)

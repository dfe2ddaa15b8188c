import socket
import sys
from pathlib import Path

from lakehouse.launcher import procs
from lakehouse.polling import wait_until


def test_spawn_alive_stop_by_pidfile(tmp_path: Path) -> None:
    files = procs.ProcFiles(tmp_path / "x.pid", tmp_path / "x.log")
    pid = procs.spawn(files, [sys.executable, "-c", "import time; print('hi', flush=True); time.sleep(60)"])
    assert procs.alive(files.pidfile) == pid
    assert procs.stop(files, timeout=10)
    assert procs.alive(files.pidfile) is None
    assert not files.pidfile.exists()
    assert not procs.stop(files)  # nothing left to stop
    # reaped, not a zombie: a zombie still answers `kill -0`, and a service's own launcher
    # (Trino's) would take its old pid for a running server
    assert not Path(f"/proc/{pid}").exists()


def test_reused_pid_is_not_ours(tmp_path: Path) -> None:
    pidfile = tmp_path / "y.pid"
    pidfile.write_text("1\n")  # pid 1 runs, but is not the command we recorded
    pidfile.with_suffix(".cmd").write_text("/definitely/not/init")
    assert procs.alive(pidfile) is None


def test_port_free_detects_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not procs.port_free("127.0.0.1", port)
    assert procs.port_free("127.0.0.1", port)


def test_wait_until_gives_up_when_process_died() -> None:
    calls = []

    def probe() -> bool:
        calls.append(1)
        return False

    assert not wait_until(probe, timeout=30, interval=0.01, still_running=lambda: False)
    # one probe, then one last look after the death: not polling on until the timeout
    assert len(calls) == 2

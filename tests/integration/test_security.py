"""What the running native stack exposes, checked on the processes themselves rather than in
their configs: listening sockets (from /proc, as `ss -ltnp` lists them) and secrets on disk."""

from __future__ import annotations

import stat

from lakehouse import procs
from lakehouse.stack import Stack

LOOPBACK = ("127.", "[::1]:", "[::ffff:127.")


def test_every_listening_socket_of_the_stack_is_on_loopback(stack: Stack) -> None:
    sockets = {}
    for svc in stack.services:
        pid = svc.pid()
        assert pid is not None, f"{svc.name} is not running"
        sockets[svc.name] = procs.listening(pid)
    # the listing sees each service's own configured ports (so it looks at the right sockets) ...
    for svc in stack.services:
        for field in svc.port_fields:
            port = getattr(stack.s, field)
            assert any(a.endswith(f":{port}") for a in sockets[svc.name]), (svc.name, port, sockets[svc.name])
    # ... and nothing any service or its children (Spark's JVM, gunicorn workers) listens on is
    # reachable from another machine
    exposed = {name: [a for a in addrs if not a.startswith(LOOPBACK)] for name, addrs in sockets.items()}
    assert not any(exposed.values()), exposed
    assert all(svc.supervisor() is not None for svc in stack.services), "a service runs unsupervised"


def test_secret_files_are_readable_by_their_owner_only(stack: Stack) -> None:
    home = stack.s.home
    secret_files = [
        home / "secrets.env",
        stack.connect.secrets_file,
        home / "trino" / "password.db",
        home / "trino" / "tls" / "server.pem",
    ]
    for path in secret_files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path} is {oct(mode)}"
    # and the one that is not secret stays readable: clients need the CA certificate
    assert stat.S_IMODE((home / "trino" / "tls" / "cert.pem").stat().st_mode) & 0o044

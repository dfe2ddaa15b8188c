"""What the running native stack exposes, checked on the processes themselves rather than in
their configs: listening sockets (from /proc, as `ss -ltnp` lists them) and secrets on disk."""

from __future__ import annotations

import io
import stat
from dataclasses import fields
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from lakehouse.cli import cli
from lakehouse.clients import object_store
from lakehouse.config.layout import BRONZE
from lakehouse.launcher import procs
from lakehouse.launcher.stack import Stack

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
        stack.superset.data_dir / "superset.db",
    ]
    for path in secret_files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path} is {oct(mode)}"
    # and the one that is not secret stays readable: clients need the CA certificate
    assert stat.S_IMODE((home / "trino" / "tls" / "cert.pem").stat().st_mode) & 0o044


def test_the_cdc_role_can_write_nothing_but_the_heartbeat(stack: Stack) -> None:
    """Debezium's role reads every captured table and writes one row: the heartbeat. Checked by
    trying each write on the live database, not by reading the grants."""
    schema = stack.s.source_schema
    with psycopg.connect(stack.postgres.cdc_dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'pipeline_heartbeat'",
                (schema,),
            )
        ]
        assert "movies" in tables, tables
        conn.rollback()
        refused = []
        for table in tables:
            name = sql.Identifier(schema, table)
            for stmt in (
                sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name),
                sql.SQL("UPDATE {} SET {} = {}").format(name, *_first_column(conn, schema, table)),
                sql.SQL("DELETE FROM {}").format(name),
                sql.SQL("TRUNCATE {}").format(name),
            ):
                try:
                    conn.execute(stmt)
                except psycopg.errors.InsufficientPrivilege:
                    refused.append(stmt)
                finally:
                    conn.rollback()
        assert len(refused) == 4 * len(tables), "the CDC role could write a captured table"
        for stmt in (
            sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "cdc_made_this")),
            sql.SQL("CREATE TABLE public.cdc_made_this (x int)"),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
            conn.rollback()
        # the one write Debezium's heartbeat.action.query makes is allowed (rolled back here)
        beat = sql.Identifier(schema, "pipeline_heartbeat")
        conn.execute(sql.SQL("UPDATE {} SET beat_at = now()").format(beat))
        conn.rollback()


def test_the_object_stores_reader_lists_and_reads_the_bucket_and_writes_nothing(stack: Stack) -> None:
    """The page and `lakehouse trace` read bronze as MinIO's read-only user: tried on the live
    server, each write refused, a read of a real bronze object allowed."""
    from minio.error import S3Error

    reader, bucket = object_store(stack.endpoints, reader=True), stack.s.bucket
    objects = [o for o in reader.list_objects(bucket, prefix=f"{BRONZE}/", recursive=True) if not o.is_dir]
    assert objects, "the reader listed no bronze object"
    first = objects[0].object_name
    assert first is not None
    got = reader.get_object(bucket, first)
    try:
        assert got.read(1)
    finally:
        got.close()
        got.release_conn()
    refused = []
    for attempt in (
        lambda: reader.put_object(bucket, f"{BRONZE}/reader-wrote-this", io.BytesIO(b"x"), 1),
        lambda: reader.remove_object(bucket, first),
        lambda: reader.make_bucket("reader-made-this"),
    ):
        with pytest.raises(S3Error) as refusal:
            attempt()
        refused.append(refusal.value.code)
    assert refused == ["AccessDenied"] * 3, refused
    assert stack.minio.client().stat_object(bucket, first).size, "the reader deleted an object"


def _first_column(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[sql.Composable, ...]:
    (col,) = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position LIMIT 1",
        (schema, table),
    ).fetchone() or ("",)
    conn.rollback()
    return sql.Identifier(col), sql.Identifier(col)


def test_no_secret_is_printed_in_status_or_any_log(stack: Stack) -> None:
    """Passwords and keys appear in secrets.env, Connect's secrets file and `env --json` only:
    not in `status` (text or JSON), nor in any log file of any service."""
    sec = stack.ctx.secrets
    # the MinIO root user is an account name (an S3 access key id), not a secret
    secret = {f.name: getattr(sec, f.name) for f in fields(sec) if f.name != "minio_root_user"}
    assert all(len(v) >= 16 for v in secret.values())
    runner = CliRunner()
    printed = {args: runner.invoke(cli, list(args)).output for args in (("status",), ("status", "--json"))}
    assert "silver" in printed[("status",)], printed
    leaks = [(" ".join(a), k) for a, out in printed.items() for k, v in secret.items() if v in out]
    # every log any service writes (Kafka's partition segments are data, also named *.log)
    logs = [
        p
        for p in stack.s.home.rglob("*")
        if p.is_file() and ".log" in p.name and not p.is_relative_to(stack.kafka.data_dir)
    ]
    assert len(logs) >= len(stack.services), logs
    for path in logs:
        text = path.read_bytes().decode("utf-8", "replace")
        leaks += [(str(path), k) for k, v in secret.items() if v in text]
    assert not leaks, leaks
    # the check can see a secret where one is printed: `env --json` is meant to show them
    shown = runner.invoke(cli, ["env", "--json"]).output
    assert sec.trino_analyst_password in shown

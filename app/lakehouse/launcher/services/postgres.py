"""The source database: Debian's PostgreSQL server, run as an unprivileged user when we are root."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from lakehouse.config.endpoints import postgres_dsn
from lakehouse.config.render import render_file
from lakehouse.errors import ServiceError
from lakehouse.launcher.services.base import Service

PUBLICATION = "lakehouse_pub"
SLOT = "lakehouse_slot"


def bindir(major: str) -> Path:
    return Path(f"/usr/lib/postgresql/{major}/bin")


class Postgres(Service):
    name = "postgres"
    port_fields: ClassVar[tuple[str, ...]] = ("postgres_port",)
    stop_signal = 2  # SIGINT = "fast" shutdown: roll back sessions, checkpoint, exit

    @property
    def bin(self) -> Path:
        return bindir(self.ctx.versions.postgres_major)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "data"

    @property
    def socket_dir(self) -> Path:
        # compose: where the official image's entrypoint looks for the server during its init
        return Path("/var/run/postgresql") if self.s.service_hostnames else self.data_dir / "run"

    @property
    def client_cidr(self) -> str:
        """Who may log in over TCP: only this host natively; the compose network's peers."""
        return "samenet" if self.s.service_hostnames else f"{self.host}/32"

    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def _chown(self, *paths: Path) -> None:
        user = self.run_as()
        if user:
            for path in paths:
                shutil.chown(path, user, user)

    def dsn(self, user: str, password: str, dbname: str | None = None) -> str:
        return postgres_dsn(self.s, user, password, dbname)

    @property
    def superuser_dsn(self) -> str:
        return self.dsn("postgres", self.ctx.secrets.pg_superuser_password, "postgres")

    @property
    def app_dsn(self) -> str:
        return self.dsn(self.s.app_role, self.ctx.secrets.pg_app_password)

    @property
    def cdc_dsn(self) -> str:
        return self.dsn(self.s.cdc_role, self.ctx.secrets.pg_cdc_password)

    def prepare(self) -> None:
        if not (self.bin / "postgres").exists():
            raise ServiceError(
                f"postgres: {self.bin}/postgres not found — run `lakehouse install` (installs "
                f"Debian's postgresql-{self.ctx.versions.postgres_major} when run as root)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir, self.socket_dir)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._chown(*self.write_configs())

    def write_configs(self) -> list[Path]:
        """postgresql.conf and pg_hba.conf rendered into the state dir (compose mounts them too)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for rel, values in self.templates().items():
            if rel.endswith(".conf"):
                target = self.data_dir / Path(rel).name
                target.write_text(render_file(self.s.root / rel, values))
                written.append(target)
        return written

    def templates(self) -> dict[str, dict[str, object]]:
        server: dict[str, object] = {
            "listen_addresses": self.host,
            "port": self.s.postgres_port,
            "socket_dir": self.socket_dir,
            "hba_file": self.data_dir / "pg_hba.conf",
            "client_cidr": self.client_cidr,
            "cdc_role": self.s.cdc_role,
        }
        sql_values = self.sql_values()
        return {
            "postgres/postgresql.conf": server,
            "postgres/pg_hba.conf": server,
            "postgres/bootstrap.sql": sql_values,
            "postgres/schema.sql": sql_values,
        }

    def sql_values(self) -> dict[str, object]:
        return {
            "schema": self.s.source_schema,
            "app_role": self.s.app_role,
            "cdc_role": self.s.cdc_role,
            "database": self.s.source_db,
            "publication": PUBLICATION,
        }

    def _check_reachable(self) -> None:
        """As root we run the server as `postgres`, which must be able to walk down to its data."""
        if self.run_as() is None:
            return
        for parent in reversed(self.data_dir.parents):
            if not parent.stat().st_mode & 0o001:
                raise ServiceError(
                    f"postgres runs as the `postgres` user and cannot enter {parent} (no o+x); "
                    f"`chmod o+x {parent}` or set LAKEHOUSE_HOME to a directory it can reach"
                )

    def _initdb(self) -> None:
        import subprocess

        with tempfile.NamedTemporaryFile("w", dir=self.data_dir, delete=False) as pw:
            pw.write(self.ctx.secrets.pg_superuser_password + "\n")
        pwfile = Path(pw.name)
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "-D", str(self.pgdata),
                    "-U", "postgres",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                user=self.run_as(),
                capture_output=True,
                text=True,
                check=False,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(f"postgres: initdb failed:\n{result.stdout}{result.stderr}")

    def argv(self) -> list[str]:
        return [
            str(self.bin / "postgres"),
            "-D", str(self.pgdata),
            "-c", f"config_file={self.data_dir / 'postgresql.conf'}",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.superuser_dsn, connect_timeout=2) as conn:
                conn.execute("select 1")
            return True
        except psycopg.OperationalError:
            return False

    def fix_hint(self, log: str) -> str:
        if "could not create lock file" in log or "Permission denied" in log:
            return f"the postgres user cannot write {self.data_dir}; check its ownership"
        return "see `lakehouse logs postgres`; `lakehouse down --wipe` resets a broken data dir"

    def after_ready(self) -> None:
        self.bootstrap()

    def bootstrap(self) -> None:
        """Roles, database, schema, tables, grants and the publication — idempotent."""
        s, sec = self.s, self.ctx.secrets
        with psycopg.connect(self.superuser_dsn, autocommit=True) as conn:
            for role, password, extra in (
                (s.app_role, sec.pg_app_password, sql.SQL("")),
                (s.cdc_role, sec.pg_cdc_password, sql.SQL(" REPLICATION")),
                (s.metastore_role, sec.pg_metastore_password, sql.SQL("")),
            ):
                exists = conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone()
                verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
                conn.execute(
                    sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE{} PASSWORD {}").format(
                        verb, sql.Identifier(role), extra, sql.Literal(password)
                    )
                )
            # the source database, and the Hive metastore's own (its schema tool fills it)
            for db, owner in ((s.source_db, s.app_role), (s.metastore_db, s.metastore_role)):
                if not conn.execute("select 1 from pg_database where datname = %s", [db]).fetchone():
                    create = sql.SQL("CREATE DATABASE {} OWNER {}")
                    conn.execute(create.format(sql.Identifier(db), sql.Identifier(owner)))
        values = self.sql_values()
        root = s.root / "postgres"
        with psycopg.connect(self.dsn("postgres", sec.pg_superuser_password), autocommit=True) as conn:
            conn.execute(render_file(root / "bootstrap.sql", values).encode())
        with psycopg.connect(self.app_dsn, autocommit=True) as conn:
            conn.execute(render_file(root / "schema.sql", values).encode())
        with psycopg.connect(self.dsn("postgres", sec.pg_superuser_password), autocommit=True) as conn:
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                    sql.Identifier(s.source_schema), sql.Identifier(s.cdc_role)
                )
            )

    def details(self) -> dict[str, Any]:
        with psycopg.connect(self.superuser_dsn, connect_timeout=2) as conn:
            row = conn.execute(
                "select active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,"
                " confirmed_flush_lsn::text from pg_replication_slots where slot_name = %s",
                [SLOT],
            ).fetchone()
        if row is None:
            return {"slot": None}
        return {"slot": {"name": SLOT, "active": row[0], "retained_wal_bytes": row[1],
                         "confirmed_flush_lsn": row[2]}}  # fmt: skip

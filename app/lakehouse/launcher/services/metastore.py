"""The Hive standalone metastore: the catalog Spark and Trino share, on its own Postgres database.

The server tarball from Maven runs on the system Java with the Hadoop client beside it
(artifacts.py); metastore/ holds the configuration both launchers use, filled from the
environment. Its database is made by Postgres's bootstrap (a role that owns nothing else); the
schema inside it by the metastore's own schema tool, at the first start and after a version change.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import psycopg

from lakehouse.config.endpoints import postgres_dsn
from lakehouse.config.layout import METASTORE_WAREHOUSE, Storage
from lakehouse.config.versions import spark_jars
from lakehouse.errors import ServiceError
from lakehouse.launcher.artifacts import metastore_home
from lakehouse.launcher.services.base import Service

SERVER = "org.apache.hadoop.hive.metastore.HiveMetaStore"
SCHEMA_TOOL = "org.apache.hadoop.hive.metastore.tools.schematool.MetastoreSchemaTool"
#: the server's heap: it keeps names, locations and schemas (a few hundred tables at most)
HEAP = "384m"


class MetastoreService(Service):
    name = "metastore"
    port_fields: ClassVar[tuple[str, ...]] = ("metastore_port",)

    @property
    def conf_dir(self) -> Path:
        """metastore/: metastore-site.xml (found on the class path) and the log4j2 file."""
        return self.s.root / "metastore"

    @property
    def home(self) -> Path:
        return metastore_home(self.s.cache, self.ctx.versions)

    @property
    def schema_stamp(self) -> Path:
        """The metastore version whose schema the database has (written after the schema tool ran)."""
        return self.data_dir / "schema-version"

    def classpath(self) -> str:
        if not (self.home / "lib").is_dir():
            raise ServiceError(f"metastore: {self.home} not installed — run `lakehouse install`")
        return f"{self.conf_dir}:{self.home / 'lib'}/*:{self.home / 'extra-lib'}/*"

    def java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{HEAP}",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configurationFile={self.conf_dir / 'metastore-log4j2.properties'}",
            "-cp",
            self.classpath(),
            main,
            *args,
        ]

    def _schema_current(self) -> bool:
        """The database has the schema of this version: the stamp says so and the tables are there
        (a database dropped by hand would otherwise be taken as ready)."""
        if not self.schema_stamp.exists() or self.schema_stamp.read_text().strip() != self.ctx.versions.hive:
            return False
        try:
            with psycopg.connect(self.db_dsn, connect_timeout=5) as conn:
                row = conn.execute("select to_regclass('public.\"VERSION\"') is not null").fetchone()
        except psycopg.OperationalError as exc:
            raise ServiceError(f"metastore: cannot reach its database: {exc}") from exc
        return bool(row and row[0])

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._schema_current():
            return
        log = self.data_dir / "schema-tool.log"
        argv = self.java(SCHEMA_TOOL, "-dbType", "postgres", "-initOrUpgradeSchema")
        with open(log, "w") as fh:
            result = subprocess.run(argv, env=self.env(), stdout=fh, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise ServiceError(
                f"metastore: the schema tool failed (exit {result.returncode}); log {log}:\n{tail}\n"
                "  likely fix: is postgres up, and does its bootstrap make the metastore's role and"
                " database (`lakehouse status`)?"
            )
        self.schema_stamp.write_text(self.ctx.versions.hive + "\n")

    @property
    def db_dsn(self) -> str:
        s = self.s
        return postgres_dsn(s, s.metastore_role, self.ctx.secrets.pg_metastore_password, s.metastore_db)

    def argv(self) -> list[str]:
        return self.java(SERVER)

    def cmd_marker(self) -> str:
        return SERVER

    def env(self) -> dict[str, str]:
        s, sec = self.s, self.ctx.secrets
        env = super().env()
        env.update(
            {
                # what metastore-site.xml reads as ${env.NAME}
                "METASTORE_JDBC_URL": f"jdbc:postgresql://{s.addr('postgres')}:{s.postgres_port}/{s.metastore_db}",
                "METASTORE_DB_USER": s.metastore_role,
                "METASTORE_DB_PASSWORD": sec.pg_metastore_password,
                "METASTORE_PORT": str(s.metastore_port),
                "METASTORE_BIND_HOST": socket.gethostbyname(self.host),
                "S3_ENDPOINT": s.minio_endpoint,
                "METASTORE_WAREHOUSE": Storage(s.bucket).spark(METASTORE_WAREHOUSE),
                "S3_ACCESS_KEY": sec.minio_root_user,
                "S3_SECRET_KEY": sec.minio_root_password,
                # the schema tool finds its SQL scripts under the install
                "METASTORE_HOME": str(self.home),
            }
        )
        return env

    def ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.s.metastore_port), timeout=2):
                return True
        except OSError:
            return False

    def fix_hint(self, log: str) -> str:
        if "ClassNotFoundException" in log or "NoClassDefFoundError" in log:
            return "a jar is missing from the metastore's install: `lakehouse install` resolves it again"
        if "password authentication failed" in log or "Connection refused" in log:
            return "the metastore cannot reach its Postgres database: is postgres up (`lakehouse status`)?"
        if "MetaException" in log and "schema" in log.lower():
            return "its database has another version's schema: the schema tool upgrades it at the next start"
        return "`lakehouse logs metastore` shows the server log; settings: metastore/metastore-site.xml"

    def share_jdbc_driver(self) -> Path:
        """Compose: the official image has no PostgreSQL driver; put the one Spark's jars have
        (spark_streaming/pom.xml) where its HIVE_AUX_JARS_PATH points (docker-compose.yml)."""
        jars = sorted(spark_jars(self.s.cache, self.ctx.versions).glob("postgresql-*.jar"))
        if not jars:
            raise ServiceError("metastore: no PostgreSQL driver among Spark's jars — run `lakehouse install`")
        lib = self.data_dir / "lib"
        lib.mkdir(parents=True, exist_ok=True)
        shutil.copy2(jars[-1], lib / jars[-1].name)
        return lib / jars[-1].name

    def details(self) -> dict[str, Any]:
        return {"uri": self.s.metastore_uri, "database": self.s.metastore_db}

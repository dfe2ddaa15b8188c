"""Where each part of a running stack answers, and as whom: built from the settings and the secrets
(the launcher starts its services there), printed by `lakehouse env --json`, and read back from
that JSON by anything that talks to a stack it did not start (`LAKEHOUSE_TEST_ENV`).

Data-plane code and the apps take an `Endpoints`, never the launcher's `Stack`; `clients.py` makes
the clients from it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from lakehouse.config.names import ADMIN_USER, ANALYST_USER, CATALOG, SILVER
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings

#: the object store's list-and-read user (minio/reader-policy.json), made by the launcher
READER_USER = "lakehouse-reader"
#: Superset's admin, and the dashboard the stack provisions (superset/assets)
SUPERSET_ADMIN = "admin"
DASHBOARD_SLUG = "movies-live"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Part):
    dsn: str  # the application role: reads and writes the captured schema
    cdc_dsn: str  # the replication role Debezium connects as
    schemas: list[str]


class Kafka(_Part):
    bootstrap: str
    topic_prefix: str


class Url(_Part):
    url: str


class Credentials(_Part):
    access_key: str
    secret_key: str


class ObjectStore(_Part):
    endpoint: str  # host:port of the S3 API
    console: str
    access_key: str
    secret_key: str
    reader: Credentials  # lists and reads the bucket, nothing else
    bucket: str
    bronze: str
    silver: str


class Spark(_Part):
    master: str  # local[N] in silver's own process, or the scale-out master
    ui: str | None
    metastore: str  # the Hive metastore's Thrift URI: the catalog Spark shares with Trino


class Trino(_Part):
    url: str
    user: str
    password: str
    catalog: str
    silver_schema: str
    ca_cert: str
    admin_user: str
    admin_password: str


class Superset(_Part):
    url: str
    user: str
    password: str
    dashboard: str


class Grafana(_Part):
    url: str
    user: str
    password: str | None


class Endpoints(_Part):
    source: Source
    kafka: Kafka
    connect: Url
    object_store: ObjectStore
    spark: Spark
    trino: Trino
    app: Url
    prometheus: Url
    alertmanager: Url
    superset: Superset
    grafana: Grafana | None  # no native Grafana (grafana/README.md): docker compose runs it

    @classmethod
    def of(cls, s: Settings, sec: Secrets) -> Endpoints:
        def dsn(user: str, password: str) -> str:
            return postgres_dsn(s, user, password)

        return cls(
            source=Source(
                dsn=dsn(s.app_role, sec.pg_app_password),
                cdc_dsn=dsn(s.cdc_role, sec.pg_cdc_password),
                schemas=[s.source_schema],
            ),
            kafka=Kafka(bootstrap=s.kafka_bootstrap, topic_prefix=s.topic_prefix),
            connect=Url(url=s.connect_url),
            object_store=ObjectStore(
                endpoint=s.minio_endpoint,
                console=f"http://{s.addr('minio')}:{s.minio_console_port}",
                access_key=sec.minio_root_user,
                secret_key=sec.minio_root_password,
                reader=Credentials(access_key=READER_USER, secret_key=sec.minio_reader_password),
                bucket=s.bucket,
                bronze=s.bronze_uri,
                silver=s.silver_uri,
            ),
            spark=Spark(
                master=s.silver_master,
                ui=s.spark_master_ui if s.scale_out else None,
                metastore=s.metastore_uri,
            ),
            trino=Trino(
                url=s.trino_url,
                user=ANALYST_USER,
                password=sec.trino_analyst_password,
                catalog=CATALOG,
                silver_schema=SILVER,
                ca_cert=str(ca_cert(s)),
                admin_user=ADMIN_USER,
                admin_password=sec.trino_admin_password,
            ),
            app=Url(url=s.web_url),
            prometheus=Url(url=s.prometheus_url),
            alertmanager=Url(url=s.alertmanager_url),
            superset=Superset(
                url=s.superset_url,
                user=SUPERSET_ADMIN,
                password=sec.superset_admin_password,
                dashboard=f"{s.superset_url}/superset/dashboard/{DASHBOARD_SLUG}/",
            ),
            grafana=(
                Grafana(url=s.grafana_url, user="admin", password=os.environ.get("GRAFANA_ADMIN_PASSWORD"))
                if s.service_hostnames
                else None
            ),
        )

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def read(cls, path: Path) -> Endpoints:
        """The endpoints `lakehouse env --json` wrote to `path`; a file that is not that output is
        refused with what is wrong in it."""
        return cls.model_validate(json.loads(path.read_text()))


def postgres_dsn(s: Settings, user: str, password: str, dbname: str | None = None) -> str:
    return f"postgresql://{user}:{password}@{s.addr('postgres')}:{s.postgres_port}/{dbname or s.source_db}"


def ca_cert(s: Settings) -> Path:
    """The certificate Trino's TLS is checked against (the launcher generates it)."""
    return s.state("trino") / "tls" / "cert.pem"

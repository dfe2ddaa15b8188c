"""Kafka Connect distributed worker: the Debezium Postgres source and the project's S3 sink plugins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import httpx

from lakehouse.config.render import render_file
from lakehouse.launcher.artifacts import plugin_path
from lakehouse.launcher.services.base import Service
from lakehouse.launcher.services.kafka import java_cmd, jmx_agent

#: the connector classes the worker must have loaded before connectors are registered
PLUGINS = ("PostgresConnector", "S3SinkConnector")


class Connect(Service):
    name = "connect"
    port_fields: ClassVar[tuple[str, ...]] = ("connect_port", "connect_jmx_port")

    @property
    def secrets_file(self) -> Path:
        return self.s.connect_secrets_file

    @property
    def config_file(self) -> Path:
        return self.data_dir / "connect-distributed.properties"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"cdc_password={self.ctx.secrets.pg_cdc_password}\n")
            # the bronze sink connector's MinIO credentials (connect/bronze-sink.json)
            fh.write(f"minio_access_key={self.ctx.secrets.minio_root_user}\n")
            fh.write(f"minio_secret_key={self.ctx.secrets.minio_root_password}\n")
        ((rel, values),) = self.templates().items()
        self.config_file.write_text(render_file(self.s.root / rel, values))

    def templates(self) -> dict[str, dict[str, object]]:
        return {
            "connect/connect-distributed.properties": {
                "host": self.host,
                "bootstrap": self.s.kafka_bootstrap,
                "connect_port": self.s.connect_port,
                "plugin_path": plugin_path(self.s.cache, self.ctx.versions),
            }
        }

    def argv(self) -> list[str]:
        from lakehouse.launcher.services.kafka import Kafka

        return java_cmd(
            Kafka(self.ctx).classpath,
            self.s.connect_heap,
            str(self.s.root / "connect" / "log4j2.yaml"),
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.config_file),
            agent=jmx_agent(self, self.s.connect_jmx_port, self.s.root / "connect" / "jmx-exporter.yml"),
        )

    def ready(self) -> bool:
        """`/health` says the worker finished start-up; both plugins must be loaded too."""
        try:
            health = httpx.get(f"{self.s.connect_url}/health", timeout=2)
            if health.status_code != 200:
                return False
            plugins = httpx.get(f"{self.s.connect_url}/connector-plugins", timeout=5)
        except httpx.HTTPError:
            return False
        return all(p in plugins.text for p in PLUGINS)

    def fix_hint(self, log: str) -> str:
        if any(p not in log for p in PLUGINS) and "plugin" in log.lower():
            return (
                "a connector plugin (Debezium, the bronze S3 sink) is not on plugin.path: `lakehouse install`"
            )
        return "Connect needs Kafka ready first; see `lakehouse logs connect`"

    def details(self) -> dict[str, Any]:
        return {
            "url": self.s.connect_url,
            "metrics": f"http://{self.host}:{self.s.connect_jmx_port}/metrics",
        }

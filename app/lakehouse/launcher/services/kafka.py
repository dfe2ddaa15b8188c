"""Kafka broker in KRaft mode (single node: broker + controller), jars from Maven Central."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path
from typing import Any, ClassVar

from confluent_kafka.admin import AdminClient

from lakehouse.config.render import render_file
from lakehouse.errors import ServiceError
from lakehouse.launcher import procs
from lakehouse.launcher.artifacts import jmx_exporter_jar, kafka_libs
from lakehouse.launcher.services.base import Service


def java_cmd(
    classpath: str, heap: str, log4j2: str, main: str, *args: str, agent: str | None = None
) -> list[str]:
    """`agent`: a -javaagent argument (the Prometheus JMX exporter) for long-running servers."""
    return [
        "java",
        *([f"-javaagent:{agent}"] if agent else []),
        "-Xms128m",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j2}",
        "-cp",
        classpath,
        main,
        *args,
    ]


def new_cluster_id() -> str:
    """Kafka's cluster id format: a random UUID as 22 url-safe base64 characters.

    Like Kafka's own Uuid.randomUuid, never one starting with '-' (it would parse as a flag)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def jmx_agent(service: Service, port: int, config: Path) -> str:
    """The JMX exporter javaagent argument: metrics on <host>:<port>/metrics, rules from `config`."""
    jar = jmx_exporter_jar(service.s.cache, service.ctx.versions)
    if not jar.exists():
        raise ServiceError(f"{service.name}: {jar} missing — run `lakehouse install`")
    return f"{jar}={service.host}:{port}:{config}"


class Kafka(Service):
    name = "kafka"
    port_fields: ClassVar[tuple[str, ...]] = ("kafka_port", "kafka_controller_port", "kafka_jmx_port")

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def classpath(self) -> str:
        libs = kafka_libs(self.s.cache, self.ctx.versions)
        if not libs.exists():
            raise ServiceError(f"kafka: {libs} missing — run `lakehouse install`")
        return f"{libs}/*"

    def _java(self, main: str, *args: str) -> list[str]:
        return java_cmd(
            self.classpath,
            self.s.kafka_heap,
            str(self.s.root / "kafka" / "log4j2.yaml"),
            main,
            *args,
        )

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ((rel, values),) = self.templates().items()
        self.config_file.write_text(render_file(self.s.root / rel, values))
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        cluster_id_file = self.data_dir / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(new_cluster_id())
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
                "-t", cluster_id_file.read_text().strip(), "-c", str(self.config_file),
            ),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"kafka: storage format failed:\n{result.stdout}{result.stderr}")

    def templates(self) -> dict[str, dict[str, object]]:
        return {
            "kafka/server.properties": {
                "host": self.host,
                "kafka_port": self.s.kafka_port,
                "controller_port": self.s.kafka_controller_port,
                "data_dir": self.data_dir / "kraft-logs",
                "node_id": 1,
            }
        }

    def argv(self) -> list[str]:
        return java_cmd(
            self.classpath,
            self.s.kafka_heap,
            str(self.s.root / "kafka" / "log4j2.yaml"),
            "kafka.Kafka",
            str(self.config_file),
            agent=jmx_agent(self, self.s.kafka_jmx_port, self.s.root / "kafka" / "jmx-exporter.yml"),
        )

    def ready(self) -> bool:
        """The broker answers a metadata request (an open port alone is not enough)."""
        if procs.port_free(self.host, self.s.kafka_port):
            return False
        try:
            admin = AdminClient({"bootstrap.servers": self.s.kafka_bootstrap, "log_level": 0})
            admin.list_topics(timeout=2)
        except Exception:  # KafkaException on timeout: simply not ready yet
            return False
        return True

    def fix_hint(self, log: str) -> str:
        if "UnsupportedClassVersionError" in log:
            return "Kafka needs Java 17+: install openjdk-17 and make it the default `java`"
        if "Invalid cluster.id" in log or "inconsistent" in log.lower():
            return "the KRaft metadata does not match: `lakehouse down --wipe` starts clean"
        return "see `lakehouse logs kafka`"

    def details(self) -> dict[str, Any]:
        return {
            "bootstrap": self.s.kafka_bootstrap,
            "metrics": f"http://{self.host}:{self.s.kafka_jmx_port}/metrics",
        }

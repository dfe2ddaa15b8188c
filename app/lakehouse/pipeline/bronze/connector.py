"""The bronze sink connector's config (connect/bronze-sink.json), as the rest of the stack reads it.

Bronze is landed by Kafka Connect with the project's own S3 sink connector (connect/s3-sink/, Java).
The monitor (consumer lag), silver (its live topics) and the benchmarks (flush interval) read the
same reviewed JSON the launcher registers, so there is one definition of the topics, the group and
the object layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.config.render import load_connector
from lakehouse.errors import ConfigError

if TYPE_CHECKING:
    from lakehouse.config.settings import Settings

SINK_CONNECTOR = Path("connect") / "bronze-sink.json"


def sink_values(s: Settings) -> dict[str, object]:
    """What connect/bronze-sink.json's placeholders are filled with."""
    return {
        "topic_prefix": s.topic_prefix,
        "minio_endpoint": s.minio_endpoint,
        "bucket": s.bucket,
        "bronze_prefix": s.bronze_prefix,
        # one task per partition of a topic: each task owns a share of the partitions
        "tasks": s.topic_partitions,
        # Connect's FileConfigProvider resolves the MinIO keys from this file at run time
        "connect_secrets_file": s.connect_secrets_file,
    }


@dataclass(frozen=True)
class SinkSettings:
    name: str
    topics_regex: str
    #: the consumer group whose committed offsets say what is stored in bronze
    group_id: str
    flush_interval_ms: int

    @classmethod
    def of(cls, s: Settings) -> SinkSettings:
        return cls.load(s.root / SINK_CONNECTOR, sink_values(s), s.bronze_prefix)

    @classmethod
    def load(cls, path: Path, values: dict[str, object], bronze_prefix: str) -> SinkSettings:
        name, config = load_connector(path, values)
        regex = config.get("topics.regex", "")
        if not regex.startswith("^"):
            raise ConfigError(f"{path}: config key 'topics.regex' must start with ^")
        if config.get("file.name.prefix") != f"{bronze_prefix}/":
            raise ConfigError(
                f"{path}: config key 'file.name.prefix' must be '{bronze_prefix}/' (where silver and "
                "`reset-silver` read bronze)"
            )
        try:
            interval = int(config.get("file.flush.interval.ms", "1000"))
        except ValueError:
            raise ConfigError(f"{path}: config key 'file.flush.interval.ms' must be an integer") from None
        return cls(
            name=name,
            topics_regex=regex,
            group_id=config.get("consumer.override.group.id", f"connect-{name}"),
            flush_interval_ms=interval,
        )

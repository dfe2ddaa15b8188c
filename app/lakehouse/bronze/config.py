"""The bronze sink's own config file (bronze/sink.json), validated strictly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..render import render_text

if TYPE_CHECKING:
    from ..settings import Settings

_KEYS = {
    "topics.regex": str,
    "group.id": str,
    "prefix": str,
    "flush.interval.ms": int,
    "flush.max.records": int,
    "flush.max.bytes": int,
    "topic.metadata.refresh.interval.ms": int,
    "retry.backoff.max.ms": int,
}


@dataclass(frozen=True)
class SinkConfig:
    topics_regex: str
    group_id: str
    prefix: str
    flush_interval_ms: int
    flush_max_records: int
    flush_max_bytes: int
    topic_metadata_refresh_interval_ms: int
    retry_backoff_max_ms: int

    @classmethod
    def of(cls, s: Settings) -> SinkConfig:
        """The install's bronze/sink.json, rendered with its settings."""
        return cls.load(
            s.root / "bronze" / "sink.json", {"topic_prefix": s.topic_prefix, "schema": s.source_schema}
        )

    @classmethod
    def load(cls, path: Path, values: dict[str, object]) -> SinkConfig:
        try:
            doc = json.loads(render_text(path.read_text(), values, str(path)))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        unknown = sorted(set(doc) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{path}: unknown key '{unknown[0]}'")
        missing = sorted(set(_KEYS) - set(doc))
        if missing:
            raise ConfigError(f"{path}: missing key '{missing[0]}'")
        parsed: dict[str, object] = {}
        for key, kind in _KEYS.items():
            try:
                value = kind(doc[key])
            except (TypeError, ValueError):
                raise ConfigError(f"{path}: key '{key}' must be {kind.__name__}") from None
            if isinstance(value, int) and value <= 0:
                raise ConfigError(f"{path}: key '{key}' must be positive")
            parsed[key.replace(".", "_")] = value
        if not str(parsed["topics_regex"]).startswith("^"):
            raise ConfigError(f"{path}: key 'topics.regex' must start with ^ (a Kafka regex subscription)")
        return cls(**parsed)  # type: ignore[arg-type]

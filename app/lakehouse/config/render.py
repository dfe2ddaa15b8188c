"""Fill `{{ name }}` placeholders in service configs from settings.

`{{ }}` is used rather than `${}` so Kafka Connect's own config-provider references such as
`${file:/path:key}` pass through untouched. An unknown placeholder is an error naming the file
and the key, raised before anything starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakehouse.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render_text(text: str, values: Mapping[str, object], source: str) -> str:
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(f"{source}: unknown setting '{key}' in {match.group(0)}")
        return str(values[key])

    return _PLACEHOLDER.sub(fill, text)


def render_file(path: Path, values: Mapping[str, object]) -> str:
    return render_text(path.read_text(), values, str(path))


def load_connector(path: Path, values: Mapping[str, object]) -> tuple[str, dict[str, str]]:
    """Read a connector JSON file `{"name": ..., "config": {...}}`, fill placeholders, validate shape."""
    try:
        doc: Any = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or set(doc) != {"name", "config"}:
        raise ConfigError(f"{path}: expected an object with exactly the keys 'name' and 'config'")
    name, config = doc["name"], doc["config"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: 'name' must be a non-empty string")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: 'config' must be an object")
    rendered: dict[str, str] = {}
    for key, value in config.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: config key '{key}' must be a string (Connect configs are strings)")
        rendered[key] = render_text(value, values, f"{path}: config key '{key}'")
    if "connector.class" not in rendered:
        raise ConfigError(f"{path}: config key 'connector.class' is required")
    return name, rendered

"""Register connectors from their reviewed JSON files: validate, PUT …/config, wait for RUNNING."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from lakehouse.config.render import load_connector
from lakehouse.errors import ConfigError, ServiceError


def validate(url: str, path: Path, name: str, config: dict[str, str]) -> None:
    """Ask the worker to validate the config; an unknown/invalid key is an error naming file and key."""
    plugin = config["connector.class"].rsplit(".", 1)[-1]
    r = httpx.put(
        f"{url}/connector-plugins/{plugin}/config/validate",
        json={**config, "name": name},
        timeout=30,
    )
    if r.status_code == 404:
        raise ConfigError(f"{path}: connector.class {config['connector.class']} is not installed")
    r.raise_for_status()
    body = r.json()
    if body.get("error_count", 0):
        problems = [
            f"key '{c['value']['name']}': {'; '.join(c['value']['errors'])}"
            for c in body["configs"]
            if c["value"]["errors"]
        ]
        raise ConfigError(f"{path}: " + " | ".join(problems))


def register(url: str, path: Path, values: dict[str, object]) -> str:
    """Idempotent: an unchanged config is left alone, because re-PUTting it restarts the task
    (and a restarted Debezium task waits for the old replication connection to let go of the slot)."""
    name, config = load_connector(path, values)
    current = httpx.get(f"{url}/connectors/{name}/config", timeout=10)
    if current.status_code == 200 and {**current.json(), "name": name} == {**config, "name": name}:
        return name
    validate(url, path, name, config)
    r = httpx.put(f"{url}/connectors/{name}/config", json=config, timeout=30)
    if r.status_code >= 400:
        raise ServiceError(f"connect: registering {name} from {path} failed: {r.status_code} {r.text}")
    return name


def status(url: str, name: str) -> dict[str, Any] | None:
    r = httpx.get(f"{url}/connectors/{name}/status", timeout=5)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    result: dict[str, Any] = r.json()
    return result


def wait_running(url: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = status(url, name)
        if last:
            states = [last["connector"]["state"]] + [t["state"] for t in last["tasks"]]
            if "FAILED" in states:
                trace = last["connector"].get("trace") or next(
                    (t.get("trace", "") for t in last["tasks"] if t["state"] == "FAILED"), ""
                )
                raise ServiceError(f"connector {name} FAILED:\n{trace[:3000]}")
            if last["tasks"] and all(s == "RUNNING" for s in states):
                return
        time.sleep(0.5)
    raise ServiceError(f"connector {name} not RUNNING after {timeout:.0f}s: {last}")


def _call(method: str, url: str, what: str) -> None:
    r = httpx.request(method, url, timeout=30)
    if r.status_code >= 400:
        raise ServiceError(f"connect: {what} failed: {r.status_code} {r.text[:500]}")


def stop(url: str, name: str, timeout: float = 60) -> None:
    """Stop the connector and its tasks (Connect's STOPPED state: its offsets can then be changed)."""
    _call("PUT", f"{url}/connectors/{name}/stop", f"stopping {name}")
    deadline = time.monotonic() + timeout
    while (st := status(url, name)) is None or st["connector"]["state"] != "STOPPED" or st["tasks"]:
        if time.monotonic() > deadline:
            raise ServiceError(f"connector {name} not STOPPED after {timeout:.0f}s: {st}")
        time.sleep(0.5)


def reset_offsets(url: str, name: str) -> None:
    """Forget where a STOPPED connector was: on resume, Debezium starts as if new (a snapshot)."""
    _call("DELETE", f"{url}/connectors/{name}/offsets", f"resetting the offsets of {name}")


def resume(url: str, name: str) -> None:
    _call("PUT", f"{url}/connectors/{name}/resume", f"resuming {name}")

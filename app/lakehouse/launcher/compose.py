"""The compose launcher's steps that run the `lakehouse` code: the .env file on the host, and in
the containers the shared configs, the one-shot inits and `serve` (a native service in the
foreground). docker-compose.yml calls each one by name; the services are the native ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.config.secrets import KEYS, new_secret, write_file
from lakehouse.config.settings import ENV_PREFIX, Settings
from lakehouse.config.versions import Versions, parse_env_file
from lakehouse.errors import ConfigError, LakehouseError

if TYPE_CHECKING:
    from lakehouse.launcher.stack import Stack

#: credentials only the compose stack uses (Grafana runs in compose only)
COMPOSE_SECRETS = ("GRAFANA_ADMIN_PASSWORD",)
#: the one-shot jobs of `lakehouse compose init`
INIT_STEPS = ("postgres", "minio", "connectors")


def write_env_file(root: Path, path: Path) -> list[str]:
    """Write compose's .env: the pinned versions (copied from versions.env, so `docker compose`
    alone can fill the image tags), your LAKEHOUSE_* settings and the credentials. Credentials
    already in the file are kept; missing ones are generated. Returns the generated keys."""
    existing = parse_env_file(path) if path.exists() else {}
    versions = parse_env_file(root / "versions.env")
    secret_keys = (*KEYS, *COMPOSE_SECRETS)
    secrets: dict[str, str] = {}
    generated = []
    for key in secret_keys:
        secrets[key] = existing.get(key) or new_secret(key)
        if not existing.get(key):
            generated.append(key)
    # anything else the user put in .env (LAKEHOUSE_* settings, COMPOSE_PROFILES, …) stays
    own = {k: v for k, v in existing.items() if k not in versions and k not in secret_keys}
    from lakehouse.config.paths import movielens_sample

    # the MovieLens folder the `app` container mounts at /data/movielens (read-only)
    own.setdefault("MOVIELENS_DIR", str(movielens_sample()))
    lines = [
        "# Written by `make compose-env` (lakehouse compose env); docker compose reads it.",
        "# Versions: copied from versions.env — edit that file, then run `make compose-env` again.",
        "# Credentials: generated once and kept on every re-run. Never commit this file.",
        "",
        *(f"{k}={v}" for k, v in versions.items()),
        "",
        "# your settings (LAKEHOUSE_* as in .env.example; COMPOSE_PROFILES=scale-out for Spark)",
        *(f"{k}={v}" for k, v in own.items()),
        "",
        "# credentials",
        *(f"{k}={v}" for k, v in secrets.items()),
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return generated


def _in_compose(s: Settings) -> None:
    if not s.service_hostnames:
        raise ConfigError(
            f"this step runs inside docker compose ({ENV_PREFIX}SERVICE_HOSTNAMES=true); "
            "natively `lakehouse up` does the same"
        )


def secrets_from_env(s: Settings) -> None:
    """The credentials compose passed in from .env become the state dir's secrets.env, which
    every `lakehouse` process reads — the same file the native launcher generates."""
    _in_compose(s)
    missing = [k for k in KEYS if not os.environ.get(k)]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} not set — run `make compose-env` to write .env, "
            "then `docker compose up -d`"
        )
    write_file(s.home / "secrets.env", {k: os.environ[k] for k in KEYS}, "written from .env by compose")


def write_configs(stack: Stack) -> list[str]:
    """Render what the official images read from the shared state volume, with the native code:
    Postgres' two .conf files, Trino's TLS certificate and password file, Prometheus' config
    folder and scrape targets, Superset's assets with the rendered Trino connection, and the
    PostgreSQL driver the metastore's image lacks."""
    _in_compose(stack.s)
    stack.preflight()
    written = [str(p) for p in stack.postgres.write_configs()]
    stack.trino.prepare()
    stack.prometheus.prepare()
    assets = stack.superset.data_dir / "assets"
    stack.superset.render_assets(assets)
    driver = stack.metastore.share_jdbc_driver()
    return [*written, str(stack.trino.password_file), str(stack.prometheus.etc), str(assets), str(driver)]


def init(stack: Stack, step: str) -> str:
    """One-shot jobs the native launcher runs after a service is ready."""
    _in_compose(stack.s)
    if step == "postgres":
        stack.postgres.bootstrap()
        return f"postgres: roles, database {stack.s.source_db}, schema and publication ready"
    if step == "minio":
        stack.minio.after_ready()
        return f"minio: bucket {stack.s.bucket} ready"
    if step == "connectors":
        return f"connect: connectors {', '.join(stack.register_connectors())} RUNNING"
    raise ConfigError(f"unknown init step {step!r} (steps: {', '.join(INIT_STEPS)})")


def serve(stack: Stack, name: str) -> None:
    """Prepare a native service and replace this process with it (the container's main process)."""
    svc = stack.service(name)
    _in_compose(stack.s)
    svc.prepare()
    argv = svc.argv()
    os.execvpe(argv[0], argv, svc.env())


def resolved(root: Path, cache: Path, versions: Versions, file: Path | None = None) -> dict[str, Any]:
    """docker-compose.yml as `docker compose config` resolves it (every profile), with a fresh
    .env written by `write_env_file` — never your own — and no shell variables leaking in."""
    from lakehouse.launcher.artifacts import ensure_compose_cli

    binary = ensure_compose_cli(cache, versions)
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / ".env"
        write_env_file(root, env_file)
        run = subprocess.run(
            [
                str(binary), "--project-directory", str(root), "-f", str(file or root / "docker-compose.yml"),
                "--env-file", str(env_file), "--profile", "*", "config", "--format", "json",
            ],
            capture_output=True, text=True, check=False,
            env={"PATH": os.environ.get("PATH", ""), "HOME": tmp},
        )  # fmt: skip
    if run.returncode != 0:
        raise LakehouseError(f"docker compose config rejected docker-compose.yml:\n{run.stderr.strip()}")
    model: dict[str, Any] = json.loads(run.stdout)
    return model


def validate(root: Path, cache: Path, versions: Versions) -> str:
    model = resolved(root, cache, versions)
    services, volumes = len(model["services"]), len(model.get("volumes", {}))
    return f"docker-compose.yml is valid: {services} services, {volumes} volumes"

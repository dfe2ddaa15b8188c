"""Per-install credentials: generated on first use, kept in the state dir (git-ignored, mode 0600).

There are no default passwords anywhere: a missing file is created, a missing credential that is
re-applied on every start is generated and appended, anything else missing is an error.
"""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config.versions import parse_env_file
from lakehouse.errors import ConfigError

KEYS = (
    "PG_SUPERUSER_PASSWORD",
    "PG_APP_PASSWORD",
    "PG_CDC_PASSWORD",
    "PG_METASTORE_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "MINIO_READER_PASSWORD",
    "TRINO_ADMIN_PASSWORD",
    "TRINO_ANALYST_PASSWORD",
    "TRINO_SHARED_SECRET",
    "SUPERSET_ADMIN_PASSWORD",
    "SUPERSET_SECRET_KEY",
)
#: credentials the launcher re-applies on every start (Trino's password file is rewritten each
#: time): safe to generate when missing, e.g. in a file written before Trino was part of the stack
REAPPLIED = frozenset(
    {
        "PG_METASTORE_PASSWORD",  # the metastore's role is altered to it on every start
        "MINIO_READER_PASSWORD",  # the read-only user is re-created on every start
        "TRINO_ADMIN_PASSWORD",
        "TRINO_ANALYST_PASSWORD",
        "TRINO_SHARED_SECRET",
        "SUPERSET_ADMIN_PASSWORD",  # reset on every start
        "SUPERSET_SECRET_KEY",  # the connection (and its password) is re-imported on every start
    }
)


@dataclass(frozen=True)
class Secrets:
    pg_superuser_password: str
    pg_app_password: str
    pg_cdc_password: str
    pg_metastore_password: str
    minio_root_user: str
    minio_root_password: str
    minio_reader_password: str
    trino_admin_password: str
    trino_analyst_password: str
    trino_shared_secret: str
    superset_admin_password: str
    superset_secret_key: str

    @classmethod
    def load_or_create(cls, home: Path) -> Secrets:
        path = home / "secrets.env"
        if not path.exists():
            write_file(path, {k: new_secret(k) for k in KEYS})
        values = parse_env_file(path)
        added = [k for k in KEYS if k in REAPPLIED and k not in values]
        if added:  # credentials of services this install has not run yet
            with open(path, "a") as fh:
                for k in added:
                    values[k] = new_secret(k)
                    fh.write(f"{k}={values[k]}\n")
        missing = [k for k in KEYS if not values.get(k)]
        if missing:
            raise ConfigError(
                f"{path}: missing {', '.join(missing)} — delete the file with `lakehouse down --wipe`"
                " to regenerate (this also deletes the data that used the old credentials)"
            )
        return cls(**{k.lower(): values[k] for k in KEYS})


def new_secret(key: str) -> str:
    """A fresh random value for credential `key` (a user name gets a short readable one)."""
    if key.endswith("_USER"):
        return "lakehouse-" + _random.token_hex(4)
    return _random.token_urlsafe(24)


def write_file(
    path: Path, values: dict[str, str], header: str = "generated per install by `lakehouse`"
) -> None:
    """Write KEY=VALUE credentials readable by the owner only (replacing the file if it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"# {header}; never commit\n")
        fh.writelines(f"{k}={v}\n" for k, v in values.items())

"""The one place clients are made from a stack's `Endpoints`: Trino (as the analyst or the admin)
and the object store (as its root user or the read-only reader). `admin_client`/`analyst_client`
are the same from this install's settings and secrets."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from minio import Minio

from lakehouse.clients.trino_client import Trino
from lakehouse.config.endpoints import Endpoints
from lakehouse.config.names import ADMIN_USER
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import Settings


def trino(ep: Endpoints, *, admin: bool = False, schema: str | None = None) -> Trino:
    """Trino over HTTPS as the read-only analyst, or as the admin (catalog sync, maintenance);
    unqualified names in `schema` when given."""
    t = ep.trino
    host, port = _host_port(t.url)
    user, password = (t.admin_user, t.admin_password) if admin else (t.user, t.password)
    return Trino(host, port, user, password, Path(t.ca_cert), catalog=t.catalog, schema=schema)


def object_store(ep: Endpoints, *, reader: bool = False) -> Minio:
    """The object store's S3 API as its root user, or as the user that can only list and read
    the bucket (what the page and `lakehouse trace` read bronze with)."""
    o = ep.object_store
    creds = o.reader if reader else o
    host, port = _host_port(o.endpoint)
    return Minio(f"{host}:{port}", access_key=creds.access_key, secret_key=creds.secret_key, secure=False)


def admin_client(s: Settings, sec: Secrets) -> Trino:
    return trino(Endpoints.of(s, sec), admin=True)


def analyst_client(s: Settings, sec: Secrets) -> Trino:
    return trino(Endpoints.of(s, sec))


def client_for(s: Settings, sec: Secrets, user: str) -> Trino:
    """The analyst's client, or the admin's for `ADMIN_USER`."""
    return trino(Endpoints.of(s, sec), admin=user == ADMIN_USER)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"{url!r}: not a URL with a host and a port")
    return parts.hostname, parts.port

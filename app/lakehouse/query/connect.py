"""Trino clients for this install from its settings and secrets: the admin (catalog sync,
maintenance) and the read-only analyst. Both are `clients.trino` over `Endpoints.of`."""

from __future__ import annotations

from ..clients import trino
from ..endpoints import Endpoints, ca_cert
from ..secrets import Secrets
from ..settings import Settings
from .client import Trino
from .names import ADMIN_USER

__all__ = ["admin_client", "analyst_client", "ca_cert", "client_for"]


def admin_client(s: Settings, sec: Secrets) -> Trino:
    return trino(Endpoints.of(s, sec), admin=True)


def analyst_client(s: Settings, sec: Secrets) -> Trino:
    return trino(Endpoints.of(s, sec))


def client_for(s: Settings, sec: Secrets, user: str) -> Trino:
    """The analyst's client, or the admin's for `ADMIN_USER`."""
    return trino(Endpoints.of(s, sec), admin=user == ADMIN_USER)

"""Trino clients for this install: the admin (catalog sync, maintenance) and the read-only analyst."""

from __future__ import annotations

from pathlib import Path

from ..secrets import Secrets
from ..settings import Settings
from .client import Trino
from .names import ADMIN_USER, ANALYST_USER, CATALOG


def ca_cert(s: Settings) -> Path:
    return s.state("trino") / "tls" / "cert.pem"


def client_for(s: Settings, sec: Secrets, user: str) -> Trino:
    passwords = {ADMIN_USER: sec.trino_admin_password, ANALYST_USER: sec.trino_analyst_password}
    return Trino(s.addr("trino"), s.trino_https_port, user, passwords[user], ca_cert(s), catalog=CATALOG)


def admin_client(s: Settings, sec: Secrets) -> Trino:
    return client_for(s, sec, ADMIN_USER)


def analyst_client(s: Settings, sec: Secrets) -> Trino:
    return client_for(s, sec, ANALYST_USER)

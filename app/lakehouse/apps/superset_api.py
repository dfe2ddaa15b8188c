"""A small client for Superset's REST API: log in, find dashboards and charts, run chart data,
and check the database connection the way Superset itself would."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from lakehouse.config.endpoints import DASHBOARD_SLUG
from lakehouse.errors import LakehouseError

#: the Trino connection imported from superset/assets/databases/
DATABASE_NAME = "Lakehouse (Trino)"


class SupersetError(LakehouseError):
    pass


def one_line(message: str) -> str:
    """SQLAlchemy's wrapped driver error as one line: the driver's own words, no boilerplate."""
    inner = re.search(r"\[SQL: (.*?)\]\s*(\(Background|$)", message, re.S)
    text = inner.group(1) if inner else re.sub(r"\(Background on this error at: [^)]*\)", "", message)
    return " ".join(text.split())


@dataclass
class Superset:
    url: str
    user: str
    password: str
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=self.timeout, trust_env=False)
        self._csrf: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Superset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- session -------------------------------------------------------------------------
    def login(self) -> Superset:
        body = {"username": self.user, "password": self.password, "provider": "db", "refresh": True}
        r = self.http.post("/api/v1/security/login", json=body)
        if r.status_code == 401:
            raise SupersetError(f"Superset refused the login of {self.user} (wrong password?)")
        self._check(r, "login")
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = self.http.get("/api/v1/security/csrf_token/")
        self._check(r, "CSRF token")
        self._csrf = r.json()["result"]
        self.http.headers["X-CSRFToken"] = self._csrf
        self.http.headers["Referer"] = self.url
        return self

    @staticmethod
    def _check(r: httpx.Response, what: str) -> None:
        if r.status_code >= 400:
            raise SupersetError(f"Superset {what}: HTTP {r.status_code} {r.text[:300]}")

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params or None)
        self._check(r, f"GET {path}")
        return r.json()

    # -- assets --------------------------------------------------------------------------
    def dashboard(self, slug: str = DASHBOARD_SLUG) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/dashboard/{slug}")["result"])

    def dashboard_charts(self, slug: str = DASHBOARD_SLUG) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v1/dashboard/{slug}/charts")["result"])

    def chart_data(self, chart_id: int) -> list[dict[str, Any]]:
        """Run a chart's saved query (what the dashboard runs) and return its rows."""
        r = self.http.get(f"/api/v1/chart/{chart_id}/data/", params={"format": "json", "type": "full"})
        self._check(r, f"chart {chart_id} data")
        rows: list[dict[str, Any]] = []
        for result in r.json()["result"]:
            if result.get("error"):
                raise SupersetError(f"chart {chart_id}: {result['error']}")
            rows.extend(result.get("data") or [])
        return rows

    def database(self, name: str = DATABASE_NAME) -> dict[str, Any]:
        q = f"(filters:!((col:database_name,opr:eq,value:'{name}')))"
        found = self.get("/api/v1/database/", q=q)["result"]
        if not found:
            raise SupersetError(f"Superset has no database '{name}' (the asset import did not run?)")
        return dict(found[0])

    def connection_error(self, name: str = DATABASE_NAME) -> tuple[str, str | None]:
        """The stored (masked) URI, and None if Superset can connect with it, else its reason."""
        db = self.database(name)
        conn = self.get(f"/api/v1/database/{db['id']}/connection")["result"]
        extra = conn.get("extra")
        body = {
            "database_name": name,
            "sqlalchemy_uri": conn["sqlalchemy_uri"],  # masked: Superset uses the stored password
            "extra": extra if isinstance(extra, str) else json.dumps(extra or {}),
        }
        r = self.http.post("/api/v1/database/test_connection/", json=body)
        if r.status_code == 200:
            return body["sqlalchemy_uri"], None
        try:
            payload = r.json()
            errors = payload.get("errors") or []
            message = errors[0].get("message") if errors else payload.get("message")
        except ValueError:
            message = r.text[:300]
        return body["sqlalchemy_uri"], one_line(str(message or f"HTTP {r.status_code}"))

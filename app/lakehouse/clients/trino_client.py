"""A small Trino client over the official Python driver: one place for TLS, login and error text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import trino
from trino.auth import BasicAuthentication
from trino.exceptions import TrinoQueryError

from lakehouse.errors import LakehouseError

NOT_RUNNING = "Trino is not running — run `lakehouse up`"


class QueryError(LakehouseError):
    """Trino refused the statement: the message carries its line/column."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Trino:
    host: str
    port: int
    user: str
    password: str
    ca_cert: Path
    catalog: str | None = None
    schema: str | None = None
    timeout_s: float = 300.0

    def _connect(self) -> trino.dbapi.Connection:
        if not self.ca_cert.is_file():  # made by the first `lakehouse up` that starts Trino
            raise LakehouseError(NOT_RUNNING)
        session = requests.Session()
        session.verify = str(self.ca_cert)
        # REQUESTS_CA_BUNDLE & co. in the environment would otherwise replace our certificate
        # (requests lets them override a session's `verify`); Trino is on this host, no proxies.
        session.trust_env = False
        return trino.dbapi.connect(
            http_session=session,
            host=self.host,
            port=self.port,
            user=self.user,
            auth=BasicAuthentication(self.user, self.password),
            http_scheme="https",
            catalog=self.catalog,
            schema=self.schema,
            request_timeout=self.timeout_s,
            max_attempts=1,
        )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Run one statement and fetch all its rows."""
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = cur.fetchall()
            columns = [d[0] for d in (cur.description or [])]
            return Result(columns, [list(r) for r in rows])
        except TrinoQueryError as exc:
            raise QueryError(describe(exc, sql), exc.error_name or "") from None
        except (requests.exceptions.ConnectionError, trino.exceptions.TrinoConnectionError) as exc:
            if "refused" in str(exc).lower():
                raise LakehouseError(NOT_RUNNING) from None
            raise LakehouseError(f"cannot reach Trino at {self.host}:{self.port}: {exc}") from None
        except trino.exceptions.HttpError as exc:
            if "401" in str(exc):
                raise LakehouseError(
                    f"Trino refused the login of user '{self.user}' — the password is in `lakehouse env`"
                ) from None
            raise LakehouseError(f"Trino at {self.host}:{self.port}: {first_line(str(exc))}") from None
        finally:
            conn.close()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params).rows
        return rows[0][0] if rows else None


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def describe(exc: TrinoQueryError, sql: str) -> str:
    """`line 1:8: Column 'x' cannot be resolved (COLUMN_NOT_FOUND)` plus the line with a caret."""
    message = first_line(exc.message or str(exc))
    out = f"{message} ({exc.error_name})" if exc.error_name else message
    location = exc.error_location
    if location:
        line, column = location
        lines = sql.splitlines()
        if not message.startswith("line "):
            out = f"line {line}:{column}: {out}"
        if 1 <= line <= len(lines):
            out += f"\n  {lines[line - 1]}\n  {' ' * (column - 1)}^"
    return out

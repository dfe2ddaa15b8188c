"""Print a query result as an aligned table, CSV or JSON (`lakehouse sql --format`)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from typing import Any

from lakehouse.clients.trino_client import Result


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact, as the source wrote it
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def as_table(result: Result) -> str:
    cells = [[_text(v) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    numeric = [
        bool(result.rows)
        and all(isinstance(r[i], int | float | decimal.Decimal) for r in result.rows if r[i] is not None)
        for i in range(len(result.columns))
    ]

    def line(values: list[str]) -> str:
        return " | ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(result.columns), "-+-".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    n = len(result.rows)
    out.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(out)


def as_csv(result: Result) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([["" if v is None else _text(v) for v in row] for row in result.rows])
    return buf.getvalue().rstrip("\n")


def as_json(result: Result) -> str:
    rows = [dict(zip(result.columns, (_json_value(v) for v in row), strict=True)) for row in result.rows]
    return json.dumps(rows, indent=2, ensure_ascii=False)


FORMATS = {"table": as_table, "csv": as_csv, "json": as_json}

"""Crafted bronze lines carrying Debezium envelopes, as the connector writes them."""

from __future__ import annotations

import itertools
import json
from typing import Any

TOPIC_PREFIX = "cdc"
TXN_TOPIC = f"{TOPIC_PREFIX}.transaction"
PLACEHOLDER = "__debezium_unavailable_value"
_offsets = itertools.count(1)


def field(
    name: str, kind: str, pg: str, optional: bool = True, logical: str | None = None, **params: str
) -> dict[str, Any]:
    f: dict[str, Any] = {
        "type": kind,
        "optional": optional,
        "field": name,
        "parameters": {"__debezium.source.column.type": pg, **params},
    }
    if logical:
        f["name"] = logical
    return f


MOVIES = [
    field("movie_id", "int32", "INT4", optional=False),
    field("title", "string", "TEXT"),
    field(
        "budget",
        "string",
        "NUMERIC",
        **{"__debezium.source.column.length": "38", "__debezium.source.column.scale": "10"},
    ),
    field("released", "string", "TIMESTAMPTZ", logical="io.debezium.time.ZonedTimestamp"),
]


def envelope_schema(fields: list[dict[str, Any]], table: str) -> dict[str, Any]:
    row = {"type": "struct", "fields": fields, "optional": True, "name": f"cdc.{table}.Value"}
    return {
        "type": "struct",
        "fields": [{**row, "field": "before"}, {**row, "field": "after"}],
        "name": f"cdc.{table}.Envelope",
    }


def event(
    op: str,
    row: dict[str, Any] | None,
    lsn: int,
    *,
    commit_lsn: int | None = None,
    table: str = "movielens.movies",
    fields: list[dict[str, Any]] | None = None,
    keys: tuple[str, ...] = ("movie_id",),
    txid: int | None = None,
    dco: int | None = None,
    offset: int | None = None,
) -> str:
    fields = fields or MOVIES
    schema, name = table.split(".")
    source = {
        "lsn": lsn,
        "sequence": json.dumps([None if commit_lsn is None else str(commit_lsn), str(lsn)]),
        "ts_us": 1_795_000_000_000_000 + lsn,
        "txId": txid,
        "schema": schema,
        "table": name,
        "snapshot": "true" if op == "r" else "false",
    }
    payload: dict[str, Any] = {
        "before": row if op == "d" else None,
        "after": None if op in ("d", "t") else row,
        "op": op,
        "source": source,
        "transaction": None
        if txid is None
        else {"id": f"{txid}:{lsn}", "total_order": dco, "data_collection_order": dco},
    }
    key_fields = [f for f in fields if f["field"] in keys]
    key = (
        None
        if op == "t"
        else {
            "schema": {"type": "struct", "fields": key_fields},
            "payload": {k: (row or {}).get(k) for k in keys},
        }
    )
    return json.dumps(
        {
            "topic": f"{TOPIC_PREFIX}.{table}",
            "partition": 0,
            "offset": next(_offsets) if offset is None else offset,
            "timestamp": 0,
            "key": key,
            "value": {"schema": envelope_schema(fields, table), "payload": payload},
        }
    )


def end(txid: int, counts: dict[str, int], commit: int = 999) -> str:
    """The transaction's END record: its id carries the commit's LSN (`<txid>:<commit LSN>`), as the
    pinned Debezium writes it (tests/fixtures/debezium/type_matrix.jsonl)."""
    payload = {
        "status": "END",
        "id": f"{txid}:{commit}",
        "event_count": sum(counts.values()),
        "data_collections": [{"data_collection": t, "event_count": n} for t, n in counts.items()],
    }
    return json.dumps(
        {
            "topic": TXN_TOPIC,
            "partition": 0,
            "offset": next(_offsets),
            "timestamp": 0,
            "key": None,
            "value": {"schema": None, "payload": payload},
        }
    )


def movie_row(i: int, title: str) -> dict[str, Any]:
    return {"movie_id": i, "title": title, "budget": None, "released": None}

"""Keep Trino's catalog in step with silver: register new Delta tables, drop vanished ones, (re)build views.

Silver tables are created by the Spark job whenever a new source table shows up; Trino's file
metastore only knows tables that are registered. One pass lists `silver/` in object storage
(a few LIST calls), registers what is new, unregisters what is gone and refreshes the views.

A table with a change log (merge-on-read, silver/live.py) is registered as its base
(`silver_base.<t>`) and its log (`silver_log.<t>`), and `silver.<t>` is the view of the two by
the live rule, rewritten when the base's columns change. Silver changes a base's columns in a
commit of the base (the batch that meets the new schema); each pass lists the commits of each base
newer than the last it saw (one LIST from where it left off), and reads the columns again of the
bases that have one — within a pass (2 s) of the change, and otherwise not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.config.layout import LOG_FOLDER, Storage
from lakehouse.config.layout import SILVER as LAYOUT_SILVER
from lakehouse.config.names import (
    ANALYTICS,
    CATALOG,
    OPS,
    OPS_TABLES,
    SILVER,
    SILVER_BASE,
    SILVER_LOG,
    silver_table,
)
from lakehouse.pipeline.query.views import View, freshness_view
from lakehouse.pipeline.silver.live import live_sql

log = logging.getLogger("lakehouse.catalog")

Key = tuple[str, str]  # (trino schema, trino table)


class ObjectLister(Protocol):
    def list_objects(
        self, bucket_name: str, prefix: str | None = ..., recursive: bool = ..., start_after: str | None = ...
    ) -> Iterable[object]: ...


def _names(lister: ObjectLister, bucket: str, prefix: str) -> list[str]:
    """Immediate children of `prefix` (folders end in `/`)."""
    return [str(getattr(o, "object_name", "")) for o in lister.list_objects(bucket, prefix=prefix)]


def has_log(lister: ObjectLister, bucket: str, folder: str) -> bool:
    """A Delta table: a commit file in `_delta_log/` (S3A also leaves an empty folder marker)."""
    return any(n.endswith(".json") for n in _names(lister, bucket, f"{folder}_delta_log/"))


def commit_objects(lister: ObjectLister, bucket: str, folder: str, after: str | None) -> list[Any]:
    """The Delta table's commit files (`_delta_log/<version>.json`, zero-padded: names sort as
    versions) after the name `after`, oldest first, as the object store lists them."""
    listed = lister.list_objects(bucket, prefix=f"{folder}_delta_log/", start_after=after)
    return [o for o in listed if str(getattr(o, "object_name", "")).endswith(".json")]


def commits_after(lister: ObjectLister, bucket: str, folder: str, after: str | None) -> list[str]:
    """The names of `commit_objects`."""
    return [str(o.object_name) for o in commit_objects(lister, bucket, folder, after)]


def commit_name(folder: str, version: int) -> str:
    """The object name of a Delta table's commit `version` (`folder` ends in `/`)."""
    return f"{folder}_delta_log/{version:020d}.json"


def commit_version(name: str) -> int:
    """The version of the commit file `name` (commit_name's inverse)."""
    return int(name.rsplit("/", 1)[-1].removesuffix(".json"))


def discover(lister: ObjectLister, bucket: str, source_schema: str, known: set[Key]) -> dict[Key, str]:
    """Delta tables under `silver/` → their Trino key and location. Folders already known are trusted."""
    found: dict[Key, str] = {}
    for schema_dir in _names(lister, bucket, f"{LAYOUT_SILVER}/"):
        base = schema_dir.rstrip("/").rsplit("/", 1)[-1]
        if base in OPS_TABLES:
            candidates = [((OPS, OPS_TABLES[base]), schema_dir)]
        elif base.startswith("_") or not schema_dir.endswith("/"):
            continue
        else:
            candidates = [
                ((SILVER, silver_table(f"{base}.{t.rstrip('/').rsplit('/', 1)[-1]}", source_schema)), t)
                for t in _names(lister, bucket, schema_dir)
                if t.endswith("/")
            ]
        for key, folder in candidates:
            if key in known or has_log(lister, bucket, folder):
                found[key] = Storage(bucket).trino(folder)
    return found


#: the Delta table property that names a silver table's primary key (silver/store.py)
KEY_PROPERTY = "lakehouse.primary_key"


def discover_logs(lister: ObjectLister, bucket: str, source_schema: str) -> dict[str, str]:
    """Change logs under `silver/_log/` → the Trino name of their table and the log's location."""
    found: dict[str, str] = {}
    for schema_dir in _names(lister, bucket, f"{LAYOUT_SILVER}/{LOG_FOLDER}/"):
        if not schema_dir.endswith("/"):
            continue
        base = schema_dir.rstrip("/").rsplit("/", 1)[-1]
        for t in _names(lister, bucket, schema_dir):
            if t.endswith("/") and has_log(lister, bucket, t):
                found[silver_table(f"{base}.{t.rstrip('/').rsplit('/', 1)[-1]}", source_schema)] = Storage(
                    bucket
                ).trino(t)
    return found


def split_logged(found: dict[Key, str], logs: dict[str, str]) -> dict[Key, str]:
    """What to register: a silver table with a change log as its base and its log."""
    out: dict[Key, str] = {}
    for (schema, table), location in found.items():
        if schema == SILVER and table in logs:
            out[(SILVER_BASE, table)] = location
            out[(SILVER_LOG, table)] = logs[table]
        else:
            out[(schema, table)] = location
    return out


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class SyncReport:
    registered: list[Key] = field(default_factory=list)
    unregistered: list[Key] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    pending_views: dict[str, str] = field(default_factory=dict)


@dataclass
class CatalogSync:
    trino: Trino  # as the admin user
    lister: ObjectLister
    bucket: str
    source_schema: str
    static_views: list[View]
    registered: set[Key] = field(default_factory=set)
    applied: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    #: pending views are retried when the table set changes, and every this many passes
    retry_every: int = 15
    passes: int = 0
    #: merge-on-read: per silver table with a change log, its primary key (read once)
    keys: dict[str, list[str]] = field(default_factory=dict)
    #: per base, the newest of its commit files seen (where the next pass's listing starts)
    seen_commits: dict[str, str] = field(default_factory=dict)
    _columns: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def bootstrap(self) -> None:
        """Create the schemas and learn what is registered already (idempotent)."""
        for schema in (SILVER, SILVER_BASE, SILVER_LOG, ANALYTICS, OPS):
            self.trino.query(f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{schema}")
        rows = self.trino.query(
            f"SELECT table_schema, table_name FROM {CATALOG}.information_schema.tables"
            f" WHERE table_schema IN ('{SILVER}', '{SILVER_BASE}', '{SILVER_LOG}', '{OPS}')"
            " AND table_type = 'BASE TABLE'"
        ).rows
        # the ops tables of others (the job scheduler's ops.job_runs) are theirs to keep
        self.registered = {(r[0], r[1]) for r in rows if r[0] != OPS or r[1] in OPS_TABLES.values()}

    def _call(self, procedure: str, **args: str) -> None:
        named = ", ".join(f"{k} => {literal(v)}" for k, v in args.items())
        self.trino.query(f"CALL {CATALOG}.system.{procedure}({named})")

    def register(self, key: Key, location: str) -> None:
        if key[0] == SILVER:  # the live view of a table that had a change log before a reset
            self.trino.query(f"DROP VIEW IF EXISTS {CATALOG}.{SILVER}.{key[1]}")
            self.applied.pop(f"{SILVER}.{key[1]}", None)
        try:
            self._call("register_table", schema_name=key[0], table_name=key[1], table_location=location)
        except QueryError as exc:
            if "already exists" not in str(exc):
                raise
        # a table re-created at the same path must not be served from a cached older snapshot
        self._call("flush_metadata_cache", schema_name=key[0], table_name=key[1])

    def unregister(self, key: Key) -> None:
        try:
            self._call("unregister_table", schema_name=key[0], table_name=key[1])
        except QueryError as exc:
            if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                raise

    def views(self, changed: Iterable[str] = ()) -> list[View]:
        """Every view catalog-sync keeps; `changed`: bases whose columns to read again."""
        live = self.live_views(changed)
        silver = [t for (schema, t) in self.registered if schema == SILVER]
        return [*live, *self.static_views, freshness_view(silver + [v.name.split(".", 1)[1] for v in live])]

    def based(self) -> list[str]:
        """The silver tables registered as a base and a log (merge-on-read)."""
        logged = {t for (schema, t) in self.registered if schema == SILVER_LOG}
        return sorted(t for (schema, t) in self.registered if schema == SILVER_BASE and t in logged)

    def new_commits(self, folders: dict[str, str]) -> list[str]:
        """The bases (of `folders`: base → its folder) with a commit since the last pass (all of
        them on the first)."""
        out = []
        for t, folder in sorted(folders.items()):
            names = commits_after(self.lister, self.bucket, folder, self.seen_commits.get(t))
            if names:
                self.seen_commits[t] = names[-1]
                out.append(t)
        return out

    def live_views(self, changed: Iterable[str] = ()) -> list[View]:
        """`silver.<t>` for each table registered as a base and a log: the live rule over the two,
        with the base's columns as last read (`changed`: read these bases' columns now), so a
        column silver adds or retypes shows up in the view."""
        logged = self.based()
        if not logged:
            return []
        stale = sorted({t for t in changed if t in logged} | {t for t in logged if t not in self._columns})
        if stale:
            for t in stale:  # Trino caches table metadata (delta.metadata.cache-ttl): read it anew
                self._columns.pop(t, None)
                self._call("flush_metadata_cache", schema_name=SILVER_BASE, table_name=t)
            names = ", ".join(literal(t) for t in stale)
            for table, column, kind in self.trino.query(
                f"SELECT table_name, column_name, data_type FROM {CATALOG}.information_schema.columns"
                f" WHERE table_schema = '{SILVER_BASE}' AND table_name IN ({names})"
                " ORDER BY table_name, ordinal_position"
            ).rows:
                self._columns.setdefault(str(table), []).append((str(column), str(kind)))
        out = []
        for t in logged:
            if t not in self._columns:
                continue
            columns = [c for c, _ in self._columns[t]]
            if t not in self.keys:
                keys = self.trino.scalar(
                    f'SELECT value FROM {CATALOG}.{SILVER_BASE}."{t}$properties"'
                    f" WHERE key = {literal(KEY_PROPERTY)}"
                )
                self.keys[t] = [k for k in str(keys or "").split(",") if k]
            base, log_ = f"{CATALOG}.{SILVER_BASE}.{t}", f"{CATALOG}.{SILVER_LOG}.{t}"
            body = live_sql(base, log_, self.keys[t], columns, "trino")
            out.append(
                View(
                    f"{SILVER}.{t}",
                    f"CREATE OR REPLACE VIEW {CATALOG}.{SILVER}.{t}\n"
                    f"COMMENT 'live rows: {SILVER_BASE}.{t} with its change log applied'\nAS {body}",
                    ", ".join(f"{c} {kind}" for c, kind in self._columns[t]),
                )
            )
        return out

    def run_once(self) -> SyncReport:
        report = SyncReport()
        logs = discover_logs(self.lister, self.bucket, self.source_schema)
        known = self.registered | {(SILVER, t) for (schema, t) in self.registered if schema == SILVER_BASE}
        found = split_logged(discover(self.lister, self.bucket, self.source_schema, known), logs)
        for key in sorted(self.registered - set(found)):
            if key[0] == SILVER_BASE:  # its live view goes with it
                self.trino.query(f"DROP VIEW IF EXISTS {CATALOG}.{SILVER}.{key[1]}")
                self.applied.pop(f"{SILVER}.{key[1]}", None)
                self.keys.pop(key[1], None)
            self.unregister(key)
            self.registered.discard(key)
            report.unregistered.append(key)
            log.info("unregistered %s.%s.%s (its silver folder is gone)", CATALOG, *key)
        for key in sorted(set(found) - self.registered):
            self.register(key, found[key])
            self.registered.add(key)
            report.registered.append(key)
            log.info("registered %s.%s.%s → %s", CATALOG, *key, found[key])
        self.passes += 1
        retry = bool(report.registered or report.unregistered) or self.passes % self.retry_every == 0
        storage = Storage(self.bucket)
        bases = {
            t: storage.key(found[(SILVER_BASE, t)]).rstrip("/") + "/"
            for t in self.based()
            if (SILVER_BASE, t) in found
        }
        for t in set(self.seen_commits) - set(bases):  # gone, or back to merge-on-write
            self.seen_commits.pop(t)
        for view in self.views(changed=self.new_commits(bases)):
            if self.applied.get(view.name) == view.sql + view.signature:
                continue
            if view.name in self.pending and not retry:
                continue  # its tables are still missing; retry when the table set changes
            try:
                self.trino.query(view.sql)
            except QueryError as exc:
                self.pending[view.name] = str(exc).splitlines()[0]
                continue
            self.applied[view.name] = view.sql + view.signature
            self.pending.pop(view.name, None)
            report.views.append(view.name)
            log.info("view %s is up to date", view.name if "." in view.name else f"{ANALYTICS}.{view.name}")
        report.pending_views = dict(self.pending)
        return report

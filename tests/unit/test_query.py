"""The query layer without a server: views, names, catalog discovery, errors, output, Trino's config."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from trino.exceptions import TrinoQueryError

from lakehouse.clients.trino_client import NOT_RUNNING, Result, Trino, describe
from lakehouse.config.names import silver_table
from lakehouse.config.paths import repo_root
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.query.catalog import CatalogSync, discover
from lakehouse.pipeline.query.output import as_csv, as_json, as_table
from lakehouse.pipeline.query.views import FRESHNESS, freshness_view, load_views

ROOT = repo_root()


def test_every_view_file_is_one_create_or_replace_in_analytics() -> None:
    views = load_views(ROOT / "trino" / "views")
    assert {v.name for v in views} >= {
        "top_movies",
        "ratings_per_day",
        "genre_popularity",
        "most_active_users",
    }
    for v in views:
        assert v.sql.lstrip().split("\n", 1)[0].startswith("--")  # each says what it is
        body = "\n".join(line for line in v.sql.splitlines() if not line.startswith("--"))
        assert body.startswith(f"CREATE OR REPLACE VIEW lakehouse.analytics.{v.name}\n"), v.name
        assert "{{" not in v.sql and not body.rstrip().endswith(";")  # Trino takes one statement


def test_freshness_view_spans_every_registered_table() -> None:
    sql = freshness_view(["ratings", "movies"]).sql
    assert sql.startswith(f"CREATE OR REPLACE VIEW lakehouse.analytics.{FRESHNESS}")
    assert sql.count("UNION ALL") == 1
    assert sql.index("lakehouse.silver.movies") < sql.index("lakehouse.silver.ratings")
    assert "WHERE false" in freshness_view([]).sql  # a valid, empty view before any table exists


def test_trino_names_of_source_tables() -> None:
    assert silver_table("movielens.ratings", "movielens") == "ratings"
    assert silver_table("other.ratings", "movielens") == "other__ratings"


@dataclass
class Obj:
    object_name: str


class Listing:
    """Object names as MinIO's non-recursive listing returns them (folders end in `/`)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_objects(
        self,
        bucket_name: str,
        prefix: str | None = None,
        recursive: bool = False,
        start_after: str | None = None,
    ) -> list[Obj]:
        assert prefix is not None and not recursive
        children = {prefix + k[len(prefix) :].split("/", 1)[0] + ("/" if "/" in k[len(prefix) :] else "")
                    for k in self.keys if k.startswith(prefix)}  # fmt: skip
        return [Obj(c) for c in sorted(children) if start_after is None or c > start_after]


def test_discover_finds_delta_tables_and_quarantine_only() -> None:
    lister = Listing(
        [
            "silver/movielens/ratings/_delta_log/00000000000000000000.json",
            "silver/movielens/ratings/part-0.parquet",
            "silver/movielens/half_written/part-0.parquet",  # no commit yet: not a table
            "silver/_quarantine/_delta_log/00000000000000000000.json",
            "silver/_state/pending/_delta_log/00000000000000000000.json",
            "silver/other/tags/_delta_log/00000000000000000003.json",
        ]
    )
    found = discover(lister, "b", "movielens", known=set())
    assert found == {
        ("silver", "ratings"): "s3://b/silver/movielens/ratings",
        ("silver", "other__tags"): "s3://b/silver/other/tags",
        ("ops", "quarantine"): "s3://b/silver/_quarantine",
    }


class RecordingTrino:
    """Trino's answers to catalog-sync's questions, and the statements it sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.narrow = True

    def query(self, sql: str, params: object = None) -> Result:
        self.sent.append(sql)
        if "information_schema.columns" in sql:
            cols = ["user_id", "movie_id", "rating", "_op", "_lsn", "_commit_lsn"]
            rating = "integer" if self.narrow else "double"
            return Result(
                ["table_name", "column_name", "data_type"],
                [["ratings", c, rating if c == "rating" else "bigint"] for c in cols],
            )
        return Result([], [])

    def scalar(self, sql: str, params: object = None) -> object:
        self.sent.append(sql)
        assert '"ratings$properties"' in sql and "lakehouse.primary_key" in sql
        return "user_id,movie_id"


def test_a_table_with_a_change_log_is_its_base_its_log_and_a_live_view() -> None:
    lister = Listing(
        [
            "silver/movielens/ratings/_delta_log/00000000000000000000.json",
            "silver/_log/movielens/ratings/_delta_log/00000000000000000000.json",
            "silver/movielens/movies/_delta_log/00000000000000000000.json",  # merge-on-write: a table
        ]
    )
    trino = RecordingTrino()
    sync = CatalogSync(trino, lister, "b", "movielens", [])  # type: ignore[arg-type]
    sync.registered = {("silver", "ratings")}  # as merge-on-write registered it
    report = sync.run_once()
    assert report.unregistered == [("silver", "ratings")]
    assert report.registered == [
        ("silver", "movies"),
        ("silver_base", "ratings"),
        ("silver_log", "ratings"),
    ]
    assert "silver.ratings" in report.views
    view = next(q for q in trino.sent if q.startswith("CREATE OR REPLACE VIEW lakehouse.silver.ratings"))
    assert "FROM lakehouse.silver_base.ratings b" in view and "FROM lakehouse.silver_log.ratings" in view
    assert 'PARTITION BY "user_id", "movie_id"' in view
    freshness = next(q for q in trino.sent if "pipeline_freshness" in q)
    assert "FROM lakehouse.silver.ratings" in freshness and "FROM lakehouse.silver.movies" in freshness
    # no commit of the base since: its columns are not read again (each read makes Trino open the
    # base's Delta log), and the view is left alone
    trino.sent.clear()
    for _ in range(10):
        assert "silver.ratings" not in sync.run_once().views
    assert not any("information_schema.columns" in q for q in trino.sent), trino.sent
    # a column's type changes (widened, or stored as text) in a commit of the base: Trino keeps
    # types with a view, so the next pass writes it again though its SQL is the same, after
    # flushing Trino's cached metadata of the base
    trino.narrow = False
    lister.keys.append("silver/movielens/ratings/_delta_log/00000000000000000001.json")
    report = sync.run_once()
    assert "silver.ratings" in report.views
    assert [q for q in trino.sent if "flush_metadata_cache" in q] == [
        "CALL lakehouse.system.flush_metadata_cache(schema_name => 'silver_base', table_name => 'ratings')"
    ]
    assert sum("information_schema.columns" in q for q in trino.sent) == 1
    assert "silver.ratings" not in sync.run_once().views
    # a commit of the log only (every batch's append): nothing is read
    lister.keys.append("silver/_log/movielens/ratings/_delta_log/00000000000000000001.json")
    trino.sent.clear()
    assert "silver.ratings" not in sync.run_once().views
    assert not any("information_schema.columns" in q for q in trino.sent), trino.sent


def test_sql_error_points_at_line_and_column() -> None:
    sql = "SELECT movie_id,\n  nope FROM movies"
    exc = TrinoQueryError(
        {
            "message": "line 2:3: Column 'nope' cannot be resolved",
            "errorName": "COLUMN_NOT_FOUND",
            "errorLocation": {"lineNumber": 2, "columnNumber": 3},
        }
    )
    assert describe(exc, sql).splitlines() == [
        "line 2:3: Column 'nope' cannot be resolved (COLUMN_NOT_FOUND)",
        "    nope FROM movies",
        "    ^",
    ]


def test_stopped_trino_is_named_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from lakehouse.launcher.tls import ensure_certificate

    _, cert = ensure_certificate(tmp_path)
    for ca in (cert, tmp_path / "never-started.pem"):  # stopped, and never started in this install
        client = Trino("127.0.0.1", port, "analyst", "x", ca)
        with pytest.raises(LakehouseError) as err:
            client.query("SELECT 1")
        assert str(err.value) == NOT_RUNNING == "Trino is not running — run `lakehouse up`"


def test_output_formats() -> None:
    import datetime as dt
    import decimal

    r = Result(["id", "title", "score", "at"], [[1, "Heat", decimal.Decimal("4.5"), None],
                                                [10, "Ran, 1985", None, dt.date(2026, 1, 2)]])  # fmt: skip
    assert as_table(r).splitlines() == [
        "id | title     | score | at",
        "---+-----------+-------+-----------",
        " 1 | Heat      |   4.5 | NULL",
        "10 | Ran, 1985 |  NULL | 2026-01-02",
        "(2 rows)",
    ]
    assert as_csv(r).splitlines() == ["id,title,score,at", "1,Heat,4.5,", '10,"Ran, 1985",,2026-01-02']
    assert json.loads(as_json(r)) == [
        {"id": 1, "title": "Heat", "score": "4.5", "at": None},
        {"id": 10, "title": "Ran, 1985", "score": None, "at": "2026-01-02"},
    ]


def test_analyst_rules_never_reach_ops_or_writes() -> None:
    rules = json.loads((ROOT / "trino" / "etc" / "rules.json").read_text())
    for rule in rules["tables"]:
        if rule.get("user") == "analyst":
            assert set(rule["privileges"]) <= {"SELECT"}
            assert not re.fullmatch(rule.get("schema", ".*"), "ops")
    assert rules["tables"][-1] == {"privileges": []}  # everyone else: nothing
    analyst_catalogs = [r for r in rules["catalogs"] if r.get("user") == "analyst"]
    assert [r["allow"] for r in analyst_catalogs] == ["read-only"]
    # the analyst runs queries; seeing or killing anyone else's is the admin's (own ones: always)
    analyst_queries = [r for r in rules["queries"] if r.get("user") == "analyst"]
    assert [r["allow"] for r in analyst_queries] == [["execute"]]


def test_every_env_placeholder_in_trino_etc_is_set_by_the_native_launcher(tmp_path: Path) -> None:
    from lakehouse.config.secrets import Secrets
    from lakehouse.config.settings import Settings
    from lakehouse.config.versions import Versions
    from lakehouse.launcher.services.base import Context
    from lakehouse.launcher.services.trino import TrinoService, TrinoWorkerService

    ctx = Context(Settings(home=tmp_path, scale_out=True), Secrets.load_or_create(tmp_path), Versions.load())
    etc = ROOT / "trino" / "etc"
    # the coordinator reads config.properties, the worker worker.properties; both the rest
    for service, skipped in (
        (TrinoService(ctx), "worker.properties"),
        (TrinoWorkerService(ctx), "config.properties"),
    ):
        env = service.env()
        used = set()
        for f in etc.rglob("*.properties"):
            if f.name != skipped:
                used |= set(re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", f.read_text()))
        assert used and used <= set(env), (service.name, used - set(env))
        assert service.argv()[-1] == str(etc / "worker.properties") or service.name == "trino"
    jvm = (ROOT / "trino" / "etc" / "jvm.config").read_text()
    assert "${" not in jvm  # the launcher does not substitute in jvm.config


def test_password_file_holds_bcrypt_hashes_trino_accepts(tmp_path: Path) -> None:
    import bcrypt

    from lakehouse.config.secrets import Secrets
    from lakehouse.config.settings import Settings
    from lakehouse.config.versions import Versions
    from lakehouse.launcher.services.base import Context
    from lakehouse.launcher.services.trino import TrinoService

    sec = Secrets.load_or_create(tmp_path)
    svc = TrinoService(Context(Settings(home=tmp_path), sec, Versions.load()))
    svc.prepare()
    lines = dict(line.split(":", 1) for line in svc.password_file.read_text().splitlines())
    assert set(lines) == {"admin", "analyst"}
    assert oct(svc.password_file.stat().st_mode & 0o777) == "0o600"
    digest = lines["analyst"]
    assert digest.startswith("$2y$10$")
    assert bcrypt.checkpw(sec.trino_analyst_password.encode(), ("$2b$" + digest[4:]).encode())
    assert not bcrypt.checkpw(b"wrong", ("$2b$" + digest[4:]).encode())
    # the certificate Trino serves is valid for 127.0.0.1 and kept across starts
    cert = (tmp_path / "trino" / "tls" / "cert.pem").read_bytes()
    svc.prepare()
    assert (tmp_path / "trino" / "tls" / "cert.pem").read_bytes() == cert
    from cryptography import x509

    san = x509.load_pem_x509_certificate(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "127.0.0.1" in {str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)}

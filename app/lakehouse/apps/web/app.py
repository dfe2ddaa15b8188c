"""Starlette app: search a movie, edit it in Postgres, show the source row beside the silver row.

The source is read with psycopg as the application role; silver through Trino as the read-only
analyst — the same paths a user's own tools take.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lakehouse.apps.monitor.trace import Trace, Tracer
from lakehouse.apps.web.guard import SameOriginWrites
from lakehouse.apps.web.propagation import Tracker
from lakehouse.apps.web.pulse import Pulse
from lakehouse.clients.trino_client import QueryError, Trino
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.query.catalog import literal

STATIC = Path(__file__).parent / "static"
MAX_TITLE = 300
MAX_GENRES = 300
MAX_SEARCH = 300


def containing(text: str) -> str:
    """An ILIKE pattern (`ESCAPE '\\'`) for titles that contain `text` as typed: a `%`, `_` or
    backslash in it is matched as itself, not as a wildcard (a search for `_` is not every title)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Backend:
    """What the page needs from the stack: the source DSN, a Trino client, links, a tracer for
    each edit's timeline (none: the page shows only when Trino saw the edit), and the pipeline's
    pulse from Prometheus (none: no "pipeline now" strip)."""

    def __init__(
        self,
        dsn: str,
        schema: str,
        trino: Trino,
        links: dict[str, str],
        *,
        tracer: Tracer | None = None,
        pulse: Pulse | None = None,
    ) -> None:
        self.dsn, self.schema, self.trino, self.links, self.tracer = dsn, schema, trino, links, tracer
        self.pulse = pulse
        self.tracker = Tracker(
            follow=(lambda t: tracer.follow(t, ask_trino=False)) if tracer is not None else None
        )

    def _trace(self, table: str, key: dict[str, str], txid: int) -> Trace | None:
        """The timeline of an edit: its own transaction's change of that row."""
        if self.tracer is None:
            return None
        try:
            mor = self.tracer.merge_on_read(f"{self.schema}.{table}")
        except LakehouseError:  # Trino down: the timeline has no base hop until asked again
            mor = False
        return Trace(f"{self.schema}.{table}", key, mor, txid=txid, exact=True)

    # -- source (Postgres)
    def search(self, q: str) -> list[dict[str, Any]]:
        sql = f"""SELECT movie_id, title, genres FROM {self.schema}.movies
                  WHERE title ILIKE %s ESCAPE '\\' OR movie_id::text = %s ORDER BY movie_id LIMIT 20"""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(sql, (containing(q), q.strip())).fetchall()
        return [{"movie_id": r[0], "title": r[1], "genres": r[2]} for r in rows]

    def source_row(self, movie_id: int) -> dict[str, Any] | None:
        with psycopg.connect(self.dsn) as conn:
            m = conn.execute(
                f"SELECT movie_id, title, genres FROM {self.schema}.movies WHERE movie_id = %s", (movie_id,)
            ).fetchone()
            if m is None:
                return None
            r = conn.execute(
                f"SELECT count(*), round(avg(rating), 3) FROM {self.schema}.ratings WHERE movie_id = %s",
                (movie_id,),
            ).fetchone()
        assert r is not None
        return {"movie_id": m[0], "title": m[1], "genres": m[2], "ratings": r[0], "avg_rating": _num(r[1])}

    # -- silver (Trino)
    def silver_row(self, movie_id: int) -> dict[str, Any] | None:
        res = self.trino.query(
            "SELECT movie_id, title, genres, _op, CAST(_source_ts AS varchar), CAST(_ingested_at AS varchar) "
            f"FROM silver.movies WHERE movie_id = {movie_id}"
        )
        if not res.rows:
            return None
        keys = ("movie_id", "title", "genres", "_op", "_source_ts", "_ingested_at")
        row: dict[str, Any] = dict(zip(keys, res.rows[0], strict=True))
        try:
            n, avg = self.trino.query(
                "SELECT count(*), round(avg(CAST(rating AS double)), 3) "
                f"FROM silver.ratings WHERE movie_id = {movie_id}"
            ).rows[0]
        except QueryError:  # no rating has reached silver yet: the table does not exist
            n, avg = 0, None
        return {**row, "ratings": n, "avg_rating": avg}

    def recommendations(self, user_id: int) -> dict[str, Any]:
        """The recommender's last top 10 for the user (ml.user_recommendations), with titles."""
        try:
            rows = self.trino.query(
                "SELECT r.rank, r.movie_id, m.title, round(r.predicted_rating, 2) "
                "FROM ml.user_recommendations r LEFT JOIN silver.movies m ON m.movie_id = r.movie_id "
                f"WHERE r.user_id = {int(user_id)} ORDER BY r.rank"
            ).rows
        except QueryError as exc:
            if "does not exist" not in str(exc):
                raise
            return {"user_id": user_id, "items": [], "note": NOT_TRAINED}
        items = [
            {"rank": r[0], "movie_id": r[1], "title": r[2], "predicted_rating": _num(r[3])} for r in rows
        ]
        note = None if items else f"no recommendations for user {user_id} in the last run ({NOT_TRAINED})"
        return {"user_id": user_id, "items": items, "note": note}

    def _silver_has(self, sql: str) -> bool:
        return bool(self.trino.query(sql).rows)

    # -- edits
    def edit_movie(self, movie_id: int, title: str, genres: str) -> dict[str, Any]:
        with psycopg.connect(self.dsn) as conn:  # one transaction: its id finds the change again
            txid = _txid(conn)
            cur = conn.execute(
                f"UPDATE {self.schema}.movies SET title = %s, genres = %s WHERE movie_id = %s",
                (title, genres, movie_id),
            )
            if cur.rowcount != 1:
                raise LakehouseError(f"movie {movie_id} does not exist")
        committed = time.time()
        check = (
            f"SELECT 1 FROM silver.movies WHERE movie_id = {movie_id} "
            f"AND title = {literal(title)} AND genres = {literal(genres)}"
        )
        edit = self.tracker.track(
            movie_id,
            f"title “{title}”, genres “{genres}”",
            committed,
            lambda: self._silver_has(check),
            self._trace("movies", {"movie_id": str(movie_id)}, txid),
        )
        return edit.as_dict(time.time())

    def add_rating(self, movie_id: int, user_id: int, rating: Decimal) -> dict[str, Any]:
        with psycopg.connect(self.dsn) as conn:
            txid = _txid(conn)
            conn.execute(
                f"INSERT INTO {self.schema}.ratings (user_id, movie_id, rating, rated_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (user_id, movie_id) "
                "DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at",
                (user_id, movie_id, rating),
            )
        committed = time.time()
        check = (
            f"SELECT 1 FROM silver.ratings WHERE movie_id = {movie_id} AND user_id = {user_id} "
            f"AND rating = DECIMAL '{rating}'"
        )
        edit = self.tracker.track(
            movie_id,
            f"rating {rating} by user {user_id}",
            committed,
            lambda: self._silver_has(check),
            self._trace("ratings", {"user_id": str(user_id), "movie_id": str(movie_id)}, txid),
        )
        return edit.as_dict(time.time())


def _txid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
    assert row is not None
    return int(row[0])


#: what the page says before the recommender's first run
NOT_TRAINED = "the recommender runs daily at 02:30 UTC; `lakehouse jobs run recommender` runs it now"


def _num(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _movie_id(request: Request) -> int:
    return int(request.path_params["movie_id"])


def create_app(backend: Backend) -> Starlette:
    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def links(request: Request) -> Response:
        return JSONResponse(backend.links)

    async def pipeline(request: Request) -> Response:
        if backend.pulse is None:
            return _error(404, "this page has no pipeline metrics")
        return JSONResponse(await run_in_threadpool(backend.pulse.now))

    async def search(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        if not q:
            return JSONResponse([])
        if len(q) > MAX_SEARCH:
            return _error(400, f"search text is longer than {MAX_SEARCH} characters")
        return JSONResponse(await run_in_threadpool(backend.search, q))

    async def movie(request: Request) -> Response:
        movie_id = _movie_id(request)
        src = await run_in_threadpool(backend.source_row, movie_id)
        try:
            silver: dict[str, Any] | None = await run_in_threadpool(backend.silver_row, movie_id)
            silver_error = None
        except LakehouseError as exc:  # Trino down, or the table not registered yet
            silver, silver_error = None, str(exc).splitlines()[0]
        if src is None and silver is None:
            return _error(404, f"movie {movie_id} not found")
        return JSONResponse(
            {
                "source": src,
                "silver": silver,
                "silver_error": silver_error,
                "edits": backend.tracker.for_movie(movie_id),
            }
        )

    async def edits(request: Request) -> Response:
        """The movie's edits and how far each has come (the page polls this every second: it
        asks nothing of Postgres or Trino)."""
        return JSONResponse({"edits": backend.tracker.for_movie(_movie_id(request))})

    async def recommended(request: Request) -> Response:
        user_id = int(request.path_params["user_id"])
        try:
            return JSONResponse(await run_in_threadpool(backend.recommendations, user_id))
        except LakehouseError as exc:  # Trino down
            return _error(503, str(exc).splitlines()[0])

    async def edit(request: Request) -> Response:
        body = await _json(request)
        title, genres = str(body.get("title", "")).strip(), str(body.get("genres", "")).strip()
        if not title or not genres:
            return _error(400, "title and genres must not be empty")
        if len(title) > MAX_TITLE:
            return _error(400, f"title is longer than {MAX_TITLE} characters")
        if len(genres) > MAX_GENRES:
            return _error(400, f"genres are longer than {MAX_GENRES} characters")
        try:
            out = await run_in_threadpool(backend.edit_movie, _movie_id(request), title, genres)
        except LakehouseError as exc:
            return _error(404, str(exc))
        return JSONResponse(out, status_code=201)

    async def rate(request: Request) -> Response:
        body = await _json(request)
        try:
            user_id = int(body.get("user_id", ""))
            rating = Decimal(str(body.get("rating", "")))
        except (ValueError, InvalidOperation):
            return _error(400, "user_id must be an integer and rating a number")
        if user_id < 1 or rating * 2 != int(rating * 2) or not Decimal("0.5") <= rating <= Decimal("5.0"):
            return _error(400, "rating must be 0.5 to 5.0 in half stars, user_id positive")
        try:
            out = await run_in_threadpool(backend.add_rating, _movie_id(request), user_id, rating)
        except psycopg.errors.ForeignKeyViolation:
            return _error(404, "no such movie")
        return JSONResponse(out, status_code=201)

    return Starlette(
        middleware=[Middleware(SameOriginWrites)],
        routes=[
            Route("/", index),
            Route("/healthz", health),
            Route("/api/links", links),
            Route("/api/pipeline", pipeline),
            Route("/api/movies", search),
            Route("/api/movies/{movie_id:int}", movie),
            Route("/api/movies/{movie_id:int}/edits", edits),
            Route("/api/movies/{movie_id:int}/edit", edit, methods=["POST"]),
            Route("/api/movies/{movie_id:int}/ratings", rate, methods=["POST"]),
            Route("/api/users/{user_id:int}/recommendations", recommended),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
    )


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

"""`lakehouse generate`: a steady stream of realistic changes to the MovieLens source tables.

New ratings, re-ratings, deleted ratings, tag edits, movie title/genre edits and the occasional
new movie, drawn from a seeded RNG over the source's current keys (read in key order), so the
same database state and seed give the same changes. The rate is held by a schedule (change i is
due at start + i/rate); above a few hundred changes per second, changes are grouped into small
transactions so commits do not become the bottleneck.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from rich.console import Console

from lakehouse.errors import LakehouseError, UsageError

console = Console(stderr=True)

KINDS = ("new_rating", "rerating", "delete_rating", "tag", "movie_edit", "new_movie")
DEFAULT_MIX = {
    "new_rating": 0.45,
    "rerating": 0.25,
    "delete_rating": 0.08,
    "tag": 0.12,
    "movie_edit": 0.08,
    "new_movie": 0.02,
}
#: commits per second the generator aims to stay under (changes are grouped above it)
COMMITS_PER_S = 250
GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
TAGS = ("funny", "atmospheric", "classic", "twist ending", "visually stunning", "slow", "quotable")
#: ratings as MovieLens users give them (half stars, skewed towards 3-4)
RATING_WEIGHTS = {0.5: 1, 1.0: 3, 1.5: 2, 2.0: 7, 2.5: 6, 3.0: 20, 3.5: 13, 4.0: 27, 4.5: 9, 5.0: 13}


def parse_mix(text: str | None) -> dict[str, float]:
    """`new_rating=0.5,tag=0.2` → weights (the kinds not named keep their default)."""
    mix = dict(DEFAULT_MIX)
    if not text:
        return mix
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in mix:
            raise UsageError(f"--mix: expected KIND=WEIGHT with KIND one of {', '.join(KINDS)}, got {part!r}")
        try:
            weight = float(value)
        except ValueError:
            raise UsageError(f"--mix: {name} weight {value!r} is not a number") from None
        if weight < 0:
            raise UsageError(f"--mix: {name} weight must be >= 0")
        mix[name] = weight
    if sum(mix.values()) <= 0:
        raise UsageError("--mix: at least one weight must be positive")
    return mix


class KeyPool:
    """Keys with O(1) random pick, add and remove."""

    def __init__(self, keys: list[Any]) -> None:
        self.items = list(keys)
        self.index = {k: i for i, k in enumerate(self.items)}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def pick(self, rng: random.Random) -> Any:
        return self.items[rng.randrange(len(self.items))]

    def add(self, key: Any) -> None:
        if key not in self.index:
            self.index[key] = len(self.items)
            self.items.append(key)

    def remove(self, key: Any) -> None:
        i = self.index.pop(key)
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.index[last] = i


@dataclass
class Source:
    """What the generator knows of the source: keys and the movies' current genres/titles."""

    ratings: KeyPool
    tags: KeyPool
    movies: dict[int, tuple[str, str]]
    movie_ids: list[int]
    max_user: int

    @classmethod
    def read(cls, conn: psycopg.Connection[Any], schema: str) -> Source:
        ratings = conn.execute(f"SELECT user_id, movie_id FROM {schema}.ratings ORDER BY 1, 2").fetchall()
        tags = conn.execute(f"SELECT user_id, movie_id, tag FROM {schema}.tags ORDER BY 1, 2, 3").fetchall()
        movies = conn.execute(f"SELECT movie_id, title, genres FROM {schema}.movies ORDER BY 1").fetchall()
        if not movies:
            raise LakehouseError("the source has no movies — run `lakehouse load-movielens` first")
        max_user = max((r[0] for r in ratings), default=0)
        return cls(
            KeyPool([tuple(r) for r in ratings]),
            KeyPool([tuple(t) for t in tags]),
            {m[0]: (m[1], m[2]) for m in movies},
            [m[0] for m in movies],
            max(max_user, 1),
        )


Change = tuple[str, str, tuple[Any, ...]]  # (kind, SQL, parameters)


@dataclass
class Generator:
    source: Source
    schema: str
    rng: random.Random
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    def __post_init__(self) -> None:
        self._kinds = [k for k in KINDS if self.mix.get(k, 0) > 0]
        self._weights = [self.mix[k] for k in self._kinds]
        self._ratings = list(RATING_WEIGHTS)
        self._rating_weights = list(RATING_WEIGHTS.values())

    def _rating(self) -> float:
        return self.rng.choices(self._ratings, self._rating_weights)[0]

    def _movie(self) -> int:
        return self.source.movie_ids[self.rng.randrange(len(self.source.movie_ids))]

    def next(self) -> Change:
        kind = self.rng.choices(self._kinds, self._weights)[0]
        make: dict[str, Callable[[], Change]] = {
            "new_rating": self._new_rating,
            "rerating": self._rerating,
            "delete_rating": self._delete_rating,
            "tag": self._tag,
            "movie_edit": self._movie_edit,
            "new_movie": self._new_movie,
        }
        return make[kind]()

    def _new_rating(self) -> Change:
        s = self.source
        user = s.max_user + 1 if self.rng.random() < 0.01 else self.rng.randint(1, s.max_user)
        s.max_user = max(s.max_user, user)
        key = (user, self._movie())
        if key in s.ratings:
            return self._rerating(key)
        s.ratings.add(key)
        return (
            "new_rating",
            f"INSERT INTO {self.schema}.ratings (user_id, movie_id, rating, rated_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (user_id, movie_id) "
            "DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at",
            (*key, self._rating()),
        )

    def _rerating(self, key: tuple[int, int] | None = None) -> Change:
        if key is None:
            if not len(self.source.ratings):
                return self._new_rating()
            key = self.source.ratings.pick(self.rng)
        return (
            "rerating",
            f"UPDATE {self.schema}.ratings SET rating = %s, rated_at = now() "
            "WHERE user_id = %s AND movie_id = %s",
            (self._rating(), *key),
        )

    def _delete_rating(self) -> Change:
        if not len(self.source.ratings):
            return self._new_rating()
        key = self.source.ratings.pick(self.rng)
        self.source.ratings.remove(key)
        return (
            "delete_rating",
            f"DELETE FROM {self.schema}.ratings WHERE user_id = %s AND movie_id = %s",
            key,
        )

    def _tag(self) -> Change:
        s = self.source
        if len(s.tags) and self.rng.random() < 0.4:
            key = s.tags.pick(self.rng)
            s.tags.remove(key)
            return (
                "tag",
                f"DELETE FROM {self.schema}.tags WHERE user_id = %s AND movie_id = %s AND tag = %s",
                key,
            )
        key = (self.rng.randint(1, s.max_user), self._movie(), self.rng.choice(TAGS))
        s.tags.add(key)
        return (
            "tag",
            f"INSERT INTO {self.schema}.tags (user_id, movie_id, tag, tagged_at) VALUES (%s, %s, %s, now()) "
            "ON CONFLICT DO NOTHING",
            key,
        )

    def _movie_edit(self) -> Change:
        movie = self._movie()
        title, genres = self.source.movies[movie]
        if self.rng.random() < 0.5:
            suffix = " [Remastered]"
            title = title[: -len(suffix)] if title.endswith(suffix) else title + suffix
        else:
            current = [g for g in genres.split("|") if g in GENRES]
            genre = self.rng.choice(GENRES)
            if genre in current and len(current) > 1:
                current.remove(genre)
            elif genre not in current:
                current.append(genre)
            genres = "|".join(sorted(current)) or genre
        self.source.movies[movie] = (title, genres)
        return (
            "movie_edit",
            f"UPDATE {self.schema}.movies SET title = %s, genres = %s WHERE movie_id = %s",
            (title, genres, movie),
        )

    def _new_movie(self) -> Change:
        movie = max(self.source.movie_ids) + 1
        genres = "|".join(sorted(self.rng.sample(GENRES, self.rng.randint(1, 3))))
        title = f"Generated Feature {movie} ({self.rng.randint(1990, 2026)})"
        self.source.movie_ids.append(movie)
        self.source.movies[movie] = (title, genres)
        return (
            "new_movie",
            f"INSERT INTO {self.schema}.movies (movie_id, title, genres) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (movie, title, genres),
        )


@dataclass
class RunResult:
    changes: int
    seconds: float
    target_rate: float
    by_kind: dict[str, int]

    @property
    def achieved_rate(self) -> float:
        return self.changes / self.seconds if self.seconds > 0 else 0.0


def run(
    dsn: str,
    schema: str,
    *,
    rate: float,
    duration_s: float | None,
    seed: int,
    mix: dict[str, float] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunResult:
    """Generate changes at `rate` per second for `duration_s` (None: until `should_stop`)."""
    per_txn = max(1, math.ceil(rate / COMMITS_PER_S))
    by_kind = dict.fromkeys(KINDS, 0)
    with psycopg.connect(dsn, autocommit=False) as conn:
        gen = Generator(Source.read(conn, schema), schema, random.Random(seed), mix or dict(DEFAULT_MIX))
        conn.commit()
        total = math.inf if duration_s is None else int(rate * duration_s)
        done = 0
        started = time.monotonic()
        next_report = started
        with console.status("generating …") as status:
            while done < total and not should_stop():
                due = started + done / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                with conn.cursor() as cur:
                    for _ in range(int(min(per_txn, total - done))):
                        kind, sql, params = gen.next()
                        cur.execute(sql, params)
                        by_kind[kind] += 1
                        done += 1
                conn.commit()
                now = time.monotonic()
                if now >= next_report:
                    elapsed = now - started
                    achieved = done / max(elapsed, 1e-9)
                    line = f"{done} changes in {elapsed:.0f}s — {achieved:.0f}/s (target {rate:g}/s)"
                    status.update(line)
                    if not console.is_terminal and now - started >= 5:
                        console.print(line)
                    next_report = now + (0.5 if console.is_terminal else 5)
        seconds = time.monotonic() - started
    return RunResult(done, seconds, rate, by_kind)


def run_until_interrupted(
    dsn: str,
    schema: str,
    *,
    rate: float,
    duration_s: float | None,
    seed: int,
    mix: dict[str, float] | None = None,
) -> RunResult:
    """`run` where Ctrl-C ends the run cleanly (the current transaction commits) instead of aborting."""
    import signal

    stop: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        return run(
            dsn, schema, rate=rate, duration_s=duration_s, seed=seed, mix=mix, should_stop=lambda: bool(stop)
        )
    finally:
        signal.signal(signal.SIGINT, previous)

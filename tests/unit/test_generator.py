"""The change generator without a database: mix parsing, reproducibility, consistent keys."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lakehouse.demo.generator import DEFAULT_MIX, Generator, KeyPool, Source, parse_mix
from lakehouse.errors import LakehouseError


def source() -> Source:
    ratings = [(u, m) for u in range(1, 30) for m in range(1, 40) if (u * m) % 3 == 0]
    tags = [(1, 2, "funny"), (3, 4, "classic")]
    movies = {m: (f"Movie {m} (1999)", "Comedy|Drama") for m in range(1, 40)}
    return Source(KeyPool(ratings), KeyPool(tags), movies, sorted(movies), 29)


def test_mix_overrides_defaults_and_rejects_nonsense() -> None:
    assert parse_mix(None) == DEFAULT_MIX
    mix = parse_mix("new_rating=1, tag=0")
    assert mix["new_rating"] == 1 and mix["tag"] == 0 and mix["rerating"] == DEFAULT_MIX["rerating"]
    for bad, msg in [
        ("bogus=1", "KIND one of"),
        ("tag", "KIND=WEIGHT"),
        ("tag=x", "not a number"),
        ("tag=-1", ">= 0"),
        (",".join(f"{k}=0" for k in DEFAULT_MIX), "at least one"),
    ]:
        with pytest.raises(LakehouseError, match=msg):
            parse_mix(bad)


def test_same_seed_same_changes() -> None:
    def changes(seed: int) -> list[tuple[str, str, tuple[object, ...]]]:
        gen = Generator(source(), "movielens", random.Random(seed))
        return [gen.next() for _ in range(300)]

    assert changes(7) == changes(7)
    assert changes(7) != changes(8)


def test_changes_stay_consistent_with_the_keys_they_touch() -> None:
    gen = Generator(source(), "movielens", random.Random(1))
    ratings = set(source().ratings.items)
    tags = set(source().tags.items)
    kinds: Counter[str] = Counter()
    for _ in range(5000):
        kind, sql, params = gen.next()
        kinds[kind] += 1
        if kind == "delete_rating":
            assert params in ratings  # never deletes a rating that is not there
            ratings.discard(params)  # type: ignore[arg-type]
        elif kind == "new_rating":
            ratings.add(params[:2])  # type: ignore[arg-type]
        elif kind == "rerating":
            assert params[1:] in ratings
        elif kind == "tag" and sql.startswith("DELETE"):
            assert params in tags
            tags.discard(params)  # type: ignore[arg-type]
        elif kind == "tag":
            tags.add(params)  # type: ignore[arg-type]
        elif kind == "movie_edit":
            title, genres, _ = params
            assert title and genres and all(g for g in str(genres).split("|"))
    assert set(kinds) == set(DEFAULT_MIX)
    share = {k: n / 5000 for k, n in kinds.items()}
    for kind in ("delete_rating", "tag", "movie_edit", "new_movie"):
        assert abs(share[kind] - DEFAULT_MIX[kind]) < 0.02, (kind, share[kind])
    # a new rating for a (user, movie) that is already rated becomes a re-rating
    both = share["new_rating"] + share["rerating"]
    assert abs(both - DEFAULT_MIX["new_rating"] - DEFAULT_MIX["rerating"]) < 0.02


def test_key_pool_pick_add_remove() -> None:
    pool = KeyPool([1, 2, 3])
    pool.remove(1)
    pool.add(4)
    pool.add(4)
    assert sorted(pool.items) == [2, 3, 4] and 1 not in pool and len(pool) == 3
    rng = random.Random(0)
    assert {pool.pick(rng) for _ in range(100)} == {2, 3, 4}

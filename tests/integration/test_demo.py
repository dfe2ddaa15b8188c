"""The demo domain on the real stack: the MovieLens loader, the change generator, the web page."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from lakehouse.clients import analyst_client
from lakehouse.clients.trino_client import QueryError
from lakehouse.demo.generator import run as generate
from lakehouse.demo.movielens import load
from lakehouse.launcher.stack import Stack
from lakehouse.pipeline.silver.commands import verify

from .conftest import MovieLens
from .helpers import BULK_S, analyst, headless_chrome, silver_config, source, wait_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_loader_counts_match_the_csvs_and_a_rerun_adds_nothing(stack: Stack, movielens: MovieLens) -> None:
    csv_rows = {"movies": 9_742, "links": 9_742, "ratings": 100_836, "tags": 3_683}
    assert {t: r.csv_rows for t, r in movielens.loaded.items()} == csv_rows
    assert {t: r.inserted for t, r in movielens.loaded.items()} == csv_rows
    # right after the load, before any other test changed a sample row
    assert movielens.sample_rows == {"movies": 9_742, "ratings": 100_836}
    again = load(stack.postgres.app_dsn, stack.s.source_schema)
    assert [r.inserted for r in again] == [0, 0, 0, 0]


def reference_top_movies(ratings: dict[int, list[float]]) -> list[tuple[int, int, float]]:
    """Computed in Python from raw (movie, rating) rows: the 100 best averages among the 1000
    most-rated movies."""
    most = sorted(ratings, key=lambda m: (-len(ratings[m]), m))[:1000]
    avg = {m: sum(ratings[m]) / len(ratings[m]) for m in most}
    best = sorted(most, key=lambda m: (-avg[m], -len(ratings[m]), m))[:100]
    return [(m, len(ratings[m]), avg[m]) for m in best]


def test_top_movies_view_matches_a_computation_over_the_source(stack: Stack, movielens: MovieLens) -> None:
    # the source as it is now: other tests (the generator) may have changed sample ratings
    with source(stack) as conn:
        pairs = conn.execute("SELECT movie_id, rating FROM movielens.ratings").fetchall()
        digest = conn.execute(
            "SELECT count(*), round(sum(rating) * 10)::bigint FROM movielens.ratings"
        ).fetchone()
    assert digest is not None and digest[0] >= 100_000
    t = analyst(stack)
    wait_rows(
        t,
        "SELECT count(*), CAST(round(sum(rating) * 10) AS bigint) FROM silver.ratings",
        [[digest[0], digest[1]]],
        timeout=BULK_S,
    )
    ratings: dict[int, list[float]] = defaultdict(list)
    for movie_id, rating in pairs:
        ratings[movie_id].append(float(rating))
    rows = t.query("SELECT rank, movie_id, ratings, avg_rating FROM analytics.top_movies ORDER BY rank").rows
    assert len(rows) == 100
    expected = reference_top_movies(ratings)
    assert [(r[1], r[2]) for r in rows] == [(m, n) for m, n, _ in expected]
    for r, (_, _, avg) in zip(rows, expected, strict=True):  # the view rounds to 3 decimals
        assert abs(r[3] - avg) <= 0.0005 + 1e-9, (r, avg)
    assert [r[0] for r in rows] == list(range(1, 101))
    # the other views answer too
    assert t.scalar("SELECT sum(ratings) FROM analytics.ratings_per_day") == digest[0]
    assert t.scalar("SELECT count(*) FROM analytics.most_active_users") == 100
    assert t.scalar("SELECT count(*) FROM analytics.genre_popularity WHERE genre = 'Drama'") == 1
    fresh = t.query("SELECT table_name, row_count FROM analytics.pipeline_freshness").rows
    assert ["ratings", digest[0]] in fresh


def test_generator_writes_its_mix_and_silver_ends_equal(
    stack: Stack, movielens: MovieLens, spark: SparkSession
) -> None:
    r = generate(stack.postgres.app_dsn, stack.s.source_schema, rate=200, duration_s=20, seed=5)
    # the rate it holds is a measurement (`lakehouse bench`), not asserted here: a busy 2-core
    # machine running the whole stack writes fewer per second than asked, and that is not a fault
    assert r.changes == 4000 and r.achieved_rate > 0
    assert sum(r.by_kind.values()) == r.changes and min(r.by_kind.values()) > 0
    # the generator's tables; the others belong to other tests
    diffs = verify(stack.s, stack.endpoints, ["movies", "ratings", "tags"], wait_s=600, spark=spark)
    assert all(d.clean for d in diffs), [d.as_dict() for d in diffs if not d.clean]


def test_page_shows_an_edit_arriving_in_silver(stack: Stack) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    movie_id, title = 9_500_001, "Browser Test Movie (2026)"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO movielens.movies VALUES (%s, %s, 'Drama') ON CONFLICT DO NOTHING", (movie_id, title)
        )
    trino = analyst_client(stack.s, stack.ctx.secrets)
    deadline = time.monotonic() + 180
    while True:  # the page searches the source; the silver column should already have the row
        try:
            if trino.query(f"SELECT 1 FROM silver.movies WHERE movie_id = {movie_id}").rows:
                break
        except QueryError:
            pass
        assert time.monotonic() < deadline, "the test movie did not reach silver"
        time.sleep(1)

    driver = headless_chrome(1280, 1600)  # the strip, the rows and the timeline in one shot
    shot = ARTIFACTS / "browser" / "edit-propagated.png"
    try:
        driver.get(stack.s.web_url)
        driver.find_element(By.ID, "q").send_keys("Browser Test Movie")
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
        WebDriverWait(driver, 30).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, f"#results button[data-movie-id='{movie_id}']"))
        ).click()
        silver_title = (By.CSS_SELECTOR, "#silver dd[data-field='title']")
        WebDriverWait(driver, 30).until(ec.text_to_be_present_in_element(silver_title, title))
        # markup in the data is shown as text, never run or rendered (the page sets textContent)
        new_title = f"<script>alert(1)</script> Edited In The Browser {time.time_ns()} <b>&amp;</b> (2026)"
        box = driver.find_element(By.ID, "title")
        box.clear()
        box.send_keys(new_title)
        driver.find_element(By.CSS_SELECTOR, "#edit-form button").click()
        WebDriverWait(driver, 240).until(ec.text_to_be_present_in_element(silver_title, new_title))

        # the page re-renders its panels while it polls: read text by locator, again if the
        # element was replaced between finding it and reading it
        def text_of(css: str) -> str:
            return str(
                WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException]).until(
                    lambda d: d.find_element(By.CSS_SELECTOR, css).text or False
                )
            )

        shown = text_of("#edits tbody tr:first-child td.ok")
        assert shown.endswith(" s") and float(shown[:-2]) > 0

        # the edit's timeline fills in: every hop, found by the edit's own transaction, in order.
        # The page redraws the table on every poll, so each look is one snapshot taken inside
        # the page (a script), never elements found first and read later.
        snapshot = """
            const row = document.querySelector("#edits tbody tr.timeline:nth-child(2)");
            if (!row) return null;
            const hops = [...row.querySelectorAll("ol.hops li")]
                .map(li => [li.dataset.hop, li.dataset.after ?? null]);
            const slowest = row.querySelector("li.slowest");
            const kafka = row.querySelector("li[data-hop='kafka']");
            return {hops, slowest: slowest && slowest.dataset.hop, kafka: kafka && kafka.title};
        """

        def timeline_done(d: Any) -> dict[str, Any] | bool:
            got = d.execute_script(snapshot)
            if not got or not got["hops"] or any(after is None for _, after in got["hops"]):
                return False
            return dict(got)

        seen = WebDriverWait(driver, 240).until(timeline_done)
        assert isinstance(seen, dict)
        hops = {hop: float(after) for hop, after in seen["hops"]}
        mor = silver_config(stack).merge_on_read
        assert list(hops) == ["postgres", "kafka", "bronze", "silver", *(["base"] if mor else []), "trino"]
        path = [hops[h] for h in ("postgres", "kafka", "silver", "trino")]
        assert path[0] == 0 and path == sorted(path) and path[-1] <= float(shown[:-2]) + 2, hops
        assert hops["bronze"] >= hops["kafka"] - 1 and (not mor or hops["base"] >= hops["silver"]), hops
        steps = {"kafka": path[1] - path[0], "silver": path[2] - path[1], "trino": path[3] - path[2]}
        assert seen["slowest"] == max(steps, key=lambda h: steps[h]), (hops, steps)
        assert "cdc.movielens.movies partition 0 offset" in str(seen["kafka"]), seen
        # the "pipeline now" strip: each hop's median over the last minute, from Prometheus (the
        # heartbeat and this test's edit are changes of that minute); silver's includes Kafka's
        strip = """
            return [...document.querySelectorAll("#pulse-hops li[data-hop]")]
                .map(li => [li.dataset.hop, li.dataset.median ?? null]);
        """

        def strip_done(d: Any) -> dict[str, float] | bool:
            got = d.execute_script(strip)
            if not got or any(median is None for _, median in got):
                return False
            return {hop: float(median) for hop, median in got}

        medians = WebDriverWait(driver, 120).until(strip_done)
        assert isinstance(medians, dict) and list(medians) == ["kafka", "silver"], medians
        assert 0 <= medians["kafka"] <= medians["silver"] < 120, medians
        assert "changes/s into silver" in text_of("#pulse-hops li.rate")
        assert text_of("#source dd[data-field='title']") == new_title
        assert not driver.find_elements(By.CSS_SELECTOR, "#source dd script, #silver dd b")
        assert not ec.alert_is_present()(driver), "a title's script ran"
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.with_suffix(".txt").write_text(f"the page showed the edit visible in silver after {shown}\n")
    finally:
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
        driver.quit()

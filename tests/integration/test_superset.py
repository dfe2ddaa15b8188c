"""Superset on the real stack: the imported "Movies live" dashboard, its charts' queries against
Trino, the dashboard rendered in headless Chromium, and a broken Trino login named by `status`.

Every test here asks for the MovieLens sample and the shipped jobs' runs (fixtures `movielens`,
`job_outputs`), so every chart has data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from lakehouse.cli import cli
from lakehouse.config.endpoints import DASHBOARD_SLUG
from lakehouse.launcher.stack import Stack

from .helpers import analyst, headless_chrome, wait_rows

#: every chart has data: the sample is loaded, and the jobs that feed two of them have run
pytestmark = pytest.mark.usefixtures("movielens", "job_outputs")

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHARTS = {
    "Top movies",
    "Ratings per minute",
    "Genre mix",
    "Rating distribution",
    "Freshness per table",
    "Ratings in silver",
    "Data quality (last 24 h)",
}


def test_dashboard_exists_and_every_chart_query_answers_from_trino(stack: Stack) -> None:
    # a live rating (rated_at = now) of the test's own, so "Ratings per minute" has a recent minute
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO movielens.movies VALUES (9700001, 'Superset Test (2026)', 'Drama') "
            "ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO movielens.ratings VALUES (9701, 9700001, 4.0, now()) "
            "ON CONFLICT (user_id, movie_id) DO UPDATE SET rated_at = now()"
        )
    wait_rows(analyst(stack), "SELECT count(*) FROM silver.ratings WHERE user_id = 9701", [[1]])
    with stack.superset.client() as api:
        api.login()
        dashboard = api.dashboard(DASHBOARD_SLUG)
        assert dashboard["dashboard_title"] == "Movies live" and dashboard["published"]
        charts = {c["slice_name"]: c["id"] for c in api.dashboard_charts(DASHBOARD_SLUG)}
        assert set(charts) >= CHARTS, charts
        rows = {name: api.chart_data(chart_id) for name, chart_id in charts.items()}
    assert len(rows["Top movies"]) == 100
    assert {r["genre"] for r in rows["Genre mix"]} >= {"Drama", "Comedy"}
    assert len(rows["Rating distribution"]) == 10  # 0.5 … 5.0
    assert rows["Ratings in silver"][0] and next(iter(rows["Ratings in silver"][0].values())) > 90_000
    tables = {r["table_name"] for r in rows["Freshness per table"]}
    assert {"movies", "ratings", "pipeline_heartbeat"} <= tables
    assert len(rows["Ratings per minute"]) >= 1  # at least the minute of the rating above
    # the expectations checked the sample's ratings (its load is within the day), none failing
    quality = {(r["source_table"], r["rule"]): r for r in rows["Data quality (last 24 h)"]}
    ratings = quality[("movielens.ratings", "rating_in_half_steps")]
    assert ratings["checked"] > 90_000 and ratings["failed"] == 0


def _open_dashboard(driver: Any, stack: Stack, every_chart: bool = True) -> float:
    """Log in as admin, open "Movies live" and wait until every chart has drawn (or only until the
    chart holders are there); seconds it took."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{stack.s.superset_url}/login/")
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "username")))
    driver.find_element(By.ID, "username").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys(stack.ctx.secrets.superset_admin_password)
    WebDriverWait(driver, 30).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "button[type='submit']"))
    ).click()
    WebDriverWait(driver, 60).until(lambda d: "/login" not in d.current_url)
    started = time.monotonic()
    driver.get(f"{stack.s.superset_url}/superset/dashboard/{DASHBOARD_SLUG}/")
    holders = (By.CSS_SELECTOR, ".dashboard-component-chart-holder")
    WebDriverWait(driver, 120).until(lambda d: len(d.find_elements(*holders)) >= len(CHARTS))
    if not every_chart:
        return time.monotonic() - started

    drawn = "[data-test='slice-container'] canvas, [data-test='slice-container'] table, .header-line"

    def rendered(d: object) -> bool:
        if driver.find_elements(By.CSS_SELECTOR, ".dashboard-component-chart-holder .loading"):
            return False  # ECharts draw to canvas, tables to <table>, the big number to .header-line
        return all(h.find_elements(By.CSS_SELECTOR, drawn) for h in driver.find_elements(*holders))

    WebDriverWait(driver, 180).until(rendered)
    return time.monotonic() - started


def test_dashboard_renders_every_chart_in_headless_chromium(stack: Stack) -> None:
    from selenium.webdriver.common.by import By

    driver = headless_chrome(1600, 1400)
    shot = ARTIFACTS / "browser" / "superset-movies-live.png"
    try:
        took = _open_dashboard(driver, stack)
        errors = driver.find_elements(
            By.CSS_SELECTOR, ".ant-alert-error, [data-test='error-message'], .alert-danger"
        )
        assert not errors, [e.text for e in errors]
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
        shot.with_suffix(".txt").write_text(f"Movies live rendered every chart {took:.1f}s after opening\n")
    finally:
        driver.quit()


def test_a_wrong_trino_password_in_superset_is_an_error_on_status(stack: Stack) -> None:
    """Rotate the analyst's Trino password behind Superset's back: status names the problem."""
    runner = CliRunner()
    good = stack.trino.password_file.read_text()
    lines = [
        line if not line.startswith("analyst:") else stack.trino.hash_line("analyst", "not-the-password")
        for line in good.splitlines(keepends=True)
    ]
    stack.trino.password_file.write_text("".join(lines))
    try:
        # Trino re-reads its password file every 5 s: wait on the service's own check (about 1 s a
        # probe), then ask the CLI once (a probe of every service, 5-30 s under the tests' load)
        deadline = time.monotonic() + 60
        while (seen := stack.superset.status()).state != "error":
            assert time.monotonic() < deadline, seen
            time.sleep(1)
        result = runner.invoke(cli, ["status"])
        assert "superset" in result.output and "error:" in result.output, result.output
        assert result.exit_code == 1
        line = next(x for x in result.output.splitlines() if "error:" in x)
        assert "Superset cannot query Trino" in line and "401" in line, line
    finally:
        stack.trino.password_file.write_text(good)
    deadline = time.monotonic() + 60
    while not stack.superset.status().ready:
        assert time.monotonic() < deadline, "Superset's connection did not recover"
        time.sleep(1)


MARKUP_TITLE = "<script>alert(1)</script> <img src=x onerror=alert(2)> <b>&amp;</b>"


def test_a_title_with_a_script_tag_shows_as_text_in_superset(stack: Stack) -> None:
    """The best movie of "Top movies" is renamed at the source to markup; the dashboard, rendered
    in Chromium, shows the title as text: no dialog opens, no element is made from it."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    trino = analyst(stack)
    movie_id, title = trino.query("SELECT movie_id, title FROM analytics.top_movies WHERE rank = 1").rows[0]
    rename = "UPDATE movielens.movies SET title = %s WHERE movie_id = %s"
    with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
        conn.execute(rename, (MARKUP_TITLE, movie_id))
    driver = headless_chrome(1600, 1400)
    try:
        wait_rows(trino, "SELECT title FROM analytics.top_movies WHERE rank = 1", [[MARKUP_TITLE]])
        from selenium.webdriver.support.ui import WebDriverWait

        _open_dashboard(driver, stack, every_chart=False)
        # read in one script: the table re-renders while its data loads (stale elements otherwise)
        read = (
            "return [...document.querySelectorAll('td')]"
            ".filter(td => td.textContent.includes('alert(1)'))"
            ".map(td => [td.innerText, td.querySelectorAll('script, img, b').length]);"
        )
        cells = WebDriverWait(driver, 180).until(lambda d: d.execute_script(read))
        try:
            text = driver.switch_to.alert.text
            raise AssertionError(f"a dialog opened: {text!r}")
        except NoAlertPresentException:
            pass
        assert len(cells) == 1, cells
        shown, elements = cells[0]
        seen = ARTIFACTS / "browser" / "superset-markup-title.txt"
        seen.parent.mkdir(parents=True, exist_ok=True)
        seen.write_text(f"source title: {MARKUP_TITLE}\nSuperset shows: {shown}\n")
        # Superset sanitises the value (it drops the <script> tags themselves, seen in CI); what
        # must hold is that nothing runs and nothing of the title becomes an element: the bold
        # tag is shown as the literal text it is
        assert "alert(1)" in shown and "<b>&amp;</b>" in shown, shown
        assert elements == 0
        assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x']")
    finally:
        driver.quit()
        with psycopg.connect(stack.postgres.app_dsn, autocommit=True) as conn:
            conn.execute(rename, (title, movie_id))

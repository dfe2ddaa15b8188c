"""The demo page's HTTP surface without services: static page, input validation."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from lakehouse.apps.web.app import Backend, create_app
from lakehouse.apps.web.pulse import Pulse
from lakehouse.clients.trino_client import Trino


def client(tmp_path: Path, pulse: Pulse | None = None) -> TestClient:
    # nothing listens behind these: the requests below must be answered before any I/O
    trino = Trino("127.0.0.1", 9, "analyst", "x", tmp_path / "cert.pem")
    backend = Backend(
        "postgresql://nobody@127.0.0.1:9/none", "movielens", trino, {"Trino UI": "https://x/ui/"}, pulse=pulse
    )
    return TestClient(create_app(backend))


def test_the_pipeline_strip_says_when_it_has_no_prometheus_to_ask(tmp_path: Path) -> None:
    assert client(tmp_path).get("/api/pipeline").status_code == 404  # a page built without one
    # a Prometheus that does not answer: the page gets the reason, not an exception
    got = client(tmp_path, Pulse("http://127.0.0.1:9", timeout_s=1)).get("/api/pipeline")
    assert got.status_code == 200
    body = got.json()
    assert body["window"] == "1m" and body["error"].startswith("Prometheus: ConnectError"), body
    assert "hops" not in body


def test_page_and_assets_are_served(tmp_path: Path) -> None:
    c = client(tmp_path)
    page = c.get("/")
    assert page.status_code == 200 and "<title>Lakehouse demo" in page.text
    assert 'lang="en"' in page.text and 'for="title"' in page.text  # labelled inputs
    assert c.get("/static/app.js").status_code == 200
    assert c.get("/healthz").json() == {"ok": True}
    assert c.get("/api/links").json() == {"Trino UI": "https://x/ui/"}
    assert c.get("/api/movies?q=").json() == []


def test_bad_edits_are_refused_with_a_reason(tmp_path: Path) -> None:
    c = client(tmp_path)
    r = c.post("/api/movies/1/edit", json={"title": " ", "genres": "Drama"})
    assert r.status_code == 400 and r.json() == {"error": "title and genres must not be empty"}
    r = c.post("/api/movies/1/edit", json={"title": "x" * 301, "genres": "Drama"})
    assert r.status_code == 400 and "longer than 300" in r.json()["error"]
    for body in (
        {"user_id": "a", "rating": "4"},
        {"user_id": 1, "rating": "4.2"},
        {"user_id": 1, "rating": "6"},
    ):
        r = c.post("/api/movies/1/ratings", json=body)
        assert r.status_code == 400, body
    assert c.get("/api/movies/abc").status_code == 404  # ids are integers


def test_writes_from_another_site_or_not_json_are_refused_before_any_io(tmp_path: Path) -> None:
    """CSRF: a page elsewhere can make the browser POST here; nothing behind the app listens, so a
    refusal (403/415/413) rather than a database error proves the write was never attempted."""
    c = client(tmp_path)
    edit = {"title": "Pwned", "genres": "Drama"}
    r = c.post("/api/movies/1/edit", json=edit, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = c.post("/api/movies/1/edit", json=edit, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "evil.example" in r.json()["error"]
    # the "simple request" a cross-origin form or fetch(no-cors) can send without a preflight
    r = c.post(
        "/api/movies/1/edit",
        content='{"title": "Pwned", "genres": "Drama"}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    r = c.post("/api/movies/1/ratings", json={"user_id": 1, "rating": "4", "pad": "x" * 20_000})
    assert r.status_code == 413
    # the page's own requests pass the guard (and reach validation)
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    r = c.post("/api/movies/1/edit", json={"title": " ", "genres": "Drama"}, headers=same)
    assert r.status_code == 400 and r.json() == {"error": "title and genres must not be empty"}
    assert c.get("/api/movies?q=", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # reads


def test_writes_beyond_the_rate_bound_get_429_and_reads_do_not_count(tmp_path: Path) -> None:
    from lakehouse.apps.web.guard import WRITE_BURST, Bucket

    c = client(tmp_path)
    for _ in range(50):
        assert c.get("/api/movies?q=").status_code == 200
    codes = [c.post("/api/movies/1/edit", json={"title": " ", "genres": "x"}).status_code for _ in range(40)]
    assert codes[:WRITE_BURST] == [400] * WRITE_BURST  # validated, as before
    assert 429 in codes[WRITE_BURST:]
    clock = [0.0]
    bucket = Bucket(rate=2, burst=2, clock=lambda: clock[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock[0] = 0.5  # one token back after half a second at 2/s
    assert [bucket.take(), bucket.take()] == [True, False]


def test_search_text_is_a_literal_pattern_and_bounded(tmp_path: Path) -> None:
    from lakehouse.apps.web.app import MAX_SEARCH, containing

    assert containing("100%") == "%100\\%%"
    assert containing("a_b") == "%a\\_b%"
    assert containing("back\\slash") == "%back\\\\slash%"
    assert containing("O'Brien Amélie") == "%O'Brien Amélie%"  # quotes are the driver's business
    r = client(tmp_path).get("/api/movies", params={"q": "x" * (MAX_SEARCH + 1)})
    assert r.status_code == 400 and "longer than" in r.json()["error"]


def test_recommendations_need_trino_and_name_the_user_in_the_path(tmp_path: Path) -> None:
    c = client(tmp_path)
    assert c.get("/api/users/x/recommendations").status_code == 404  # not a user id: no route
    r = c.get("/api/users/7/recommendations")  # nothing listens: Trino is named, not a traceback
    assert r.status_code == 503 and "Trino" in r.json()["error"]
    page = c.get("/").text
    assert 'id="recs"' in page and "Recommended for user" in page


def test_an_edit_tracked_with_a_trace_shows_its_hops_in_order_and_the_trino_query_as_the_last() -> None:
    import time

    from lakehouse.apps.monitor.trace import Trace
    from lakehouse.apps.web.propagation import Tracker

    def follow(t: Trace) -> None:  # what Tracer.follow finds on the way, all at once here
        for hop, after in (
            ("postgres", 0.0),
            ("kafka", 0.3),
            ("bronze", 1.1),
            ("silver", 2.0),
            ("base", 9.0),
        ):
            t.hops[hop].at = committed + after
        t.hops["kafka"].detail = {"topic": "cdc.movielens.movies", "partition": 0, "offset": 12}

    committed = time.time()
    tracker = Tracker(poll_s=0.01, follow=follow)
    trace = Trace("movielens.movies", {"movie_id": "1"}, merge_on_read=True, txid=5, exact=True)
    edit = tracker.track(1, "title", committed, lambda: True, trace)
    deadline = time.monotonic() + 10
    while not trace.complete():
        assert time.monotonic() < deadline, trace.hops
        time.sleep(0.01)
    shown = tracker.for_movie(1)[0]
    assert [h["hop"] for h in shown["timeline"]] == ["postgres", "kafka", "bronze", "silver", "base", "trino"]
    assert shown["timeline"][1]["where"] == "cdc.movielens.movies partition 0 offset 12"
    assert shown["timeline"][-1]["where"] == "SELECT … FROM silver.movies"
    assert edit.visible_after_s is not None and shown["slowest"] in ("kafka", "silver", "trino")


def test_the_edits_the_page_polls_every_second_ask_no_service(tmp_path: Path) -> None:
    # Postgres and Trino: nothing listens, yet the edits are answered (from the page's memory)
    assert client(tmp_path).get("/api/movies/1/edits").json() == {"edits": []}


def test_a_traced_edit_is_asked_of_trino_only_once_silver_has_committed_it() -> None:
    """Until the trace finds the edit's silver commit no query could see it: the page asks once
    at the start and then every `blind_s`, not every poll."""
    import threading
    import time

    from lakehouse.apps.monitor.trace import Trace
    from lakehouse.apps.web.propagation import Tracker

    follows = 0
    asked_before: list[int] = []
    committed = time.time()

    def follow(t: Trace) -> None:
        nonlocal follows
        follows += 1
        if follows == 40 and t.hops["silver"].at is None:  # silver commits it at last
            t.hops["silver"].at = time.time()
            t.hops["base"].at = time.time()

    asks = 0
    lock = threading.Lock()

    def visible() -> bool:
        nonlocal asks
        with lock:
            asks += 1
            if trace.hops["silver"].at is None:
                asked_before.append(asks)
            return trace.hops["silver"].at is not None

    tracker = Tracker(poll_s=0.005, trace_s=0.0, blind_s=60.0, follow=follow)
    trace = Trace("movielens.movies", {"movie_id": "1"}, merge_on_read=True, txid=5, exact=True)
    edit = tracker.track(1, "title", committed, visible, trace)
    deadline = time.monotonic() + 10
    while edit.visible_after_s is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert follows >= 40
    assert asked_before == [1], asked_before  # the first blind ask only, not one per poll

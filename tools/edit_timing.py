"""`python -m tools.edit_timing`: how long an edit on the demo page takes to show in Trino.

What a user of `make demo` sees: while the generator writes RATE changes/s (as `make demo` does),
it edits a movie's title through the page's own API EDITS times, one after another, and reads
back from the page the seconds until its Trino query saw each edit (`visible_after_s`, timed by
the page from the Postgres commit). Reports the median and the max, as JSON and a plot. The
titles are set back afterwards.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from lakehouse.benchmark.plots import _plt
from lakehouse.benchmark.report import save, write_json
from lakehouse.benchmark.stats import percentile
from lakehouse.demo.generator import run as generate
from lakehouse.launcher.stack import Stack

MOVIE = 1
#: how long one edit may take to show before the run counts it as not visible
GIVE_UP_S = 180.0
#: how often the page reads the movie's rows again while it waits (static/app.js ROWS_MS)
ROWS_S = 15.0


def call(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def edit_and_wait(page: str, movie: int, title: str, genres: str) -> float | None:
    """As the open page does (static/app.js): the edits every second (here every half), the
    movie's rows, which ask Trino, every ROWS_S."""
    edit = call(f"{page}/api/movies/{movie}/edit", {"title": title, "genres": genres})
    deadline = time.monotonic() + GIVE_UP_S
    rows_at = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - rows_at >= ROWS_S:
            call(f"{page}/api/movies/{movie}")
            rows_at = time.monotonic()
        mine = next(e for e in call(f"{page}/api/movies/{movie}/edits")["edits"] if e["id"] == edit["id"])
        if mine["visible_after_s"] is not None:
            return float(mine["visible_after_s"])
        if mine["gave_up"]:
            return None
        time.sleep(0.5)
    return None


def plot(seconds: list[float | None], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    xs = [i + 1 for i, s in enumerate(seconds) if s is not None]
    ax.bar(xs, [s for s in seconds if s is not None])
    ax.set_xlabel("edit")
    ax.set_ylabel("commit → visible in Trino (s)")
    seen = [s for s in seconds if s is not None]
    if seen:
        ax.axhline(percentile(seen, 50), color="tab:orange", label=f"median {percentile(seen, 50):.1f} s")
        ax.legend()
    ax.set_title("Edits on the demo page, as the page timed them")
    save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tools.edit_timing", description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--rate", type=float, default=5.0, help="the generator's changes/s meanwhile")
    ap.add_argument("--pause", type=float, default=3.0, help="seconds between one edit showing and the next")
    ap.add_argument("--movie", type=int, default=MOVIE)
    ap.add_argument("--out", type=Path, default=Path("artifacts/bench/edit-timing"))
    a = ap.parse_args()
    stack = Stack()
    page = stack.s.web_url
    before = call(f"{page}/api/movies/{a.movie}")["source"]
    stop = threading.Event()
    load = threading.Thread(
        target=generate,
        args=(stack.postgres.app_dsn, stack.s.source_schema),
        kwargs={"rate": a.rate, "duration_s": None, "seed": 7, "should_stop": stop.is_set},
        daemon=True,
    )
    load.start()
    seconds: list[float | None] = []
    try:
        time.sleep(10)  # the load under way
        for i in range(a.edits):
            s = edit_and_wait(page, a.movie, f"{before['title']} [edit {i + 1}]", before["genres"])
            seconds.append(s)
            print(f"edit {i + 1}: {'not visible' if s is None else f'{s:.1f}s'}", flush=True)
            time.sleep(a.pause)
    finally:
        stop.set()
        load.join(timeout=30)
        call(f"{page}/api/movies/{a.movie}/edit", {"title": before["title"], "genres": before["genres"]})
    seen = [s for s in seconds if s is not None]
    result = {
        "edits": len(seconds),
        "visible": len(seen),
        "rate": a.rate,
        "median_s": round(percentile(seen, 50), 2) if seen else None,
        "max_s": round(max(seen), 2) if seen else None,
        "seconds": seconds,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    write_json(a.out / "edit-timing.json", result)
    plot(seconds, a.out / "edit-timing.png")
    print(f"median {result['median_s']}s, max {result['max_s']}s of {len(seen)} visible → {a.out}")


if __name__ == "__main__":
    main()

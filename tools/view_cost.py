"""`python -m tools.view_cost`: what reading silver through merge-on-read's live view costs in Trino.

Each query runs against `silver.<table>` (the live view: base + change log) and against
`silver_base.<table>` (the Delta table alone), alternately, on the running stack; the report is
the median and p95 of each, their ratio, and a plot. Run it at steady state (the generator on,
the logs being folded as usual): the view's cost depends on how much its log holds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from lakehouse.benchmark.plots import _plt
from lakehouse.benchmark.report import save
from lakehouse.benchmark.stats import percentile
from lakehouse.clients import admin_client
from lakehouse.clients.trino_client import Trino
from lakehouse.config.names import SILVER, SILVER_BASE
from lakehouse.config.render import render_text
from lakehouse.config.secrets import Secrets
from lakehouse.config.settings import load_settings
from lakehouse.pipeline.query.views import SCHEMAS

REPO = Path(__file__).resolve().parents[1]


def queries() -> dict[str, str]:
    """Each query with `{{silver}}` where the schema goes: the top-movies view's own SQL (its
    body, as a query), a point lookup, a count."""
    view = (REPO / "trino" / "views" / "top_movies.sql").read_text()
    body = view[view.index("\nAS\n") + 4 :]
    return {
        "analytics.top_movies": body,
        "point lookup (movies)": "SELECT * FROM {{catalog}}.{{silver}}.movies WHERE movie_id = 1",
        "count(*) (ratings)": "SELECT count(*) FROM {{catalog}}.{{silver}}.ratings",
    }


def fill(sql: str, schema: str) -> str:
    return render_text(sql, {**SCHEMAS, "silver": schema}, "tools.view_cost")


def timed(trino: Trino, sql: str) -> float:
    start = time.perf_counter()
    trino.query(sql)
    return time.perf_counter() - start


def measure(trino: Trino, runs: int, warmup: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sql in queries().items():
        sides = {"view": fill(sql, SILVER), "base": fill(sql, SILVER_BASE)}
        for _ in range(warmup):
            for text in sides.values():
                trino.query(text)
        seconds: dict[str, list[float]] = {"view": [], "base": []}
        for i in range(runs):  # alternate, each side first half of the time
            order = ("view", "base") if i % 2 == 0 else ("base", "view")
            for side in order:
                seconds[side].append(timed(trino, sides[side]))
        summary: dict[str, Any] = {
            side: {"p50": percentile(v, 50), "p95": percentile(v, 95), "runs": v}
            for side, v in seconds.items()
        }
        summary["ratio_p50"] = summary["view"]["p50"] / summary["base"]["p50"]
        out[name] = summary
        print(
            f"{name}: view p50 {summary['view']['p50']:.3f}s, base p50 {summary['base']['p50']:.3f}s,"
            f" ratio {summary['ratio_p50']:.2f}",
            flush=True,
        )
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    plt = _plt()
    names = list(result)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    y = range(len(names))
    ax.barh([i - 0.2 for i in y], [result[n]["view"]["p50"] for n in names], height=0.4, label="live view")
    ax.barh([i + 0.2 for i in y], [result[n]["base"]["p50"] for n in names], height=0.4, label="base table")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("median seconds per query (Trino, 2 cores, whole stack running)")
    ax.set_title("silver.<table> (live view) against silver_base.<table>")
    ax.legend()
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench/view-cost"))
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs: at least 2")
    s = load_settings()
    trino = admin_client(s, Secrets.load_or_create(s.home))
    result = measure(trino, args.runs, args.warmup)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "view-cost.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "view-cost.png")
    print(f"wrote {args.out}/view-cost.json and view-cost.png")


if __name__ == "__main__":
    main()

"""The benchmark's pictures: freshness per marker and lag over time, the CDF, time per hop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lakehouse.benchmark.report import save


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, ax: Any, labels: tuple[str, str], title: str, path: Path, *, legend: str) -> None:
    """Axis labels, a y axis from 0, the title and legend; then the figure saved."""
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc=legend)
    save(fig, path)


def freshness_over_time(
    samples: Sequence[tuple[float, float]],
    lag: Sequence[tuple[float, float]],
    start: float,
    title: str,
    path: Path,
) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(
        [t - start for t, _ in lag],
        [v for _, v in lag],
        color="tab:gray",
        lw=1,
        label="lag: age of newest visible marker",
    )
    ax.scatter(
        [t - start for t, _ in samples],
        [v for _, v in samples],
        s=12,
        label="freshness per marker (commit → Trino)",
    )
    _finish(fig, ax, ("seconds into the run", "seconds"), title, path, legend="upper left")


def cdf(values: Sequence[float] | Mapping[str, Sequence[float]], title: str, path: Path) -> None:
    """One CDF, or one per named series (silver beside the floor job)."""
    series = values if isinstance(values, Mapping) else {"": values}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, sample in series.items():
        ordered = sorted(sample)
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, ys, where="post", label=name or None)
    ax.set_xlabel("commit → visible in Trino (s)")
    ax.set_ylabel("share of markers")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(loc="lower right")
    ax.set_title(title)
    save(fig, path)


def hops(summary: Mapping[str, Mapping[str, Any]], title: str, path: Path) -> None:
    plt = _plt()
    names = [h for h in summary if summary[h]["p50"] is not None]
    p50 = [summary[h]["p50"] for h in names]
    p95 = [summary[h]["p95"] for h in names]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], p95, height=0.4, color="tab:orange", label="p95")
    ax.barh([i - 0.2 for i in y], p50, height=0.4, color="tab:blue", label="p50")
    ax.set_yticks(list(y), [n.replace("_to_", " → ") for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("seconds in the hop")
    ax.set_title(title)
    ax.legend()
    save(fig, path)


def throughput(steps: Sequence[Mapping[str, Any]], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = [s["achieved_rate"] for s in steps]
    ax.plot(x, [s["freshness_s"]["p50"] for s in steps], marker="o", label="p50")
    ax.plot(x, [s["freshness_s"]["p95"] for s in steps], marker="o", label="p95")
    for s in steps:
        if not s["sustained"]:
            ax.annotate("lag grew", (s["achieved_rate"], s["freshness_s"]["p95"]), color="tab:red")
    ax.set_xlabel("achieved changes/s")
    ax.set_ylabel("commit → visible in Trino (s)")
    ax.set_ylim(bottom=0)
    ax.set_title("Freshness against load")
    ax.legend()
    save(fig, path)


def progress(points: Sequence[tuple[float, int]], total: int, title: str, path: Path) -> None:
    """Rows in silver over time, against the number loaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot([t for t, _ in points], [n for _, n in points], marker=".", lw=1, label="in silver (Trino)")
    ax.axhline(total, color="tab:gray", ls="--", lw=1, label=f"loaded: {total:,}")
    _finish(fig, ax, ("seconds", "rows"), title, path, legend="lower right")

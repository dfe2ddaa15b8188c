"""Tiers by folder: tests/unit are `unit` (no JVM), tests/spark are `spark`
(local SparkSession, no services), tests/integration are `integration`, tests/scale_out are
`scale_out` (the stack in cluster mode; see pyproject)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.parent.name
        if tier in {"unit", "spark", "integration", "scale_out"}:
            item.add_marker(getattr(pytest.mark, tier))
    # an integration test that re-reads every table (a rebuild from bronze, a re-snapshot) runs
    # before the others, while the session's tables are small (the MovieLens load comes later)
    items.sort(key=lambda item: item.get_closest_marker("early") is None if _integration(item) else -1)


def _integration(item: pytest.Item) -> bool:
    return item.get_closest_marker("integration") is not None

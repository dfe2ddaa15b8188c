"""Tiers by folder: tests/unit are `unit` (no JVM), tests/spark are `spark`
(local SparkSession, no services), tests/integration are `integration` (see pyproject)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.parent.name
        if tier in {"unit", "spark", "integration"}:
            item.add_marker(getattr(pytest.mark, tier))
    # tests that load MovieLens go last (in file order): the silver replay test before them then
    # replays a small bronze, and the top-movies check runs on the sample before any generator
    items.sort(key=lambda item: item.get_closest_marker("movielens") is not None)

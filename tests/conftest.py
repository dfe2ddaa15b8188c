"""Tiers by folder: tests/unit are `unit` (no JVM), tests/spark are `spark`
(local SparkSession, no services), tests/integration are `integration` (see pyproject)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.parent.name
        if tier in {"unit", "spark", "integration"}:
            item.add_marker(getattr(pytest.mark, tier))
    # a test that changes what the others rely on (a re-snapshot of every table) runs last
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)

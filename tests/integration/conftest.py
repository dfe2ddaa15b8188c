"""One real native stack per test session, on its own state dir and ports, torn down in finally."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakehouse.scratch import scratch_stack
from lakehouse.stack import Stack

# Test ports sit 1000 above the defaults so a developer's own `make up` stack keeps running.
PORT_OFFSET = 1000


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with scratch_stack(PORT_OFFSET, prefix="lakehouse-test-") as stack:
        stack.up()
        yield stack

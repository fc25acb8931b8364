"""Fixtures and markers of the conformance suite. This conftest is loaded only when the suite is
collected, so its markers stay out of unrelated pytest runs in the same environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.checks import CATALOGUE, Run
from conformance.suite.support import conformance_run_fixture
from conformance.taxonomy import CATEGORIES, LEVELS


def pytest_configure(config: pytest.Config) -> None:
    for level in LEVELS:
        config.addinivalue_line("markers", f"{level.lower()}: conformance checks of level {level}")
    for category in CATEGORIES:
        config.addinivalue_line("markers", f"{category.lower()}: conformance checks of category {category}")
    for check in CATALOGUE:  # -m LOCK-001: selection by check id is what users try first
        config.addinivalue_line("markers", f"{check.id}: the conformance check {check.id}")


@pytest.fixture(scope="session")
def conformance_run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The session's run: a target, a client, and the probes' cache."""
    yield from conformance_run_fixture(request)

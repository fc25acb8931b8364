"""Fixtures of the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.checks import Run
from conformance.suite.support import conformance_run_fixture


@pytest.fixture(scope="session")
def conformance_run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The session's run: a target, a client, and the probes' cache."""
    yield from conformance_run_fixture(request)

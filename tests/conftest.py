"""Shared test configuration: Hypothesis profiles and the in-process mock node.

Hypothesis profiles:
- ``ci`` (default): fast enough for every commit on a 2-core machine.
- ``deep``: long campaigns, selected with ``HYPOTHESIS_PROFILE=deep``.
Failures are reproducible through Hypothesis' printed seed and its example database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from mock_node.config import MockConfig
from tests.mockclient import MockClient

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def make_client() -> Iterator[Callable[..., MockClient]]:
    """``make_client(profile=..., faults=[...], ...)``: a MockClient on a fresh node; closed after the test."""
    clients: list[MockClient] = []

    def make(**config: object) -> MockClient:
        client = MockClient(MockConfig(**config))  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

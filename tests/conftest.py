"""Shared test configuration: Hypothesis profiles and the in-process mock node.

Hypothesis profiles:
- ``ci`` (default): fast enough for every commit on a 2-core machine.
- ``deep``: long campaigns, selected with ``HYPOTHESIS_PROFILE=deep``.
Neither keeps an example database: a run must not depend on what an earlier run left in the working
directory (a stale database once hid a failure). Failures are reproducible from the printed
``@reproduce_failure`` blob and seed instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from mock_node.config import MockConfig
from tests.mockclient import MockClient

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "database": None, "print_blob": True}
settings.register_profile("ci", max_examples=60, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=5000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps caches (constants, charmap) under ./.hypothesis, written as test modules are
    collected: send them to a temporary directory of this run's own, removed at the end, so no test
    writes into the working tree or reads what an earlier run left there."""
    import shutil
    import tempfile

    from hypothesis import configuration

    home = tempfile.mkdtemp(prefix="atoma-conformance-hypothesis-")
    previous = vars(configuration).get("__hypothesis_home_directory")  # no public getter
    configuration.set_hypothesis_home_dir(home)

    def restore() -> None:
        configuration.set_hypothesis_home_dir(previous)
        shutil.rmtree(home, ignore_errors=True)

    config.add_cleanup(restore)


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

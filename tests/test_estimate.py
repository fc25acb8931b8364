"""The dry-run bound is built from declarations (each check's probes, each probe's cost and reads), so
the declarations are held to what the code really does: every probe is run and counted, and every
check's reads are compared with what it declared. A probe that sends more than it declares, or a check
that reads a probe it does not name, would make ``run --dry-run`` promise less than a run sends."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.checks import CATALOGUE, Run
from conformance.checks.base import Precondition, Skip
from conformance.checks.probe import PROBES, Probe
from conformance.client import ConfidentialClient
from conformance.embedded import Embedded, embedded_target
from conformance.estimate import closure, estimate_run, select

CASES = [("proxy", "strict"), ("proxy", "atoma-node-compat"), ("node", "strict")]


class Counting:
    """A run whose probes are counted: requests by the probe running when they were sent (locks apart),
    and which probes each probe or check read."""

    def __init__(self, embedded: Embedded) -> None:
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self.reads: dict[str, set[str]] = collections.defaultdict(set)
        self.stack: list[str] = []
        self.clients: list[ConfidentialClient] = []

        def make(api_key: str | None) -> ConfidentialClient:
            client = ConfidentialClient(embedded.target.base_url, api_key, node_face=embedded.node_face)
            original = client.request

            def request(method: str, path: str, **kwargs: Any) -> Any:
                kind = "lock" if path == "/v1/nodes/lock" else "send"
                self.requests[(self.stack[-1] if self.stack else "<check>", kind)] += 1
                return original(method, path, **kwargs)

            client.request = request  # type: ignore[method-assign]
            self.clients.append(client)
            return client

        self.run = Run(embedded.target, make(embedded.target.api_key), client_factory=make)
        self.run.sleep = embedded.sleep
        get = self.run.get

        def counted(probe: Probe[Any]) -> Any:
            self.reads[self.stack[-1] if self.stack else "<check>"].add(probe.name)
            self.stack.append(probe.name)
            try:
                return get(probe)
            finally:
                self.stack.pop()

        self.run.get = counted  # type: ignore[method-assign]


@pytest.fixture(params=CASES, ids=[f"{face}-{profile}" for face, profile in CASES])
def counting(request: pytest.FixtureRequest) -> Iterator[Callable[[], Counting]]:
    face, profile = request.param
    stack: list[Any] = []

    def new() -> Counting:
        context = embedded_target(profile, face=face)
        embedded = context.__enter__()
        counted = Counting(embedded)
        stack.append((context, counted))
        return counted

    yield new
    for context, counted in stack:
        for client in counted.clients:
            client.close()
        context.__exit__(None, None, None)


def _applies(name: str, face: str) -> bool:
    return PROBES[name].face in (None, face) and PROBES[name].depth in (None, "cover")


def test_every_probe_sends_at_most_what_it_declares(counting: Callable[[], Counting]) -> None:
    """Each probe alone, on a fresh run (nothing cached), so it pays for everything it reads too."""
    checked = 0
    for name in sorted(PROBES):
        counted = counting()
        face = counted.run.target.face
        if not _applies(name, face):
            continue
        with contextlib.suppress(Skip, Precondition):
            counted.run.get(PROBES[name])
        cost = PROBES[name].cost
        own_sends, own_locks = counted.requests[(name, "send")], counted.requests[(name, "lock")]
        assert own_sends <= cost.sends, f"{name} sent {own_sends} requests, declares {cost.sends}"
        assert own_locks <= cost.locks, f"{name} took {own_locks} locks, declares {cost.locks}"
        assert counted.reads.get(name, set()) <= set(cost.reads), f"{name} reads probes it does not declare"
        checked += 1
    assert checked >= 30


def test_every_check_reads_only_what_it_declares(counting: Callable[[], Counting]) -> None:
    counted = counting()
    face = counted.run.target.face
    for check in CATALOGUE:
        counted.reads["<check>"] = set()
        check.run(counted.run)
        read = {name for name in counted.reads["<check>"] if _applies(name, face)}
        declared = closure(set(check.probes), face)
        assert read <= declared, f"{check.id} reads {read - declared}"
    assert counted.requests[("<check>", "send")] == counted.requests[("<check>", "lock")] == 0, (
        "a check sent a request outside any probe"
    )


def test_the_bound_covers_a_whole_run_of_the_catalogue(counting: Callable[[], Counting]) -> None:
    counted = counting()
    face = counted.run.target.face
    for check in CATALOGUE:
        check.run(counted.run)
    sent = sum(counted.requests.values())
    bound = estimate_run(select_expr=None, workers=1, face=face, embedded=True)
    assert 0 < sent <= bound.without_retries <= bound.requests


def test_selection_matches_pytest_marker_semantics() -> None:
    assert [c.id for c in select("LOCK-001")] == ["LOCK-001"]
    assert {c.category for c in select("nonce")} == {"NONCE"}
    assert all(c.level == "MUST" for c in select("must and not err"))
    assert len(select(None)) == len(CATALOGUE)
    narrow = estimate_run(select_expr="LOCK-001", workers=1, face="proxy", embedded=True)
    assert narrow.probes == 1 and narrow.without_retries == 1
    assert estimate_run(select_expr=None, workers=2, face="proxy", embedded=False).preflight == 3

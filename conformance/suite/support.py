"""The suite's side of the pytest plugin: the session's run (target, client, embedded mock) and the
bridge from a check's verdict to a pytest outcome. Imported only when the suite is collected."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.checks import Check, Run, Target, Verdict
from conformance.client import ClientOptions, ConfidentialClient, resolve_api_key
from conformance.plugin import RESULTS_KEY, RUNS_KEY
from conformance.results import CheckResult


def marks_for(check: Check) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, check.level.lower()), getattr(pytest.mark, check.category.lower())]


@contextlib.contextmanager
def _embedded(config: pytest.Config) -> Iterator[tuple[str, dict[str, Any]]]:
    from mock_node.config import DEFAULT_MODELS, MockConfig
    from mock_node.testing import SkewClock, running_node

    clock = SkewClock()  # the embedded node's time, so the lock-expiry probe need not really wait
    profile = config.getoption("profile") or "strict"
    mock = MockConfig(profile=profile, faults=tuple(config.getoption("mock_fault")), clock=clock.now)
    with running_node(mock) as url:
        yield (
            url,
            {
                "models": DEFAULT_MODELS,
                "node_address": mock.signer_address,
                "profile": mock.profile,
                "sleep": clock.advance,
            },
        )


def conformance_run_fixture(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The session's run: a target, a client, and the probes' cache."""
    config = request.config
    target_url: str | None = config.getoption("target")
    options = ClientOptions(max_requests=config.getoption("max_requests"))
    embedded_sleep = None
    with contextlib.ExitStack() as stack:
        if target_url:
            api_key = resolve_api_key(config.getoption("api_key"))
            model = config.getoption("model")
            if not model:
                raise pytest.UsageError("--model is required with --target (the chat model to test)")
            target = Target(
                target_url,
                api_key,
                model,
                config.getoption("embedding_model"),
                config.getoption("image_model"),
                config.getoption("node_address"),
                config.getoption("second_api_key"),
                embedded=False,
                profile=config.getoption("profile"),
            )
        else:
            url, mock = stack.enter_context(_embedded(config))
            embedded_sleep = mock["sleep"]
            models = mock["models"]
            target = Target(
                url,
                "atoma-conformance-embedded-key-1",
                config.getoption("model") or models[0],
                models[1],
                models[2],
                config.getoption("node_address") or mock["node_address"],
                "atoma-conformance-embedded-key-2",
                embedded=True,
                profile=mock["profile"],
            )

        def make_client(api_key: str | None) -> ConfidentialClient:
            return ConfidentialClient(target.base_url, api_key, options=options)

        client = stack.enter_context(contextlib.closing(make_client(target.api_key)))
        run = Run(target, client, client_factory=make_client)
        if embedded_sleep is not None:
            run.sleep = embedded_sleep
        config.stash[RUNS_KEY].append(run)
        yield run


def record_verdict(config: pytest.Config, check: Check, verdict: Verdict) -> None:
    config.stash[RESULTS_KEY].append(CheckResult.of(check, verdict))


def enforce(check: Check, verdict: Verdict) -> None:
    """Turn a verdict into the pytest outcome: fail/error fail the item (INFO only on error)."""
    if verdict.outcome == "skip":
        pytest.skip(f"{check.id}: {verdict.reason}")
    if verdict.outcome == "error":
        pytest.fail(f"{check.id} could not be evaluated: {verdict.reason}", pytrace=False)
    if verdict.outcome == "fail" and check.level != "INFO":
        pytest.fail(f"{check.id} [{check.level}] {check.title}: {verdict.reason}", pytrace=False)

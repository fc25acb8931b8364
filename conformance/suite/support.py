"""The suite's side of the pytest plugin: the session's run (target, client, embedded mock) and the
bridge from a check's verdict to a pytest outcome. Imported only when the suite is collected."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from conformance.checks import Check, Run, Target, Verdict
from conformance.client import ClientOptions, ConfidentialClient, resolve_api_key
from conformance.embedded import embedded_target
from conformance.plugin import RESULTS_KEY, RUNS_KEY
from conformance.results import CheckResult


def marks_for(check: Check) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, check.level.lower()), getattr(pytest.mark, check.category.lower())]


def conformance_run_fixture(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The session's run: a target, a client, and the probes' cache."""
    config = request.config
    target_url: str | None = config.getoption("target")
    options = ClientOptions(
        max_requests=config.getoption("max_requests"),
        timeout_s=config.getoption("timeout"),
        deadline_s=config.getoption("deadline"),
        max_response_bytes=config.getoption("max_response_bytes"),
    )
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
            embedded = stack.enter_context(
                embedded_target(
                    config.getoption("profile") or "strict",
                    config.getoption("mock_fault"),
                    chat_model=config.getoption("model"),
                    node_address=config.getoption("node_address"),
                )
            )
            target, embedded_sleep = embedded.target, embedded.sleep

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

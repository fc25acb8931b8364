"""The suite's side of the pytest plugin: the session's run (target, client, embedded mock) and the
bridge from a check's verdict to a pytest outcome. Imported only when the suite is collected."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from conformance.checks import Check, Run, Target, Verdict
from conformance.client import ClientOptions, ConfidentialClient, NodeFace, resolve_api_key
from conformance.embedded import EMBEDDED_STACK, embedded_target
from conformance.guard import RunGuard
from conformance.hop import embedded_owner_scheme, load_signer, node_face_from
from conformance.keybinding import KEY_OPTIONS, KeySource, key_source_from
from conformance.options import get, tls_verify
from conformance.plugin import BUDGET_KEY, RESULTS_KEY, RUNS_KEY, STARTED_KEY
from conformance.results import CheckResult

_T = TypeVar("_T")


def marks_for(check: Check) -> list[pytest.MarkDecorator]:
    return [
        getattr(pytest.mark, check.level.lower()),
        getattr(pytest.mark, check.category.lower()),
        getattr(pytest.mark, check.id),  # -m LOCK-001
    ]


def key_source_of(config: pytest.Config) -> KeySource | None:
    """The run's key source from the plugin's options (validated at configure time, so no error here)."""
    return key_source_from(
        embedded=not get(config, "target"),
        face=get(config, "face"),
        **{name: get(config, name) for name in KEY_OPTIONS},
    )


def conformance_run_fixture(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The session's run: a target, a client, and the probes' cache."""
    config = request.config
    target_url: str | None = get(config, "target")
    options = ClientOptions(
        max_requests=get(config, "max_requests"),
        budget=config.stash.get(BUDGET_KEY, None),
        timeout_s=get(config, "timeout"),
        deadline_s=get(config, "deadline"),
        max_response_bytes=get(config, "max_response_bytes"),
        verify=tls_verify(get(config, "ca_bundle"), get(config, "insecure")),
        extra_headers=tuple(get(config, "header")),
        guard=RunGuard(
            max(0.0, get(config, "run_deadline") - (time.time() - config.stash[STARTED_KEY])),
            timeout_s=get(config, "timeout"),
            deadline_s=get(config, "deadline"),
            label_s=get(config, "run_deadline"),
        ),
    )
    embedded_sleep = None
    face = get(config, "face")
    node_face: NodeFace | None = None
    with contextlib.ExitStack() as stack:
        if target_url:
            model = get(config, "model")
            if not model:
                raise pytest.UsageError("--model is required with --target (the chat model to test)")
            if face == "node":  # the suite is the proxy: no bearer tokens, the hop headers instead
                hop = (get(config, flag) for flag in ("signer_key", "stack_small_id", "node_public_key"))
                node_face = _hop(lambda: node_face_from(*hop))
                api_key, second_api_key = None, None
            else:
                api_key, second_api_key = (
                    resolve_api_key(get(config, "api_key")),
                    get(config, "second_api_key"),
                )
            target = Target(
                target_url,
                api_key,
                model,
                get(config, "embedding_model"),
                get(config, "image_model"),
                get(config, "node_address"),
                second_api_key,
                embedded=False,
                profile=get(config, "profile"),
                face=face,
                key_source=key_source_of(config),
            )
        else:
            embedded = stack.enter_context(
                embedded_target(
                    get(config, "profile") or "strict",
                    get(config, "mock_fault"),
                    chat_model=get(config, "model"),
                    node_address=get(config, "node_address"),
                    face=face,
                    known_keys=True,  # a token nobody issued is refused, as by a real proxy (R2.2, R10.7)
                    signer=_hop(lambda: load_signer(key)) if (key := get(config, "signer_key")) else None,
                    signer_scheme=_hop(
                        lambda: embedded_owner_scheme(
                            get(config, "signer_scheme"), face=face, target=None, signer_key=key
                        )
                    ),
                    stack_small_id=get(config, "stack_small_id") or EMBEDDED_STACK,
                    max_key_age=get(config, "max_key_age"),
                )
            )
            target, embedded_sleep, node_face = embedded.target, embedded.sleep, embedded.node_face

        target.member_table = get(config, "member_table") or "cover"

        def make_client(api_key: str | None) -> ConfidentialClient:
            return ConfidentialClient(target.base_url, api_key, options=options, node_face=node_face)

        client = stack.enter_context(contextlib.closing(make_client(target.api_key)))
        run = Run(target, client, client_factory=make_client)
        if embedded_sleep is not None:
            run.sleep = embedded_sleep
        config.stash[RUNS_KEY].append(run)
        yield run


def _hop(action: Callable[[], _T]) -> _T:
    try:
        return action()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


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

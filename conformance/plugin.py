"""The pytest plugin: ``pytest --pyargs conformance.suite [--target URL]``.

With no ``--target`` the embedded mock node (strict unless ``--profile`` says otherwise) starts for
the session on a loopback port, in the style of pytest-base-url's live-server override. Each check
of the catalogue is one test item, marked with its level and category, so ``-m must`` or
``-m "nonce or stream"`` select checks. Under pytest-xdist every worker sends its verdicts and its
nonce ledger to the controller, which merges them: a nonce reused across two workers is still found.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .taxonomy import CATEGORIES, LEVELS

if TYPE_CHECKING:
    from .checks import Run
    from .results import CheckResult

# This module is loaded by pytest at start-up (entry point pytest11) in every environment where the
# package is installed, before coverage starts: it imports nothing heavy at module level. The suite's
# fixture and helpers live in conformance.suite, which is imported only when the suite is collected.
RESULTS_FILE = "results.json"
RESULTS_KEY = pytest.StashKey[list["CheckResult"]]()
RUNS_KEY = pytest.StashKey[list["Run"]]()
_MERGED = pytest.StashKey[dict[str, Any]]()
_STARTED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("atoma-conformance", "Atoma confidential compute conformance")
    group.addoption(
        "--target",
        default=os.environ.get("ATOMA_CONFORMANCE_TARGET"),
        metavar="URL",
        help="base URL of the deployment to test (env ATOMA_CONFORMANCE_TARGET); default: the embedded mock",
    )
    group.addoption(
        "--api-key",
        default=None,
        metavar="KEY",
        help="bearer token (default: $ATOMA_API_KEY, then $ATOMASDK_BEARER_AUTH); never printed",
    )
    group.addoption(
        "--second-api-key",
        default=None,
        metavar="KEY",
        help="a second bearer token, to prove one key cannot spend another's lock (LOCK-011)",
    )
    group.addoption("--model", default=None, metavar="NAME", help="chat/completions model to use")
    group.addoption(
        "--embedding-model", default=None, metavar="NAME", help="embeddings model (else skipped on a target)"
    )
    group.addoption("--image-model", default=None, metavar="NAME", help="image model (else skipped on a target)")
    group.addoption("--node-address", default=None, metavar="0x…", help="the node's registered Sui address (SIG-007)")
    group.addoption(
        "--profile",
        default=None,
        choices=["strict", "atoma-node-compat"],
        help="profile of the embedded mock (default strict); with --target, the expected profile",
    )
    group.addoption(
        "--mock-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="start the embedded mock with this fault (repeatable); see 'atoma-conformance mock --list-faults'",
    )
    group.addoption(
        "--face",
        default="proxy",
        choices=["proxy", "node"],
        help="proxy (default): test the client-facing API; node: stand in for the proxy and test a node's own face",
    )
    group.addoption(
        "--signer-key",
        default=None,
        metavar="FILE",
        help="node face: a Sui keystore entry (base64 of flag || secret) of the stack owner; never printed",
    )
    group.addoption("--stack-small-id", type=int, default=None, metavar="N", help="node face: the stack to use")
    group.addoption(
        "--node-public-key",
        default=None,
        metavar="B64",
        help="node face: the node's X25519 public key (base64; the node has no lock endpoint to ask)",
    )
    group.addoption("--max-requests", type=int, default=None, metavar="N", help="hard cap on HTTP requests per worker")
    group.addoption("--timeout", type=float, default=30.0, metavar="S", help="per-read timeout in seconds (default 30)")
    group.addoption(
        "--deadline",
        type=float,
        default=120.0,
        metavar="S",
        help="a whole exchange's time limit in seconds, streams included (default 120)",
    )
    group.addoption(
        "--max-response-bytes",
        type=int,
        default=32 * 1024 * 1024,
        metavar="N",
        help="largest response body read (default 32 MiB)",
    )
    group.addoption("--report-dir", default=None, metavar="DIR", help=f"write {RESULTS_FILE} into DIR")


def pytest_configure(config: pytest.Config) -> None:
    for level in LEVELS:
        config.addinivalue_line("markers", f"{level.lower()}: conformance checks of level {level}")
    for category in CATEGORIES:
        config.addinivalue_line("markers", f"{category.lower()}: conformance checks of category {category}")
    if config.getoption("face", "proxy") == "node" and config.getoption("target", None):
        from .hop import node_face_from

        try:  # a bad key file is a usage error before the session, not an error in every check
            node_face_from(
                config.getoption("signer_key"), config.getoption("stack_small_id"), config.getoption("node_public_key")
            )
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[RESULTS_KEY] = []
    config.stash[RUNS_KEY] = []
    config.stash[_MERGED] = {"uses": [], "requests": 0}
    config.stash[_STARTED] = time.time()


# --- results, including across xdist workers ---------------------------------------------------------


def _ledger_uses(config: pytest.Config) -> list[list[str]]:
    return [[u.key_id, u.nonce.hex(), u.where] for run in config.stash[RUNS_KEY] for u in run.ledger.all_uses()]


def _requests(config: pytest.Config) -> int:
    return sum(run.client.requests_sent for run in config.stash[RUNS_KEY])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller side of xdist: fold in a worker's verdicts and nonce uses."""
    payload = getattr(node, "workeroutput", {}).get("atoma_conformance")
    if not payload:
        return
    from .results import CheckResult

    data = json.loads(payload)
    config = node.config
    config.stash[RESULTS_KEY].extend(CheckResult(**r) for r in data["results"])
    config.stash[_MERGED]["uses"].extend(data["uses"])
    config.stash[_MERGED]["requests"] += data["requests"]
    config.stash[_MERGED].setdefault("target", data.get("target"))


def _target_summary(run: Run) -> dict[str, Any]:
    from .results import redact_url

    t = run.target
    summary: dict[str, Any] = {
        "url": redact_url(t.base_url),
        "embedded": t.embedded,
        "profile": t.profile,
        "model": t.chat_model,
        "node_address": t.node_address,
        "node_public_key": None,
        "signer_address": None,
        "signature_scheme": None,
    }
    # The fingerprint: what identifies the deployment that answered (a change stands out in a diff).
    lock = run._cache.get("lock")
    hop = getattr(run.client, "node_face", None)
    if hop is not None:  # the node face has no lock: the key the suite was given
        import base64

        summary["node_public_key"] = base64.b64encode(hop.node_public_key).decode()
    elif lock is not None and getattr(lock, "public_key", None):
        import base64

        summary["node_public_key"] = base64.b64encode(lock.public_key).decode()
    for record in run.exchanges:
        for message in record.messages:
            if message.signature is not None and message.signature_verify_error is None:
                summary["signer_address"] = message.signer
                summary["signature_scheme"] = message.signature.scheme.label
                return summary
    return summary


def _detected_profile(results: list[Any]) -> str:
    """Which profile the target behaves like, from the verdicts (reported, never assumed)."""
    failed = {r.id for r in results if r.outcome == "fail"}
    if not failed:
        return "strict"
    if {"NONCE-003", "ERR-017"} <= failed:
        return "atoma-node-compat"
    return "non-conformant"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results = config.stash.get(RESULTS_KEY, None)
    if results is None:
        return
    runs = config.stash[RUNS_KEY]
    if hasattr(config, "workerinput"):  # an xdist worker: hand everything to the controller
        workeroutput: dict[str, Any] = config.workeroutput  # type: ignore[attr-defined]
        workeroutput["atoma_conformance"] = json.dumps(
            {
                "results": [vars(r) for r in results],
                "uses": _ledger_uses(config),
                "requests": _requests(config),
                "target": _target_summary(runs[0]) if runs else None,
            }
        )
        return
    if not results:
        return
    from .checks import CATALOGUE
    from .protocol.nonces import NonceLedger
    from .results import Results, redact_url

    merged = config.stash[_MERGED]
    ledger = NonceLedger()
    for key_id, nonce, where in [*_ledger_uses(config), *merged["uses"]]:
        ledger.observe(key_id, bytes.fromhex(nonce), where)
    audit = {
        "observations": ledger.observations,
        "keys": ledger.keys,
        "reuses": len(ledger.findings),
        "max_per_key": ledger.max_uses_per_key(),
        "budget_fraction": ledger.budget_fraction(),
    }
    ordered = sorted(
        results, key=lambda r: [c.id for c in CATALOGUE].index(r.id) if r.id in {c.id for c in CATALOGUE} else 10**6
    )
    if ledger.findings and not any(r.id == "NONCE-005" and r.outcome == "fail" for r in ordered):
        # Reuse that only shows once the workers' ledgers are merged.
        for r in ordered:
            if r.id == "NONCE-005":
                r.outcome, r.reason = "fail", f"{len(ledger.findings)} (key, nonce) reuse(s) across workers"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    target = _target_summary(runs[0]) if runs else merged.get("target") or {}
    target = dict(target, detected_profile=_detected_profile(ordered))
    options = {
        name: config.getoption(name)
        for name in (
            "target",
            "model",
            "embedding_model",
            "image_model",
            "profile",
            "mock_fault",
            "face",
            "stack_small_id",
            "max_requests",
            "timeout",
            "deadline",
            "max_response_bytes",
        )
    }
    if options.get("target"):
        options["target"] = redact_url(options["target"])
    report = Results(
        target,
        ordered,
        audit,
        config.stash[_STARTED],
        time.time() - config.stash[_STARTED],
        _requests(config) + merged["requests"],
        options,
    )
    report_dir = config.getoption("report_dir", None)
    if report_dir:
        report.write(Path(report_dir) / RESULTS_FILE)

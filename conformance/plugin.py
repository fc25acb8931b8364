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

from .budget import RequestBudget  # light: os and threading only

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
STARTED_KEY = _STARTED = pytest.StashKey[float]()
BUDGET_KEY = pytest.StashKey[RequestBudget]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from .options import add_to_pytest

    add_to_pytest(parser.getgroup("atoma-conformance", "Atoma confidential compute conformance (--atoma-*)"))


def pytest_configure(config: pytest.Config) -> None:
    """Inert unless the suite's own options are given: an environment where the package is installed
    runs unrelated test suites, and this plugin must not change them (its markers live in the suite's
    conftest, loaded only when the suite is collected)."""
    from .options import get

    config.stash[RESULTS_KEY] = []
    config.stash[RUNS_KEY] = []
    config.stash[_MERGED] = {"uses": [], "requests": 0}
    config.stash[_STARTED] = time.time()
    if get(config, "signer_scheme") is not None:
        from .hop import embedded_owner_scheme

        try:
            embedded_owner_scheme(
                get(config, "signer_scheme"),
                face=get(config, "face"),
                target=get(config, "target"),
                signer_key=get(config, "signer_key"),
            )
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if get(config, "face") == "node" and get(config, "target"):
        from .hop import node_face_from

        try:  # a bad key file is a usage error before the session, not an error in every check
            node_face_from(get(config, "signer_key"), get(config, "stack_small_id"), get(config, "node_public_key"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    from .exits import UserError
    from .keybinding import KEY_OPTIONS, key_source_from

    try:  # the KEY checks' options: a bad combination is a usage error before the session
        key_source_from(
            embedded=not get(config, "target"),
            face=get(config, "face"),
            **{name: get(config, name) for name in KEY_OPTIONS},
        )
    except UserError as exc:
        raise pytest.UsageError(str(exc).replace("--", "--atoma-", 1)) from None
    _set_up_budget(config)


def _set_up_budget(config: pytest.Config) -> None:
    """``--atoma-max-requests`` caps the whole run: the xdist controller makes one counter file that
    every worker draws from (handed over in ``workerinput``), so ``-n 2`` cannot send twice the cap."""
    from .options import get

    cap = get(config, "max_requests")
    if cap is None:
        return
    from .budget import FileBudget, LocalBudget

    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("atoma_budget_file"):
        config.stash[BUDGET_KEY] = FileBudget(Path(workerinput["atoma_budget_file"]), cap)
        return
    if os.name != "posix":  # pragma: no cover - no flock there: each process keeps its own count
        config.stash[BUDGET_KEY] = LocalBudget(cap)
        return
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="atoma-conformance-budget-")
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    config.stash[BUDGET_KEY] = FileBudget(Path(directory) / "spent", cap)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller side of xdist: hand each worker the run's budget file."""
    budget = node.config.stash.get(BUDGET_KEY, None)
    path = getattr(budget, "path", None)
    if path is not None:
        node.workerinput["atoma_budget_file"] = str(path)


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
    if data.get("stopped") and not config.stash[_MERGED].get("stopped"):
        config.stash[_MERGED]["stopped"] = data["stopped"]
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
                "stopped": _stopped(runs),
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
    from .options import get

    options = {
        name: get(config, name)
        for name in (
            "target",
            "model",
            "embedding_model",
            "image_model",
            "profile",
            "mock_fault",
            "face",
            "stack_small_id",
            "signer_scheme",
            "max_requests",
            "timeout",
            "deadline",
            "max_response_bytes",
            "insecure",
            "sui_rpc",
            "sui_package",
            "attestation_service",
            "trust_test_ca",
            "max_key_age",
        )
    }
    for url in ("target", "sui_rpc", "attestation_service"):
        if options.get(url):
            options[url] = redact_url(options[url])
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    stopped = _stopped(runs) or merged.get("stopped")
    report = Results(
        target,
        ordered,
        audit,
        config.stash[_STARTED],
        time.time() - config.stash[_STARTED],
        _requests(config) + merged["requests"],
        options,
        incomplete=interrupted,
        stopped_early=stopped,
    )
    report_dir = get(config, "report_dir")
    if report_dir:
        from .exits import UserError

        try:
            report.write(Path(report_dir) / RESULTS_FILE)
        except UserError as exc:  # a planted link or an unwritable directory: one line, no traceback
            session.config.get_terminal_writer().line(f"atoma-conformance: error: {exc}", red=True)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
    if stopped:  # the run was cut short: what it leaves is not evaluated, and no verdict stands
        session.exitstatus = pytest.ExitCode.INTERRUPTED
    elif not interrupted:
        session.exitstatus = _exit_status(session, ordered)


def _stopped(runs: list[Run]) -> str | None:
    """Why the run's guard stopped sending (its deadline, or a target too slow to test), if it did."""
    for run in runs:
        guard = run.client.options.guard
        if guard is not None and guard.stopped:
            return guard.stopped
    return None


def _exit_status(session: pytest.Session, results: list[CheckResult]) -> int:
    """One exit-code rule for ``pytest --pyargs conformance.suite`` and ``atoma-conformance run``: 1 when a
    MUST check failed or could not be evaluated, else 0 (a SHOULD failure is listed, not fatal).

    It applies only when every failed item is one of the suite's own verdicts: a failure of a test
    that is not ours (the user's own tests in the same session, a fixture that broke) keeps pytest's
    status, so nothing is hidden.
    """
    ours = sum(1 for r in results if r.outcome == "error" or (r.outcome == "fail" and r.level != "INFO"))
    if session.testsfailed != ours or session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return int(session.exitstatus)
    must = any(r.level == "MUST" and r.outcome in ("fail", "error") for r in results)
    return pytest.ExitCode.TESTS_FAILED if must else pytest.ExitCode.OK

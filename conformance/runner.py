"""``atoma-conformance run``: the pytest plugin behind a command with a one-screen summary and an
exit-code contract (0 every MUST passed, 1 a MUST failed or could not be evaluated, 2 the run could
not be carried out)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .budget import LocalBudget
from .client import ClientOptions, ConfidentialClient, resolve_api_key
from .exits import ExitCode, UserError
from .hop import MAX_KEY_FILE_BYTES, embedded_owner_scheme, load_signer, node_face_from
from .keybinding import KEY_OPTIONS, TRUST_TEST_CA_WARNING, key_source_from
from .options import (
    INSECURE_WARNING,
    RUN_OPTIONS,
    TARGET_ENV,
    add_to_argparse,
    positive_int,
    target_url,
    tls_verify,
    to_pytest_args,
)
from .options import api_key as api_key_type
from .paths import atomic_target, existing_file, output_file, writable_dir, write_atomic
from .plugin import RESULTS_FILE
from .preflight import ProxyProbe, check_proxy
from .protocol import jsonwire
from .report.render import HTML_FILE, JUNIT_FILE, SUMMARY_FILE
from .results import Results, redact_url
from .run_progress import Progress
from .taxonomy import CATEGORIES
from .textsafe import one_line
from .transport_errors import record_words, unreachable_message

if TYPE_CHECKING:
    from .estimate import Bound


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run options (declared once in conformance.options, shared with the plugin) and the CLI's own."""
    add_to_argparse(parser, exclude=("report_dir",))
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="gate on a baseline: exit 0 when the only MUST failures are known and unexpired (read before "
        "the first request)",
    )
    parser.add_argument(
        "--report-dir", default="reports", metavar="DIR", help=f"where {RESULTS_FILE} is written (default: reports)"
    )
    parser.add_argument(
        "--junit-xml",
        metavar="FILE",
        help="write the JUnit report to FILE instead of the report directory's junit.xml",
    )
    parser.add_argument(
        "-m",
        "--select",
        metavar="EXPR",
        help='pytest marker expression over levels, categories and check ids, e.g. "must and not err" or LOCK-001',
    )
    parser.add_argument("-n", "--workers", type=positive_int, metavar="N", help="run with N pytest-xdist workers")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the upper bound on the requests this selection sends (all workers, retries included); send nothing",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="one line per check on stderr: auto (default) when stderr is a terminal",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output as well")


def preflight(args: argparse.Namespace) -> None:
    """Refuse to start a run that cannot work, with one line naming the option: every local check
    first (no request sent), then a handful of requests that tell setup mistakes from verdicts."""
    if args.target is None and os.environ.get(TARGET_ENV):
        args.target = os.environ[TARGET_ENV]
    if args.target is not None:  # "" is a mistake, not "no target"
        args.target = target_url(args.target)
    if args.face == "proxy":
        for flag in ("signer_key", "stack_small_id", "node_public_key"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')}: only applies to --face node")
    if args.face == "node":
        for flag in ("api_key", "second_api_key"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')}: the node face has no bearer tokens (only --face proxy)")
        if not args.target and args.node_public_key is not None:
            raise UserError("--node-public-key: only with --target (the embedded node's key is known)")
    key_source_from(embedded=not args.target, face=args.face, **{name: getattr(args, name) for name in KEY_OPTIONS})
    if args.trust_test_ca:
        print(TRUST_TEST_CA_WARNING, file=sys.stderr, flush=True)
    try:
        embedded_owner_scheme(args.signer_scheme, face=args.face, target=args.target, signer_key=args.signer_key)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.signer_key is not None:  # the run itself starts in another directory: an absolute path
        args.signer_key = str(existing_file(args.signer_key, "--signer-key", MAX_KEY_FILE_BYTES).resolve())
    if args.ca_bundle is not None:
        if args.insecure:
            raise UserError("--insecure: cannot be combined with --ca-bundle")
        args.ca_bundle = str(existing_file(args.ca_bundle, "--ca-bundle", 16 * 1024 * 1024).resolve())
    if args.insecure:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
    writable_dir(args.report_dir, "--report-dir", create=False)  # created once every check has passed
    for name in (RESULTS_FILE, JUNIT_FILE, HTML_FILE, SUMMARY_FILE):  # a planted link is refused now, not after
        atomic_target(Path(args.report_dir) / name, "--report-dir")
    if args.junit_xml is not None:
        output_file(args.junit_xml, "--junit-xml")
        atomic_target(args.junit_xml, "--junit-xml")
    from .estimate import select

    if not select(args.select):  # a malformed or empty -m is a usage error now, not "no tests ran" later
        raise UserError(
            "-m",
            f"{one_line(args.select, 80)!r} selects no check (levels: must, should, info; categories: "
            f"{', '.join(c.lower() for c in CATEGORIES)}; or ids such as LOCK-001)",
        )
    if args.baseline is not None:
        _load_baseline(args.baseline)
    try:
        if args.target and args.face == "node":
            node_face_from(args.signer_key, args.stack_small_id, args.node_public_key)
        elif args.signer_key is not None:
            load_signer(args.signer_key)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not args.target:
        if args.mock_fault:
            from mock_node.faults import FAULTS

            for name in args.mock_fault:
                if name not in FAULTS:
                    raise UserError(
                        f"--mock-fault: unknown fault {one_line(name, 60)!r} (atoma-conformance mock --list-faults)"
                    )
        return
    if args.mock_fault:
        raise UserError("--mock-fault: only applies to the embedded mock, not to --target")
    if not args.model:
        raise UserError("--model: required with --target (the chat model the suite sends requests to)")
    if args.dry_run:
        return
    if args.face == "node":
        _preflight_node(args)
        return
    api_key = resolve_api_key(args.api_key)
    if api_key is not None:
        try:
            api_key_type(api_key)
        except argparse.ArgumentTypeError as exc:
            raise UserError("--api-key", f"the key (from the option or $ATOMA_API_KEY) {exc}") from None
    check_proxy(ProxyProbe(args.target, api_key, args.model, _preflight_options(args, lock_retries=0)))


def _preflight_options(args: argparse.Namespace, **overrides: Any) -> ClientOptions:
    """Short timeouts, and the run's own budget: the preflight's requests are billed like any other."""
    if getattr(args, "preflight_budget", None) is None:
        args.preflight_budget = LocalBudget(args.max_requests or 2**62)
    return ClientOptions(
        timeout_s=min(args.timeout or 15, 15),
        deadline_s=min(args.deadline or 30, 30),
        verify=tls_verify(args.ca_bundle, args.insecure),
        extra_headers=tuple(args.header),
        budget=args.preflight_budget,
        **overrides,
    )


def _charge_preflight(args: argparse.Namespace) -> int:
    """What the preflight sent comes off ``--max-requests`` before the suite starts."""
    budget = getattr(args, "preflight_budget", None)
    sent = budget.spent() if budget is not None else 0
    if args.max_requests is not None and sent:
        if args.max_requests - sent < 1:
            raise UserError(
                f"--max-requests: the preflight's {sent} requests used the whole budget of {args.max_requests}"
            )
        args.max_requests -= sent
    return sent


def _load_baseline(path: str) -> Any:
    from .report.baseline import load_baseline

    return load_baseline(path, "--baseline")


def _preflight_node(args: argparse.Namespace) -> None:
    hop = node_face_from(args.signer_key, args.stack_small_id, args.node_public_key)
    options = _preflight_options(args)
    where = redact_url(args.target)
    with ConfidentialClient(args.target, None, options=options, node_face=hop) as client:
        # One valid, signed request: refusals would otherwise be blamed on the probes, not on the setup.
        body = jsonwire.dumps({"model": args.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})
        record = client.send("chat", body, lock=client.lock(args.model), model_name=args.model)
    status, error = record.http.status, record.http.error_body()
    code = one_line(error[0], 60) if error else None
    if status is None:
        raise UserError("--target", unreachable_message(where, record_words(record.http.detail, record.http.error)))
    if status == 200:
        return
    if code in ("AUTH_ERROR", "INVALID_HEADER", "MISSING_HEADER") or status == 401:
        raise UserError(
            f"--signer-key/--stack-small-id: {where} refused a valid signed request ({status} {code}); "
            "does the signer own that stack on this node?"
        )
    raise UserError(
        f"--node-public-key/--model: {where} refused a valid request ({status} {code}); is the key the node's "
        "current X25519 key, and does the node serve the model?"
    )


def pytest_args(args: argparse.Namespace, report_dir: Path, inifile: Path) -> list[str]:
    # An empty ini of our own isolates the run from whatever pytest configuration the current
    # directory has (its addopts, filterwarnings or plugins are the caller's project's, not ours).
    argv = [
        "--pyargs",
        "conformance.suite",
        "-c",
        str(inifile),
        "--rootdir",
        str(inifile.parent),
        "-p",
        "no:cacheprovider",
        "--assert=plain",
        "-rN",
        "--tb=no",
    ]
    if not args.verbose:
        argv.append("-q")
    given = {option.dest: getattr(args, option.dest, None) for option in RUN_OPTIONS}
    given["report_dir"] = str(report_dir.resolve())
    argv += to_pytest_args(given)
    if args.select:
        argv += ["-m", args.select]
    if args.workers:
        argv += ["-n", str(args.workers)]
    return argv


def _bound(args: argparse.Namespace) -> Bound:
    """What ``--dry-run`` promises for this selection, face and member-table depth."""
    from .estimate import estimate_run

    return estimate_run(
        select_expr=args.select,
        workers=args.workers or 1,
        face=args.face,
        embedded=not args.target,
        member_table=args.member_table,
    )


def dry_run(args: argparse.Namespace) -> int:
    bound = _bound(args)
    cap = f"; --max-requests caps it at {args.max_requests}" if args.max_requests else ""
    print(
        f"dry run: {bound.checks} checks over {bound.probes} probes, at most {bound.requests} requests "
        f"({bound.detail}){cap}; nothing was sent"
    )
    return ExitCode.OK


def run(args: argparse.Namespace) -> int:
    import pytest

    preflight(args)
    if args.dry_run:
        return dry_run(args)
    preflight_sent = _charge_preflight(args)
    baseline = _load_baseline(args.baseline) if args.baseline else None
    report_dir = writable_dir(args.report_dir, "--report-dir").resolve()
    results_path = report_dir / RESULTS_FILE
    results_path.unlink(missing_ok=True)
    output = io.StringIO()
    sink = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(output)
    progress = Progress.for_stream(sys.stderr, args.progress)
    # Run from an empty directory with an empty ini: pytest would otherwise pick up the current
    # directory's configuration and its tests*/conftest.py files, which belong to someone else.
    with tempfile.TemporaryDirectory(prefix="atoma-conformance-") as tmp, sink, contextlib.chdir(tmp):
        inifile = Path(tmp) / "pytest.ini"
        inifile.write_text("[pytest]\n", encoding="utf-8")
        code = pytest.main(pytest_args(args, report_dir, inifile), plugins=[progress] if progress else [])
    stopped = results_path.exists() and bool(Results.read(results_path).stopped_early)
    if code == pytest.ExitCode.INTERRUPTED and not stopped:  # Ctrl-C, not the run guard
        where = f"; partial results (marked incomplete) in {results_path}" if results_path.exists() else ""
        print(f"atoma-conformance: interrupted{where}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) or not results_path.exists():
        tail = [one_line(line, 200) for line in output.getvalue().splitlines() if line.strip()][-3:]
        raise UserError("the suite did not run" + (f": {' / '.join(tail)}" if tail else ""))
    results = Results.read(results_path)
    exit_code = ExitCode.FAILED if results.must_failures else ExitCode.OK
    if results.stopped_early:  # the run was cut short: the reports say so, and no gate may pass it
        exit_code = ExitCode.NOT_RUN
    if baseline is not None and not results.stopped_early:
        from .report.baseline import format_gate, gate, gate_record

        outcome = gate(json.loads(results_path.read_text(encoding="utf-8")), baseline, today=dt.date.today())
        exit_code = ExitCode(outcome.exit_code)
        _store_gate(results_path, gate_record(outcome, args.baseline))
    bound = _bound(args)
    print(summary(results, results_path, bound=bound.requests, preflight=preflight_sent))
    _render(results_path, Path(args.junit_xml).resolve() if args.junit_xml else None)
    if baseline is not None and not results.stopped_early:
        print(format_gate(outcome))
    if results.stopped_early:
        print(f"atoma-conformance: error: {one_line(results.stopped_early, 300)}", file=sys.stderr)
    return exit_code


def _store_gate(results_path: Path, record: dict[str, Any]) -> None:
    """The gate's verdict goes into results.json, so every report rendered from it says what the job says."""
    doc = json.loads(results_path.read_text(encoding="utf-8"))
    doc["baseline_gate"] = record
    write_atomic(results_path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode(), "--report-dir")


def _render(results_path: Path, junit_path: Path | None = None) -> None:
    """JUnit, HTML and Markdown next to results.json, all rendered from it (the spec the reports quote
    is the packaged one, so a wheel install renders the same reports as a checkout)."""
    from .report.render import write_all

    doc = json.loads(results_path.read_text(encoding="utf-8"))
    written = write_all(doc, results_path.parent, junit_path=junit_path)
    print("Reports: " + ", ".join(str(p) for p in written.values()))


def summary(results: Results, path: Path, *, bound: int | None = None, preflight: int = 0) -> str:
    target = results.target
    kind = f"embedded mock, {target.get('profile')}" if target.get("embedded") else "live target"
    lines = [
        f"atoma-conformance: {len(results.checks)} checks against {target.get('url')} ({kind}) "
        f"in {results.duration_s:.1f} s, {results.requests + preflight} requests"
        + (f" ({preflight} of them preflight)" if preflight else "")
        + (f"; dry-run bound {bound}" if bound is not None else "")
    ]
    counts = results.counts()
    for level in ("MUST", "SHOULD", "INFO"):
        c = counts.get(level)
        if c:
            lines.append(
                f"  {level:<6} {c['pass']:>3} pass  {c['fail']:>3} fail  {c['error']:>3} error  {c['skip']:>3} skip"
            )
    bad = [
        r for r in results.checks if r.outcome in ("fail", "error") and not (r.level == "INFO" and r.outcome == "fail")
    ]
    if results.stopped_early:  # the checks the stop left say so once, on the STOPPED line below
        bad = [r for r in bad if not r.reason.startswith(f"not evaluated: {results.stopped_early}")]
    if bad:
        lines.append("failures:")
        for r in bad:
            lines.append(f"  {r.id:<12} {r.level:<6} {r.outcome.upper():<5} {one_line(r.reason, 160)}")
    skipped = [r for r in results.checks if r.outcome == "skip"]
    if skipped:
        lines.append(
            "skipped: "
            + ", ".join(f"{r.id} ({one_line(r.reason, 100)})" for r in skipped[:3])
            + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        )
    audit = results.nonce_audit
    if audit:
        lines.append(
            f"nonce audit: {audit.get('observations')} nonce uses under {audit.get('keys')} keys, "
            f"{audit.get('reuses')} reuse(s); busiest key used {audit.get('budget_fraction', 0):.2g} of the "
            "2^32 random-nonce budget"
        )
    if results.stopped_early:
        left = sum(1 for r in results.checks if r.outcome == "error" and r.reason.startswith("not evaluated"))
        lines.append(f"STOPPED: {one_line(results.stopped_early, 200)}; {left} check(s) not evaluated")
    verdict = "FAIL: at least one MUST check failed" if results.must_failures else "PASS: every MUST check passed"
    if results.stopped_early:
        verdict = "NOT RUN: the run was stopped before it was done"
    lines.append(f"{verdict}. Results: {path}")
    return "\n".join(lines)


def main_run(args: argparse.Namespace) -> int:
    return run(args)

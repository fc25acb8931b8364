"""``atoma-conformance run``: the pytest plugin behind a command with a one-screen summary and an
exit-code contract (0 every MUST passed, 1 a MUST failed or could not be evaluated, 2 the run could
not be carried out)."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

from .client import ClientOptions, ConfidentialClient, resolve_api_key
from .exits import UserError
from .hop import load_signer, node_face_from
from .plugin import RESULTS_FILE
from .protocol import jsonwire
from .results import Results, redact_url

EXIT_OK, EXIT_MUST_FAILED, EXIT_NOT_RUN = 0, 1, 2


class RunError(UserError):
    """The run could not be carried out (exit 2); the message is one line for the user."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", metavar="URL", help="deployment to test (default: the embedded mock node)")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="bearer token (default: $ATOMA_API_KEY, then $ATOMASDK_BEARER_AUTH); never printed",
    )
    parser.add_argument("--second-api-key", metavar="KEY", help="a second token, for LOCK-011")
    parser.add_argument("--model", metavar="NAME", help="chat/completions model (required with --target)")
    parser.add_argument("--embedding-model", metavar="NAME", help="embeddings model (its checks skip without it)")
    parser.add_argument("--image-model", metavar="NAME", help="image model (its checks skip without it)")
    parser.add_argument("--node-address", metavar="0x…", help="the node's registered Sui signer address (SIG-007)")
    parser.add_argument(
        "--profile",
        choices=["strict", "atoma-node-compat"],
        help="embedded mock profile (default strict); with --target, the profile you expect",
    )
    parser.add_argument(
        "--face",
        choices=["proxy", "node"],
        default="proxy",
        help="proxy (default): the client-facing API; node: a node's own face, with the suite as its proxy "
        "(docs/node-operators.md)",
    )
    parser.add_argument(
        "--signer-key",
        metavar="FILE",
        help="node face: the stack owner's Sui keystore entry (base64 of flag || secret); never printed",
    )
    parser.add_argument("--stack-small-id", type=int, metavar="N", help="node face: the stack the signer owns")
    parser.add_argument(
        "--node-public-key", metavar="B64", help="node face: the node's X25519 public key, as published on-chain"
    )
    parser.add_argument(
        "--mock-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="run the embedded mock with this fault (repeatable)",
    )
    parser.add_argument("--max-requests", type=_positive, metavar="N", help="hard cap on HTTP requests")
    parser.add_argument("--timeout", type=_seconds, metavar="S", help="per-read timeout in seconds (default 30)")
    parser.add_argument(
        "--deadline", type=_seconds, metavar="S", help="time limit of one exchange, streams included (default 120)"
    )
    parser.add_argument(
        "--max-response-bytes", type=_positive, metavar="N", help="largest response body read (default 32 MiB)"
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="gate on a baseline: exit 0 when the only MUST failures are known and unexpired",
    )
    parser.add_argument(
        "--report-dir", default="reports", metavar="DIR", help=f"where {RESULTS_FILE} is written (default: reports)"
    )
    parser.add_argument(
        "-m",
        "--select",
        metavar="EXPR",
        help='pytest marker expression over levels and categories, e.g. "must and not err"',
    )
    parser.add_argument("-n", "--workers", type=_positive, metavar="N", help="run with N pytest-xdist workers")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output as well")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def preflight(args: argparse.Namespace) -> None:
    """Refuse to start a run that cannot work, with one line: bad usage, unreachable target, auth refused."""
    if args.face == "proxy":
        for flag in ("signer_key", "stack_small_id", "node_public_key"):
            if getattr(args, flag) is not None:
                raise RunError(f"--{flag.replace('_', '-')}: only applies to --face node")
    if args.face == "node":
        for flag in ("api_key", "second_api_key"):
            if getattr(args, flag) is not None:
                raise RunError(f"--{flag.replace('_', '-')}: the node face has no bearer tokens (only --face proxy)")
        if not args.target and args.node_public_key is not None:
            raise RunError("--node-public-key: only with --target (the embedded node's key is known)")
        if args.stack_small_id is not None and not 0 <= args.stack_small_id < 2**64:
            raise RunError("--stack-small-id: must be from 0 to 2^64 - 1")
    if args.signer_key is not None:
        if not Path(args.signer_key).is_file():
            raise RunError(f"--signer-key: {args.signer_key} is not a readable file")
        args.signer_key = str(Path(args.signer_key).resolve())  # the run itself starts in another directory
    try:
        if args.target and args.face == "node":
            node_face_from(args.signer_key, args.stack_small_id, args.node_public_key)
        elif args.signer_key is not None:
            load_signer(args.signer_key)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if not args.target:
        return
    if args.face == "node":
        _preflight_node(args)
        return
    if not args.target.startswith(("http://", "https://")):
        raise RunError(f"--target: must be an http:// or https:// URL, got {redact_url(args.target)!r}")
    if not args.model:
        raise RunError("--model: required with --target (the chat model the suite sends requests to)")
    if args.mock_fault:
        raise RunError("--mock-fault: only applies to the embedded mock, not to --target")
    api_key = resolve_api_key(args.api_key)
    options = ClientOptions(timeout_s=args.timeout or 15, deadline_s=args.deadline or 30, lock_retries=0)
    with ConfidentialClient(args.target, api_key, options=options) as client:
        lock = client.lock(args.model, retries=0)
    where = redact_url(args.target)
    if lock.http.status is None:
        raise RunError(f"--target: {where} is unreachable ({lock.http.error})")
    if lock.http.status == 401:
        raise RunError(f"--api-key: the target refused the API key (401 on /v1/nodes/lock at {where})")


def _preflight_node(args: argparse.Namespace) -> None:
    if not args.target.startswith(("http://", "https://")):
        raise RunError(f"--target: must be an http:// or https:// URL, got {redact_url(args.target)!r}")
    if args.model is None:
        raise RunError("--model: required with --target (the chat model the suite sends requests to)")
    if args.mock_fault:
        raise RunError("--mock-fault: only applies to the embedded mock, not to --target")
    hop = node_face_from(args.signer_key, args.stack_small_id, args.node_public_key)
    options = ClientOptions(timeout_s=args.timeout or 15, deadline_s=args.deadline or 30)
    where = redact_url(args.target)
    with ConfidentialClient(args.target, None, options=options, node_face=hop) as client:
        # One valid, signed request: refusals would otherwise be blamed on the probes, not on the setup.
        body = jsonwire.dumps({"model": args.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})
        record = client.send("chat", body, lock=client.lock(args.model), model_name=args.model)
    status, error = record.http.status, record.http.error_body()
    code = error[0] if error else None
    if status is None:
        raise RunError(f"--target: {where} is unreachable ({record.http.error})")
    if status == 200:
        return
    if code in ("AUTH_ERROR", "INVALID_HEADER", "MISSING_HEADER") or status == 401:
        raise RunError(
            f"--signer-key/--stack-small-id: {where} refused a valid signed request ({status} {code}); "
            "does the signer own that stack on this node?"
        )
    raise RunError(
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
        "--report-dir",
        str(report_dir.resolve()),
        "-rN",
        "--tb=no",
    ]
    if not args.verbose:
        argv.append("-q")
    for flag in (
        "target",
        "api_key",
        "second_api_key",
        "model",
        "embedding_model",
        "image_model",
        "node_address",
        "profile",
        "face",
        "signer_key",
        "stack_small_id",
        "node_public_key",
        "max_requests",
        "timeout",
        "deadline",
        "max_response_bytes",
    ):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    for fault in args.mock_fault:
        argv += ["--mock-fault", fault]
    if args.select:
        argv += ["-m", args.select]
    if args.workers:
        argv += ["-n", str(args.workers)]
    return argv


def run(args: argparse.Namespace) -> int:
    import pytest

    preflight(args)
    report_dir = Path(args.report_dir).resolve()
    results_path = report_dir / RESULTS_FILE
    results_path.unlink(missing_ok=True)
    output = io.StringIO()
    sink = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(output)
    # Run from an empty directory with an empty ini: pytest would otherwise pick up the current
    # directory's configuration and its tests*/conftest.py files, which belong to someone else.
    with tempfile.TemporaryDirectory(prefix="atoma-conformance-") as tmp, sink, contextlib.chdir(tmp):
        inifile = Path(tmp) / "pytest.ini"
        inifile.write_text("[pytest]\n", encoding="utf-8")
        code = pytest.main(pytest_args(args, report_dir, inifile), plugins=[])
    if (
        code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.INTERRUPTED)
        or not results_path.exists()
    ):
        tail = [line for line in output.getvalue().splitlines() if line.strip()][-3:]
        raise RunError("the suite did not run" + (f": {' / '.join(tail)}" if tail else ""))
    results = Results.read(results_path)
    print(summary(results, results_path))
    _render(results_path)
    if args.baseline:
        from .report.command import CommandError, gate_results

        try:
            return gate_results(results_path, args.baseline)
        except CommandError as exc:
            raise RunError(str(exc)) from None
    return EXIT_MUST_FAILED if results.must_failures else EXIT_OK


def _render(results_path: Path) -> None:
    """JUnit, HTML and Markdown next to results.json, all rendered from it."""
    try:
        from .report.render import write_all
    except ImportError:  # pragma: no cover - the renderers ship with the package
        return
    import json

    spec = Path(__file__).resolve().parents[1] / "docs" / "spec.md"
    written = write_all(
        json.loads(results_path.read_text(encoding="utf-8")),
        results_path.parent,
        spec_path=spec if spec.is_file() else None,
    )
    print("Reports: " + ", ".join(str(p) for p in written.values()))


def summary(results: Results, path: Path) -> str:
    target = results.target
    kind = f"embedded mock, {target.get('profile')}" if target.get("embedded") else "live target"
    lines = [
        f"atoma-conformance: {len(results.checks)} checks against {target.get('url')} ({kind}) "
        f"in {results.duration_s:.1f} s, {results.requests} requests"
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
    if bad:
        lines.append("failures:")
        for r in bad:
            lines.append(f"  {r.id:<12} {r.level:<6} {r.outcome.upper():<5} {r.reason[:160]}")
    skipped = [r for r in results.checks if r.outcome == "skip"]
    if skipped:
        lines.append(
            "skipped: "
            + ", ".join(f"{r.id} ({r.reason[:60]})" for r in skipped[:6])
            + (f" and {len(skipped) - 6} more" if len(skipped) > 6 else "")
        )
    audit = results.nonce_audit
    if audit:
        lines.append(
            f"nonce audit: {audit.get('observations')} nonce uses under {audit.get('keys')} keys, "
            f"{audit.get('reuses')} reuse(s); busiest key used {audit.get('budget_fraction', 0):.2g} of the "
            "2^32 random-nonce budget"
        )
    verdict = "FAIL: at least one MUST check failed" if results.must_failures else "PASS: every MUST check passed"
    lines.append(f"{verdict}. Results: {path}")
    return "\n".join(lines)


def main_run(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except RunError as exc:
        print(f"atoma-conformance: error: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN

"""The report commands: ``baseline create``, ``diff``, ``certify`` and ``verify-report``, and the
``run --baseline`` gate."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from ..exits import UserError

EXIT_OK, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 2


class CommandError(UserError):
    """One line for the user, exit 2."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _read_results(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{path}: no such results file")
    try:
        data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: not a results.json ({exc})") from None
    if not isinstance(data, dict) or "checks" not in data:
        raise CommandError(f"{path}: not a results.json (no 'checks')")
    return data


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="baseline_command", metavar="ACTION")
    sub.required = True
    create = sub.add_parser("create", help="write a baseline acknowledging every failure of a results file")
    create.add_argument("results", metavar="RESULTS.json")
    create.add_argument("--out", required=True, metavar="FILE", help="where to write the baseline")
    create.add_argument(
        "--expires",
        required=True,
        type=_date,
        metavar="YYYY-MM-DD",
        help="the day after which the acknowledged failures fail the gate again",
    )
    create.add_argument("--reason", metavar="TEXT", help="why (default: each check's own failure reason)")
    create.set_defaults(func=cmd_baseline_create)


def cmd_baseline_create(args: argparse.Namespace) -> int:
    from .baseline import create_baseline, write_baseline

    results = _read_results(args.results)
    doc = create_baseline(results, reason=args.reason, expires=args.expires)
    write_baseline(Path(args.out), doc)
    print(f"baseline with {len(doc['entries'])} known failure(s), expiring {args.expires}, written to {args.out}")
    return EXIT_OK


def gate_results(results_path: Path, baseline_path: str, today: dt.date | None = None) -> int:
    """``run --baseline``: print the gate and return its exit code."""
    from .baseline import BaselineError, format_gate, gate, load_baseline

    try:
        baseline = load_baseline(Path(baseline_path))
    except (BaselineError, OSError) as exc:
        raise CommandError(f"--baseline: {exc}") from None
    outcome = gate(_read_results(str(results_path)), baseline, today=today or dt.date.today())
    print(format_gate(outcome))
    return outcome.exit_code


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD.json")
    parser.add_argument("new", metavar="NEW.json")
    parser.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff, format_diff

    result = diff(_read_results(args.old), _read_results(args.new))
    print(format_diff(result))
    return EXIT_FAILED if result.must_regressions or result.key_or_signer_changed else EXIT_OK


def add_certify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", metavar="RESULTS.json", help="the run to certify")
    parser.add_argument("--out", metavar="DIR", help="a new or empty directory for the bundle")
    parser.add_argument("--key", metavar="FILE", help="the certifier's Ed25519 key (PKCS8 PEM, raw or base64 seed)")
    parser.add_argument(
        "--artefact",
        action="append",
        default=[],
        metavar="FILE",
        help="another file to include and hash (repeatable), e.g. report.html",
    )
    parser.add_argument("--generate-key", metavar="FILE", help="write a new Ed25519 key to FILE and exit")
    parser.set_defaults(func=cmd_certify)


def cmd_certify(args: argparse.Namespace) -> int:
    from .certify import CertifyError, certify, generate_key

    try:
        if args.generate_key:
            public = generate_key(Path(args.generate_key))
            print(f"new Ed25519 key written to {args.generate_key}; public key {public}")
            return EXIT_OK
        for name in ("results", "out", "key"):
            if not getattr(args, name):
                raise CommandError(f"--{name}: required (or use --generate-key FILE)")
        bundle = certify(Path(args.results), Path(args.out), Path(args.key), artefacts=[Path(a) for a in args.artefact])
    except CertifyError as exc:
        raise CommandError(str(exc)) from None
    print(f"certified bundle written to {bundle}")
    return EXIT_OK


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE_DIR")
    parser.add_argument("--public-key", metavar="B64", help="the certifier's public key to pin (recommended)")
    parser.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from .certify import BundleError, format_verify, verify_bundle

    try:
        outcome = verify_bundle(Path(args.bundle), expected_public_key=args.public_key)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    print(format_verify(outcome))
    return EXIT_OK if outcome.ok else EXIT_FAILED


def guarded(func: Any) -> Any:
    """Turn CommandError into a one-line message and exit 2."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
            return code
        except CommandError as exc:
            print(f"atoma-conformance: error: {exc}", file=sys.stderr)
            return EXIT_NOT_RUN

    return wrapper

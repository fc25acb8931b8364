"""The report commands: ``baseline create``, ``diff``, ``certify`` and ``verify-report``, and the
``run --baseline`` gate.

Every input is checked before anything is written, and every problem is a :class:`UserError` naming
the argument at fault (``OLD.json``, ``--out``, ``--key``…): these commands are what a CI job runs
after a long suite, and a traceback there costs a re-run to diagnose.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from ..exits import ExitCode, UserError
from ..paths import output_file, read_json_file, shown, writable_dir
from ..textsafe import one_line

RESULTS_MAX_BYTES = 64 * 1024 * 1024
"""A results.json holds hashes and counts, never bodies: hundreds of kilobytes. Far more is not one."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _read_results(path: str, field: str = "RESULTS.json") -> dict[str, Any]:
    """A results document, refused with one line naming ``field`` unless shaped like results.json."""
    from .baseline import ResultsError, checks_by_id

    data = read_json_file(path, field, RESULTS_MAX_BYTES)
    if not isinstance(data, dict):
        raise UserError(field, f"{shown(path)}: not a results.json (a JSON {_json_kind(data)}, not an object)")
    if "checks" not in data:
        raise UserError(field, f"{shown(path)}: not a results.json (no 'checks' member)")
    try:
        checks_by_id(data)
    except ResultsError as exc:
        raise UserError(field, f"{shown(path)}: not a results.json ({shown(_member(str(exc)))})") from None
    return data


def _member(message: str) -> str:
    return message.removeprefix("results: ")


def _json_kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    from ..exits import describe

    sub = parser.add_subparsers(dest="baseline_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    create = sub.add_parser(
        "create",
        help="write a baseline acknowledging every failure of a results file",
        description=describe(
            "Write a baseline that acknowledges every failing MUST and SHOULD check of RESULTS.json, each "
            "with a reason and an expiry; 'run --baseline FILE' then fails only on what is new or expired.",
            ok="the baseline was written",
            failed=None,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    from .baseline import BaselineError, create_baseline, write_baseline

    results = _read_results(args.results, "RESULTS.json")
    if args.reason is not None and not args.reason.strip():
        raise UserError("--reason", "is empty; say why the failures are accepted, or leave it out")
    out = output_file(args.out, "--out")
    doc = create_baseline(results, reason=args.reason, expires=args.expires)
    try:
        write_baseline(out, doc, "--out")
    except BaselineError as exc:  # a results file whose check ids no baseline can hold
        raise UserError("RESULTS.json", f"{shown(args.results)}: {shown(exc.location)}: {exc.problem}") from None
    except OSError as exc:
        raise UserError("--out", f"{shown(out)}: cannot be written ({exc.strerror or type(exc).__name__})") from None
    print(f"baseline with {len(doc['entries'])} known failure(s), expiring {args.expires}, written to {shown(out)}")
    return ExitCode.OK


def gate_results(results_path: Path, baseline_path: str, today: dt.date | None = None) -> int:
    """``run --baseline``: print the gate and return its exit code."""
    from .baseline import format_gate, gate

    baseline = load_baseline_option(baseline_path)
    outcome = gate(_read_results(str(results_path), "results.json"), baseline, today=today or dt.date.today())
    print(format_gate(outcome))
    return outcome.exit_code


def load_baseline_option(path: str, field: str = "--baseline") -> Any:
    """The baseline a ``--baseline`` option names, checked like every other input (no FIFO, no 1 GB file)."""
    from .baseline import load_baseline

    return load_baseline(path, field)


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD.json", help="the earlier run's results.json")
    parser.add_argument("new", metavar="NEW.json", help="the later run's results.json")
    parser.add_argument("--json", action="store_true", help="print the differences as one JSON object")
    parser.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff, format_diff

    result = diff(_read_results(args.old, "OLD.json"), _read_results(args.new, "NEW.json"))
    code = ExitCode.FAILED if result.must_regressions or result.key_or_signer_changed else ExitCode.OK
    if args.json:
        if result.key_or_signer_changed:
            verdict = "IDENTITY_CHANGED"
        elif result.must_regressions:
            verdict = "REGRESSED"
        else:
            verdict = "OK"
        doc = {
            "verdict": verdict,
            "exit_code": code,
            "old": args.old,
            "new": args.new,
            "must_regressions": len(result.must_regressions),
            **result.to_json(),
        }
        # ASCII: JSON escapes C0 controls itself, but a C1 control or a bidi override from a results file
        # would reach the terminal raw.
        print(json.dumps(doc, indent=2, ensure_ascii=True))
    else:
        print(format_diff(result))
    return code


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
    from .certify import CertifyError, SigningKeyError, certify, generate_key, load_signing_key

    if args.generate_key is not None:
        given = [f"--{name}" for name in ("results", "out", "key") if getattr(args, name) is not None]
        if given or args.artefact:
            raise UserError(
                "--generate-key", f"only writes a key; run certify again with {given[0] if given else '--artefact'}"
            )
        path = output_file(args.generate_key, "--generate-key", overwrite=False, hint="a key file is never replaced")
        try:
            public = generate_key(path)
        except SigningKeyError as exc:
            raise UserError("--generate-key", str(exc)) from None
        print(f"new Ed25519 key written to {shown(path)}; public key {public}")
        return ExitCode.OK
    for name in ("results", "out", "key"):
        if getattr(args, name) is None:
            raise UserError(f"--{name}", "required (or use --generate-key FILE)")
    try:
        key = load_signing_key(Path(_plain_path(args.key, "--key")))
    except SigningKeyError as exc:
        raise UserError("--key", str(exc)) from None
    results = _read_results(args.results, "--results")
    if not isinstance(results.get("certification"), dict):
        raise UserError("--results", f"{shown(args.results)}: no 'certification' verdicts (written by an older suite?)")
    out = writable_dir(args.out, "--out", create=False)
    if out.is_dir() and any(out.iterdir()):
        raise UserError("--out", f"{shown(out)}: not empty; a bundle is written into a new or empty directory")
    artefacts = [Path(_plain_path(a, "--artefact")) for a in args.artefact]
    try:
        bundle = certify(Path(args.results), out, key, artefacts=artefacts)
    except CertifyError as exc:
        raise UserError(exc.option or "certify", str(exc)) from None
    print(f"certified bundle written to {shown(bundle)}")
    return ExitCode.OK


def _plain_path(text: str, field: str, what: str = "a file") -> str:
    if not text:
        raise UserError(field, f"is empty; name {what}")
    if "\0" in text:
        raise UserError(field, "a path cannot contain a NUL character")
    return text


TRUST_MAX_BYTES = 1024 * 1024


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE_DIR", help="a directory written by 'certify'")
    parser.add_argument(
        "--public-key",
        metavar="B64",
        help="the certifier's public key to pin; without it or --trust the verdict is "
        "'integrity only, signer not pinned' and the exit code 1",
    )
    parser.add_argument(
        "--trust",
        metavar="FILE",
        help="a file of trusted certifier public keys, one base64 key per line ('#' starts a comment); "
        "the bundle must be signed by one of them",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    parser.set_defaults(func=cmd_verify)


def _trust_file(path: str) -> list[str]:
    """The keys of a --trust file: one base64 Ed25519 public key per line; blank lines and text after a
    '#' are ignored. A bad line is named by number and never quoted (it may be anything)."""
    from ..paths import read_regular_file

    data = read_regular_file(_plain_path(path, "--trust"), "--trust", TRUST_MAX_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError("--trust", f"{shown(path)}: not UTF-8 text (byte {exc.start})") from None
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32 or base64.b64encode(raw).decode() != content:
            raise UserError("--trust", f"{shown(path)}: line {number}: not the base64 of a 32-byte Ed25519 public key")
        keys.append(content)
    if not keys:
        raise UserError("--trust", f"{shown(path)}: lists no key (one base64 public key per line)")
    return keys


def _public_key(text: str) -> str:
    stripped = text.strip()
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        if not stripped.isascii():
            raise UserError("--public-key", "not base64 (non-ASCII characters)") from None
        raise UserError("--public-key", "not base64; give the certifier's key as 'certify' printed it") from None
    if len(raw) != 32:
        raise UserError("--public-key", f"base64 of {len(raw)} bytes, not of a 32-byte Ed25519 public key")
    return base64.b64encode(raw).decode()


def cmd_verify(args: argparse.Namespace) -> int:
    from .certify import MANIFEST, BundleError, format_verify, verify_bundle

    expected = _public_key(args.public_key) if args.public_key is not None else None
    trusted = _trust_file(args.trust) if args.trust is not None else []
    bundle = Path(_plain_path(args.bundle, "BUNDLE_DIR", "the bundle directory"))
    if not bundle.is_dir():
        what = "no such directory" if not bundle.exists() else "not a directory"
        raise UserError("BUNDLE_DIR", f"{shown(bundle)}: {what}; give the directory 'certify --out' wrote")
    if not (bundle / MANIFEST).exists() and not (bundle / MANIFEST).is_symlink():
        raise UserError(
            "BUNDLE_DIR",
            f"{shown(bundle)}: not a certification bundle (no {MANIFEST}); make one with 'atoma-conformance certify'",
        )
    try:
        outcome = verify_bundle(bundle, expected_public_key=expected, trusted_public_keys=trusted)
    except BundleError as exc:
        raise UserError("BUNDLE_DIR", str(exc)) from None
    # Exit 0 only for a bundle signed by a pinned key: an intact bundle signed by whoever made it is
    # exactly what a forger produces after flipping every outcome to pass.
    code = ExitCode.OK if outcome.certified else ExitCode.FAILED
    if args.json:
        manifest = outcome.manifest or {}
        files = manifest.get("files")
        verdict = "OK" if outcome.certified else "INTEGRITY_ONLY" if outcome.ok else "NOT_OK"
        doc = {
            "verdict": verdict,
            "ok": outcome.certified,
            "intact": outcome.ok,
            "exit_code": code,
            "bundle": str(bundle),
            "public_key": outcome.public_key,
            "public_key_pinned": outcome.pinned,
            "created": manifest.get("created") if outcome.certified else None,
            "certification": manifest.get("certification") if outcome.certified else None,
            "files": sorted(files) if outcome.ok and isinstance(files, dict) else [],
            "problems": [one_line(problem, 400) for problem in outcome.problems],
            "warnings": outcome.warnings,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=True))
    else:
        print(format_verify(outcome))
    return code


def guarded(func: Any) -> Any:
    """Kept for callers outside the CLI: turn a UserError into a one-line message and exit 2.
    ``cli.main`` does the same for every command, so the CLI no longer wraps its commands in it."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
            return code
        except UserError as exc:
            print(f"atoma-conformance: error: {exc}", file=sys.stderr)
            return int(ExitCode.NOT_RUN)

    return wrapper

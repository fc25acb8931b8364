"""The ``atoma-conformance`` command line.

Exit codes are a contract (README): 0 success, 1 a verdict failed (a vector, later a MUST check),
2 the command could not be carried out (bad usage, missing files). User errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .exits import ExitCode, UserError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(UserError):
    """A problem with how the command was called; printed as one line, exit 2."""


def _cmd_vectors_generate(args: argparse.Namespace) -> int:
    from .vectors import default_dir
    from .vectors.generate import write_all

    directory = Path(args.dir) if args.dir else default_dir()
    files = write_all(directory)
    total = sum(data.count(b'"id": ') for data in files.values())
    print(f"generated {total} vectors in {len(files)} files under {directory}")
    return EXIT_OK


def _cmd_vectors_check(args: argparse.Namespace) -> int:
    from .vectors import check, default_dir

    directory = Path(args.dir) if args.dir else default_dir()
    if not directory.is_dir():
        raise UsageError(f"--dir: {directory} is not a directory")
    report = check(directory)
    for problem in report.problems:
        print(f"FAIL {problem}")
    verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
    print(f"verified {report.vectors} vectors in {report.files} files under {directory}: {verdict}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import main_run

    return main_run(args)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from .fuzz.command import main_fuzz

    return main_fuzz(args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from .fuzz.command import main_replay

    return main_replay(args)


def _cmd_checks(args: argparse.Namespace) -> int:
    from .checks.docs import render

    print(render(args.format), end="")
    return EXIT_OK


def _cmd_keygen(args: argparse.Namespace) -> int:
    """A new Sui key, written as a keystore entry (owner-only permissions); prints only its address."""
    import os
    import secrets

    from .protocol.sui import Scheme, SuiSigner

    path = Path(args.out)
    if path.exists() and not args.force:
        raise UsageError(f"--out: {path} exists; pass --force to overwrite it")
    scheme = Scheme.from_label(args.scheme)
    while True:
        try:
            signer = SuiSigner(scheme, secrets.token_bytes(32))
            break
        except ValueError:  # an ECDSA scalar outside [1, n-1]: astronomically rare, draw again
            continue
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise UsageError(f"--out: cannot write {path} ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(signer.to_keystore() + "\n")
    print(signer.address)
    print(f"wrote the {scheme.label} keystore entry to {path} (keep it secret)", file=sys.stderr)
    return EXIT_OK


def _cmd_clients(args: argparse.Namespace) -> int:
    from .clients.command import main as main_clients

    return main_clients(args)


def _cmd_mock(args: argparse.Namespace) -> int:
    from mock_node.config import ConfigError
    from mock_node.serve import run

    try:
        return run(args)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line and no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="atoma-conformance",
        description="Conformance and fuzz test suite for Atoma's confidential compute API.",
        epilog="Exit codes: 0 success; 1 a verdict failed; 2 the command could not be carried out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    vectors = commands.add_parser("vectors", help="generate or check the known-answer vectors")
    vectors_cmds = vectors.add_subparsers(dest="vectors_command", metavar="ACTION", parser_class=_Parser)
    vectors_cmds.required = True
    for name, func, text in (
        ("generate", _cmd_vectors_generate, "rebuild every vector file deterministically"),
        (
            "check",
            _cmd_vectors_check,
            "byte-compare the files with the generator, validate the schema, and run every "
            "vector through the reference core; exit 1 on any difference",
        ),
    ):
        sub = vectors_cmds.add_parser(name, help=text, description=text)
        sub.add_argument("--dir", metavar="DIR", help="the vectors directory (default: the repository's vectors/)")
        sub.set_defaults(func=func)

    from .runner import add_arguments as add_run_arguments

    run = commands.add_parser(
        "run",
        help="run the conformance suite against a target or the embedded mock",
        description="Run the conformance suite. Without --target it runs against the embedded mock node. "
        "Exit codes: 0 every MUST check passed; 1 a MUST check failed or could not be evaluated; 2 the run "
        "could not be carried out (bad usage, unreachable target, API key refused).",
    )
    add_run_arguments(run)
    run.set_defaults(func=_cmd_run)

    from .fuzz.command import add_fuzz_arguments, add_replay_arguments

    fuzz = commands.add_parser(
        "fuzz",
        help="fuzz a target (or the embedded mock) with Hypothesis, within a budget",
        description="Fuzz the target: valid, awkward and mutated requests, judged by an oracle. A failure is "
        "shrunk and saved as a replay case. Exit codes: 0 no MUST finding; 1 a MUST finding; 2 not run.",
    )
    add_fuzz_arguments(fuzz)
    fuzz.set_defaults(func=_cmd_fuzz)

    replay = commands.add_parser(
        "replay",
        help="re-run a saved fuzz failure: FIXED or STILL FAILING",
        description="Re-send a replay case's exact request and judge it again. Exit codes: 0 FIXED; "
        "1 STILL FAILING; 2 not run.",
    )
    add_replay_arguments(replay)
    replay.set_defaults(func=_cmd_replay)

    from .report import command as report

    baseline = commands.add_parser("baseline", help="acknowledge known failures, with a reason and an expiry")
    report.add_baseline_arguments(baseline)
    for action in baseline._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        action.set_defaults(func=report.guarded(action.get_default("func")))
    diff = commands.add_parser("diff", help="compare two results.json: regressions, fixes, fingerprint changes")
    report.add_diff_arguments(diff)
    diff.set_defaults(func=report.guarded(report.cmd_diff))
    certify = commands.add_parser("certify", help="write a signed certification evidence bundle")
    report.add_certify_arguments(certify)
    certify.set_defaults(func=report.guarded(report.cmd_certify))
    verify = commands.add_parser("verify-report", help="check a certification bundle offline")
    report.add_verify_arguments(verify)
    verify.set_defaults(func=report.guarded(report.cmd_verify))

    checks = commands.add_parser("checks", help="list the check catalogue", description="List the check catalogue.")
    checks.add_argument(
        "--format", choices=["text", "markdown"], default="text", help="markdown is docs/checks.md (default: text)"
    )
    checks.set_defaults(func=_cmd_checks)

    keygen = commands.add_parser(
        "keygen",
        help="create a Sui key for the node face (the stack owner the suite signs as)",
        description="Create a Sui key pair, write it as a keystore entry (base64 of flag || secret) to --out "
        "with owner-only permissions, and print its address. See docs/node-operators.md.",
    )
    keygen.add_argument("--scheme", choices=["ed25519", "secp256k1", "secp256r1"], default="ed25519")
    keygen.add_argument("--out", required=True, metavar="FILE", help="where to write the keystore entry")
    keygen.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    keygen.set_defaults(func=_cmd_keygen)

    from .clients.command import add_arguments as add_clients_arguments

    clients = commands.add_parser(
        "clients",
        help="certify clients (SDKs) against the mock node, through adapters",
        description="Run every client through the client judge and every adversarial scenario, and write a "
        "matrix (scenarios x clients) as results.json, Markdown and HTML. See docs/clients.md.",
    )
    add_clients_arguments(clients)
    clients.set_defaults(func=_cmd_clients)

    from mock_node.serve import add_arguments

    mock = commands.add_parser(
        "mock",
        help="serve the mock Atoma node on loopback",
        description="Serve the mock Atoma node (the proxy face, or with --face node a node's own face): strict by "
        "default, or the upstream-compatible "
        "profile, optionally with named faults.",
    )
    add_arguments(mock)
    mock.set_defaults(func=_cmd_mock)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code: int = args.func(args)
        return code
    except UserError as exc:
        print(f"atoma-conformance: error: {exc}", file=sys.stderr)
        return ExitCode.NOT_RUN
    except KeyboardInterrupt:
        print("atoma-conformance: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a well-behaved filter does
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``atoma-conformance`` command line.

Exit codes are a contract (README): 0 success, 1 a verdict failed, 2 the command could not be carried
out (bad usage, a bad file, an unusable target), 130 interrupted. A user's mistake is one line on
stderr naming the option, argument or file member at fault, never a traceback: CI logs are read by
people who did not write the suite. A bug of ours is one line too, marked as one, with the traceback
behind ``ATOMA_CONFORMANCE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import __version__
from .exits import NOT_RUN, ExitCode, UserError, describe  # noqa: F401 - re-exported for the subcommands

DEBUG_ENV = "ATOMA_CONFORMANCE_DEBUG"


def _cmd_vectors_generate(args: argparse.Namespace) -> int:
    from .paths import shown, writable_dir
    from .vectors import default_output_dir
    from .vectors.generate import write_all

    # Without --dir: the checkout's vectors/; from a wheel, an error asking for --dir (never site-packages).
    directory = writable_dir(args.dir, "--dir") if args.dir is not None else default_output_dir()
    try:
        files = write_all(directory)
    except OSError as exc:
        raise UserError("--dir", f"{shown(directory)}: cannot write the vectors ({exc.strerror or exc})") from None
    total = sum(data.count(b'"id": ') for data in files.values())
    print(f"generated {total} vectors in {len(files)} files under {shown(directory)}")
    return ExitCode.OK


def _cmd_vectors_check(args: argparse.Namespace) -> int:
    from .paths import shown
    from .vectors import check, default_dir

    if args.dir is not None and (not args.dir or "\0" in args.dir):
        raise UserError("--dir", "is empty; name the vectors directory" if not args.dir else "contains a NUL")
    directory = Path(args.dir) if args.dir is not None else default_dir()
    if not directory.is_dir():
        raise UserError(f"--dir: {shown(directory)} is not a directory")
    report = check(directory)
    for problem in report.problems:
        print(f"FAIL {problem}")
    verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
    print(f"verified {report.vectors} vectors in {report.files} files under {shown(directory)}: {verdict}")
    return ExitCode.OK if report.ok else ExitCode.FAILED


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import main_run

    _check_inputs(args)
    return main_run(args)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from .fuzz.command import main_fuzz

    _check_inputs(args)
    return main_fuzz(args)


def _cmd_load(args: argparse.Namespace) -> int:
    from .load.command import main_load

    _check_inputs(args)
    return main_load(args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from .fuzz.command import main_replay
    from .paths import existing_file

    existing_file(args.case, "CASE.json", 16 * 1024 * 1024)
    _check_inputs(args)
    return main_replay(args)


def _check_inputs(args: argparse.Namespace) -> None:
    """The paths run, fuzz and replay read or write, checked before a long run starts.

    A FIFO given as a file would block the run for ever, and a report directory that cannot be made
    is otherwise found out after the work is done. The commands check their own values; this looks
    at paths, creating nothing, and reads only the baseline (a malformed one is otherwise reported
    after the run it gates).
    """
    from .paths import existing_file, writable_dir

    if getattr(args, "report_dir", None) is not None:
        writable_dir(args.report_dir, "--report-dir", create=False)
    if getattr(args, "baseline", None) is not None:
        from .report.command import load_baseline_option

        existing_file(args.baseline, "--baseline", 64 * 1024 * 1024)
        load_baseline_option(args.baseline)


def _cmd_checks(args: argparse.Namespace) -> int:
    from .checks.docs import render, to_json

    if args.json:
        if args.format != "text":
            raise UserError("--json", f"cannot be combined with --format {args.format}")
        print(to_json(), end="")
        return ExitCode.OK
    print(render(args.format), end="")
    return ExitCode.OK


def _cmd_keygen(args: argparse.Namespace) -> int:
    """A new Sui key, written as a keystore entry (owner-only permissions); prints only its address."""
    import secrets

    from .paths import atomic_target, output_file, shown, write_atomic
    from .protocol.sui import Scheme, SuiSigner

    path = output_file(args.out, "--out", overwrite=args.force, hint="pass --force to overwrite it")
    atomic_target(path, "--out")  # a link is refused before a key is drawn
    scheme = Scheme.from_label(args.scheme)
    while True:
        try:
            signer = SuiSigner(scheme, secrets.token_bytes(32))
            break
        except ValueError:  # an ECDSA scalar outside [1, n-1]: astronomically rare, draw again
            continue
    # A new file, mode 0600 whatever the umask, renamed into place: never written through a link,
    # never half a key; without --force an existing file is never replaced, even one created meanwhile.
    write_atomic(path, (signer.to_keystore() + "\n").encode("ascii"), "--out", mode=0o600, exclusive=not args.force)
    print(signer.address)
    print(f"wrote the {scheme.label} keystore entry to {shown(path)} (keep it secret)", file=sys.stderr)
    return ExitCode.OK


def _cmd_clients(args: argparse.Namespace) -> int:
    from .clients.command import main as main_clients

    return main_clients(args)


def _cmd_mock(args: argparse.Namespace) -> int:
    from mock_node.config import ConfigError
    from mock_node.serve import run

    try:
        return run(args)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line and no usage dump, and descriptions keep the
    line breaks :func:`describe` put in (the exit codes are a list, not a paragraph)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="atoma-conformance",
        description="Conformance and fuzz test suite for Atoma's confidential compute API.",
        epilog="Exit codes: 0 success; 1 a verdict failed; 2 the command could not be carried out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    vectors = commands.add_parser(
        "vectors",
        help="generate or check the known-answer vectors",
        description=describe(
            "Generate or check the known-answer vectors of vectors/ (ACTION is generate or check).",
            ok="the action succeeded (see 'vectors ACTION --help')",
            failed="'vectors check' found a file or vector that differs",
        ),
    )
    vectors_cmds = vectors.add_subparsers(dest="vectors_command", metavar="ACTION", parser_class=_Parser)
    vectors_cmds.required = True
    for name, func, text, ok, failed in (
        (
            "generate",
            _cmd_vectors_generate,
            "Rebuild every vector file deterministically into --dir.",
            "every vector file was written",
            None,
        ),
        (
            "check",
            _cmd_vectors_check,
            "Byte-compare the files with the generator, validate the schema, and run every vector through "
            "the reference core.",
            "every vector verified",
            "a file or vector differs (each difference is printed)",
        ),
    ):
        sub = vectors_cmds.add_parser(name, help=text.rstrip("."), description=describe(text, ok=ok, failed=failed))
        sub.add_argument("--dir", metavar="DIR", help="the vectors directory (default: the repository's vectors/)")
        sub.set_defaults(func=func)

    from .runner import add_arguments as add_run_arguments

    run = commands.add_parser(
        "run",
        help="run the conformance suite against a target or the embedded mock",
        description=describe(
            "Run the conformance suite. Without --target it runs against the embedded mock node, and writes "
            "results.json, junit.xml, report.html and summary.md to --report-dir.",
            ok="every MUST check passed (with --baseline: the only MUST failures are known and unexpired)",
            failed="a MUST check failed or could not be evaluated",
            not_run="the run could not be carried out (bad usage, unreachable target, API key refused)",
        ),
    )
    add_run_arguments(run)
    run.set_defaults(func=_cmd_run)

    from .fuzz.command import add_fuzz_arguments, add_replay_arguments

    fuzz = commands.add_parser(
        "fuzz",
        help="fuzz a target (or the embedded mock) with Hypothesis, within a budget",
        description=describe(
            "Fuzz the target: valid, awkward and mutated requests, judged by an oracle. A failure is shrunk "
            "and saved as a replay case under --report-dir.",
            ok="no MUST finding (or --dry-run)",
            failed="a MUST finding (saved as a replay case)",
            not_run="not run (bad usage, unreachable target, API key refused)",
        ),
    )
    add_fuzz_arguments(fuzz)
    fuzz.set_defaults(func=_cmd_fuzz)

    from .load.command import add_load_arguments

    load = commands.add_parser(
        "load",
        help="load a target (or the embedded mock) with Locust, judging every answer",
        description=describe(
            "Conformance under load: simulated users lock, seal, send and open through the reference client, "
            "and every answer is judged by the same rules as run and fuzz. Locust's master and workers spread "
            "the load over processes or machines (--master, --worker).",
            ok="no MUST finding",
            failed="a MUST finding under load",
            not_run="not run (bad usage, unreachable target, Locust missing, nothing judged)",
        ),
    )
    add_load_arguments(load)
    load.set_defaults(func=_cmd_load)

    replay = commands.add_parser(
        "replay",
        help="re-run a saved fuzz failure: FIXED or STILL FAILING",
        description=describe(
            "Re-send a replay case's exact request and judge it again.",
            ok="FIXED",
            failed="STILL FAILING",
            not_run="not run (a bad case file, bad usage, unreachable target)",
        ),
    )
    add_replay_arguments(replay)
    replay.set_defaults(func=_cmd_replay)

    from .report import command as report

    baseline = commands.add_parser(
        "baseline",
        help="acknowledge known failures, with a reason and an expiry",
        description=describe(
            "Acknowledge known failures, each with a reason and an expiry, so that 'run --baseline' gates "
            "only on what is new (ACTION: create).",
            ok="the action succeeded",
            failed=None,
        ),
    )
    report.add_baseline_arguments(baseline)
    diff = commands.add_parser(
        "diff",
        help="compare two results.json: regressions, fixes, fingerprint changes",
        description=describe(
            "Compare two results.json files: regressions, fixes, other changes, and changes of the target's "
            "fingerprint (a new node key or signer is flagged first, with !!).",
            ok="no MUST regression and the same node identity",
            failed="a MUST check regressed, or the node key, signer or signature scheme changed",
        ),
    )
    report.add_diff_arguments(diff)
    certify = commands.add_parser(
        "certify",
        help="write a signed certification evidence bundle",
        description=describe(
            "Write a signed certification evidence bundle (results.json, artefacts, a manifest and its "
            "Ed25519 signature) into a new or empty --out directory; or, with --generate-key, a new "
            "certifier key.",
            ok="the bundle (or the key) was written",
            failed=None,
        ),
    )
    report.add_certify_arguments(certify)
    verify = commands.add_parser(
        "verify-report",
        help="check a certification bundle offline",
        description=describe(
            "Check a certification bundle offline: the signature over the manifest, every file's SHA-256, "
            "that nothing was added, and that the certification is what the checks give. Pin the certifier "
            "with --public-key or --trust FILE: without a pinned key the verdict is 'integrity only, signer "
            "not pinned' and the exit code 1, because anyone can flip every outcome to pass and re-sign a "
            "bundle with a key of their own.",
            ok="the bundle is intact and signed by the pinned key (--public-key, or one of --trust)",
            failed="the bundle was changed, is signed by another key, or no key was pinned (integrity only)",
            not_run="not checked: no such bundle directory, not a bundle, a malformed --public-key or --trust file",
        ),
    )
    report.add_verify_arguments(verify)

    checks = commands.add_parser(
        "checks",
        help="list the check catalogue",
        description=describe(
            "List the check catalogue: a table, the Markdown of docs/checks.md, or JSON (--json).",
            ok="the catalogue was printed",
            failed=None,
        ),
    )
    checks.add_argument(
        "--format", choices=["text", "markdown"], default="text", help="markdown is docs/checks.md (default: text)"
    )
    checks.add_argument(
        "--json", action="store_true", help="print the catalogue as a JSON list of checks (id, level, title, …)"
    )
    checks.set_defaults(func=_cmd_checks)

    keygen = commands.add_parser(
        "keygen",
        help="create a Sui key for the node face (the stack owner the suite signs as)",
        description=describe(
            "Create a Sui key pair, write it as a keystore entry (base64 of flag || secret) to --out with "
            "owner-only permissions, and print its address. See docs/node-operators.md.",
            ok="the key was written and its address printed",
            failed=None,
        ),
    )
    keygen.add_argument("--scheme", choices=["ed25519", "secp256k1", "secp256r1"], default="ed25519")
    keygen.add_argument("--out", required=True, metavar="FILE", help="where to write the keystore entry")
    keygen.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    keygen.set_defaults(func=_cmd_keygen)

    from .clients.command import add_arguments as add_clients_arguments

    clients = commands.add_parser(
        "clients",
        help="certify clients (SDKs) against the mock node, through adapters",
        description=describe(
            "Run every client through the client judge and every adversarial scenario, and write a matrix "
            "(scenarios x clients) as results.json, Markdown and HTML to --report-dir. See docs/clients.md.",
            ok="every tested client passed every MUST check",
            failed="a client failed a MUST check",
        ),
    )
    add_clients_arguments(clients)
    clients.set_defaults(func=_cmd_clients)

    # The mock node sits below the command line: it knows its own options and help (``python -m
    # mock_node`` is the same command without this module), and never imports this one.
    from mock_node import serve

    mock = commands.add_parser(
        "mock",
        help="serve the mock Atoma node on loopback",
        description=describe(serve.DESCRIPTION, ok=serve.EXIT_OK, failed=None, not_run=serve.EXIT_NOT_RUN),
    )
    serve.add_arguments(mock)
    mock.set_defaults(func=_cmd_mock)
    return parser


def subparsers(parser: argparse.ArgumentParser) -> Iterable[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser with its full name, e.g. ``("baseline create", parser)``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = sub.prog.removeprefix(parser.prog.split(" ")[0]).strip() or name
                yield full, sub
                yield from subparsers(sub)


def _secrets(args: argparse.Namespace | None) -> list[str]:
    """Values that must not appear in an internal error: API keys, tokens and key material."""
    values = [os.environ.get(name, "") for name in ("ATOMA_API_KEY", "ATOMASDK_BEARER_AUTH")]
    for name, value in vars(args or argparse.Namespace()).items():
        if any(word in name for word in ("api_key", "token", "secret", "password")):
            values += value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return [v for v in values if isinstance(v, str) and len(v) >= 4]


def internal_error_line(exc: BaseException, args: argparse.Namespace | None = None) -> str:
    """One line for an exception nothing expected: its type and a sanitised, capped message."""
    from .textsafe import one_line

    text = str(exc)
    for secret in _secrets(args):
        text = text.replace(secret, "***")
    return (
        f"atoma-conformance: internal error: {type(exc).__name__}: {one_line(text, 200)} "
        f"(a bug: please report it; {DEBUG_ENV}=1 shows the traceback)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    from .textsafe import one_line

    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code: int = args.func(args)
        return code
    except UserError as exc:
        print(f"atoma-conformance: error: {one_line(str(exc), 1000)}", file=sys.stderr)
        return ExitCode.NOT_RUN
    except KeyboardInterrupt:
        print("atoma-conformance: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a well-behaved filter does
        sys.stderr.close()
        return 0
    except Exception as exc:  # the last resort: a bug of ours is still one line, never a traceback
        if os.environ.get(DEBUG_ENV) == "1":
            import traceback

            traceback.print_exc()
        print(internal_error_line(exc, args), file=sys.stderr)
        return ExitCode.NOT_RUN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

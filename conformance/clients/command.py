"""``atoma-conformance clients``: certify clients through adapters, and write the matrix."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path

from ..exits import ExitCode, UserError
from ..options import finite_seconds
from ..paths import shown, writable_dir
from .checks import CONTROL, SCENARIOS, SCENARIOS_OF
from .contract import AdapterFailure, split_command

DEFAULT_REPORT_DIR = Path("reports") / "clients"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME[=COMMAND]",
        help="a client to certify (repeatable): NAME=COMMAND runs COMMAND as an adapter (docs/clients.md); "
        "a bare NAME is a built-in adapter: reference, atoma-sdk-py, atoma-sdk-ts (installed on first use)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="CLIENT-NNN",
        help="run only these scenario checks (repeatable; judge checks always run); default: all",
    )
    parser.add_argument(
        "--report-dir",
        default=str(DEFAULT_REPORT_DIR),
        help=f"where to write the matrix (default: {DEFAULT_REPORT_DIR})",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="where built-in adapters install their SDKs "
        "(default: $XDG_CACHE_HOME/atoma-conformance, else ~/.cache/atoma-conformance)",
    )
    parser.add_argument(
        "--timeout", type=finite_seconds, default=30.0, help="seconds per client operation (default: 30)"
    )
    parser.add_argument(
        "--keep-plaintext", action="store_true", help="record the content each client returned in the evidence"
    )


def parse_adapters(specs: list[str]) -> list[tuple[str, str | None]]:
    """``NAME=COMMAND`` or a built-in ``NAME``; names must be unique and usable as column titles."""
    if not specs:
        raise UserError("--adapter: name at least one client (for example --adapter reference)")
    out: list[tuple[str, str | None]] = []
    for spec in specs:
        name, sep, command = spec.partition("=")
        name = name.strip()
        if not name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
            raise UserError(f"--adapter: {shown(spec)}: the name must be ASCII letters, digits, '-', '_' or '.'")
        if sep and not command.strip():
            raise UserError(f"--adapter: {name}: the command after '=' is empty")
        if sep:
            try:
                argv = split_command(command)
            except AdapterFailure as exc:
                raise UserError(f"--adapter: {name}: {shown(str(exc))}") from None
            _check_program(name, argv[0])
        if any(existing == name for existing, _ in out):
            raise UserError(f"--adapter: {name} is named twice")
        out.append((name, command.strip() if sep else None))
    return out


def _check_program(name: str, program: str) -> None:
    """An adapter whose program cannot start fails every check: that is a typo, not a verdict."""
    if "\0" in program:
        raise UserError(f"--adapter: {name}: the command contains a NUL character")
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program)
        if not path.exists():
            raise UserError(f"--adapter: {name}: cannot start {shown(program)}: no such file")
        if not path.is_file():
            raise UserError(f"--adapter: {name}: cannot start {shown(program)}: not a regular file")
        if not os.access(path, os.X_OK):
            raise UserError(f"--adapter: {name}: cannot start {shown(program)}: not executable")
    elif shutil.which(program) is None:
        raise UserError(f"--adapter: {name}: cannot start {shown(program)}: no such command on PATH")


def main(args: argparse.Namespace) -> int:
    from . import report
    from .builtin import BUILTIN, builtin, user_cache_dir
    from .runner import ClientUnderTest, run_matrix

    adapters = parse_adapters(args.adapter)
    for name, command in adapters:
        if command is None and name not in BUILTIN:
            raise UserError(f"--adapter: {name} is not a built-in adapter ({', '.join(BUILTIN)}); use {name}=COMMAND")
    known = SCENARIOS_OF
    unknown = [s for s in args.scenario if s not in known]
    if unknown:
        raise UserError(f"--scenario: unknown scenario check {shown(unknown[0])} (see docs/checks.md)")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise UserError("--timeout: must be a positive number of seconds")
    # By default never under the current directory: what is cached there gets executed (builtin.py).
    cache_dir = Path()  # only the built-in SDK adapters use it
    if any(command is None and name != "reference" for name, command in adapters):
        chosen = args.cache_dir if args.cache_dir is not None else user_cache_dir()
        cache_dir = writable_dir(chosen, "--cache-dir", create=False)
    report_dir = writable_dir(args.report_dir, "--report-dir")

    def log(text: str) -> None:
        print(text, file=sys.stderr)

    clients = [
        ClientUnderTest(name, command) if command is not None else builtin(name, cache_dir, log)
        for name, command in adapters
    ]
    scenarios = [s for check_id in args.scenario for s in known[check_id]] if args.scenario else list(SCENARIOS)
    # A lock-key scenario means something only beside its honest control (runner.judge_all): run it too.
    for control in dict.fromkeys(CONTROL[s.operation] for s in scenarios if s.kind == "lock-key"):
        if not any(s.check.id == control for s in scenarios):
            scenarios = [*known[control], *scenarios]
    matrix = run_matrix(
        clients, scenarios=scenarios, timeout_s=args.timeout, progress=log, keep_plaintext=args.keep_plaintext
    )
    paths = report.write(matrix, report_dir)
    for client in matrix.clients:
        if not client.tested:
            print(f"{client.client.name}: skipped ({client.client.unavailable})")
            continue
        cert = client.certification()
        failed = [c.id for c in client.checks if c.level == "MUST" and c.outcome in ("fail", "error")]
        line = f"{client.client.name}: MUST {cert['MUST']}, SHOULD {cert['SHOULD']}"
        print(line + (f" (MUST failures: {', '.join(failed)})" if failed else ""))
    print(f"matrix: {paths['markdown']} · {paths['html']} · {paths['json']} ({matrix.duration_s:.1f} s)")
    if not any(client.tested for client in matrix.clients):
        print("no client could be tested: nothing is certified", file=sys.stderr)
    return ExitCode.OK if matrix.passed else ExitCode.FAILED

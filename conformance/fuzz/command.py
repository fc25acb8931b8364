"""``atoma-conformance fuzz`` and ``atoma-conformance replay``.

Both keep the exit-code contract (0 / 1 / 2): a finding or a verdict is 1, and anything that means
the command could not do its job (bad options, a bad case file, a target that is down, refuses the
key or fails TLS) is 2 with one line on stderr, never a finding and never FIXED. A ``fuzz`` against a
target first sends one lock (the preflight): without it a dead target would be reported as a MUST
finding (LOCK-001) of the target, and saved as a case.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..budget import LocalBudget
from ..checks import Target
from ..client import API_KEY_ENV, ClientOptions, ConfidentialClient
from ..embedded import EMBEDDED_KEYS, Embedded
from ..exits import ExitCode, UserError
from ..options import display_url, positive_int, validate_api_key, validate_target_url
from ..preflight import ProxyProbe, check_proxy
from ..progress import LONG_RUNNING_S, Progress, choose_mode
from ..targetopts import add_tls_arguments, client_options_from
from ..textsafe import one_line
from .campaign import PROFILES, TARGET_MAX_REQUESTS, Campaign, CampaignConfig, CampaignResult, Plan, plan
from .guard import Guard

PREFLIGHT_TIMEOUT_S = 10.0  # the preflight is a first contact: a dead target should not cost minutes
PREFLIGHT_DEADLINE_S = 20.0


def duration(text: str) -> float:
    """'90s', '10m', '1h' or plain seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 10m or 1h, got {text!r}")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    if value > 7 * 86_400:
        raise argparse.ArgumentTypeError("must be at most a week (7 days)")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", metavar="URL", help="deployment to fuzz (default: the embedded mock node)")
    parser.add_argument(
        "--api-key", metavar="KEY", help="bearer token (default: $ATOMA_API_KEY, $ATOMASDK_BEARER_AUTH)"
    )
    parser.add_argument("--model", metavar="NAME", help="chat/completions model (required with --target)")
    parser.add_argument("--embedding-model", metavar="NAME", help="embeddings model (else not fuzzed on a target)")
    parser.add_argument("--image-model", metavar="NAME", help="image model (else not fuzzed on a target)")
    parser.add_argument("--node-address", metavar="0x…", help="the node's registered Sui signer address")
    parser.add_argument(
        "--second-api-key", metavar="KEY", help="a second token, for sessions that spend another's lock"
    )
    parser.add_argument(
        "--mock-profile",
        choices=["strict", "atoma-node-compat"],
        default="strict",
        help="profile of the embedded mock (default: strict)",
    )
    parser.add_argument(
        "--mock-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="run the embedded mock with this fault (repeatable)",
    )
    add_tls_arguments(parser)


def add_fuzz_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="ci",
        help="ci: fast; deep: a long campaign (10 min unless --duration); live: small, budgeted",
    )
    parser.add_argument("--duration", type=duration, metavar="TIME", help="stop after this long, e.g. 10m")
    parser.add_argument("--max-examples", type=positive_int, metavar="N", help="Hypothesis examples to try")
    parser.add_argument(
        "--max-requests",
        type=positive_int,
        metavar="N",
        help=f"hard cap on HTTP requests, sessions included (default with --target: {TARGET_MAX_REQUESTS})",
    )
    parser.add_argument(
        "--max-compute-units", type=positive_int, metavar="N", help="hard cap on compute units reserved"
    )
    parser.add_argument("--rps", type=_rate, metavar="R", help="at most R requests per second")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0); failures name it")
    parser.add_argument(
        "--report-dir",
        default="reports",
        metavar="DIR",
        help="replay cases go to DIR/cases, Hypothesis' database and files to DIR/hypothesis",
    )
    parser.add_argument("--keep-plaintext", action="store_true", help="store the plaintext in replay cases")
    parser.add_argument("--dry-run", action="store_true", help="print what the campaign would spend; send nothing")
    parser.add_argument(
        "--json", action="store_true", help="print the result as one JSON object on stdout (the text goes to stderr)"
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    shown.add_argument(
        "--progress",
        action="store_true",
        help="progress on stderr even when it is not a terminal (by default: on a terminal, or for runs of a minute "
        "or more)",
    )


# --- the target ---------------------------------------------------------------------------------------


@dataclass
class Connection:
    """The target and the clients of one command, every client on one budget and one error log."""

    target: Target
    client: ConfidentialClient
    embedded: Embedded | None
    options: ClientOptions

    def new_client(self, api_key: str | None, options: ClientOptions | None = None) -> ConfidentialClient:
        """A client like the main one, on the same budget."""
        return ConfidentialClient(self.target.base_url, api_key, options=options or self.options)

    def timing(self) -> dict[str, Any]:
        """The embedded mock's virtual clock: its lock timeouts pass without wall time."""
        return {"sleep": self.embedded.sleep, "clock": self.embedded.clock} if self.embedded is not None else {}


def _api_key(args: argparse.Namespace) -> str | None:
    """--api-key, else the environment, validated under the name it came from."""
    if args.api_key is not None:
        return validate_api_key(args.api_key, "--api-key")
    for name in API_KEY_ENV:
        value = os.environ.get(name)
        if value:
            return validate_api_key(value, f"${name}")
    return None


def check_target_arguments(args: argparse.Namespace) -> None:
    """Everything about the target that can be refused before anything is started or sent (``fuzz``,
    ``replay`` and ``load``, which has no second key)."""
    if args.api_key is not None:  # a bad key is refused even where it would not be used
        validate_api_key(args.api_key, "--api-key")
    if getattr(args, "second_api_key", None) is not None:
        validate_api_key(args.second_api_key, "--second-api-key")
    if args.target is not None:
        validate_target_url(args.target)
        if not args.model:
            raise UserError("--model", "required with --target")
        if args.mock_fault:
            raise UserError("--mock-fault", "only applies to the embedded mock, not to --target")
        _api_key(args)
        return
    for flag in ("ca_bundle", "insecure"):
        if getattr(args, flag, None):
            option = "--" + flag.replace("_", "-")
            raise UserError(option, "only applies with --target (the embedded mock speaks plain HTTP)")
    from mock_node.faults import FAULTS

    for name in args.mock_fault:
        if name not in FAULTS:  # before the mock starts, and named as the option the user typed
            shown = repr(name) if len(name) <= 60 and name.isprintable() else f"a name of {len(name)} characters"
            raise UserError("--mock-fault", f"unknown fault {shown} (see 'atoma-conformance mock --list-faults')")


@contextlib.contextmanager
def connect(args: argparse.Namespace, options: ClientOptions) -> Iterator[Connection]:
    """The target (``--target`` or the embedded mock, started here) and its main client."""
    if args.target:
        target = Target(
            args.target,
            _api_key(args),
            args.model,
            args.embedding_model,
            args.image_model,
            args.node_address,
            args.second_api_key,
        )
        with ConfidentialClient(target.base_url, target.api_key, options=options) as client:
            yield Connection(target, client, None, options)
        return
    from ..embedded import embedded_target

    try:
        with (
            embedded_target(args.mock_profile, args.mock_fault, node_address=args.node_address) as embedded,
            ConfidentialClient(embedded.target.base_url, embedded.target.api_key, options=options) as client,
        ):
            yield Connection(embedded.target, client, embedded, options)
    except ValueError as exc:  # an unknown fault name, from the mock's configuration
        raise UserError(str(exc)) from None


def preflight(connection: Connection, guard: Guard | None = None) -> None:
    """The same preflight as ``run``'s (conformance.preflight), on short timeouts and the campaign's budget:
    a target that is down, fails TLS, refuses the key, is not the API or does not list the model is a
    setup problem (exit 2), not a finding the campaign would report as LOCK-001 and save as a case.
    Under a ``--duration`` its (at most two) exchanges share half of it, so it cannot eat the campaign."""
    deadline = min(connection.options.deadline_s, PREFLIGHT_DEADLINE_S)
    left = guard.remaining() if guard is not None else None
    if left is not None:
        deadline = max(0.5, min(deadline, left / 4))
    options = dataclasses.replace(
        connection.options,
        timeout_s=min(connection.options.timeout_s, PREFLIGHT_TIMEOUT_S, deadline),
        deadline_s=deadline,
        lock_retries=0,
    )
    target = connection.target
    check_proxy(ProxyProbe(target.base_url, target.api_key, target.chat_model, options))


# --- fuzz ---------------------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> CampaignConfig:
    config = CampaignConfig(
        profile=args.profile,
        seed=args.seed,
        max_examples=args.max_examples,
        duration_s=args.duration,
        max_requests=args.max_requests,
        max_compute_units=args.max_compute_units,
        rps=args.rps,
        report_dir=Path(args.report_dir),
        keep_plaintext=args.keep_plaintext,
        preflight=bool(args.target),
    )
    if args.profile == "deep" and args.duration is None:
        config.duration_s = 600.0
    if args.target and config.resolved().max_requests is None:
        config.max_requests = TARGET_MAX_REQUESTS  # a paid endpoint never runs uncapped by default
    return config


def _planned_target(args: argparse.Namespace) -> Target:
    """The target as the plan sees it (models and keys decide endpoints and sessions), without
    starting the embedded mock or reading a secret."""
    if args.target:
        second = "second key" if args.second_api_key else None
        return Target(args.target, None, args.model, args.embedding_model, args.image_model, None, second)
    from mock_node.config import DEFAULT_MODELS

    return Target(
        "embedded mock",
        EMBEDDED_KEYS[0],
        DEFAULT_MODELS[0],
        DEFAULT_MODELS[1],
        DEFAULT_MODELS[2],
        None,
        EMBEDDED_KEYS[1],
        embedded=True,
    )


def run_fuzz(args: argparse.Namespace) -> int:
    check_target_arguments(args)
    config = _config(args)
    base = client_options_from(args)
    budget_plan = plan(config, _planned_target(args), lock_retries=base.lock_retries)
    out = sys.stderr if args.json else sys.stdout
    resolved = config.resolved()
    if args.dry_run:
        print(_dry_run_text(resolved, budget_plan), file=out)
        if args.json:
            print(json.dumps(_dry_run_json(resolved, budget_plan)))
        return ExitCode.OK
    options = dataclasses.replace(base, budget=LocalBudget(budget_plan.requests))
    long_running = (resolved.duration_s or 0) >= LONG_RUNNING_S
    mode = choose_mode(sys.stderr, quiet=args.quiet, force=args.progress, long_running=long_running)
    with connect(args, options) as connection, Progress(sys.stderr, mode=mode) as progress:
        # --duration bounds the command's wall time from here: the preflight, every exchange, the sessions.
        guard = Guard(resolved.duration_s, options)
        if args.target:
            preflight(connection, guard)

        def make_client(api_key: str | None) -> ConfidentialClient:
            return connection.new_client(api_key)

        campaign = Campaign(
            config,
            connection.target,
            connection.client,
            client_factory=make_client,
            progress=progress.update if progress.enabled else None,
            guard=guard,
            **connection.timing(),
        )
        result = campaign.run()
    code = _exit_code(result)
    print(_summary(resolved, connection.target, result), file=out)
    if args.json:
        print(json.dumps(_result_json(resolved, result, code)))
    return code


def _exit_code(result: CampaignResult) -> int:
    return ExitCode.FAILED if any(f.level == "MUST" for f in result.findings) else ExitCode.OK


def _dry_run_text(config: CampaignConfig, budget: Plan) -> str:
    sessions = f" ({budget.sessions} of them in sessions)" if budget.sessions else ""
    capped = " (the --max-requests cap)" if budget.requests < budget.uncapped else ""
    until = " or until --duration" if config.duration_s is not None else ""
    return (
        f"dry run: profile {config.profile}, up to {config.max_examples} examples{until}: at most {budget.requests} "
        f"requests{capped}{sessions} and {budget.compute_units} compute units; nothing was sent"
    )


def _dry_run_json(config: CampaignConfig, budget: Plan) -> dict[str, Any]:
    return {
        "dry_run": True,
        "profile": config.profile,
        "seed": config.seed,
        "examples": config.max_examples,
        "estimate": budget.requests,
        "estimate_compute_units": budget.compute_units,
        "estimate_by_phase": {
            "preflight": budget.preflight,
            "stateless": budget.stateless,
            "sessions": budget.sessions,
        },
        "duration_s": config.duration_s,
        "exit_code": ExitCode.OK,
    }


def _summary(config: CampaignConfig, target: Target, result: CampaignResult) -> str:
    lines = [
        f"fuzz ({config.profile}, seed {config.seed}) against {display_url(target.base_url)}: {result.examples} "
        f"examples, {result.requests} requests (estimate: at most {result.estimate}), {result.compute_units} "
        f"compute units in {result.duration_s:.1f} s ({result.cases_per_second:.0f} cases/s); "
        f"stopped by {result.stopped_by}"
    ]
    if result.cut_off:
        lines.append(f"{result.cut_off} answer(s) cut off (a timeout, the deadline or a cap): not judged")
    if result.sweep is not None:
        lines += result.sweep.text()
    else:
        lines.append("family sweep: none (a campaign without mutations)")
    if not result.findings:
        lines.append("no finding")
    for finding, path in zip(result.findings, result.case_paths, strict=True):
        lines.append(f"FINDING {finding.check_id} [{finding.level}] {one_line(finding.reason, 300)}")
        lines.append(f"replay case: {path}")
    return "\n".join(lines)


def _result_json(config: CampaignConfig, result: CampaignResult, code: int) -> dict[str, Any]:
    return {
        "profile": config.profile,
        "seed": config.seed,
        "examples": result.examples,
        "requests": result.requests,
        "estimate": result.estimate,
        "compute_units": result.compute_units,
        "duration_s": round(result.duration_s, 3),
        "stopped_by": result.stopped_by,
        "cut_off": result.cut_off,
        "findings": [
            {"check_id": f.check_id, "level": f.level, "reason": f.reason, "case_path": str(path)}
            for f, path in zip(result.findings, result.case_paths, strict=True)
        ],
        "sweep": result.sweep.to_json() if result.sweep is not None else None,
        "exit_code": code,
    }


# --- replay -------------------------------------------------------------------------------------------


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.json", help="a replay case written by 'fuzz'")
    add_target_arguments(parser)


def run_replay(args: argparse.Namespace) -> int:
    from .cases import ReplayCase
    from .replay import replay

    path = Path(args.case)
    if not path.exists():
        raise UserError(f"CASE.json: {path} does not exist")
    case = ReplayCase.read(path, "CASE.json")
    if not args.model:
        args.model = case.model
    check_target_arguments(args)
    options = client_options_from(args)
    with connect(args, options) as connection:

        def make_client(api_key: str | None) -> ConfidentialClient:
            return connection.new_client(api_key)

        try:
            outcome = replay(
                case,
                connection.client,
                connection.target,
                client_factory=make_client,
                **connection.timing(),
            )
        except ValueError as exc:
            raise UserError(f"could not replay: {exc}") from None
    if outcome.not_run is not None:
        raise UserError(f"could not replay: {outcome.not_run}")
    level = _catalogue_level(case.check_id)
    print(f"{outcome.verdict}: {case.check_id} [{level}] {case.mutation or 'valid request'} (status {outcome.status})")
    for finding in outcome.findings:
        print(f"  {finding.check_id} {finding.reason}")
    return ExitCode.FAILED if outcome.still_failing else ExitCode.OK


def _catalogue_level(check_id: str) -> str:
    from .oracle import level_of

    return level_of(check_id)


# --- entry points -------------------------------------------------------------------------------------


def _main(run: Callable[[argparse.Namespace], int], args: argparse.Namespace, err: TextIO | None = None) -> int:
    try:
        return run(args)
    except UserError as exc:
        print(f"atoma-conformance: error: {exc}", file=err or sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "exit_code": ExitCode.NOT_RUN}))
        return ExitCode.NOT_RUN


def main_fuzz(args: argparse.Namespace) -> int:
    return _main(run_fuzz, args)


def main_replay(args: argparse.Namespace) -> int:
    return _main(run_replay, args)

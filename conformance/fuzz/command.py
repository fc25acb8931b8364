"""``atoma-conformance fuzz`` and ``atoma-conformance replay``."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from ..checks import Target
from ..client import ClientOptions, ConfidentialClient, resolve_api_key
from ..embedded import Embedded
from ..exits import UserError
from ..results import redact_url
from .campaign import PROFILES, Campaign, CampaignConfig, estimate

EXIT_OK, EXIT_FINDING, EXIT_NOT_RUN = 0, 1, 2


class CommandError(UserError):
    """One line for the user, exit 2."""


def duration(text: str) -> float:
    """'90s', '10m', '1h' or plain seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 10m or 1h, got {text!r}")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
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


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value <= 0:
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


def add_fuzz_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="ci",
        help="ci: fast; deep: a long campaign (10 min unless --duration); live: small, budgeted",
    )
    parser.add_argument("--duration", type=duration, metavar="TIME", help="stop after this long, e.g. 10m")
    parser.add_argument("--max-examples", type=_positive, metavar="N", help="Hypothesis examples to try")
    parser.add_argument("--max-requests", type=_positive, metavar="N", help="hard cap on HTTP requests")
    parser.add_argument("--max-compute-units", type=_positive, metavar="N", help="hard cap on compute units reserved")
    parser.add_argument("--rps", type=_rate, metavar="R", help="at most R requests per second")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0); failures name it")
    parser.add_argument(
        "--report-dir",
        default="reports",
        metavar="DIR",
        help="replay cases go to DIR/cases, the Hypothesis database to DIR/hypothesis",
    )
    parser.add_argument("--keep-plaintext", action="store_true", help="store the plaintext in replay cases")
    parser.add_argument("--dry-run", action="store_true", help="print what the campaign would spend; send nothing")


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[tuple[Target, ConfidentialClient, Embedded | None]]:
    if args.target:
        if not args.target.startswith(("http://", "https://")):
            raise CommandError(f"--target: must be an http:// or https:// URL, got {redact_url(args.target)!r}")
        if not args.model:
            raise CommandError("--model: required with --target")
        if args.mock_fault:
            raise CommandError("--mock-fault: only applies to the embedded mock, not to --target")
        target = Target(
            args.target,
            resolve_api_key(args.api_key),
            args.model,
            args.embedding_model,
            args.image_model,
            args.node_address,
            args.second_api_key,
        )
        with ConfidentialClient(target.base_url, target.api_key, options=ClientOptions()) as client:
            yield target, client, None
        return
    from ..embedded import embedded_target

    try:
        with (
            embedded_target(args.mock_profile, args.mock_fault, node_address=args.node_address) as embedded,
            ConfidentialClient(embedded.target.base_url, embedded.target.api_key) as client,
        ):
            yield embedded.target, client, embedded
    except ValueError as exc:  # an unknown fault name, from the mock's configuration
        raise CommandError(str(exc)) from None


def run_fuzz(args: argparse.Namespace) -> int:
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
    )
    if args.profile == "deep" and args.duration is None:
        config.duration_s = 600.0
    if args.dry_run:
        target = (
            Target(
                args.target or "embedded mock",
                None,
                args.model or "model",
                args.embedding_model,
                args.image_model,
                None,
            )
            if args.target
            else _dry_target()
        )
        requests, units = estimate(config, target)
        resolved = config.resolved()
        print(
            f"dry run: profile {resolved.profile}, up to {resolved.max_examples} examples: at most {requests} "
            f"requests and {units} compute units; nothing was sent"
        )
        return EXIT_OK
    with _target(args) as (target, client, embedded):

        def make_client(api_key: str | None) -> ConfidentialClient:
            return ConfidentialClient(target.base_url, api_key)

        timing = {"sleep": embedded.sleep, "clock": embedded.clock} if embedded is not None else {}
        campaign = Campaign(config, target, client, client_factory=make_client, **timing)  # type: ignore[arg-type]
        result = campaign.run()
    where = redact_url(target.base_url)
    print(
        f"fuzz ({config.resolved().profile}, seed {config.seed}) against {where}: {result.examples} examples, "
        f"{result.requests} requests, {result.compute_units} compute units in {result.duration_s:.1f} s "
        f"({result.cases_per_second:.0f} cases/s); stopped by {result.stopped_by}"
    )
    if not result.findings:
        print("no finding")
        return EXIT_OK
    finding = result.findings[0]
    print(f"FINDING {finding.check_id} [{finding.level}] {finding.reason}")
    print(f"replay case: {result.case_path}")
    return EXIT_FINDING if finding.level == "MUST" else EXIT_OK


def _dry_target() -> Target:
    from mock_node.config import DEFAULT_MODELS

    return Target("embedded", None, DEFAULT_MODELS[0], DEFAULT_MODELS[1], DEFAULT_MODELS[2], None)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.json", help="a replay case written by 'fuzz'")
    add_target_arguments(parser)


def run_replay(args: argparse.Namespace) -> int:
    from .cases import ReplayCase
    from .replay import replay

    path = Path(args.case)
    if not path.is_file():
        raise CommandError(f"CASE.json: {path} does not exist")
    try:
        case = ReplayCase.read(path)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not args.model:
        args.model = case.model
    with _target(args) as (target, client, embedded):

        def make_client(api_key: str | None) -> ConfidentialClient:
            return ConfidentialClient(target.base_url, api_key)

        timing = {"sleep": embedded.sleep, "clock": embedded.clock} if embedded is not None else {}
        try:
            outcome = replay(case, client, target, client_factory=make_client, **timing)  # type: ignore[arg-type]
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    print(
        f"{outcome.verdict}: {case.check_id} [{case.level}] {case.mutation or 'valid request'} "
        f"(status {outcome.status})"
    )
    for finding in outcome.findings:
        print(f"  {finding.check_id} {finding.reason}")
    return EXIT_FINDING if outcome.still_failing else EXIT_OK


def main_fuzz(args: argparse.Namespace) -> int:
    try:
        return run_fuzz(args)
    except CommandError as exc:
        print(f"atoma-conformance: error: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN


def main_replay(args: argparse.Namespace) -> int:
    try:
        return run_replay(args)
    except CommandError as exc:
        print(f"atoma-conformance: error: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN

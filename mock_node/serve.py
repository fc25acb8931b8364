"""Serving the mock node over loopback HTTP: the ``mock`` command's options, and ``python -m mock_node``.

The command line sits above the mock node: ``atoma-conformance mock`` (conformance.cli) builds its
parser with :func:`add_arguments` and runs :func:`run`. ``python -m mock_node`` is the same command on
its own (:func:`main`), with the same options, help and one-line errors, so that nothing here imports
the command line (tests/test_layers.py keeps it so).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import re
import socket
import sys
import textwrap
from collections.abc import Sequence

from conformance.protocol.b64 import b64encode
from conformance.protocol.sui import Scheme, is_sui_address

from .behaviour import PROFILES
from .config import DEFAULT_MODELS, DEFAULT_SEED, FACES, MAX_BODY_BYTES, ConfigError, MockConfig
from .faults import CATALOGUE

# The command's --help, shared with ``atoma-conformance mock`` (conformance.cli lays it out the same way).
DESCRIPTION = (
    "Serve the mock Atoma node (the proxy face, or with --face node a node's own face): strict by default, or "
    "the upstream-compatible profile, optionally with named faults. It serves until interrupted."
)
EXIT_OK = "--list-faults printed the catalogue, or the server stopped"
EXIT_NOT_RUN = "not served: bad usage, or the address cannot be listened on"
ERROR_PREFIX = "atoma-conformance: error: "  # what every command's one-line error starts with


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", type=_host, default="127.0.0.1", help="interface to listen on: an IP address (default: 127.0.0.1)"
    )
    parser.add_argument("--port", type=_port, default=8080, help="TCP port; 0 picks a free one (default: 8080)")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="strict",
        help="strict (default): a conformant node; atoma-node-compat: what the upstream node does",
    )
    parser.add_argument(
        "--face",
        choices=FACES,
        default="proxy",
        help="proxy (default): the client-facing API with /v1/nodes/lock and bearer tokens; "
        "node: what a node offers its proxy, authenticated by X-Signature (see --stack-owner)",
    )
    parser.add_argument(
        "--stack-owner",
        action="append",
        default=[],
        type=_stack_owner,
        metavar="ADDRESS:STACK_ID",
        help="node face: the Sui address that owns a stack (repeatable); only its X-Signature is served",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="misbehave in a named way (repeatable); see --list-faults",
    )
    parser.add_argument("--list-faults", action="store_true", help="print the fault catalogue and exit")
    parser.add_argument(
        "--format", choices=["text", "markdown"], default="text", help="format of --list-faults (default: text)"
    )
    parser.add_argument(
        "--allow-fault-header",
        action="store_true",
        help="honour an X-Mock-Fault: NAME[,NAME] header per request (for test suites)",
    )
    parser.add_argument(
        "--signer-scheme",
        choices=[s.label for s in Scheme],
        default="ed25519",
        help="Sui signature scheme of the node's signer (default: ed25519)",
    )
    parser.add_argument(
        "--seed",
        default=None,
        help="derives the node's X25519 key and Sui signer, so both are known in advance. The default is "
        "public, so anyone can decrypt what the node is sent: a --host that is not loopback needs a secret --seed",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help=f"a model to serve (repeatable; default: {', '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="TOKEN",
        help="accept only these bearer tokens (repeatable; default: any non-empty token)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_integer,
        default=MAX_BODY_BYTES,
        help=f"request body limit, answered with 413 (default: {MAX_BODY_BYTES})",
    )
    parser.add_argument("--node-small-id", type=_u64, default=1, help="node_small_id in lock replies (default: 1)")
    parser.add_argument(
        "--backend",
        metavar="URL",
        help="relay decrypted requests to this OpenAI-compatible server, not the fake model: every prompt "
        "reaches it in the clear (a warning says so on stderr)",
    )


def _stack_owner(text: str) -> tuple[str, int]:
    address, sep, stack = text.rpartition(":")
    if not sep or not stack.isascii() or not stack.isdigit():
        raise argparse.ArgumentTypeError(f"expected ADDRESS:STACK_ID (for example 0x…:1), got {text!r}")
    if not is_sui_address(address):
        raise argparse.ArgumentTypeError(f"{address!r} is not a Sui address (0x and 64 hex digits)")
    return address, int(stack)


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _host(text: str) -> str:
    """An IP address (IPv6 with or without brackets) or a host name, checked before anything resolves it."""
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if not value:
        raise argparse.ArgumentTypeError("is empty; use 127.0.0.1 (loopback) or 0.0.0.0 (every interface)")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if ":" in value or "[" in value or "]" in value:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not an IP address (an IPv6 address is written ::1 or [::1])"
        )
    if all(part.isdigit() for part in value.split(".")):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not an IPv4 address (four numbers from 0 to 255)")
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in value.removesuffix(".").split(".")):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not an IP address or a host name")
    return value


def _shown(text: str) -> str:
    from conformance.textsafe import one_line

    return repr(one_line(text, 80))


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {_shown(text)}") from None


def _u64(text: str) -> int:
    value = _integer(text)
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError("must be from 0 to 2^64 - 1")
    return value


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def config_from(args: argparse.Namespace) -> MockConfig:
    """Raises :class:`ConfigError` naming the option at fault."""
    return MockConfig(
        profile=args.profile,
        faults=tuple(args.fault),
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        signer_scheme=Scheme.from_label(args.signer_scheme),
        models=tuple(args.model) or DEFAULT_MODELS,
        api_keys=tuple(args.api_key),
        allow_fault_header=args.allow_fault_header,
        max_body_bytes=args.max_body_bytes,
        node_small_id=args.node_small_id,
        backend_url=args.backend,
        face=args.face,
        stack_owners={stack: address for address, stack in args.stack_owner},
    )


def fault_table(fmt: str = "text") -> str:
    """The catalogue as a terminal table, or as the Markdown of docs/faults.md (kept in sync by a test)."""
    if fmt == "markdown":
        rows = [
            "# Mock node fault catalogue",
            "",
            "Generated by `atoma-conformance mock --list-faults --format markdown`; do not edit by hand.",
            "",
            "Each fault is a deterministic transform of a correct exchange. Enable one per process with",
            "`--fault NAME` (repeatable), or per request with the header `X-Mock-Fault: NAME[,NAME]` when the",
            "node runs with `--allow-fault-header`. *Violates* lists the docs/spec.md requirements it breaks;",
            "*caught by* lists the checks ([checks.md](checks.md)) that fail under it, each for its own rule",
            "(tests/test_meta_faults.py proves every entry). A *concurrency* fault shows only when requests to",
            "the node are in flight at once: a serial run (`atoma-conformance run`) passes every check under it,",
            "and its *caught by* lists the checks that fail under `atoma-conformance load` (tests/test_load.py).",
            "",
            f"{len(CATALOGUE)} faults.",
            "",
            "| fault | category | violates | caught by | wire effect |",
            "| --- | --- | --- | --- | --- |",
        ]
        for fault in CATALOGUE:
            caught = ", ".join(fault.caught_by) + (" (under `load`)" if fault.concurrent else "")
            rows.append(
                f"| `{fault.name}` | {fault.category} | {', '.join(fault.violates)} | {caught} | {fault.wire_effect} |"
            )
        return "\n".join(rows) + "\n"
    rows = [f"{'name':<30} {'category':<11} {'violates':<16} wire effect"]
    for fault in CATALOGUE:
        effect = fault.wire_effect
        if fault.concurrent:  # no serial run shows it: name what does
            effect += f" [serial runs pass; caught under `load` by {', '.join(fault.caught_by)}]"
        rows.append(f"{fault.name:<30} {fault.category:<11} {','.join(fault.violates):<16} {effect}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """The ``mock`` command: print who the node is, then serve until interrupted."""
    if args.list_faults:
        print(fault_table(args.format), end="" if args.format == "markdown" else "\n")
        return 0
    config = config_from(args)
    check_exposure(args.host, config)
    import uvicorn

    from .app import create_app

    if config.backend_url is not None:
        print(backend_warning(config.backend_url, args.host), file=sys.stderr, flush=True)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    faults = ",".join(args.fault) or "none"
    owners = "".join(f"\n  stack {stack} owned by {owner}" for stack, owner in sorted(config.stack_owners.items()))
    if config.face == "node" and not owners:
        owners = "\n  no --stack-owner given: every request will be refused AUTH_ERROR"
    from .chain import MOCK_PACKAGE_ID, MockChain

    serving = MockChain(config).serving_keypair(config.behaviour)[1]  # the committed key unless a chain fault
    print(
        f"mock node ({config.face} face, {config.profile}, faults: {faults}) listening on http://{host}:{port}\n"
        f"  node X25519 public key: {b64encode(serving)}\n"
        f"  signer: {config.signer_address} ({config.signer_scheme.label}){owners}\n"
        f"  chain: POST /sui (Sui package {MOCK_PACKAGE_ID}), GET /v1/get_node_attestation/{config.node_small_id};"
        " evidence from the seed's test CA (--trust-test-ca)",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def is_loopback(host: str) -> bool:
    """Only what cannot be reached from another machine: a loopback IP, or the name ``localhost``.
    Any other name could resolve to a public interface, so it does not count."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower().removesuffix(".") == "localhost"


def check_exposure(host: str, config: MockConfig) -> None:
    """Refuse, before anything binds, to serve the default seed's keys beyond loopback.

    Why: the default seed is printed in the docs, so its X25519 key is public; a node listening on
    0.0.0.0 with it lets anyone who can reach it decrypt every request sent to it, and with --backend it
    is an open decryptor relaying prompts in the clear. A seed the operator chose keeps the key theirs.
    """
    if config.seed_is_public and not is_loopback(host):
        raise ConfigError(
            f"--host: {_shown(host)} is not a loopback address, and without --seed the node's keys come from "
            "the public default seed (anyone could decrypt what it is sent); pass --seed with a secret of "
            "your own, or serve on 127.0.0.1"
        )


def backend_warning(url: str, host: str) -> str:
    """The loud line --backend earns: the relay sends every decrypted prompt, in the clear, to ``url``."""
    from conformance.textsafe import one_line

    reach = "this machine only" if is_loopback(host) else f"anyone who can reach {host}"
    return (
        f"WARNING: --backend relays every DECRYPTED prompt in the clear to {one_line(url, 200)}; the mock "
        f"is a decryptor for {reach}. Do not send it anything confidential."
    )


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket, or a ConfigError naming --host or --port, whichever the OS blamed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise ConfigError(f"--host: cannot listen on {host} ({_why(exc)})") from None
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if isinstance(exc, socket.gaierror):
            raise ConfigError(f"--host: cannot resolve {host} ({_why(exc)})") from None
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port: {port} is already in use on {host} (--port 0 picks a free one)") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(f"--port: permission denied for {where} (ports below 1024 need privileges)") from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
            raise ConfigError(f"--host: {host} is not an address of this machine ({_why(exc)})") from None
        raise ConfigError(f"--host/--port: cannot listen on {where} ({_why(exc)})") from None
    return sock


def _why(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (a :class:`ConfigError`), not a usage dump; the exit codes stay a list."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def description() -> str:
    """:data:`DESCRIPTION` and the exit codes, laid out as every ``atoma-conformance`` command's help."""
    codes = [f"  0    {EXIT_OK}", f"  2    {EXIT_NOT_RUN}", "  130  interrupted (Ctrl-C)"]
    return textwrap.fill(" ".join(DESCRIPTION.split()), 100) + "\n\nExit codes:\n" + "\n".join(codes)


def build_parser(prog: str = "python -m mock_node") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description())
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mock_node``: the ``mock`` command, keeping the command line's contract: a bad value is
    one line on stderr and exit 2, Ctrl-C is exit 130."""
    from conformance.exits import ExitCode
    from conformance.textsafe import one_line

    try:
        return run(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    except ConfigError as exc:
        print(ERROR_PREFIX + one_line(str(exc), 1000), file=sys.stderr)
        return ExitCode.NOT_RUN
    except KeyboardInterrupt:
        print("atoma-conformance: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED

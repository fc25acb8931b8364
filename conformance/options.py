"""Every run option, declared once, rendered to ``atoma-conformance run`` and to the pytest plugin.

The plugin shares pytest's option namespace with every other plugin a user has installed, so each of
its options carries one prefix, ``--atoma-`` (``--atoma-target``, ``--atoma-timeout``): without it,
``--timeout`` collides with pytest-timeout and ``--profile`` with pytest-profiling, and *every* pytest
run in that environment fails at start-up. The CLI has its own namespace and keeps the short names.

One declaration means one validation: the same ``type`` callable checks ``--timeout`` for ``run`` and
``--atoma-timeout`` for pytest, so ``nan`` is refused by both with the same words.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from .exits import UserError
from .textsafe import one_line

PREFIX = "atoma-"
INSECURE_WARNING = (
    "atoma-conformance: WARNING: --insecure: the target's TLS certificate is NOT verified; anyone on the "
    "network path can read and change this run's traffic, API key included. Never certify a node this way."
)

TARGET_ENV = "ATOMA_CONFORMANCE_TARGET"

Face = Literal["proxy", "node"]


# --- validators: argparse types raise ArgumentTypeError (argparse names the option); values that may
# also come from the environment are checked by the command and raise UserError naming the option ---


MAX_SECONDS = 86_400.0  # a day: longer is a typo, and threading.Timer overflows near 1e9 s
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name (a token)
# Headers the client writes itself: a user's copy would be silently overridden, or would break framing.
MANAGED_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "content-length",
        "accept",
        "host",
        "transfer-encoding",
        "connection",
        "x-signature",
    }
)


# --- argparse validators (argparse prefixes "argument --NAME: ") -------------------------------------


def shown(text: str) -> str:
    """A user's value, echoed only when short and printable (it may be a mistyped secret)."""
    return repr(text) if len(text) <= 40 and text.isprintable() else f"a value of {len(text)} characters"


def finite_seconds(text: str) -> float:
    """A positive, finite number of seconds: ``nan`` compares false with everything, so it would disable
    every timeout check silently, and ``inf`` overflows the client's watchdog timer."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {shown(text)}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {shown(text)}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError("must be at most 86400 seconds (one day)")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {shown(text)}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def header(text: str) -> tuple[str, str]:
    """``NAME: VALUE``. CR or LF in a value would let it forge further headers (httpx refuses them
    late, with a traceback); the value is never echoed, since it is often a gateway's secret."""
    name, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected 'NAME: VALUE'")
    if "\r" in text or "\n" in text:
        raise argparse.ArgumentTypeError("must not contain CR or LF")
    value = value.strip(" \t")
    if not name or not _TOKEN.fullmatch(name):
        raise argparse.ArgumentTypeError(
            f"the header name must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~), got {shown(name)}"
        )
    if name.lower() in MANAGED_HEADERS:
        hint = " (use --api-key for the bearer token)" if name.lower() == "authorization" else ""
        raise argparse.ArgumentTypeError(f"{name} is set by the client itself{hint}")
    if not value:
        raise argparse.ArgumentTypeError(f"the value of {name} is empty")
    if any(not (0x20 <= ord(ch) < 0x7F or ch == "\t") for ch in value):
        raise argparse.ArgumentTypeError(f"the value of {name} must be printable ASCII")
    return name, value


# --- values that may also come from the environment: validated by the command, UserError -------------


def validate_target_url(text: str, option: str = "--target") -> str:
    """An http(s) base URL with a host and a usable port. ``urlsplit`` accepts almost anything and
    raises on a bad port only when asked, so each failure gets its own words here."""
    if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise UserError(option, "the URL is empty or contains whitespace or control characters")
    try:
        parts = urlsplit(text)
    except ValueError:  # an unbalanced bracket, or a bracketed host that is not an IP address
        inside = text.partition("[")[2].partition("]")
        if inside[1]:
            raise UserError(option, f"{shown(inside[0])} is not an IPv6 address") from None
        raise UserError(option, "not a valid URL; an IPv6 address goes in brackets, e.g. http://[::1]:8080") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UserError(option, f"must be an http:// or https:// URL, got {shown(display_url(text))}")
    netloc = parts.netloc
    if "@" in netloc:
        raise UserError(option, "credentials in the URL are not supported (use --api-key or --header)")
    host_port = netloc
    if host_port.startswith("["):
        literal, _, rest = host_port[1:].partition("]")
        try:
            ipaddress.IPv6Address(literal.split("%", 1)[0])
        except ValueError:
            raise UserError(option, f"{shown(literal)} is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise UserError(option, "expected ':PORT' after the bracketed IPv6 address")
    elif host_port.count(":") > 1:
        raise UserError(option, "an IPv6 address goes in brackets, e.g. http://[::1]:8080")
    if not parts.hostname:
        raise UserError(option, "the URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise UserError(option, "the port must be a number from 1 to 65535") from None
    if port == 0 or netloc.endswith(":"):
        raise UserError(option, "the port must be a number from 1 to 65535")
    if parts.query or parts.fragment:
        raise UserError(option, "a base URL has no query or fragment")
    import httpx  # here, not at import: the plugin loads this module at pytest start-up

    try:
        httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UserError(option, f"not a valid URL ({one_line(str(exc), 80)})") from None
    return text


def validate_api_key(text: str, option: str = "--api-key") -> str:
    """A bearer token is printable ASCII without spaces; anything else fails at the HTTP layer with an
    error that does not say which value was wrong. The key is never echoed, only where it breaks."""
    if not text.strip():
        raise UserError(option, "is empty or only whitespace")
    for index, ch in enumerate(text):
        if ord(ch) > 0x7E:
            raise UserError(option, f"contains a non-ASCII character at position {index + 1}; a header cannot carry it")
        if ord(ch) <= 0x20 or ord(ch) == 0x7F:
            raise UserError(option, f"contains whitespace or a control character at position {index + 1}")
    return text


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment, keeping an IPv6 literal's brackets."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return one_line(url, 80)
    return f"{parts.scheme}://{netloc}{parts.path}"


def u64(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2^64 - 1, got {shown(text)}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError("must be from 0 to 2^64 - 1")
    return value


def sui_address(text: str) -> str:
    """0x and 64 hex digits: the form a Sui address always has (SIG-007 compares it byte for byte)."""
    from .protocol.sui import is_sui_address

    if not is_sui_address(text):
        raise argparse.ArgumentTypeError("must be a Sui address: 0x followed by 64 hex digits")
    return text


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_KEY_AGE_S = 10 * 366 * 86400.0  # ten years: a longer maximum age is no maximum


def duration(text: str) -> float:
    """A positive duration: seconds, or a number with the unit s, m, h or d (``90d``, ``12h``)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"must be a duration such as 90d, 12h or 3600s, got {shown(text)}")
    value = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive duration")
    if value > MAX_KEY_AGE_S:
        raise argparse.ArgumentTypeError("must be at most ten years (3660d)")
    return value


def package_id(text: str) -> str:
    """A Sui object id: 0x and 1 to 64 hex digits, written in full (0x and 64 lowercase digits)."""
    from .protocol import ProtocolError, normalize_sui_address

    try:
        return normalize_sui_address(text)
    except ProtocolError:
        raise argparse.ArgumentTypeError("must be a Sui object id: 0x followed by 1 to 64 hex digits") from None


def service_url(text: str) -> str:
    """An http(s) URL of a service the suite reads besides the target (argparse names the option)."""
    try:
        return validate_target_url(text, "URL")
    except Exception as exc:  # UserError: argparse adds the option's name itself
        raise argparse.ArgumentTypeError(getattr(exc, "reason", str(exc))) from None


def api_key(text: str) -> str:
    """``validate_api_key`` as an argparse type, for the option itself."""
    from .exits import UserError

    try:
        return validate_api_key(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


def target_url(text: str) -> str:
    return validate_target_url(text)


# --- the declarations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOption:
    """One run option. ``name`` is the CLI spelling without dashes; pytest's is ``--atoma-<name>``."""

    name: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: Sequence[str] | None = None
    action: Literal["store", "append", "store_true"] = "store"
    env: str | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def pytest_flag(self) -> str:
        return f"--{PREFIX}{self.name}"

    @property
    def pytest_dest(self) -> str:
        return f"{PREFIX}{self.name}".replace("-", "_")

    def kwargs(self, *, for_pytest: bool) -> dict[str, Any]:
        kw: dict[str, Any] = {"help": self.help, "dest": self.pytest_dest if for_pytest else self.dest}
        if self.action == "store_true":
            kw["action"] = "store_true"
            return kw
        if self.action == "append":
            kw["action"] = "append"
            kw["default"] = []
        elif for_pytest and self.env:
            kw["default"] = os.environ.get(self.env) or self.default
        else:  # the CLI reads the environment itself, later, so that it can validate what it finds
            kw["default"] = self.default
        if self.metavar:
            kw["metavar"] = self.metavar
        if self.type is not None:
            kw["type"] = self.type
        if self.choices is not None:
            kw["choices"] = list(self.choices)
        return kw


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        "target",
        f"base URL of the deployment to test (env {TARGET_ENV}); default: the embedded mock node",
        "URL",
        env=TARGET_ENV,
    ),
    RunOption(
        "api-key", "bearer token (default: $ATOMA_API_KEY, then $ATOMASDK_BEARER_AUTH); never printed", "KEY", api_key
    ),
    RunOption(
        "second-api-key",
        "a second bearer token, to prove one key cannot spend another's lock (LOCK-011)",
        "KEY",
        api_key,
    ),
    RunOption("model", "chat/completions model (required with a target)", "NAME"),
    RunOption("embedding-model", "embeddings model (its checks skip on a target without it)", "NAME"),
    RunOption("image-model", "image model (its checks skip on a target without it)", "NAME"),
    RunOption("node-address", "the node's registered Sui signer address (SIG-007)", "0x…", sui_address),
    RunOption(
        "profile",
        "profile of the embedded mock (default strict); with a target, the profile you expect",
        choices=("strict", "atoma-node-compat"),
    ),
    RunOption(
        "face",
        "proxy (default): the client-facing API; node: a node's own face, the suite standing in for the proxy "
        "(docs/node-operators.md)",
        choices=("proxy", "node"),
        default="proxy",
    ),
    RunOption(
        "member-table",
        "cover (default): the member table's cases that hold every member and every rule once; full: all "
        "85 cases, a lock each on the proxy face (conformance/member_table.py)",
        choices=("cover", "full"),
        default="cover",
    ),
    RunOption("signer-key", "node face: the stack owner's Sui keystore entry (a file); never printed", "FILE"),
    RunOption("stack-small-id", "node face: the stack the signer owns", "N", u64),
    RunOption("node-public-key", "node face: the node's X25519 public key (base64), as published on-chain", "B64"),
    RunOption(
        "signer-scheme",
        "node face, embedded mock only: the signature scheme of the stack owner the mock registers (default "
        "ed25519); against a live node the owner signs in the scheme of its own key file",
        choices=("ed25519", "secp256k1", "secp256r1"),
    ),
    RunOption(
        "mock-fault",
        "start the embedded mock with this named fault (repeatable; 'atoma-conformance mock --list-faults')",
        "NAME",
        action="append",
    ),
    RunOption(
        "sui-rpc",
        "a Sui full node's JSON-RPC URL, to read the node's key commitments (the KEY checks skip without it; "
        "the embedded mock serves its own)",
        "URL",
        service_url,
    ),
    RunOption(
        "sui-package",
        "the Atoma package id whose events commit node keys (needed with a Sui RPC URL)",
        "0x…",
        package_id,
    ),
    RunOption(
        "attestation-service",
        "the proxy service's base URL, to compare its GET /v1/get_node_attestation/{id} with the chain (KEY-008)",
        "URL",
        service_url,
    ),
    RunOption(
        "trust-test-ca",
        "also trust the mock node's test CA for attestation evidence: for a mock only, never for a verdict",
        action="store_true",
    ),
    RunOption("max-key-age", "the oldest key commitment accepted, e.g. 90d or 12h (KEY-010)", "AGE", duration),
    RunOption("node-small-id", "node face: the node's small id, whose key commitments are read", "N", u64),
    RunOption(
        "rim-dir",
        "NVIDIA reference integrity manifests (*.swidtag, *.xml) to compare the evidence's measurements with "
        "(KEY-012, INFO; the RIMs' own signatures are not verified)",
        "DIR",
    ),
    RunOption("max-requests", "hard cap on HTTP requests, for the whole run (all workers)", "N", positive_int),
    RunOption("timeout", "per-read timeout in seconds (default 30)", "S", finite_seconds, 30.0),
    RunOption(
        "deadline", "time limit of one exchange in seconds, streams included (default 120)", "S", finite_seconds, 120.0
    ),
    RunOption(
        "run-deadline",
        "time limit of the whole run in seconds (default 600); the checks it leaves are not evaluated",
        "S",
        finite_seconds,
        600.0,
    ),
    RunOption("max-response-bytes", "largest response body read (default 32 MiB)", "N", positive_int, 32 * 1024 * 1024),
    RunOption("ca-bundle", "verify the target's TLS certificate against this CA bundle (PEM)", "FILE"),
    RunOption(
        "insecure",
        "do not verify the target's TLS certificate (a warning is printed; never for a verdict)",
        action="store_true",
    ),
    RunOption(
        "header",
        "an extra header for every request, 'NAME: VALUE' (repeatable)",
        "'NAME: VALUE'",
        header,
        action="append",
    ),
    RunOption("report-dir", "write results.json into DIR", "DIR"),
)
BY_NAME = {option.dest: option for option in RUN_OPTIONS}


def add_to_argparse(parser: argparse.ArgumentParser, *, exclude: Sequence[str] = ()) -> None:
    """The run options under their CLI names (``--target``), with the same defaults as the plugin's."""
    for option in RUN_OPTIONS:
        if option.dest not in exclude:
            parser.add_argument(f"--{option.name}", **option.kwargs(for_pytest=False))


class _Group(Protocol):
    def addoption(self, *opts: str, **attrs: Any) -> None: ...


def add_to_pytest(group: _Group) -> None:
    """The run options under the plugin's prefix (``--atoma-target``), with their real defaults."""
    for option in RUN_OPTIONS:
        group.addoption(option.pytest_flag, **option.kwargs(for_pytest=True))


def to_pytest_args(values: Mapping[str, Any]) -> list[str]:
    """The CLI's given values (dest → value, None for "not given") as plugin arguments."""
    argv: list[str] = []
    for option in RUN_OPTIONS:
        value = values.get(option.dest)
        if value is None or value is False or value == []:
            continue
        if option.action == "store_true":
            argv.append(option.pytest_flag)
        elif option.action == "append":
            for item in value:
                argv += [option.pytest_flag, f"{item[0]}: {item[1]}" if isinstance(item, tuple) else str(item)]
        else:
            argv += [option.pytest_flag, str(value)]
    return argv


class _Config(Protocol):
    def getoption(self, name: str, default: Any = ...) -> Any: ...


def get(config: _Config, name: str) -> Any:
    """A run option's value in a pytest session (``name`` as its CLI dest, e.g. ``"max_requests"``)."""
    return config.getoption(BY_NAME[name].pytest_dest)


def tls_verify(ca_bundle: str | None, insecure: bool) -> bool | str:
    """What ``ClientOptions.verify`` takes: a CA bundle path, False for --insecure, else True."""
    if insecure:
        return False
    return ca_bundle if ca_bundle else True

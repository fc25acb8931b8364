"""How a command reaches a target: TLS, extra headers, timeouts, and what to say when it cannot.

Shared by ``fuzz`` and ``replay`` (and meant for ``run``): one definition of each option, one
validator, one wording. Every validator either returns a clean value or fails with a reason that names
the option, because a bad value otherwise surfaces much later as a vague transport error or a
traceback. A value the user typed is echoed only when it is short, printable and cannot be a secret
(an API key or a header value is never echoed).

    add_tls_arguments(parser)                 --ca-bundle, --insecure, --header, --timeout, --deadline
    client_options_from(args, **overrides)    -> ClientOptions (prints the --insecure warning once)
    finite_seconds / positive_int / header    argparse ``type=`` validators
    validate_target_url(text) / validate_api_key(text)   raise UserError naming the option
    (transport failures in words: conformance.transport_errors)
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path
from typing import Any, TextIO

from .client import ClientOptions
from .exits import UserError
from .options import (  # one home for the validators, shared with run and the plugin
    INSECURE_WARNING,
    finite_seconds,
    header,
)
from .textsafe import one_line

# --- TLS, headers and timeouts --------------------------------------------------------------------


def add_tls_arguments(parser: argparse.ArgumentParser, *, timeouts: bool = True) -> None:
    """--ca-bundle, --insecure, --header; with ``timeouts``, --timeout and --deadline too."""
    parser.add_argument(
        "--ca-bundle", metavar="FILE", help="verify the target's TLS certificate against this PEM bundle"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the target's TLS certificate (warned about loudly)"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        type=header,
        metavar="'NAME: VALUE'",
        help="an extra header for every request, e.g. a gateway's own auth (repeatable)",
    )
    if timeouts:
        parser.add_argument(
            "--timeout", type=finite_seconds, metavar="S", help="per-read timeout in seconds (default 30)"
        )
        parser.add_argument(
            "--deadline",
            type=finite_seconds,
            metavar="S",
            help="time limit of one exchange in seconds, streams included (default 120)",
        )


def tls_verify(args: argparse.Namespace) -> bool | str:
    """``ClientOptions.verify`` from --ca-bundle / --insecure, checking the bundle loads now: a bad
    bundle otherwise fails every request of the run with the same opaque SSL error."""
    ca_bundle: str | None = getattr(args, "ca_bundle", None)
    insecure = bool(getattr(args, "insecure", False))
    if ca_bundle is not None and insecure:
        raise UserError("--insecure", "cannot be combined with --ca-bundle (verify, or do not)")
    if insecure:
        return False
    if ca_bundle is None:
        return True
    path = Path(ca_bundle)
    if not path.is_file():
        raise UserError("--ca-bundle", f"{display_path(path)} is not a readable file")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UserError(
            "--ca-bundle", f"{display_path(path)} is not a PEM CA bundle ({one_line(str(exc), 80)})"
        ) from None
    return str(path.resolve())


def client_options_from(args: argparse.Namespace, *, warn: TextIO | None = None, **overrides: Any) -> ClientOptions:
    """The ClientOptions the arguments ask for, ``overrides`` last (``budget=``, ``lock_retries=``...).

    The --insecure warning is written to ``warn`` (stderr by default) the first time options are built
    from ``args``: it is a property of the run, so building options for a second client stays quiet.
    """
    verify = tls_verify(args)
    if verify is False and not getattr(args, "_insecure_warned", False):
        print(INSECURE_WARNING, file=warn or sys.stderr, flush=True)
        args._insecure_warned = True
    values: dict[str, Any] = {"verify": verify, "extra_headers": tuple(getattr(args, "header", None) or ())}
    if getattr(args, "timeout", None) is not None:
        values["timeout_s"] = args.timeout
    if getattr(args, "deadline", None) is not None:
        values["deadline_s"] = args.deadline
    values.update(overrides)
    return ClientOptions(**values)


# --- transport failures, in words --------------------------------------------------------------------


def display_path(path: Path) -> str:
    return one_line(str(path), 120)

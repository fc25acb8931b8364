"""The node face's X-Signature verifier as the fault catalogue can break it (docs/spec.md §7.1, §7.3).

The strict node parses X-Signature, verifies it with the protocol core (R7.5's range and low-s rules,
the curve point) and authorizes the signer by its R7.6 address. Each flaw here is a way a node gets that
wrong on a path only an ECDSA stack owner, or an empty header, reaches, so a suite that signs with
Ed25519 alone never sees it. The app applies them around the core's calls; with every knob at its
default each function returns its input unchanged.
"""

from __future__ import annotations

from conformance.protocol import (
    CURVE_ORDER,
    InvalidPublicKey,
    ProtocolError,
    Scheme,
    SuiSignature,
    ecdsa_scalars,
    sui_address,
    to_high_s,
)

from .behaviour import Behaviour


class Crash(Exception):
    """The flawed verifier failed on what it was given: the node answers 500, where R7.11 asks for
    400 INVALID_HEADER (or 401 AUTH_ERROR) and R10.2 forbids a 5xx for a client-caused fault."""


def screen_header(header: str, behaviour: Behaviour) -> None:
    """The empty-signature flaw: a parser that reads the flag byte before checking there is one."""
    if header == "" and behaviour.empty_signature == "500":
        raise Crash("read the flag byte of an empty signature")


def screen(parsed: SuiSignature, behaviour: Behaviour) -> SuiSignature:
    """The signature the flawed verifier goes on to check: a high-s one normalised to its low-s twin
    instead of refused, or a crash on a scalar outside [1, n-1] that it never range-checked (a verifier
    that inverts s itself fails on s = 0 or s = n)."""
    if parsed.scheme is Scheme.ED25519 or behaviour.ecdsa_verifier == "strict":
        return parsed
    r, s = ecdsa_scalars(parsed)
    order = CURVE_ORDER[parsed.scheme]
    if behaviour.ecdsa_verifier == "unchecked-scalars" and not (0 < r < order and 0 < s < order):
        raise Crash("used a scalar outside [1, n-1]")
    if behaviour.ecdsa_verifier == "accept-high-s" and s > order // 2:
        return to_high_s(parsed)  # s -> n - s: the malleated twin becomes the signature it came from
    return parsed


def crashed(exc: ProtocolError | Crash, behaviour: Behaviour) -> bool:
    """Whether the refusal ``exc`` is, for this node, a crash: a flaw above, or an embedded key that is
    not a curve point reaching a verifier that loads it unchecked."""
    if isinstance(exc, Crash):
        return True
    return isinstance(exc, InvalidPublicKey) and behaviour.ecdsa_verifier == "unchecked-point"


def address(parsed: SuiSignature, behaviour: Behaviour) -> str:
    """The signer's address as this node derives it: R7.6's H(flag || public key), or, flawed, with
    the Ed25519 flag whatever the scheme (the derivation an Ed25519-only node gets away with)."""
    if behaviour.signer_flag == "ed25519":
        return sui_address(Scheme.ED25519, parsed.public_key)
    return parsed.address

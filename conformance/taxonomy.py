"""Check levels and categories. A module of its own, importing nothing, because the pytest plugin
needs these names at start-up, before coverage starts measuring the rest of the package."""

from __future__ import annotations

from typing import Literal

Level = Literal["MUST", "SHOULD", "INFO"]
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "INFO")
CATEGORIES = (
    "LOCK",
    "ENC",
    "AEAD",
    "HASH",
    "SIG",
    "NONCE",
    "STREAM",
    "USAGE",
    "ERR",
    "ENDPOINT",
    "REPLAY",
    "NODE",
    "KEY",
)

# The two faces a target can serve (docs/spec.md §0.4): clients' (lock and bearer token), or the node's
# own behind the proxy (X-Signature). A probe of one face skips on the other.
Face = Literal["proxy", "node"]
FACES: tuple[Face, ...] = ("proxy", "node")

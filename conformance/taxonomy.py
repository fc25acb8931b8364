"""Check levels and categories. A module of its own, importing nothing, because the pytest plugin
needs these names at start-up, before coverage starts measuring the rest of the package."""

from __future__ import annotations

from typing import Literal

Level = Literal["MUST", "SHOULD", "INFO"]
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "INFO")
CATEGORIES = ("LOCK", "ENC", "AEAD", "HASH", "SIG", "NONCE", "STREAM", "USAGE", "ERR", "ENDPOINT", "REPLAY", "NODE")

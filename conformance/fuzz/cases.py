"""Replay cases: one failure of a fuzz campaign, saved as a self-contained JSON file.

A case holds the exact request bytes that failed, the campaign seed, the finding's check id and the
mutation's label. To read the answer of a replayed request it also holds the ephemeral X25519 secret,
salt and nonce of that synthetic request: they open only that one generated request and its reply.
The plaintext itself, and any decrypted answer, are stored only with ``--keep-plaintext``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CASE_VERSION = 1


@dataclass
class ReplayCase:
    check_id: str
    level: str
    reason: str
    seed: int
    endpoint: str
    stream: bool
    model: str
    mutation: str | None  # the mutation's label, or None for a valid request
    expect: str  # "refuse" or "accept"
    request_body_b64: str
    exchange_secret_hex: str  # client secret || salt || request nonce of the synthetic request
    plaintext_sha256: str
    plaintext_bytes: int
    plaintext: str | None = None  # only with --keep-plaintext
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = CASE_VERSION

    @property
    def request_body(self) -> bytes:
        return base64.b64decode(self.request_body_b64)

    def name(self) -> str:
        digest = self.plaintext_sha256[:8]
        return f"{self.check_id.lower()}-{self.endpoint}-{digest}.json"

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.name()
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> ReplayCase:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != CASE_VERSION:
            raise ValueError(f"{path}: not an atoma-conformance replay case (version {CASE_VERSION})")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{path}: malformed replay case ({exc})") from None

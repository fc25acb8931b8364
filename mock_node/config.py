"""Configuration of one mock node: who it is (keys), how it behaves (profile and faults), and limits.

Keys are derived from a seed so that a node's X25519 key and Sui signer address are known in
advance: an operator can write ``--node-address`` into a test plan before the node starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol import (
    SYSTEM_RANDOM,
    RandomSource,
    Scheme,
    SuiSigner,
    blake2b_256,
    is_sui_address,
    x25519_public_key,
)
from conformance.taxonomy import Face

from .behaviour import PROFILES, Behaviour
from .faults import Fault, apply_all, resolve

DEFAULT_MODELS = (
    "meta-llama/Llama-3.3-70B-Instruct",
    "intfloat/multilingual-e5-large-instruct",
    "black-forest-labs/FLUX.1-schnell",
)
FACES = ("proxy", "node")
DEFAULT_SEED = "atoma-conformance mock node"
"""Public (it is in the docs and the source): a node on it can be decrypted by anyone, so ``mock``
serves it on loopback only (mock_node.serve.check_exposure)."""
MAX_BODY_BYTES = 2 * 1024 * 1024  # the effective upstream limit (axum's default)
LOCK_DEFAULT_TOKENS = 8192
LOCK_DEFAULT_TIMEOUT_S = 5
IMAGE_DEFAULT_UNITS = 1_048_576


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the option."""


@dataclass
class MockConfig:
    profile: str = "strict"
    faults: Sequence[str] = ()
    seed: str = DEFAULT_SEED
    signer_scheme: Scheme = Scheme.ED25519
    models: Sequence[str] = DEFAULT_MODELS
    api_keys: Sequence[str] = ()  # empty: any non-empty bearer token is accepted
    allow_fault_header: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    node_small_id: int = 1
    backend_url: str | None = None
    backend_transport: Any = None  # an httpx.AsyncBaseTransport, for tests of the relay
    rng: RandomSource = SYSTEM_RANDOM
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    extra: dict[str, str] = field(default_factory=dict)
    judge: Any = None  # a mock_node.judge.ClientJudge, to certify the clients that talk to this node
    face: Face = "proxy"  # "proxy": lock + bearer tokens (what clients see); "node": X-Signature (the proxy's hop)
    stack_owners: dict[int, str] = field(default_factory=dict)  # node face: stack_small_id -> owner Sui address

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"--profile: unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.max_body_bytes < 1024:
            raise ConfigError("--max-body-bytes: must be at least 1024")
        if self.backend_url is not None:
            _check_backend(self.backend_url)
        if not self.models:
            raise ConfigError("--model: at least one model must be served")
        for model in self.models:
            if not model.strip() or not model.isprintable():
                raise ConfigError(f"--model: {model!r} is not a model name (empty, blank or with control characters)")
        for key in self.api_keys:
            if not key or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
                raise ConfigError("--api-key: a bearer token must be printable ASCII without spaces, and not empty")
        if not 0 <= self.node_small_id < 2**64:
            raise ConfigError("--node-small-id: must be from 0 to 2^64 - 1")
        if self.face not in FACES:
            raise ConfigError(f"--face: unknown face {self.face!r}; choose one of {', '.join(FACES)}")
        if self.face == "proxy" and self.stack_owners:
            raise ConfigError("--stack-owner: only applies to --face node (the proxy face authorizes with locks)")
        for stack, owner in self.stack_owners.items():
            if not is_sui_address(owner):
                raise ConfigError(f"--stack-owner: {owner!r} is not a Sui address (0x and 64 hex digits)")
            if not 0 <= stack < 2**64:
                raise ConfigError(f"--stack-owner: stack {stack} is outside 0 to 2^64 - 1")
        self.stack_owners = {stack: owner.lower() for stack, owner in self.stack_owners.items()}
        try:
            self.fault_list: list[Fault] = resolve(self.faults)
        except ValueError as exc:
            raise ConfigError(f"--fault: {exc}") from None
        self.behaviour: Behaviour = apply_all(PROFILES[self.profile], self.fault_list)
        self.node_private_key = blake2b_256(b"x25519:" + self.seed.encode())
        self.node_public_key = x25519_public_key(self.node_private_key)
        self.signer = SuiSigner(self.signer_scheme, _valid_secret(self.signer_scheme, self.seed))

    @property
    def signer_address(self) -> str:
        return self.signer.address

    @property
    def seed_is_public(self) -> bool:
        """The keys derive from the documented default seed, so anyone can compute the private key."""
        return self.seed == DEFAULT_SEED


def _check_backend(url: str) -> None:
    """The relay's URL, parsed now: a malformed one would otherwise fail inside the server, per request."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise ConfigError("--backend: must be an http:// or https:// URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        from conformance.textsafe import one_line

        raise ConfigError(f"--backend: not a valid URL ({one_line(str(exc), 120)})") from None
    if not parsed.host:
        raise ConfigError("--backend: the URL has no host")
    if any(c.isspace() for c in url) or not url.isprintable():
        raise ConfigError("--backend: a URL cannot contain spaces or control characters")
    if parsed.port is not None and not 0 < parsed.port <= 65535:
        raise ConfigError(f"--backend: port {parsed.port} is outside 1 to 65535")


def _valid_secret(scheme: Scheme, seed: str) -> bytes:
    """A 32-byte signing secret from the seed; ECDSA needs it in [1, n-1], so re-hash until it is."""
    secret = blake2b_256(b"signer:" + scheme.label.encode() + b":" + seed.encode())
    while True:
        try:
            SuiSigner(scheme, secret)
            return secret
        except ValueError:  # pragma: no cover - probability about 2**-128
            secret = blake2b_256(secret)

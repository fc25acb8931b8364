"""A load run's plan: what the command hands the engine process, and what a master tells its workers.

The plan is plain data in a file the command writes into a directory of its own. Secrets never go in it:
the API key and ``--header`` values travel in the engine's environment (:data:`SECRETS_ENV`), which the
engine removes from ``os.environ`` as it reads them. A worker gets the run's part of the plan (target,
models, mix, its share of ``--max-requests``) from the master, so that one command line steers them all.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..exits import UserError

SECRETS_ENV = "ATOMA_CONFORMANCE_LOAD_SECRETS"
NO_MASTER = 3  # the engine's exit code for a worker that no master answered
PLAN_MAX_BYTES = 64 * 1024

# A kind of exchange: the endpoint and whether it streams.
KINDS: dict[str, tuple[str, bool]] = {
    "chat": ("chat", False),
    "stream": ("chat", True),
    "completions": ("completions", False),
    "embeddings": ("embeddings", False),
    "images": ("images", False),
}
DEFAULT_MIX = {"chat": 6, "stream": 2, "completions": 1, "embeddings": 1, "images": 0}
IMAGE_UNITS = 1_048_576  # what an image lock reserves and its request claims, as run's probes do
Role = Literal["local", "master", "worker"]


def parse_mix(text: str, *, embeddings: bool = True, images: bool = True) -> dict[str, int]:
    """``chat=6,stream=2,completions=1,embeddings=1`` as weights; every kind not named weighs 0."""
    mix = dict.fromkeys(KINDS, 0)
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise UserError("--mix", f"expected NAME=WEIGHT pairs like chat=6,stream=2, got {part.strip()[:40]!r}")
        if name not in KINDS:
            raise UserError("--mix", f"unknown kind {name[:40]!r} (kinds: {', '.join(KINDS)})")
        if not value.isdigit() or len(value) > 6:
            raise UserError("--mix", f"{name}: the weight must be a whole number from 0 to 999999, got {value[:40]!r}")
        mix[name] = int(value)
    if not any(mix.values()):
        raise UserError("--mix", "every weight is 0: nothing would be sent")
    if mix["embeddings"] and not embeddings:
        raise UserError("--mix", "embeddings has a weight but no --embedding-model was named")
    if mix["images"] and not images:
        raise UserError("--mix", "images has a weight but no --image-model was named")
    return mix


@dataclass
class LoadPlan:
    role: Role
    target: str
    chat_model: str
    embedding_model: str | None
    users: int
    spawn_rate: float
    duration_s: float | None
    max_requests: int | None
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    image_model: str | None = None
    node_address: str | None = None
    timeout_s: float = 30.0
    deadline_s: float = 120.0
    max_response_bytes: int = 32 * 1024 * 1024
    verify: bool | str = True
    run_deadline_s: float = 3600.0
    result_path: str = ""
    progress: bool = False
    verbose: bool = False
    expect_workers: int = 0
    master_host: str = "127.0.0.1"
    master_bind_host: str = "127.0.0.1"
    master_port: int = 5557
    worker_wait_s: float = 60.0
    budget_share: int | None = None
    # The embedded mock's API key is a fixed public test token, so the master may hand it to its workers;
    # a deployment's key never travels over Locust's channel: each worker reads its own.
    shared_api_key: str | None = None

    def model_for(self, endpoint: str) -> str:
        if endpoint == "embeddings" and self.embedding_model is not None:
            return self.embedding_model
        if endpoint == "images" and self.image_model is not None:
            return self.image_model
        return self.chat_model

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> LoadPlan:
        with path.open("rb") as handle:
            raw = handle.read(PLAN_MAX_BYTES + 1)
        if len(raw) > PLAN_MAX_BYTES:
            raise ValueError("the load plan is over its size cap")
        return cls(**json.loads(raw))

    # --- what a master tells a worker -------------------------------------------------------------------

    def for_worker(self, index: int, workers: int) -> dict[str, Any]:
        """The run's part of the plan for worker ``index`` of ``workers``: its share of the request cap
        (the shares add up to ``--max-requests`` exactly, so the whole run never exceeds it)."""
        share = None
        if self.max_requests is not None:
            share = self.max_requests // workers + (1 if index < self.max_requests % workers else 0)
        return {
            "target": self.target,
            "chat_model": self.chat_model,
            "embedding_model": self.embedding_model,
            "image_model": self.image_model,
            "mix": dict(self.mix),
            "node_address": self.node_address,
            "timeout_s": self.timeout_s,
            "deadline_s": self.deadline_s,
            "max_response_bytes": self.max_response_bytes,
            "budget_share": share,
            "shared_api_key": self.shared_api_key,
        }

    def adopt(self, wire: dict[str, Any]) -> None:
        """A worker takes the run's part of the plan from its master."""
        for name in (
            "target",
            "chat_model",
            "embedding_model",
            "image_model",
            "mix",
            "node_address",
            "timeout_s",
            "deadline_s",
            "max_response_bytes",
            "budget_share",
            "shared_api_key",
        ):
            setattr(self, name, wire[name])

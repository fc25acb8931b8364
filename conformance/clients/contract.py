"""The adapter contract (version 1): how the suite drives a client it has never seen.

An adapter is any command. It reads one JSON instruction on stdin, makes the client under test do one
operation against ``base_url``, and prints one JSON result on stdout. A process boundary and JSON are
the only things every SDK in every language can speak, so certifying a new client takes a command,
not a code change. docs/clients.md is the reference for adapter authors; this module is its one
implementation on the suite's side.

The suite must never confuse a broken adapter with a refusing client: a refusal is a well-formed
``{"outcome": "error"}``, while a crash, a timeout or unreadable output is an :class:`AdapterFailure`,
which the matrix reports as an error, never as a pass.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any, Literal

CONTRACT_VERSION = 1
OPERATIONS = ("chat", "chat-stream", "completions", "embeddings", "images")
Operation = Literal["chat", "chat-stream", "completions", "embeddings", "images"]
UNSUPPORTED = "UNSUPPORTED_OPERATION"
ADAPTER_CODE_PREFIX = "ADAPTER_"  # error codes an adapter uses for its own failures
BAD_INSTRUCTION = "BAD_INSTRUCTION"  # the adapter could not use what the suite sent: also its failure
MAX_OUTPUT_BYTES = 1 << 20
_DETAIL_CHARS = 200


class AdapterFailure(Exception):
    """The adapter itself failed (could not start, timed out, exited non-zero, printed no valid result)."""


@dataclass(frozen=True)
class Instruction:
    base_url: str
    api_key: str
    model: str
    operation: Operation
    params: dict[str, Any]
    node_address: str | None = None
    timeout_s: float = 30.0

    def to_json(self) -> dict[str, Any]:
        return {
            "contract": CONTRACT_VERSION,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "model": self.model,
            "operation": self.operation,
            "params": self.params,
            "node_address": self.node_address,
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_json(cls, obj: object) -> Instruction:
        """Validate an instruction (the reference adapter's side); errors name the field."""
        if not isinstance(obj, dict):
            raise ValueError("instruction: must be a JSON object")
        if obj.get("contract") != CONTRACT_VERSION:
            raise ValueError(f"contract: must be {CONTRACT_VERSION}")
        for name in ("base_url", "api_key", "model", "operation"):
            if not isinstance(obj.get(name), str) or not obj[name]:
                raise ValueError(f"{name}: must be a non-empty string")
        if obj["operation"] not in OPERATIONS:
            raise ValueError(f"operation: must be one of {', '.join(OPERATIONS)}")
        params = obj.get("params", {})
        if not isinstance(params, dict):
            raise ValueError("params: must be a JSON object")
        address = obj.get("node_address")
        if address is not None and not isinstance(address, str):
            raise ValueError("node_address: must be a string or null")
        timeout = obj.get("timeout_s", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError("timeout_s: must be a positive number")
        return cls(obj["base_url"], obj["api_key"], obj["model"], obj["operation"], params, address, float(timeout))


@dataclass(frozen=True)
class AdapterResult:
    outcome: Literal["ok", "error"]
    content: str | None
    error_code: str | None
    detail: str | None = None
    client: str | None = None

    @property
    def accepted(self) -> bool:
        """The client handed a response to its user."""
        return self.outcome == "ok"

    @property
    def unsupported(self) -> bool:
        return self.outcome == "error" and self.error_code == UNSUPPORTED

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "content": self.content,
            "error_code": self.error_code,
            "detail": self.detail,
            "client": self.client,
        }

    @classmethod
    def parse(cls, text: str) -> AdapterResult:
        """The last non-empty stdout line as a result; a wrong shape names the member."""
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise AdapterFailure("printed nothing on stdout (expected one JSON result)")
        try:
            obj = json.loads(lines[-1])
        except ValueError:
            raise AdapterFailure("the last stdout line is not JSON (expected one JSON result)") from None
        if not isinstance(obj, dict):
            raise AdapterFailure("the result is not a JSON object")
        outcome = obj.get("outcome")
        if outcome not in ("ok", "error"):
            raise AdapterFailure('outcome: must be "ok" or "error"')
        for name in ("content", "error_code", "detail", "client"):
            if obj.get(name) is not None and not isinstance(obj[name], str):
                raise AdapterFailure(f"{name}: must be a string or null")
        if outcome == "error" and not obj.get("error_code"):
            raise AdapterFailure('error_code: required when outcome is "error"')
        if outcome == "error" and (
            str(obj["error_code"]).startswith(ADAPTER_CODE_PREFIX) or obj["error_code"] == BAD_INSTRUCTION
        ):
            # The adapter's own failure (a backstop timeout, a missing package): not the client refusing.
            raise AdapterFailure(f"reported {obj['error_code']}: {str(obj.get('detail') or '')[:_DETAIL_CHARS]}")
        detail = obj.get("detail")
        return cls(
            outcome,
            obj.get("content"),
            obj.get("error_code"),
            detail[:_DETAIL_CHARS] if isinstance(detail, str) else None,
            obj.get("client"),
        )


def content_of(answer: dict[str, Any] | list[dict[str, Any]]) -> str:
    """The user-visible content of a decrypted answer, as ``content`` is defined for adapters.

    chat: choice 0's message content; completions: choice 0's text; a stream: the deltas of choice
    0 in order; embeddings: ``"<n>x<dimensions>"``; images: ``"<n> image(s)"``.
    """
    if isinstance(answer, list):
        parts = []
        for chunk in answer:
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if choice.get("index", 0) == 0 and isinstance(delta.get("content"), str):
                    parts.append(delta["content"])
        return "".join(parts)
    if "choices" in answer:
        first = (answer["choices"] or [{}])[0]
        content = (first.get("message") or {}).get("content", first.get("text"))
        return content if isinstance(content, str) else ""
    data = answer.get("data") or []
    if data and isinstance(data[0], dict) and "embedding" in data[0]:
        return f"{len(data)}x{len(data[0]['embedding'])}"
    return f"{len(data)} image(s)"


def split_command(command: str) -> list[str]:
    """The adapter command as argv, split like a shell would (not run through one)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise AdapterFailure(f"the adapter command cannot be split: {exc}") from None
    if not argv:
        raise AdapterFailure("the adapter command is empty")
    return argv


def run_adapter(command: str, instruction: Instruction, *, grace_s: float = 30.0) -> AdapterResult:
    """Run ``command`` once with ``instruction`` on stdin.

    The deadline is the instruction's own timeout plus ``grace_s`` for the adapter's start-up (a
    Node.js or a second Python interpreter takes a while); past it the adapter is killed.
    """
    argv = split_command(command)
    try:
        done = subprocess.run(  # noqa: S603 - the user's own adapter command, by design
            argv,
            input=json.dumps(instruction.to_json()),
            capture_output=True,
            text=True,
            timeout=instruction.timeout_s + grace_s,
            check=False,
        )
    except FileNotFoundError:
        raise AdapterFailure(f"cannot start {argv[0]!r}: no such file or command") from None
    except PermissionError:
        raise AdapterFailure(f"cannot start {argv[0]!r}: not executable") from None
    except OSError as exc:  # for example a script without a #! line (exec format error)
        raise AdapterFailure(f"cannot start {argv[0]!r}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise AdapterFailure(f"did not answer within {instruction.timeout_s + grace_s:.0f} s and was killed") from None
    if len(done.stdout) > MAX_OUTPUT_BYTES:
        raise AdapterFailure(f"printed more than {MAX_OUTPUT_BYTES} bytes on stdout")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1][:_DETAIL_CHARS]
        raise AdapterFailure(f"exited with status {done.returncode}" + (f": {tail}" if tail else ""))
    return AdapterResult.parse(done.stdout)

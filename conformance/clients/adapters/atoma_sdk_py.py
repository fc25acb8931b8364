"""Client adapter for the official Python SDK, atoma-sdk 0.1.3 (client-adapter contract version 1).

Why it exists: the client matrix asks what a real, unmodified client does with a node's answer (does
it hand the data to its caller, or refuse it?), not what our reference client thinks of it. The SDK
pins pydantic < 2.11, so it cannot live in the suite's environment; this file runs as a script under
the SDK's own virtualenv and imports only the standard library and ``atoma_sdk`` (never ``conformance``).

Contract 1: read one JSON instruction on stdin::

    {"contract": 1, "base_url": "http://127.0.0.1:PORT", "api_key": "...", "model": "...",
     "operation": "chat" | "chat-stream" | "completions" | "embeddings" | "images",
     "params": {...}, "node_address": "0x..." | null, "timeout_s": 30}

and print exactly one JSON line on stdout::

    {"outcome": "ok" | "error", "content": str | null, "error_code": str | null,
     "detail": str | null, "client": "atoma-sdk <version> (python)"}

``ok`` means the SDK returned data to its caller; ``error`` means it raised (``error_code`` is the
exception's class name), has no confidential method for the operation (``UNSUPPORTED_OPERATION``:
the Python SDK has no confidential completions), or the instruction is invalid (``BAD_INSTRUCTION``,
naming the field). A stream that fails after some chunks is an error: its caller got no complete
answer. ``detail`` is at most 200 characters and never holds the API key (a key shorter than 4
characters cannot be told apart from ordinary text and is not redacted). The exit status is 0
whenever a result was printed; 2 if stdin cannot be read, 3 if the result cannot be written.

The SDK chooses its node through its own lock request, so ``node_address`` is accepted but unused;
``timeout_s`` becomes the SDK's client-wide ``timeout_ms``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
from dataclasses import dataclass, field
from typing import Any

CONTRACT = 1
SDK_DISTRIBUTION = "atoma-sdk"
OPERATIONS = ("chat", "chat-stream", "completions", "embeddings", "images")
DETAIL_MAX = 200
MIN_REDACTED_KEY = 4


class BadInstruction(Exception):
    """The instruction is not a valid contract-1 instruction; ``field`` names the culprit."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.field = name


class AdapterBroken(Exception):
    """The adapter cannot drive the SDK at all (reported as ADAPTER_FAILURE, never as a refusal)."""


class UnsupportedOperation(Exception):
    """The SDK has no confidential method for the operation."""


@dataclass(frozen=True)
class Instruction:
    base_url: str
    api_key: str = field(repr=False)
    model: str
    operation: str
    params: dict[str, Any]
    timeout_s: float | None


def _client_label() -> str:
    try:
        version = importlib.metadata.version(SDK_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "not-installed"
    return f"{SDK_DISTRIBUTION} {version} (python)"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(obj: dict[str, Any], key: str, where: str, *, empty_ok: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (not value and not empty_ok):
        raise BadInstruction(f"{where}{key}", "missing or not a " + ("string" if empty_ok else "non-empty string"))
    return value


def _optional_int(params: dict[str, Any], key: str, out: dict[str, Any]) -> None:
    value = params.get(key)
    if value is None:
        return
    if not _is_int(value) or value < 1:
        raise BadInstruction(f"params.{key}", "not a positive integer")
    out[key] = value


def _sdk_arguments(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the SDK method (besides ``model``); extra params are ignored."""
    out: dict[str, Any] = {}
    if operation in ("chat", "chat-stream"):
        messages = params.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadInstruction("params.messages", "missing or not a non-empty list")
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BadInstruction(f"params.messages[{i}]", "not an object")
            _text(message, "role", f"params.messages[{i}].")
            _text(message, "content", f"params.messages[{i}].", empty_ok=True)
        out["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages]
        _optional_int(params, "max_tokens", out)
    elif operation == "completions":
        out["prompt"] = _text(params, "prompt", "params.", empty_ok=True)
        _optional_int(params, "max_tokens", out)
    elif operation == "embeddings":
        value = params.get("input")
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            raise BadInstruction("params.input", "missing or not a string or a list of strings")
        out["input"] = value
    else:  # images
        out["prompt"] = _text(params, "prompt", "params.")
        _optional_int(params, "n", out)
        size = params.get("size")
        if size is not None:
            if not isinstance(size, str):
                raise BadInstruction("params.size", "not a string")
            out["size"] = size
    return out


def parse_instruction(raw: bytes) -> Instruction:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInstruction("instruction", f"not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise BadInstruction("instruction", "not a JSON object")
    contract = doc.get("contract")
    if not _is_int(contract) or contract != CONTRACT:
        raise BadInstruction("contract", f"missing or not {CONTRACT}")
    base_url = _text(doc, "base_url", "")
    if not base_url.startswith(("http://", "https://")):
        raise BadInstruction("base_url", "not an http(s) URL")
    api_key = _text(doc, "api_key", "", empty_ok=True)
    model = _text(doc, "model", "")
    operation = doc.get("operation")
    if operation not in OPERATIONS:
        raise BadInstruction("operation", "missing or not one of " + ", ".join(OPERATIONS))
    params = doc.get("params")
    if not isinstance(params, dict):
        raise BadInstruction("params", "missing or not an object")
    node_address = doc.get("node_address")
    if node_address is not None and not isinstance(node_address, str):
        raise BadInstruction("node_address", "not a string or null")
    timeout_s = doc.get("timeout_s")
    if timeout_s is not None and (not _is_number(timeout_s) or not timeout_s > 0):
        raise BadInstruction("timeout_s", "not a positive number or null")
    _sdk_arguments(operation, params)  # validate now, so a bad instruction never reaches the SDK
    return Instruction(base_url, api_key, model, operation, params, timeout_s)


def _content_of(operation: str, answer: Any) -> str | None:
    """What the caller got, as the contract words it; None when the answer lacks that shape."""
    try:
        if operation == "chat":
            content = answer.choices[0].message.content
            return content if isinstance(content, str) else None
        if operation == "embeddings":
            data = list(answer.data)
            width = len(data[0].embedding) if data else 0
            return f"{len(data)}x{width}"
        if operation == "images":
            return f"{len(list(answer.data))} image(s)"
    except (AttributeError, IndexError, TypeError):
        return None
    return None


def _drain_stream(stream: Any) -> str:
    """Iterates the SDK's stream to its end; an exception mid-stream propagates (outcome error)."""
    parts: list[str] = []
    with stream:
        for event in stream:
            chunk = getattr(event, "data", event)
            choices = getattr(chunk, "choices", None)
            if not choices:
                continue
            delta = getattr(choices[0], "delta", None)
            content = getattr(delta, "content", None)
            if isinstance(content, str):
                parts.append(content)
    return "".join(parts)


def run_sdk(instruction: Instruction) -> str | None:
    """Drives the SDK; returns the content, or raises whatever the SDK raised."""
    operation = instruction.operation
    if operation == "completions":
        raise UnsupportedOperation("atoma-sdk (python) has no confidential completions method")
    arguments = _sdk_arguments(operation, instruction.params)
    try:
        atoma_sdk: Any = importlib.import_module("atoma_sdk")
    except ImportError as exc:  # the adapter's environment, not the client, is at fault
        raise AdapterBroken(f"atoma_sdk cannot be imported: {exc}") from None
    options: dict[str, Any] = {"bearer_auth": instruction.api_key, "server_url": instruction.base_url}
    if instruction.timeout_s is not None:
        options["timeout_ms"] = max(1, round(instruction.timeout_s * 1000))
    sdk = atoma_sdk.AtomaSDK(**options)
    if operation == "chat":
        answer = sdk.confidential_chat.create(model=instruction.model, **arguments)
    elif operation == "chat-stream":
        return _drain_stream(sdk.confidential_chat.create_stream(model=instruction.model, **arguments))
    elif operation == "embeddings":
        answer = sdk.confidential_embeddings.create(model=instruction.model, **arguments)
    else:
        answer = sdk.confidential_images.generate(model=instruction.model, **arguments)
    return _content_of(operation, answer)


def _detail(message: str, api_key: str) -> str:
    text = " ".join(message.split())
    if len(api_key) >= MIN_REDACTED_KEY:
        text = text.replace(api_key, "***")
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 3] + "..."


def _result(outcome: str, content: str | None, error_code: str | None, detail: str | None) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "content": content,
        "error_code": error_code,
        "detail": detail,
        "client": _client_label(),
    }


def handle(raw: bytes) -> dict[str, Any]:
    """The whole contract, from the instruction's bytes to the result object; never raises an Exception."""
    try:
        instruction = parse_instruction(raw)
    except BadInstruction as exc:
        return _result("error", None, "BAD_INSTRUCTION", _detail(str(exc), ""))
    try:
        content = run_sdk(instruction)
    except UnsupportedOperation as exc:
        return _result("error", None, "UNSUPPORTED_OPERATION", _detail(str(exc), instruction.api_key))
    except AdapterBroken as exc:
        return _result("error", None, "ADAPTER_FAILURE", _detail(str(exc), instruction.api_key))
    except Exception as exc:  # any SDK failure is a result, never a traceback
        message = str(exc) or type(exc).__name__
        return _result("error", None, type(exc).__name__, _detail(message, instruction.api_key))
    return _result("ok", content, None, None)


def main() -> int:
    try:
        raw = sys.stdin.buffer.read()
    except (OSError, ValueError) as exc:
        print(f"atoma_sdk_py adapter: cannot read stdin: {type(exc).__name__}", file=sys.stderr)
        return 2
    line = json.dumps(handle(raw), separators=(",", ":"))
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

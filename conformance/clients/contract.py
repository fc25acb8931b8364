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
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

CONTRACT_VERSION = 1
OPERATIONS = ("chat", "chat-stream", "completions", "embeddings", "images")
Operation = Literal["chat", "chat-stream", "completions", "embeddings", "images"]
UNSUPPORTED = "UNSUPPORTED_OPERATION"
ADAPTER_CODE_PREFIX = "ADAPTER_"  # error codes an adapter uses for its own failures
BAD_INSTRUCTION = "BAD_INSTRUCTION"  # the adapter could not use what the suite sent: also its failure
MAX_OUTPUT_BYTES = 1 << 20
STDERR_TAIL_BYTES = 8 << 10  # only the last line of stderr is ever shown
_READ_CHUNK = 64 << 10
# What of an adapter's strings reaches a report or a terminal, after the API key and the request text
# are blanked: one line each (control characters escaped), at most this many characters.
DETAIL_CHARS = 200
ERROR_CODE_CHARS = 80
CLIENT_CHARS = 100
FAILURE_CHARS = 300  # an adapter failure: our words plus its stderr tail or its reported code
CONTENT_CHARS = 4000  # the content a client returned, kept only with --keep-plaintext

# The environment an adapter process gets: enough to find programs, a home, a locale and a temporary
# directory, and nothing else. Adapters are third-party code; the suite's own environment may hold a
# real ATOMA_API_KEY or ATOMASDK_BEARER_AUTH (which the official SDKs read on their own), cloud
# credentials or proxy settings that would send loopback traffic elsewhere. The contract passes
# everything an adapter needs (the mock's URL, a throwaway key, the node address, where the chain is)
# on stdin.
ENV_ALLOWED = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TMPDIR",
    # Windows: without SYSTEMROOT a Python child cannot open sockets or draw random numbers.
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "WINDIR",
    "PATHEXT",
    "USERPROFILE",
    "TEMP",
    "TMP",
)
ENV_ALLOWED_PREFIXES = ("LC_",)


class AdapterFailure(Exception):
    """The adapter itself failed (could not start, timed out, exited non-zero, printed no valid result)."""


@dataclass(frozen=True)
class ChainInfo:
    """Where a client finds the chain state that binds the lock's key (docs/spec.md R15.14).

    Added to contract 1 as an optional member: an adapter that ignores it behaves as before. The node
    is the lock's ``node_small_id``. ``test_ca_pem`` is the PEM of the mock node's test device CA root,
    which signs the mock's evidence: an adapter trusts it for this run against the mock only, never
    for a real deployment (anyone can rebuild its keys from the mock's public seed).
    """

    sui_rpc: str  # a Sui full node's JSON-RPC URL (POST): suix_queryEvents, sui_getObject
    package_id: str  # the Atoma package whose db module emits the key events
    attestation_service: str | None = None  # base URL of GET /v1/get_node_attestation/{node_small_id}
    test_ca_pem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "sui_rpc": self.sui_rpc,
            "package_id": self.package_id,
            "attestation_service": self.attestation_service,
            "test_ca_pem": self.test_ca_pem,
        }

    @classmethod
    def from_json(cls, obj: object) -> ChainInfo:
        if not isinstance(obj, dict):
            raise ValueError("chain: must be a JSON object or null")
        for name in ("sui_rpc", "package_id"):
            if not isinstance(obj.get(name), str) or not obj[name]:
                raise ValueError(f"chain.{name}: must be a non-empty string")
        for name in ("attestation_service", "test_ca_pem"):
            if obj.get(name) is not None and (not isinstance(obj[name], str) or not obj[name]):
                raise ValueError(f"chain.{name}: must be a non-empty string or null")
        return cls(obj["sui_rpc"], obj["package_id"], obj.get("attestation_service"), obj.get("test_ca_pem"))


@dataclass(frozen=True)
class Instruction:
    base_url: str
    api_key: str
    model: str
    operation: Operation
    params: dict[str, Any]
    node_address: str | None = None
    timeout_s: float = 30.0
    chain: ChainInfo | None = None

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
            "chain": None if self.chain is None else self.chain.to_json(),
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
        chain = None if obj.get("chain") is None else ChainInfo.from_json(obj["chain"])
        return cls(
            obj["base_url"], obj["api_key"], obj["model"], obj["operation"], params, address, float(timeout), chain
        )


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
            raise AdapterFailure(f"reported {obj['error_code']}: {obj.get('detail') or ''}")
        # Every string stays whole (the 1 MiB stdout cap bounds it): the runner blanks the API key and
        # the request text first and only then cuts, so no cut can leave part of a key behind.
        return cls(outcome, obj.get("content"), obj.get("error_code"), obj.get("detail"), obj.get("client"))


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


def adapter_environment(
    extra: Mapping[str, str] | None = None, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed part of ``source`` (the suite's environment), plus ``extra`` (the suite's own
    additions for its built-in adapters, never the user's secrets)."""
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k.upper() in ENV_ALLOWED or k.upper().startswith(ENV_ALLOWED_PREFIXES)}
    env.update(extra or {})
    return env


def _drain(stream: IO[bytes], keep: bytearray, cap: int, on_over: Callable[[], None] | None) -> None:
    """Read ``stream`` as it comes, holding at most ``cap`` bytes (plus one chunk).

    With ``on_over`` the first ``cap`` bytes are what counts and reading stops at the cap (after
    ``on_over`` kills the writer); without it the *last* ``cap`` bytes are kept and the stream is
    drained to its end, so that an adapter never blocks on a full stderr pipe.
    """
    try:
        while chunk := stream.read(_READ_CHUNK):
            keep += chunk
            if len(keep) > cap:
                if on_over is not None:
                    on_over()
                    return
                del keep[: len(keep) - cap]
    except (OSError, ValueError):  # the pipe closed under us: what was read is all there is
        return


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except (OSError, ValueError):  # the adapter exited or closed stdin without reading: its business
        pass


def _kill(process: subprocess.Popen[bytes], *, leftovers: bool = False) -> None:
    """Kill the adapter and whatever it started (it leads a session of its own on POSIX).

    With ``leftovers``, after the adapter has exited: what it left running and holding its pipes. The
    group's id cannot have been reused, since the group still has members.
    """
    if process.returncode is not None and not (leftovers and os.name != "nt"):
        return
    try:
        if os.name == "nt":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)
    except OSError:  # already gone
        pass


def run_adapter(
    command: str, instruction: Instruction, *, grace_s: float = 30.0, env: Mapping[str, str] | None = None
) -> AdapterResult:
    """Run ``command`` once with ``instruction`` on stdin, in the allow-listed environment plus ``env``.

    The deadline is the instruction's own timeout plus ``grace_s`` for the adapter's start-up (a
    Node.js or a second Python interpreter takes a while); past it the adapter is killed. Its stdout
    is read while it runs and the adapter is killed the moment it passes :data:`MAX_OUTPUT_BYTES`, so
    a hostile adapter cannot make the suite hold more than that in memory; of stderr only the tail is
    kept.
    """
    argv = split_command(command)
    deadline = instruction.timeout_s + grace_s
    try:
        process = subprocess.Popen(  # noqa: S603 - the user's own adapter command, by design
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=adapter_environment(env),
            start_new_session=os.name != "nt",
        )
    except FileNotFoundError:
        raise AdapterFailure(f"cannot start {argv[0]!r}: no such file or command") from None
    except PermissionError:
        raise AdapterFailure(f"cannot start {argv[0]!r}: not executable") from None
    except OSError as exc:  # for example a script without a #! line (exec format error)
        raise AdapterFailure(f"cannot start {argv[0]!r}: {exc.strerror}") from None
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    out, err = bytearray(), bytearray()
    overflow = threading.Event()

    def over() -> None:
        overflow.set()
        _kill(process)

    threads = [
        threading.Thread(target=_feed, args=(process.stdin, json.dumps(instruction.to_json()).encode()), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, out, MAX_OUTPUT_BYTES, over), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, err, STDERR_TAIL_BYTES, None), daemon=True),
    ]
    timed_out = False
    try:
        for thread in threads:
            thread.start()
        try:
            process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            process.wait()
        for thread in threads:
            thread.join(timeout=1.0)
        if any(thread.is_alive() for thread in threads):  # a child the adapter left behind holds a pipe
            _kill(process, leftovers=True)
            for thread in threads:
                thread.join(timeout=1.0)
    finally:
        _kill(process)  # only if still running: Ctrl-C or an error here must not leave an adapter behind
        for stream, thread in zip((process.stdin, process.stdout, process.stderr), threads, strict=True):
            if not thread.is_alive():  # a reader still blocked in read() keeps its pipe until it returns
                stream.close()
    if overflow.is_set():
        raise AdapterFailure(f"printed more than {MAX_OUTPUT_BYTES} bytes (1 MiB) on stdout and was killed")
    if timed_out:
        raise AdapterFailure(f"did not answer within {deadline:.0f} s and was killed")
    if process.returncode != 0:
        # Not cut here: cutting before the caller blanks the API key could leave half of it behind.
        tail = (bytes(err).decode("utf-8", "replace").strip().splitlines() or [""])[-1]
        raise AdapterFailure(f"exited with status {process.returncode}" + (f": {tail}" if tail else ""))
    return AdapterResult.parse(bytes(out).decode("utf-8", "replace"))

"""The mock node's backend: a deterministic fake of an OpenAI-compatible model.

Why a fake model: the conformance suite tests what surrounds inference (key agreement, encryption,
hashes, signatures, stream framing), not the quality of the text. What it needs from the backend is
output that is

- reproducible byte for byte, so that a vector or a failing run can be replayed and hashed again;
- shaped like upstream OpenAI/vLLM bodies, key order included, so that clients parse it as they would
  a real node's answer;
- sized predictably, so that a test or a benchmark can ask for "a 64-chunk stream" and get one.

So every function here is pure: no I/O, no clock (the caller passes ``created``), no randomness.
BLAKE2b over a canonical encoding of the inputs is the only seed source, with a distinct
personalisation per use so that a text seed can never collide with an embedding or image seed.

The caller hands in the *decrypted* request already parsed from JSON and gets plain JSON values back,
which it serializes and encrypts. Validation errors never quote the request: it is user plaintext that
the node is supposed to keep confidential, and error bodies travel in places (logs, verdicts) where
plaintext must not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from conformance.protocol import json_type

__all__ = [
    "STREAMABLE",
    "Endpoint",
    "PlaintextError",
    "count_tokens",
    "respond",
    "stream",
    "tokenize",
    "validate",
]

Endpoint = Literal["chat", "completions", "embeddings", "images"]

STREAMABLE: frozenset[str] = frozenset({"chat", "completions"})

_ENDPOINTS: frozenset[str] = frozenset({"chat", "completions", "embeddings", "images"})


class PlaintextError(ValueError):
    """The plaintext request is not a valid request for the endpoint.

    The node turns this into an HTTP 400 body, so callers need the machine-usable ``field`` (a dotted,
    indexed path such as ``messages[0].role``) and a human ``reason``. Neither ever contains the
    offending value, nor any key the client chose: the request is user plaintext, and an error body
    must not become a channel that leaks it. Only field names, JSON types, lengths and allowed ranges
    appear.
    """

    field: str
    reason: str

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would call ``PlaintextError(message)``, which has the wrong arity; keep the error
        # picklable so that it survives process pools and pytest-xdist.
        return (type(self), (self.field, self.reason))


# --- tokenizer ----------------------------------------------------------------------------------------

# A token is a run of word characters, or one character that is neither a word character nor whitespace;
# whitespace separates tokens and is never one. Why this and not a real BPE: it is exact, tiny, and
# reproducible in any language with a regex engine, so the suite can check ``usage`` numbers for equality
# rather than within a tolerance. ``\w`` is Unicode-aware (Python's ``str`` patterns).
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens: ``re.findall(r"\\w+|[^\\w\\s]", text)``.

    "Hello, world!" is ``["Hello", ",", "world", "!"]``; whitespace only separates. Every count in
    ``usage`` is the length of this list, so a client can recompute it exactly.
    """
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """The number of tokens of ``text`` under :func:`tokenize` (the unit of every ``usage`` count)."""
    return sum(1 for _ in _TOKEN_RE.finditer(text))


# --- seeds ---------------------------------------------------------------------------------------------


def _digest(person: bytes, *parts: Any) -> bytes:
    """BLAKE2b-256 of the canonical JSON of ``parts``.

    JSON (an array, ASCII-escaped) rather than concatenation: "ab" + "c" and "a" + "bc" must not seed
    the same output, and ASCII escaping makes lone surrogates (which ``json.loads`` can produce from
    ``\\ud800``) hashable.
    """
    data = json.dumps(list(parts), ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


def _byte_stream(key: bytes) -> Iterator[int]:
    """An endless deterministic byte sequence: BLAKE2b keyed with ``key`` over a block counter."""
    counter = 0
    while True:
        yield from hashlib.blake2b(counter.to_bytes(8, "big"), key=key, digest_size=64).digest()
        counter += 1


# --- text generation -----------------------------------------------------------------------------------

# Exactly 64 plain words, so that one seed byte picks one word; all are ``\w+`` runs of ASCII letters,
# so each is exactly one token.
_VOCABULARY: tuple[str, ...] = (
    "the", "a", "node", "model", "answer", "request", "secure", "private", "enclave", "key",
    "signal", "river", "stone", "light", "quiet", "green", "small", "large", "early", "late",
    "under", "over", "and", "or", "but", "with", "without", "from", "to", "into",
    "across", "near", "far", "always", "never", "often", "slowly", "quickly", "bright", "dark",
    "water", "garden", "window", "paper", "letter", "number", "market", "forest", "valley", "bridge",
    "morning", "evening", "people", "city", "road", "house", "music", "story", "simple", "careful",
    "is", "was", "makes", "finds",
)  # fmt: skip
assert len(_VOCABULARY) == 64

# Each mark is one ``[^\w\s]`` character, hence one token. Commas are listed more often so that text reads
# as prose rather than a list of exclamations.
_PUNCTUATION: tuple[str, ...] = (",", ",", ",", ".", ".", ";", "!", "?", ":")
_SENTENCE_END: frozenset[str] = frozenset({".", "!", "?"})
_PUNCTUATION_BYTE = 232  # a seed byte at or above this, after a word, becomes punctuation (about 9 %)

_NATURAL_BASE = 4
_NATURAL_SPREAD = 29  # natural lengths are 4..32 tokens
_NATURAL_OVERRIDE_MAX = 4096


def _generate_tokens(key: bytes, count: int) -> list[str]:
    """``count`` tokens of word salad: a word first, never two punctuation marks in a row, and
    sentences capitalised, so that output looks like text in logs and demos."""
    tokens: list[str] = []
    capitalize = True
    previous_was_word = False
    stream = _byte_stream(key)
    while len(tokens) < count:
        byte = next(stream)
        if previous_was_word and byte >= _PUNCTUATION_BYTE:
            mark = _PUNCTUATION[(byte - _PUNCTUATION_BYTE) % len(_PUNCTUATION)]
            tokens.append(mark)
            capitalize = mark in _SENTENCE_END
            previous_was_word = False
        else:
            word = _VOCABULARY[byte % len(_VOCABULARY)]
            tokens.append(word.capitalize() if capitalize else word)
            capitalize = False
            previous_was_word = True
    return tokens


def _render(tokens: list[str]) -> str:
    """Join tokens so that :func:`tokenize` gives them back: a space before each word but the first,
    punctuation attached to the word before it."""
    parts: list[str] = []
    for position, token in enumerate(tokens):
        if position and token[0] not in _PUNCTUATION:
            parts.append(" ")
        parts.append(token)
    return "".join(parts)


@dataclass(frozen=True)
class _TextJob:
    model: str
    prompt_key: Any  # the JSON value hashed into the seed: the prompt text and nothing else
    prompt_tokens: int
    n: int
    max_tokens: int | None
    stop: tuple[str, ...]
    natural_tokens: int | None  # the mock-only ``x_mock_natural_tokens`` override


def _complete(job: _TextJob, index: int) -> tuple[str, str]:
    """The text and finish_reason of choice ``index``.

    A model "wants" to write its natural length (4 + seed % 29 tokens, or ``x_mock_natural_tokens``);
    ``max_tokens`` cuts it short with ``length``; a stop string found in what was generated cuts the text
    before its first occurrence with ``stop``. Only model, prompt and index seed the output, so sampling
    knobs (temperature, seed, ...) cannot make a replay differ.
    """
    key = _digest(b"mock-text", job.model, job.prompt_key, index)
    if job.natural_tokens is not None:
        natural = job.natural_tokens
    else:
        natural = _NATURAL_BASE + int.from_bytes(key[:8], "big") % _NATURAL_SPREAD
    count = natural if job.max_tokens is None else min(natural, job.max_tokens)
    finish = "length" if count < natural else "stop"
    text = _render(_generate_tokens(key, count))
    # Empty stop strings are ignored: they would "occur" at offset 0 of every text and blank it.
    hits = [position for position in (text.find(s) for s in job.stop if s) if position >= 0]
    if hits:
        text = text[: min(hits)]
        finish = "stop"
    return text, finish


def _pieces(text: str) -> list[str]:
    """Split ``text`` into one piece per token, each carrying the whitespace before it; trailing
    whitespace (a stop string can leave some) rides on the last piece. Joining the pieces gives ``text``
    back, which is what makes streamed deltas add up to the non-streamed content."""
    pieces: list[str] = []
    start = 0
    for match in _TOKEN_RE.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if pieces:
        pieces[-1] += text[start:]
    # Generated text starts with a word, so a prefix of it is either empty or holds a token.
    assert "".join(pieces) == text
    return pieces


# --- validation ----------------------------------------------------------------------------------------


def _fail(field: str, reason: str) -> NoReturn:
    raise PlaintextError(field, reason)


_ARTICLED: dict[str, str] = {
    "null": "null",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}


def _is_int(value: Any) -> bool:
    # ``bool`` is a subclass of ``int`` in Python, and ``1.0`` is a float: JSON ``true`` and ``1.0`` are
    # not integers, and a node that took them as such would disagree with serde-based upstream.
    return isinstance(value, int) and not isinstance(value, bool)


def _matches(value: Any, kind: str) -> bool:
    if kind == "number":
        return _is_int(value) or (isinstance(value, float) and math.isfinite(value))
    if kind == "integer":
        return _is_int(value)
    return json_type(value) == kind


def _expect(value: Any, field: str, *kinds: str) -> None:
    """Refuse ``value`` unless its JSON type is one of ``kinds`` ("number" admits integers)."""
    if any(_matches(value, kind) for kind in kinds):
        return
    got = json_type(value)
    if got == "number":
        got = "a non-finite number" if not math.isfinite(value) else "number"
    _fail(field, f"must be {' or '.join(_ARTICLED[kind] for kind in kinds)}, got {got}")


def _optional_int(request: dict[str, Any], name: str, low: int, high: int | None) -> int | None:
    """An optional integer field (absent or null mean "not given") within ``low..high``."""
    value = request.get(name)
    if value is None:
        return None
    _expect(value, name, "integer")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        _fail(name, f"must be {bounds}")
    assert isinstance(value, int)
    return value


def _required_model(request: dict[str, Any]) -> str:
    if "model" not in request:
        _fail("model", "is required")
    model = request["model"]
    _expect(model, "model", "string")
    if not model:
        _fail("model", "must be a non-empty string")
    assert isinstance(model, str)
    return model


def _stop_strings(request: dict[str, Any]) -> tuple[str, ...]:
    value = request.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    _expect(value, "stop", "string", "array")
    if len(value) > 4:
        _fail("stop", f"must have at most 4 entries, got {len(value)}")
    for position, item in enumerate(value):
        _expect(item, f"stop[{position}]", "string")
    return tuple(value)


# Accepted-and-ignored fields: only their JSON type is checked, so that a client sending a wrong type
# learns about it, while values never change the output. Unknown keys are ignored altogether.
_LOOSE_COMMON: dict[str, tuple[str, ...]] = {
    "user": ("string", "null"),
    "stream": ("boolean", "null"),
}
_LOOSE_TEXT: dict[str, tuple[str, ...]] = {
    "temperature": ("number", "null"),
    "top_p": ("number", "null"),
    "presence_penalty": ("number", "null"),
    "frequency_penalty": ("number", "null"),
    "seed": ("integer", "null"),
    "top_logprobs": ("integer", "null"),
    "tools": ("array", "null"),
    "tool_choice": ("string", "object", "null"),
    "parallel_tool_calls": ("boolean", "null"),
    "response_format": ("object", "null"),
    "logit_bias": ("object", "null"),
    "stream_options": ("object", "null"),
    "metadata": ("object", "null"),
    "store": ("boolean", "null"),
}
_LOOSE_BY_ENDPOINT: dict[str, dict[str, tuple[str, ...]]] = {
    "chat": {**_LOOSE_TEXT, "logprobs": ("boolean", "null")},
    "completions": {
        **_LOOSE_TEXT,
        "logprobs": ("integer", "null"),
        "echo": ("boolean", "null"),
        "best_of": ("integer", "null"),
        "suffix": ("string", "null"),
    },
    "embeddings": {},
    "images": {"quality": ("string", "null"), "style": ("string", "null")},
}


def _check_loose(endpoint: str, request: dict[str, Any]) -> None:
    for name, kinds in {**_LOOSE_COMMON, **_LOOSE_BY_ENDPOINT[endpoint]}.items():
        if name in request:
            _expect(request[name], name, *kinds)
    if endpoint not in STREAMABLE:
        return
    # Nested checks name fixed paths only: a path never includes a key the client chose.
    for position, tool in enumerate(request.get("tools") or []):
        _expect(tool, f"tools[{position}]", "object")
    logit_bias = request.get("logit_bias") or {}
    if not all(_matches(bias, "number") for bias in logit_bias.values()):
        _fail("logit_bias", "every value must be a finite number")
    stream_options = request.get("stream_options") or {}
    if "include_usage" in stream_options:
        _expect(stream_options["include_usage"], "stream_options.include_usage", "boolean", "null")


def _token_sequences(value: Any, field: str) -> list[str | list[int]]:
    """A prompt or embeddings input, as upstream accepts it: a string, an array of strings, an array of
    token ids, or an array of arrays of token ids. Everything must be non-empty: an empty input has
    nothing to complete or embed. Returns the separate inputs (a flat id array is one input)."""
    if isinstance(value, str):
        if not value:
            _fail(field, "must be a non-empty string")
        return [value]
    _expect(value, field, "string", "array")
    if not value:
        _fail(field, "must be a non-empty array")
    first = value[0]
    if isinstance(first, str):
        for position, item in enumerate(value):
            _expect(item, f"{field}[{position}]", "string")
            if not item:
                _fail(f"{field}[{position}]", "must be a non-empty string")
        return list(value)
    if _is_int(first):
        _check_token_ids(value, field)
        return [list(value)]
    if isinstance(first, list):
        for position, item in enumerate(value):
            _expect(item, f"{field}[{position}]", "array")
            if not item:
                _fail(f"{field}[{position}]", "must be a non-empty array of token ids")
            _check_token_ids(item, f"{field}[{position}]")
        return [list(item) for item in value]
    _fail(f"{field}[0]", f"must be a string, an integer token id or an array of token ids, got {json_type(first)}")


def _check_token_ids(ids: list[Any], field: str) -> None:
    for position, token_id in enumerate(ids):
        _expect(token_id, f"{field}[{position}]", "integer")
        if token_id < 0:
            _fail(f"{field}[{position}]", "must be a non-negative token id")


def _sequence_tokens(item: str | list[int]) -> int:
    return count_tokens(item) if isinstance(item, str) else len(item)


_ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool", "developer", "function")
_NULL_CONTENT_ROLES: frozenset[str] = frozenset({"assistant", "tool"})


def _message_texts(message: Any, path: str) -> tuple[str, list[str]]:
    """The role and the text fragments of one chat message (string content, or the "text" of parts of
    type "text"; other part types carry no text and count no tokens)."""
    _expect(message, path, "object")
    if "role" not in message:
        _fail(f"{path}.role", "is required")
    role = message["role"]
    _expect(role, f"{path}.role", "string")
    if role not in _ROLES:
        _fail(f"{path}.role", "must be one of " + ", ".join(repr(r) for r in _ROLES))
    for name in ("name", "tool_call_id"):
        if name in message:
            _expect(message[name], f"{path}.{name}", "string", "null")
    if "tool_calls" in message:
        _expect(message["tool_calls"], f"{path}.tool_calls", "array", "null")
    content = message.get("content")  # absent is null, as upstream treats an assistant tool-call turn
    if content is None:
        if role not in _NULL_CONTENT_ROLES:
            _fail(f"{path}.content", "is required (null or absent only for assistant and tool messages)")
        return role, []
    if isinstance(content, str):
        return role, [content]
    _expect(content, f"{path}.content", "string", "array", "null")
    texts: list[str] = []
    for position, part in enumerate(content):
        part_path = f"{path}.content[{position}]"
        _expect(part, part_path, "object")
        if "type" not in part:
            _fail(f"{part_path}.type", "is required")
        _expect(part["type"], f"{part_path}.type", "string")
        if part["type"] == "text":
            if "text" not in part:
                _fail(f"{part_path}.text", "is required for a part of type 'text'")
            _expect(part["text"], f"{part_path}.text", "string")
            texts.append(part["text"])
    return role, texts


def _text_job(endpoint: str, request: dict[str, Any], model: str) -> _TextJob:
    if endpoint == "chat":
        if "messages" not in request:
            _fail("messages", "is required")
        messages = request["messages"]
        _expect(messages, "messages", "array")
        if not messages:
            _fail("messages", "must be a non-empty array")
        turns = [_message_texts(message, f"messages[{i}]") for i, message in enumerate(messages)]
        prompt_key: Any = [[role, texts] for role, texts in turns]
        prompt_tokens = sum(count_tokens(role) + sum(count_tokens(text) for text in texts) for role, texts in turns)
    else:
        if "prompt" not in request:
            _fail("prompt", "is required")
        sequences = _token_sequences(request["prompt"], "prompt")
        prompt_key = request["prompt"]
        prompt_tokens = sum(_sequence_tokens(item) for item in sequences)
    max_tokens = _optional_int(request, "max_tokens", 1, None)
    max_completion_tokens = _optional_int(request, "max_completion_tokens", 1, None)
    if endpoint == "chat" and max_completion_tokens is not None:
        max_tokens = max_completion_tokens  # the newer name wins, as upstream
    n = _optional_int(request, "n", 1, 8)
    natural = _optional_int(request, "x_mock_natural_tokens", 1, _NATURAL_OVERRIDE_MAX)
    return _TextJob(
        model=model,
        prompt_key=prompt_key,
        prompt_tokens=prompt_tokens,
        n=1 if n is None else n,
        max_tokens=max_tokens,
        stop=_stop_strings(request),
        natural_tokens=natural,
    )


_DEFAULT_DIMENSIONS = 16
_MAX_SIDE = 4096
_SIZE_RE = re.compile(r"([0-9]{1,4})x([0-9]{1,4})")


@dataclass(frozen=True)
class _EmbeddingJob:
    model: str
    inputs: list[str | list[int]]
    dimensions: int


@dataclass(frozen=True)
class _ImageJob:
    prompt: str
    n: int


MAX_EMBEDDING_VALUES = 65_536


def _embedding_job(request: dict[str, Any], model: str) -> _EmbeddingJob:
    if "input" not in request:
        _fail("input", "is required")
    inputs = _token_sequences(request["input"], "input")
    dimensions = _optional_int(request, "dimensions", 1, 4096)
    encoding = request.get("encoding_format")
    if encoding is not None:
        _expect(encoding, "encoding_format", "string")
        if encoding == "base64":
            _fail("encoding_format", "'base64' is not supported by the mock node; use 'float' or omit the field")
        if encoding != "float":
            _fail("encoding_format", "must be 'float'")
    size = _DEFAULT_DIMENSIONS if dimensions is None else dimensions
    if len(inputs) * size > MAX_EMBEDDING_VALUES:
        # A tiny request must not buy an unbounded answer: cap inputs x dimensions.
        _fail("input", f"asks for {len(inputs)} inputs x {size} dimensions; at most {MAX_EMBEDDING_VALUES} values")
    return _EmbeddingJob(model, inputs, size)


def _image_job(request: dict[str, Any]) -> _ImageJob:
    if "prompt" not in request:
        _fail("prompt", "is required")
    prompt = request["prompt"]
    _expect(prompt, "prompt", "string")
    if not prompt:
        _fail("prompt", "must be a non-empty string")
    n = _optional_int(request, "n", 1, 4)
    size = request.get("size")
    if size is not None:
        _expect(size, "size", "string")
        match = _SIZE_RE.fullmatch(size)
        if match is None:
            _fail("size", "must have the form WIDTHxHEIGHT with 1 to 4 decimal digits per side")
        if not all(1 <= int(side) <= _MAX_SIDE for side in match.groups()):
            _fail("size", f"must have each side between 1 and {_MAX_SIDE}")
    response_format = request.get("response_format")
    if response_format is not None:
        _expect(response_format, "response_format", "string")
        if response_format == "url":
            _fail(
                "response_format",
                "'url' is refused: a confidential node must not hand out URLs to its results; use 'b64_json'",
            )
        if response_format != "b64_json":
            _fail("response_format", "must be 'b64_json'")
    return _ImageJob(prompt, 1 if n is None else n)


def _parse(endpoint: str, request: Any) -> _TextJob | _EmbeddingJob | _ImageJob:
    """Validate ``request`` in a fixed order and return what the generators need."""
    if endpoint not in _ENDPOINTS:
        # A caller bug, not a client error: deliberately not a PlaintextError.
        raise ValueError("endpoint must be one of " + ", ".join(sorted(_ENDPOINTS)))
    _expect(request, "$", "object")
    model = _required_model(request)
    job: _TextJob | _EmbeddingJob | _ImageJob
    if endpoint in STREAMABLE:
        job = _text_job(endpoint, request, model)
    else:
        # Common knobs are checked on every endpoint, even where they mean nothing, so that a type error
        # is reported the same way everywhere.
        _optional_int(request, "max_tokens", 1, None)
        _optional_int(request, "max_completion_tokens", 1, None)
        _stop_strings(request)
        job = _embedding_job(request, model) if endpoint == "embeddings" else _image_job(request)
    _check_loose(endpoint, request)
    return job


def validate(endpoint: Endpoint, request: dict[str, Any]) -> None:
    """Refuse a request the node must answer with 400, before any work is done.

    Raises :class:`PlaintextError` naming the first offending field. ``respond`` and ``stream`` run the
    same checks, so a request that passes here is one they can answer.
    """
    _parse(endpoint, request)


# --- outputs -------------------------------------------------------------------------------------------


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _embedding(model: str, item: str | list[int], dimensions: int) -> list[float]:
    """A unit vector seeded by model and input. Components are rounded to 6 decimals so that the JSON is
    short and its bytes stable across float formatting; the rounded vector stays unit within
    0.5e-6 * sqrt(dimensions)."""
    stream = _byte_stream(_digest(b"mock-embedding", model, item))
    raw: list[float] = []
    for _ in range(dimensions):
        word = bytes(next(stream) for _ in range(4))
        # (u + 0.5) / 2**31 - 1 is in (-1, 1) and never 0, so the norm is never 0.
        raw.append((int.from_bytes(word, "big") + 0.5) / 2**31 - 1)
    norm = math.sqrt(math.fsum(x * x for x in raw))
    return [round(x / norm, 6) + 0.0 for x in raw]  # + 0.0 turns -0.0 into 0.0


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_SIDE = 8


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(rgb: bytes) -> bytes:
    """A valid 8x8 RGB PNG of one colour, whatever ``size`` asked for: the suite checks that an image is
    well-formed base64 of a well-formed PNG, never its pixels, and 8x8 keeps every encrypted response
    tiny.

    The zlib stream is written by hand as one stored (uncompressed) deflate block rather than with
    ``zlib.compress``: compressor output differs between zlib builds (zlib, zlib-ng), and these bytes are
    hashed and signed, so they must be identical everywhere.
    """
    header = struct.pack(">IIBBBBB", _PNG_SIDE, _PNG_SIDE, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    raw = (b"\x00" + rgb * _PNG_SIDE) * _PNG_SIDE  # each row: filter type 0 (None), then the pixels
    stored = b"\x01" + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF) + raw  # BFINAL=1, BTYPE=00
    idat = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(raw))
    return _PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _text_choices(job: _TextJob) -> list[tuple[str, str]]:
    return [_complete(job, index) for index in range(job.n)]


def respond(endpoint: Endpoint, request: dict[str, Any], *, request_id: str, created: int) -> dict[str, Any]:
    """The complete (non-streaming) response body, key order as upstream OpenAI/vLLM emit it.

    Key order matters because the node hashes and signs the serialized body: two nodes that agree on
    values but not on order produce different ``response_hash`` values.
    """
    job = _parse(endpoint, request)
    if isinstance(job, _TextJob):
        results = _text_choices(job)
        usage = _usage(job.prompt_tokens, sum(count_tokens(text) for text, _ in results))
        if endpoint == "chat":
            return {
                "id": f"chatcmpl-{request_id}",
                "object": "chat.completion",
                "created": created,
                "model": job.model,
                "choices": [
                    {
                        "index": index,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                    for index, (text, finish) in enumerate(results)
                ],
                "usage": usage,
            }
        return {
            "id": f"cmpl-{request_id}",
            "object": "text_completion",
            "created": created,
            "model": job.model,
            "choices": [
                {"index": index, "text": text, "logprobs": None, "finish_reason": finish}
                for index, (text, finish) in enumerate(results)
            ],
            "usage": usage,
        }
    if isinstance(job, _EmbeddingJob):
        prompt_tokens = sum(_sequence_tokens(item) for item in job.inputs)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": _embedding(job.model, item, job.dimensions)}
                for index, item in enumerate(job.inputs)
            ],
            "model": job.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    return {
        "created": created,
        "data": [
            {
                "b64_json": base64.b64encode(_png(_digest(b"mock-image", job.prompt, index)[:3])).decode("ascii"),
                "revised_prompt": job.prompt,
            }
            for index in range(job.n)
        ],
    }


def stream(endpoint: Endpoint, request: dict[str, Any], *, request_id: str, created: int) -> list[dict[str, Any]]:
    """The response as the list of stream chunks (each one SSE ``data:`` payload), in emission order.

    Order: for each choice a role chunk (chat only: delta ``{"role": "assistant", "content": ""}``); then
    one chunk per token, round-robin over the choices still generating (as a batched server interleaves
    them), each delta holding exactly one token with the whitespace before it; then for each choice a
    finish chunk (empty delta / empty text, with ``finish_reason``); then one usage chunk with
    ``choices: []``. Concatenating the deltas of choice *i* gives the non-streaming content of choice *i*,
    and the final usage equals the non-streaming usage.

    Chunk count: ``completion_tokens + 2 * n + 1`` for chat and ``completion_tokens + n + 1`` for
    completions; with chat and n=1 that is ``completion_tokens + 3`` (role, tokens..., finish, usage).
    To get an exact chat stream of C chunks, send ``max_tokens = C - 3`` with ``x_mock_natural_tokens``
    of at least that (and no ``stop``): 64 chunks is ``max_tokens=61``.

    Raises :class:`PlaintextError` (field ``stream``) for endpoints that do not stream.
    """
    job = _parse(endpoint, request)
    if not isinstance(job, _TextJob):
        _fail("stream", "is not supported for this endpoint; only chat and completions stream")
    chat = endpoint == "chat"
    head: dict[str, Any] = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{request_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": job.model,
    }

    def chunk(choice: dict[str, Any]) -> dict[str, Any]:
        return {**head, "choices": [choice], "usage": None}

    def piece(index: int, text: str) -> dict[str, Any]:
        if chat:
            return {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        return {"index": index, "text": text, "logprobs": None, "finish_reason": None}

    def finish(index: int, reason: str) -> dict[str, Any]:
        if chat:
            return {"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}
        return {"index": index, "text": "", "logprobs": None, "finish_reason": reason}

    results = _text_choices(job)
    pieces = [_pieces(text) for text, _ in results]
    chunks: list[dict[str, Any]] = []
    if chat:
        role = {"role": "assistant", "content": ""}
        chunks.extend(
            chunk({"index": index, "delta": dict(role), "logprobs": None, "finish_reason": None})
            for index in range(job.n)
        )
    for position in range(max((len(p) for p in pieces), default=0)):
        chunks.extend(chunk(piece(index, p[position])) for index, p in enumerate(pieces) if position < len(p))
    chunks.extend(chunk(finish(index, reason)) for index, (_, reason) in enumerate(results))
    completion_tokens = sum(len(p) for p in pieces)
    chunks.append({**head, "choices": [], "usage": _usage(job.prompt_tokens, completion_tokens)})
    return chunks

"""Hypothesis strategies for Atoma's confidential compute API, for use in anyone's own tests.

Why a public module: every fuzzer of a node, a proxy or a client needs the same four ingredients —
plaintext requests a node must serve, JSON texts that mean the same as a given value, randomness to
seal with, and envelope mutations whose expected verdict is known — and each copy written by hand
drifts from the spec. Everything here draws from :mod:`hypothesis.strategies`, shrinks well, and is
cheap enough to run thousands of times per CI run. Nothing here imports pytest.

- :func:`chat_requests`, :func:`completions_requests`, :func:`embeddings_requests`,
  :func:`image_requests` and the dispatcher :func:`plaintext_requests`: JSON-ready plaintext bodies.
- :func:`serializations`: other UTF-8 JSON texts of one value (key order, whitespace, escapes).
- :func:`seal_randomness`: the 60 bytes :func:`~conformance.protocol.envelope.seal_request` draws.
- :class:`Mutation` and :func:`mutations`: labelled envelope mutations, each naming the catalogue
  check and the ``docs/spec.md`` requirements it exercises, and whether a node must refuse it.
- :func:`sse_framings`: the network reads of a valid event stream, framed in every legal way.

Usage::

    from hypothesis import given
    from conformance import strategies as cs
    from conformance.protocol import FixedBytes, jsonwire, seal_request

    @given(cs.chat_requests("my-model"), cs.seal_randomness(), cs.mutations(include_accepting=False))
    def test_node_refuses_tampering(body, r, mutation):
        sealed = seal_request(
            jsonwire.dumps(body), node_public_key=NODE_PK, model_name="my-model", stack_small_id=STACK,
            rng=FixedBytes(r[:32], r[32:48], r[48:]),
        )
        response = post("/v1/confidential/chat/completions", mutation.apply(sealed.request.to_json()))
        assert response.status_code == 400, mutation.label()
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from conformance.protocol import (
    HASH_LEN,
    NONCE_LEN,
    SALT_LEN,
    TAG_LEN,
    X25519_KEY_LEN,
    b64decode,
    b64encode,
    canonical_public_key,
    jsonwire,
    low_order_encodings,
    x25519_public_key,
)

__all__ = [
    "MUTATION_FAMILIES",
    "Mutation",
    "NotProducible",
    "chat_requests",
    "completions_requests",
    "embeddings_requests",
    "image_requests",
    "mutations",
    "plaintext_requests",
    "seal_randomness",
    "serializations",
    "sse_framings",
]

# --- text ---------------------------------------------------------------------------------------------

# Hand-picked fragments that break naive code: multi-code-point emoji (ZWJ sequences, flags, skin tones,
# variation selectors), right-to-left scripts and bidi overrides, combining marks (including one with no
# base character), JSON/HTML metacharacters, Unicode line separators, a BOM and the last plane.
_EMOJI = ("😀", "👩\u200d💻", "🇫🇷", "👍🏽", "🧪", "❤\ufe0f", "🫠")
_RTL = ("שלום", "مرحبا بالعالم", "\u202eevil\u202c", "\u200f", "עברית 123")
_COMBINING = ("e\u0301", "Z\u0324\u0308\u0301", "\u0300", "a\u20dd", "\u0915\u094d\u0937")
_OTHER = (
    "\x00",
    "\t",
    "\n",
    "\r\n",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\U0010fffd",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\ufffd",
    '"',
    "\\",
    "</script>",
    "\\u0000",
)
_SPECIAL: tuple[str, ...] = _EMOJI + _RTL + _COMBINING + _OTHER

# One fragment of text: a special fragment, one C0 control character (JSON must escape every one of them),
# or arbitrary text from every plane (Hypothesis leaves out lone surrogates, which UTF-8 cannot carry).
_PIECE: SearchStrategy[str] = st.one_of(
    st.sampled_from(_SPECIAL),
    st.characters(min_codepoint=0x00, max_codepoint=0x1F),
    st.text(max_size=12),
)
_SHORT_TEXT: SearchStrategy[str] = st.lists(_PIECE, max_size=6).map("".join)
_NONEMPTY_TEXT: SearchStrategy[str] = st.lists(_PIECE, min_size=1, max_size=6).map("".join).filter(bool)

_LONG_TEXT_BYTES = 4096


def _fill(seed: str, size: int) -> str:
    """``seed`` repeated to ``size`` UTF-8 bytes (a character cut at the end is dropped).

    Why repeat rather than draw: drawing 4 KiB character by character costs thousands of choices per
    example, and the interesting part of a long string is its length, not its entropy.
    """
    raw = seed.encode("utf-8")
    return (raw * (size // len(raw) + 1))[:size].decode("utf-8", "ignore")


_LONG_TEXT: SearchStrategy[str] = st.builds(
    _fill,
    st.lists(st.sampled_from(_SPECIAL) | st.text(min_size=1, max_size=12), min_size=1, max_size=4).map("".join),
    st.integers(min_value=1024, max_value=_LONG_TEXT_BYTES),
)


def _require_model(model: str) -> None:
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string (a node refuses a request without one, R3.14)")


def _maybe(draw: st.DrawFn, body: dict[str, Any], key: str, values: SearchStrategy[Any]) -> None:
    """Set ``body[key]`` to a drawn value, or leave it out; shrinks towards leaving it out."""
    if draw(st.booleans()):
        body[key] = draw(values)


def _set_stream(draw: st.DrawFn, body: dict[str, Any], stream: bool | None) -> None:
    if stream is None:
        if draw(st.booleans()):
            body["stream"] = False
    else:
        body["stream"] = stream


_TEMPERATURE: SearchStrategy[float | int] = st.one_of(
    st.floats(min_value=0.0, max_value=2.0), st.integers(min_value=0, max_value=2)
)
_STOP_TEXT: SearchStrategy[str] = st.text(min_size=1, max_size=8)
_STOP: SearchStrategy[str | list[str]] = st.one_of(_STOP_TEXT, st.lists(_STOP_TEXT, min_size=1, max_size=4))
_USER: SearchStrategy[str] = st.text(max_size=16)


def _text_knobs(draw: st.DrawFn, body: dict[str, Any]) -> None:
    _maybe(draw, body, "max_tokens", st.integers(min_value=1, max_value=64))
    _maybe(draw, body, "temperature", _TEMPERATURE)
    _maybe(draw, body, "n", st.integers(min_value=1, max_value=2))
    _maybe(draw, body, "stop", _STOP)
    _maybe(draw, body, "user", _USER)


# --- chat ---------------------------------------------------------------------------------------------


@st.composite
def _messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An optional system turn, 0-2 user/assistant pairs, then a user turn.

    Why alternating: many chat templates (Llama, Mistral, Gemma) raise on two user turns in a row or a
    conversation that does not end with the user, and a real node then answers 400 for a body that is
    perfectly valid JSON. At most one message is long, so that a request stays within small contexts.
    """
    roles = ["system"] if draw(st.booleans()) else []
    roles += ["user", "assistant"] * draw(st.integers(min_value=0, max_value=2))
    roles.append("user")
    long_at = draw(st.integers(min_value=0, max_value=4 * len(roles) - 1))  # a long message 1 time in 4
    return [
        {"role": role, "content": draw(_LONG_TEXT if position == long_at else _SHORT_TEXT)}
        for position, role in enumerate(roles)
    ]


_TOOL_NAMES = ("get_weather", "lookup", "search_docs", "convert-units", "f", "tool_2")
_PARAMETER_NAMES = ("city", "query", "limit", "unit", "ratio", "strict")
_PARAMETER_TYPES = ("string", "integer", "number", "boolean")


@st.composite
def _tools(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-2 function tools with distinct names and JSON-schema object parameters."""
    tools: list[dict[str, Any]] = []
    for name in draw(st.lists(st.sampled_from(_TOOL_NAMES), min_size=1, max_size=2, unique=True)):
        properties = draw(
            st.dictionaries(st.sampled_from(_PARAMETER_NAMES), st.sampled_from(_PARAMETER_TYPES), max_size=3)
        )
        parameters: dict[str, Any] = {
            "type": "object",
            "properties": {key: {"type": kind} for key, kind in properties.items()},
            "required": [key for key in properties if draw(st.booleans())],
        }
        function: dict[str, Any] = {"name": name}
        _maybe(draw, function, "description", _SHORT_TEXT)
        function["parameters"] = parameters
        tools.append({"type": "function", "function": function})
    return tools


@st.composite
def _chat(draw: st.DrawFn, model: str, stream: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": draw(_messages())}
    if draw(st.booleans()):
        body["tools"] = draw(_tools())
        if draw(st.booleans()):
            body["tool_choice"] = "auto"
    _text_knobs(draw, body)
    _set_stream(draw, body, stream)
    return body


def chat_requests(model: str, *, stream: bool | None = None) -> SearchStrategy[dict[str, Any]]:
    """Chat completion bodies (JSON-ready dicts) that a conformant node serving ``model`` must answer.

    Why: the envelope must carry any plaintext, so the content is hostile: text from every Unicode plane,
    emoji sequences, right-to-left text and bidi overrides, combining marks, every C0 control character
    (``\\x00`` included; JSON escapes them), empty strings, and sometimes one message of 1-4 KiB. Roles
    are system/user/assistant in template-friendly order, always ending with a user turn. Optional:
    ``tools`` (1-2 function tools) with sometimes ``tool_choice: "auto"``, ``max_tokens`` 1..64,
    ``temperature`` 0..2, ``n`` 1..2, ``stop`` (a string or 1-4 strings) and ``user``.

    ``stream`` set to a bool is written as such; with ``None`` the member is absent or ``false``.
    Caveat for real nodes: vLLM answers 400 to ``tool_choice: "auto"`` unless it was started with
    ``--enable-auto-tool-choice``; filter ``"tools" not in body`` out if your node was not.
    """
    _require_model(model)
    return _chat(model, stream)


# --- completions, embeddings, images ------------------------------------------------------------------


@st.composite
def _completions(draw: st.DrawFn, model: str, stream: bool | None) -> dict[str, Any]:
    prompt = draw(st.one_of(_NONEMPTY_TEXT, _LONG_TEXT, st.lists(_NONEMPTY_TEXT, min_size=1, max_size=4)))
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    _text_knobs(draw, body)
    _set_stream(draw, body, stream)
    return body


def completions_requests(model: str, *, stream: bool | None = None) -> SearchStrategy[dict[str, Any]]:
    """Legacy completion bodies a conformant node serving ``model`` must answer.

    Why: the same hostile text as :func:`chat_requests`, as ``prompt`` — one non-empty string (sometimes
    1-4 KiB) or a list of 1-4 non-empty strings (empty prompts are a client error upstream). The same
    optional knobs as chat, without tools; ``stream`` as in :func:`chat_requests`.
    """
    _require_model(model)
    return _completions(model, stream)


@st.composite
def _embeddings(draw: st.DrawFn, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "input": draw(st.one_of(_NONEMPTY_TEXT, st.lists(_NONEMPTY_TEXT, min_size=1, max_size=4))),
    }
    _maybe(draw, body, "dimensions", st.integers(min_value=1, max_value=64))
    _maybe(draw, body, "encoding_format", st.just("float"))
    _maybe(draw, body, "user", _USER)
    return body


def embeddings_requests(model: str) -> SearchStrategy[dict[str, Any]]:
    """Embedding bodies a conformant node serving ``model`` must answer.

    Why: ``input`` as a non-empty string or 1-4 non-empty strings of hostile but short text (embedding
    models have short contexts, often 512 tokens), optional ``dimensions`` 1..64, ``encoding_format``
    ``"float"`` and ``user``. Caveat for real nodes: only Matryoshka models honour ``dimensions``.
    """
    _require_model(model)
    return _embeddings(model)


@st.composite
def _images(draw: st.DrawFn, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": draw(_NONEMPTY_TEXT)}
    _maybe(draw, body, "n", st.integers(min_value=1, max_value=2))
    _maybe(draw, body, "size", st.sampled_from(("256x256", "512x512")))
    body["response_format"] = "b64_json"
    return body


def image_requests(model: str) -> SearchStrategy[dict[str, Any]]:
    """Image generation bodies a conformant node serving ``model`` must answer.

    Why: a hostile non-empty ``prompt``, optional ``n`` 1..2 and ``size`` ``"256x256"``/``"512x512"``
    (small, so a real node answers quickly). ``response_format`` is always ``"b64_json"``: a confidential
    node must not hand out URLs, and the OpenAI default is ``"url"``.
    """
    _require_model(model)
    return _images(model)


def plaintext_requests(endpoint: str, model: str, *, stream: bool | None = None) -> SearchStrategy[dict[str, Any]]:
    """The plaintext strategy for ``endpoint`` (``"chat"``, ``"completions"``, ``"embeddings"``, ``"images"``).

    Why: a check parametrized over endpoints needs one entry point. Embeddings and images do not
    stream: ``stream=True`` for them raises ``ValueError``, and ``False`` leaves the member out.
    """
    if endpoint == "chat":
        return chat_requests(model, stream=stream)
    if endpoint == "completions":
        return completions_requests(model, stream=stream)
    if endpoint in ("embeddings", "images"):
        if stream:
            raise ValueError(f"the {endpoint} endpoint does not stream")
        return embeddings_requests(model) if endpoint == "embeddings" else image_requests(model)
    raise ValueError("endpoint must be one of 'chat', 'completions', 'embeddings', 'images'")


# --- serializations -----------------------------------------------------------------------------------

_WHITESPACE = ("", " ", "\n", "\t", "\r\n", "  ", " \n\t")
_EscapeMode = Literal["raw", "ascii", "ascii-upper", "all"]
_FloatStyle = Literal["repr", "e", "E"]


@dataclass(frozen=True)
class _Layout:
    """How to write a JSON value: separators, pretty-printing, string escapes and float form.

    Every choice is one JSON allows and none changes the value (integers stay integers, floats stay
    floats), so a strict reader with integer-typed members still accepts the text.
    """

    item_sep: str  # "," with whitespace around it
    key_sep: str  # ":" with whitespace around it
    open_ws: str  # after "[" / "{" (single-line layouts)
    close_ws: str  # before "]" / "}" (single-line layouts)
    indent: str | None  # pretty-printing: None for a single line
    newline: str  # the line break of pretty-printing
    escapes: _EscapeMode  # raw UTF-8, ensure_ascii (lower/upper hex), or every character as \\uXXXX
    escape_slash: bool  # write "/" as "\\/"
    floats: _FloatStyle  # shortest repr, or the same digits in exponent form
    lead: str  # whitespace before the document
    trail: str  # whitespace after the document

    def describe(self) -> str:
        pretty = f"indent {self.indent!r}, newline {self.newline!r}" if self.indent is not None else "one line"
        return (
            f"separators {self.item_sep!r} and {self.key_sep!r}, {pretty}, escapes {self.escapes}"
            + (", '/' escaped" if self.escape_slash else "")
            + (f", floats in {self.floats} form" if self.floats != "repr" else "")
        )


_WS = st.sampled_from(_WHITESPACE)
_LAYOUTS: SearchStrategy[_Layout] = st.builds(
    _Layout,
    item_sep=st.builds(lambda a, b: a + "," + b, _WS, _WS),
    key_sep=st.builds(lambda a, b: a + ":" + b, _WS, _WS),
    open_ws=_WS,
    close_ws=_WS,
    indent=st.sampled_from((None, "  ", "\t", "    ", "")),
    newline=st.sampled_from(("\n", "\r\n")),
    escapes=st.sampled_from(("raw", "ascii", "ascii-upper", "all")),
    escape_slash=st.booleans(),
    floats=st.sampled_from(("repr", "e", "E")),
    lead=_WS,
    trail=_WS,
)

_JSON_ESCAPE = re.compile(r"\\(?:u[0-9a-f]{4}|.)")


def _upper_hex(match: re.Match[str]) -> str:
    text = match.group(0)
    return text.upper().replace("\\U", "\\u") if text.startswith("\\u") else text


def _string(text: str, layout: _Layout) -> str:
    if layout.escapes == "all":
        units = text.encode("utf-16-be")
        out = '"' + "".join(f"\\u{units[i] << 8 | units[i + 1]:04x}" for i in range(0, len(units), 2)) + '"'
    else:
        out = json.dumps(text, ensure_ascii=layout.escapes != "raw")
        if layout.escapes == "ascii-upper":
            # Scanned escape by escape, so the "u" after an escaped backslash is never taken for one.
            out = _JSON_ESCAPE.sub(_upper_hex, out)
    return out.replace("/", "\\/") if layout.escape_slash else out


def _float(value: float, style: _FloatStyle) -> str:
    text = repr(value)  # what json.dumps writes: the shortest text that reads back as this float
    if style == "repr":
        return text
    # The same decimal digits in exponent form read back as the same float (the parse is correctly
    # rounded), and the exponent keeps the JSON number a float.
    out = format(Decimal(text), "e")
    return out.upper() if style == "E" else out


def _render(value: Any, layout: _Layout, level: int, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_float(value, layout.floats))
    elif isinstance(value, str):
        out.append(_string(value, layout))
    else:
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if not value:
            out.append(opening + layout.open_ws + closing)
            return
        if layout.indent is None:
            inner, outer = layout.open_ws, layout.close_ws
        else:
            inner = layout.newline + layout.indent * (level + 1)
            outer = layout.newline + layout.indent * level
        out.append(opening + inner)
        items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
        for position, (key, item) in enumerate(items):
            if position:
                out.append(layout.item_sep + (inner if layout.indent is not None else ""))
            if key is not None:
                out.append(_string(key, layout) + layout.key_sep)
            _render(item, layout, level + 1, out)
        out.append(outer + closing)


def _dump(value: Any, layout: _Layout) -> bytes:
    out = [layout.lead]
    _render(value, layout, 0, out)
    out.append(layout.trail)
    return "".join(out).encode("utf-8")


def _check_json(value: Any) -> None:
    """Refuse what has no exact JSON text: non-JSON types, non-string keys, NaN/infinities, lone surrogates."""
    pending = [value]
    while pending:
        item = pending.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("NaN and infinities have no JSON form")
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a string holds a lone surrogate, which UTF-8 JSON cannot carry") from None
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise TypeError("JSON object keys must be strings")
            pending.extend(item)
            pending.extend(item.values())
        else:
            raise TypeError(f"{type(item).__name__} is not a JSON value (use dict, list, str, int, float, bool, None)")


def _shuffled(draw: st.DrawFn, value: Any) -> Any:
    """A copy of ``value`` with every object's members in a drawn order."""
    if isinstance(value, dict):
        keys = list(value)
        if len(keys) > 1:
            keys = draw(st.permutations(keys))
        return {key: _shuffled(draw, value[key]) for key in keys}
    if isinstance(value, list):
        return [_shuffled(draw, item) for item in value]
    return value


@st.composite
def _serializations(draw: st.DrawFn, value: Any) -> bytes:
    return _dump(_shuffled(draw, value), draw(_LAYOUTS))


def serializations(value: Any) -> SearchStrategy[bytes]:
    """UTF-8 JSON texts that all parse back (with :func:`conformance.protocol.jsonwire.loads`) to ``value``.

    Why: R3.15 requires a node to accept any valid JSON serialization of the plaintext, and R3.2 any
    member order of the envelope, yet hashes cover bytes, so implementations that re-serialize or
    pattern-match bytes break on exactly these. Variations: every object's member order, whitespace
    around separators and the document, pretty-printing (space or tab indents, LF or CRLF),
    ``ensure_ascii``-style ``\\uXXXX`` escapes (lower or upper hex, surrogate pairs above the BMP) or every
    character escaped, optional ``\\/``, and floats in exponent form. Never duplicate keys or NaN;
    integers stay integers and floats stay floats, so the parse is equal even with
    ``strict_equal(..., numbers_by_value=False)``. ``value`` must be plain JSON (dict with str keys,
    list, str, int, float, bool, None) and finite, else ``TypeError``/``ValueError`` here.
    """
    _check_json(value)
    return _serializations(value)


# --- sealing randomness -------------------------------------------------------------------------------

_SEAL_RANDOMNESS_LEN = X25519_KEY_LEN + SALT_LEN + NONCE_LEN


def seal_randomness() -> SearchStrategy[bytes]:
    """Exactly 60 bytes: client private key (32) || salt (16) || nonce (12).

    Why: that is the order :func:`~conformance.protocol.envelope.seal_request` draws them, so a test can
    make sealing reproducible and shrinkable with ``rng=FixedBytes(r[:32], r[32:48], r[48:])``. Every
    32-byte string is a valid X25519 private key (the scalar is clamped).
    """
    return st.binary(min_size=_SEAL_RANDOMNESS_LEN, max_size=_SEAL_RANDOMNESS_LEN)


# --- mutations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One envelope mutation, labelled with the check it exercises and the verdict a node owes it.

    Why: a fuzzer that only knows "the node answered 400" cannot say which requirement a wrong answer
    violates. Each mutation carries the catalogue ``check_id`` a node fails by getting it wrong, the
    ``spec_refs`` of ``docs/spec.md``, ``expect`` (``"refuse"``: answer 4xx and release nothing;
    ``"accept"``: serve it like the original), a ``description`` and the drawn ``params``, so that
    :meth:`label` alone reproduces the failure.
    """

    name: str
    check_id: str
    spec_refs: tuple[str, ...]
    expect: Literal["refuse", "accept"]
    description: str
    params: tuple[Any, ...] = ()

    def apply(self, envelope: dict[str, Any]) -> bytes:
        """The exact request body bytes: ``envelope`` (a valid sealed envelope, as from
        ``ConfidentialComputeRequest.to_json()``) with this mutation applied.

        Deterministic (the same envelope always gives the same bytes) and never mutates ``envelope``.
        Everything but ``reserialized`` is written as compact JSON in the envelope's own member order.
        """
        family = _FAMILIES.get(self.name)
        if family is None:
            raise ValueError(f"unknown mutation family {self.name!r}")
        return family.apply(dict(envelope), self.params)

    def label(self) -> str:
        """``"<check id> <name> (<description>)"``, e.g. ``"ERR-002 tag-bit-flip (bit 3 of byte 7 of the GCM tag
        flipped)"``: what a failure report should print."""
        return f"{self.check_id} {self.name} ({self.description})"


_BINARY = ("ciphertext", "client_dh_public_key", "node_dh_public_key", "nonce", "plaintext_body_hash", "salt")
_PADDED = ("client_dh_public_key", "node_dh_public_key", "plaintext_body_hash", "salt")  # always end in "="
_FIXED_LENGTH = {
    "nonce": NONCE_LEN,
    "salt": SALT_LEN,
    "client_dh_public_key": X25519_KEY_LEN,
    "node_dh_public_key": X25519_KEY_LEN,
    "plaintext_body_hash": HASH_LEN,
}
_REQUIRED = (
    "ciphertext",
    "client_dh_public_key",
    "model_name",
    "node_dh_public_key",
    "nonce",
    "plaintext_body_hash",
    "salt",
    "stack_small_id",
)
_MEMBERS = (*_REQUIRED, "num_compute_units", "stream")
_STRING_MEMBERS = tuple(m for m in _REQUIRED if m != "stack_small_id")
# JSON types each member must NOT have (R3.1, R3.11, R3.12): null is wrong for a required member, while
# num_compute_units may be null or an integer and stream null or a boolean.
_WRONG_TYPES: dict[str, tuple[str, ...]] = {
    **{m: ("integer", "float", "boolean", "null", "array", "object") for m in _STRING_MEMBERS},
    "stack_small_id": ("string", "float", "boolean", "null", "array", "object"),
    "num_compute_units": ("string", "float", "boolean", "array", "object"),
    "stream": ("integer", "string", "float", "array", "object"),
}
_TYPE_CONFUSIONS = tuple((member, kind) for member, kinds in _WRONG_TYPES.items() for kind in kinds)
_EXTRA_NAMES = ("x_fuzz", "x-conformance", "extensions", "metadata", "Ciphertext", "nonce ", "été", "")
_WHITESPACE_INSERTS = (" ", "\n", "\r\n")
_LOW_ORDER = tuple(low_order_encodings())
_LOW_ORDER_NAMES = (
    "u = 0",
    "u = 1",
    "a u of order 8",
    "the other u of order 8",
    "u = p - 1",
    "u = p, a non-canonical 0",
    "u = p + 1, a non-canonical 1",
)
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_JSON_SCALARS: SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_JSON_VALUES: SearchStrategy[Any] = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)


def _dumps(envelope: dict[str, Any]) -> bytes:
    return jsonwire.dumps(envelope)


def _flip(data: bytes, index: int, bit: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _decoded(envelope: dict[str, Any], member: str) -> bytes:
    return b64decode(envelope[member], field=member)


def _flip_member(member: str) -> Callable[[dict[str, Any], tuple[Any, ...]], bytes]:
    def apply(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
        index, bit = params
        envelope[member] = b64encode(_flip(_decoded(envelope, member), index, bit))
        return _dumps(envelope)

    return apply


def _ciphertext_bit_flip(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    index, bit = params
    sealed = _decoded(envelope, "ciphertext")
    body = len(sealed) - TAG_LEN
    if body <= 0:
        raise ValueError("the ciphertext has no body before its tag to flip (the plaintext was empty)")
    envelope["ciphertext"] = b64encode(_flip(sealed, index % body, bit))
    return _dumps(envelope)


def _tag_bit_flip(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    index, bit = params
    sealed = _decoded(envelope, "ciphertext")
    envelope["ciphertext"] = b64encode(_flip(sealed, len(sealed) - TAG_LEN + index, bit))
    return _dumps(envelope)


def _truncate(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    (drop,) = params
    envelope["ciphertext"] = b64encode(_decoded(envelope, "ciphertext")[:-drop])
    return _dumps(envelope)


def _other_public_key(seed: int, avoid: bytes) -> bytes:
    """The X25519 public key of a private key derived from ``seed``, never (an encoding of) ``avoid``."""
    attempt = 0
    while True:
        private = hashlib.blake2b(
            b"atoma-conformance/mutation-key" + seed.to_bytes(8, "big") + attempt.to_bytes(4, "big"), digest_size=32
        ).digest()
        public = x25519_public_key(private)
        if len(avoid) != X25519_KEY_LEN or public != canonical_public_key(avoid):
            return public
        attempt += 1  # pragma: no cover - a 2**-255 event, or a caller who sealed with this very key


def _swap_key(member: str) -> Callable[[dict[str, Any], tuple[Any, ...]], bytes]:
    def apply(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
        (seed,) = params
        envelope[member] = b64encode(_other_public_key(seed, _decoded(envelope, member)))
        return _dumps(envelope)

    return apply


def _low_order(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    (index,) = params
    envelope["client_dh_public_key"] = b64encode(_LOW_ORDER[index])
    return _dumps(envelope)


def _field_missing(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    (member,) = params
    envelope.pop(member, None)
    return _dumps(envelope)


def _wrong_value(kind: str, original: Any, present: bool) -> Any:
    """A value of JSON type ``kind``, made from the member's original value where that is most confusable."""
    if kind == "integer":
        return int(original) if isinstance(original, bool) else 1
    if kind == "float":
        return float(original) if present and isinstance(original, int) and not isinstance(original, bool) else 1.0
    if kind == "string":
        return jsonwire.dumps(original).decode("utf-8") if present and original is not None else "1"
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        return [original] if present else []
    return {"value": original} if present else {}


def _type_confusion(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    member, kind = params
    present = member in envelope
    envelope[member] = _wrong_value(kind, envelope.get(member), present)
    return _dumps(envelope)


def _insert_whitespace(envelope: dict[str, Any], member: str, position: int, space: str) -> None:
    text: str = envelope[member]
    at = len(text) if position < 0 else min(position, len(text))
    envelope[member] = text[:at] + space + text[at:]


class NotProducible(ValueError):
    """A mutation that this envelope cannot carry: the member has no character the mutation changes
    (a URL-safe re-encoding of a value without '+' or '/' is the value itself). The caller re-seals,
    or records the case as not producible; it never counts as a refusal."""


def _urlsafe(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    member, *only = params
    if only and only[0]:  # the member table: this member or nothing
        text: str = envelope[member]
        if "+" not in text and "/" not in text:
            raise NotProducible(f"{member} has no '+' or '/' to re-encode in the URL-safe alphabet")
        envelope[member] = text.translate(str.maketrans("+/", "-_"))
        return _dumps(envelope)
    start = _BINARY.index(member)
    for candidate in _BINARY[start:] + _BINARY[:start]:
        value: str = envelope[candidate]
        if "+" in value or "/" in value:
            envelope[candidate] = value.translate(str.maketrans("+/", "-_"))
            return _dumps(envelope)
    _insert_whitespace(envelope, member, 1, " ")  # no member has a character that differs between alphabets
    return _dumps(envelope)


def _whitespace(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    member, position, space = params
    _insert_whitespace(envelope, member, position, space)
    return _dumps(envelope)


def _trailing_bits(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    member, bits = params
    text: str = envelope[member]
    data = text.rstrip("=")
    if data == text:
        raise NotProducible(f"{member} has no padding, so its last character has no unused bits")
    # A canonical last character has its unused low bits (2 or 4 of them) zero; setting 1-2 of them keeps
    # the decoded bytes and the padding but makes the encoding non-canonical.
    last = _B64_ALPHABET[_B64_ALPHABET.index(data[-1]) | bits]
    envelope[member] = data[:-1] + last + text[len(data) :]
    return _dumps(envelope)


def _unpadded(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    (member,) = params
    text: str = envelope[member]
    if not text.endswith("="):
        raise NotProducible(f"{member} has no '=' padding to strip (its length is a multiple of 3)")
    envelope[member] = text.rstrip("=")
    return _dumps(envelope)


def _surplus_padding(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    (member,) = params
    text: str = envelope[member]
    # One '=' more than the final quantum allows; a value with no padding gets a whole quantum of it.
    envelope[member] = text + ("=" if text.endswith("=") else "====")
    return _dumps(envelope)


def _ciphertext_short(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    (length,) = params
    envelope["ciphertext"] = b64encode(_decoded(envelope, "ciphertext")[:length])
    return _dumps(envelope)


_PLACEHOLDER = "atoma-conformance/number-placeholder"


def _integer_form(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    """An integer member written in a number form the spec refuses (R3.11: a fraction or an exponent),
    or a value outside its range; the JSON text is exact, since a parser would normalise it."""
    member, form = params
    value = envelope.get(member)
    base = value if isinstance(value, int) and not isinstance(value, bool) else 1
    text = {"exponent": f"{base}e0", "negative": "-1", "above-u64": str(2**64)}[form]
    envelope[member] = _PLACEHOLDER
    return _dumps(envelope).replace(jsonwire.dumps(_PLACEHOLDER), text.encode("ascii"))


def _body_not_object(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    """The envelope made into a body that is not one JSON object (R3.1): an array holding it, the
    object followed by more text, a JSON string of it, or the object with a byte that is not UTF-8."""
    (form,) = params
    body = _dumps(envelope)
    if form == "array":
        return b"[" + body + b"]"
    if form == "trailing-data":
        return body + b" {}"
    if form == "string":
        return jsonwire.dumps(body.decode("utf-8"))
    model = jsonwire.dumps(envelope["model_name"])  # "invalid-utf8": a lone 0xff inside a string
    return body.replace(model, model[:-1] + b'\xff"', 1)


def _wrong_length(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    member, delta, fill = params
    raw = _decoded(envelope, member)
    envelope[member] = b64encode(raw[:-1] if delta < 0 else raw + bytes([fill]))
    return _dumps(envelope)


def _extra_member(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    name, position, value_json = params
    items = list(envelope.items())
    items.insert(min(position, len(items)), (name, jsonwire.loads(value_json)))
    return _dumps(dict(items))


def _reserialized(envelope: dict[str, Any], params: tuple[Any, ...]) -> bytes:
    layout, order = params
    rank = {member: position for position, member in enumerate(order)}
    keys = sorted(envelope, key=lambda key: rank.get(key, len(rank)))
    return _dump({key: envelope[key] for key in keys}, layout)


@dataclass(frozen=True)
class _Family:
    name: str
    check_id: str
    spec_refs: tuple[str, ...]
    expect: Literal["refuse", "accept"]
    params: SearchStrategy[tuple[Any, ...]]
    describe: Callable[[tuple[Any, ...]], str]
    apply: Callable[[dict[str, Any], tuple[Any, ...]], bytes]

    def strategy(self) -> SearchStrategy[Mutation]:
        return self.params.map(
            lambda p: Mutation(self.name, self.check_id, self.spec_refs, self.expect, self.describe(p), p)
        )


def _bits(size: int) -> SearchStrategy[tuple[Any, ...]]:
    return st.tuples(st.integers(min_value=0, max_value=size - 1), st.integers(min_value=0, max_value=7))


_SEEDS = st.tuples(st.integers(min_value=0, max_value=2**32 - 1))
_REFUSE: Literal["refuse"] = "refuse"
_ACCEPT: Literal["accept"] = "accept"


def _position(position: int) -> str:
    return "at the end" if position < 0 else f"before character {position}"


_FAMILY_LIST = (
    _Family(
        "ciphertext-bit-flip",
        "ERR-001",
        ("R5.4", "R10.5", "R10.8"),
        _REFUSE,
        st.tuples(st.integers(min_value=0, max_value=4095), st.integers(min_value=0, max_value=7)),
        lambda p: f"bit {p[1]} of byte {p[0]} (modulo the body length) of the ciphertext body flipped",
        _ciphertext_bit_flip,
    ),
    _Family(
        "tag-bit-flip",
        "ERR-002",
        ("R5.4", "R10.5", "R10.8"),
        _REFUSE,
        _bits(TAG_LEN),
        lambda p: f"bit {p[1]} of byte {p[0]} of the GCM tag flipped",
        _tag_bit_flip,
    ),
    _Family(
        "ciphertext-truncated",
        "ERR-002",
        ("R5.2", "R5.4", "R10.5", "R10.8"),
        _REFUSE,
        st.tuples(st.integers(min_value=1, max_value=TAG_LEN)),
        lambda p: f"the last {p[0]} byte(s) of the decoded ciphertext dropped",
        _truncate,
    ),
    _Family(
        "nonce-bit-flip",
        "ERR-003",
        ("R5.4", "R10.8"),
        _REFUSE,
        _bits(NONCE_LEN),
        lambda p: f"bit {p[1]} of byte {p[0]} of the nonce flipped",
        _flip_member("nonce"),
    ),
    _Family(
        "salt-bit-flip",
        "ERR-004",
        ("R5.4", "R10.8"),
        _REFUSE,
        _bits(SALT_LEN),
        lambda p: f"bit {p[1]} of byte {p[0]} of the salt flipped",
        _flip_member("salt"),
    ),
    _Family(
        "client-key-swapped",
        "ERR-005",
        ("R5.4",),
        _REFUSE,
        _SEEDS,
        lambda p: f"client_dh_public_key replaced by another valid X25519 public key, from mutation seed {p[0]}",
        _swap_key("client_dh_public_key"),
    ),
    _Family(
        "node-key-swapped",
        "ERR-006",
        ("R3.13",),
        _REFUSE,
        _SEEDS,
        lambda p: f"node_dh_public_key replaced by another valid X25519 public key, from mutation seed {p[0]}",
        _swap_key("node_dh_public_key"),
    ),
    _Family(
        "hash-bit-flip",
        "ERR-007",
        ("R6.2", "R10.6"),
        _REFUSE,
        _bits(HASH_LEN),
        lambda p: f"bit {p[1]} of byte {p[0]} of plaintext_body_hash flipped",
        _flip_member("plaintext_body_hash"),
    ),
    _Family(
        "low-order-client-key",
        "ERR-008",
        ("R4.2",),
        _REFUSE,
        st.tuples(st.integers(min_value=0, max_value=len(_LOW_ORDER) - 1)),
        lambda p: (
            f"client_dh_public_key replaced by low-order encoding {p[0]} of {len(_LOW_ORDER)} "
            f"({_LOW_ORDER_NAMES[p[0] // 2]}, bit 255 {'set' if p[0] % 2 else 'clear'})"
        ),
        _low_order,
    ),
    _Family(
        "field-missing",
        "ERR-009",
        ("R3.1",),
        _REFUSE,
        st.tuples(st.sampled_from(_REQUIRED)),
        lambda p: f"required member {p[0]} removed",
        _field_missing,
    ),
    _Family(
        "type-confusion",
        "ERR-010",
        ("R3.1", "R3.11", "R3.12"),
        _REFUSE,
        st.sampled_from(_TYPE_CONFUSIONS),
        lambda p: f"{p[0]} set to a JSON {p[1]}",
        _type_confusion,
    ),
    _Family(
        "base64-urlsafe",
        "ERR-014",
        ("R3.4", "R10.3"),
        _REFUSE,
        st.tuples(st.sampled_from(_BINARY)),
        lambda p: (
            f"{p[0]} re-encoded in the URL-safe alphabet"
            if p[1:] and p[1]
            else f"{p[0]}, or the next binary member with '+' or '/', re-encoded in the URL-safe alphabet "
            "(a space inserted if no member has either)"
        ),
        _urlsafe,
    ),
    _Family(
        "base64-whitespace",
        "ERR-014",
        ("R3.4", "R10.3"),
        _REFUSE,
        st.tuples(
            st.sampled_from(_BINARY),
            st.integers(min_value=-1, max_value=16),
            st.sampled_from(_WHITESPACE_INSERTS),
        ),
        lambda p: f"{p[2]!r} inserted into {p[0]} {_position(p[1])}",
        _whitespace,
    ),
    _Family(
        "base64-trailing-bits",
        "ERR-014",
        ("R3.4", "R10.3"),
        _REFUSE,
        st.tuples(st.sampled_from(_PADDED), st.integers(min_value=1, max_value=3)),
        lambda p: f"unused low bits {p[1]:02b} of the last data character of {p[0]} set (non-canonical)",
        _trailing_bits,
    ),
    _Family(
        "base64-unpadded",
        "ERR-015",
        ("R3.4", "R10.3"),
        _REFUSE,
        st.tuples(st.sampled_from(_PADDED)),
        lambda p: f"'=' padding stripped from {p[0]}",
        _unpadded,
    ),
    _Family(
        "wrong-length",
        "ERR-024",
        ("R3.5", "R3.6", "R3.7", "R3.8", "R3.9", "R10.3"),
        _REFUSE,
        st.tuples(
            st.sampled_from(tuple(_FIXED_LENGTH)),
            st.sampled_from((-1, 1)),
            st.integers(min_value=0, max_value=255),
        ),
        lambda p: (
            f"{p[0]} re-encoded as {_FIXED_LENGTH[p[0]] + p[1]} bytes instead of {_FIXED_LENGTH[p[0]]} "
            + ("(last byte dropped)" if p[1] < 0 else f"(byte 0x{p[2]:02x} appended)")
        ),
        _wrong_length,
    ),
    _Family(
        "base64-surplus-padding",
        "ERR-015",
        ("R3.4", "R10.3"),
        _REFUSE,
        st.tuples(st.sampled_from(_BINARY)),
        lambda p: f"surplus '=' padding appended to {p[0]}",
        _surplus_padding,
    ),
    _Family(
        "ciphertext-short",
        "ERR-024",
        ("R3.10", "R10.3"),
        _REFUSE,
        st.tuples(st.integers(min_value=0, max_value=TAG_LEN - 1)),
        lambda p: f"ciphertext cut to {p[0]} byte(s), less than a GCM tag",
        _ciphertext_short,
    ),
    _Family(
        "integer-form",
        "ERR-010",
        ("R3.11", "R3.12"),
        _REFUSE,
        st.tuples(
            st.sampled_from(("stack_small_id", "num_compute_units")),
            st.sampled_from(("exponent", "negative", "above-u64")),
        ),
        lambda p: {
            "exponent": f"{p[0]} written with an exponent (1e0 form)",
            "negative": f"{p[0]} set to -1",
            "above-u64": f"{p[0]} set to 2^64, above the largest allowed value",
        }[p[1]],
        _integer_form,
    ),
    _Family(
        "body-not-object",
        "ERR-035",
        ("R3.1", "R10.2"),
        _REFUSE,
        st.tuples(st.sampled_from(("array", "trailing-data", "string", "invalid-utf8"))),
        lambda p: {
            "array": "the envelope wrapped in a JSON array",
            "trailing-data": "more JSON text after the envelope object",
            "string": "the envelope sent as one JSON string",
            "invalid-utf8": "a byte that is not UTF-8 inside model_name",
        }[p[0]],
        _body_not_object,
    ),
    _Family(
        "extra-member",
        "ENDPOINT-001",
        ("R3.2", "R1.1", "R8.1"),
        _ACCEPT,
        st.tuples(
            st.sampled_from(_EXTRA_NAMES),
            st.integers(min_value=0, max_value=len(_REQUIRED)),
            _JSON_VALUES.map(lambda v: jsonwire.dumps(v).decode("utf-8")),
        ),
        lambda p: f"unknown member {p[0]!r} = {p[2]} inserted at position {p[1]}",
        _extra_member,
    ),
    _Family(
        "reserialized",
        "ENDPOINT-001",
        ("R3.2", "R1.1", "R8.1"),
        _ACCEPT,
        st.tuples(_LAYOUTS, st.permutations(_MEMBERS).map(tuple)),
        lambda p: f"members in the order {', '.join(p[1])}; {p[0].describe()}",
        _reserialized,
    ),
)
# Public: what a campaign can mutate, each family naming the catalogue check it violates and citing
# at least that check's requirements (tests/test_rulebook.py holds them to the catalogue).
MUTATION_FAMILIES: tuple[_Family, ...] = _FAMILY_LIST
_FAMILIES: dict[str, _Family] = {family.name: family for family in _FAMILY_LIST}


def mutations(*, include_accepting: bool = True) -> SearchStrategy[Mutation]:
    """Envelope mutations of every family, each labelled with its check, spec ids and expected verdict.

    Why: one strategy that covers every way a sealed envelope can be tampered with or legally re-written,
    so a fuzzer can assert ``expect`` and print :meth:`Mutation.label` on failure. Families (name: check,
    expected verdict): ``ciphertext-bit-flip`` ERR-001, ``tag-bit-flip`` and ``ciphertext-truncated``
    ERR-002, ``nonce-bit-flip`` ERR-003, ``salt-bit-flip`` ERR-004, ``client-key-swapped`` ERR-005,
    ``node-key-swapped`` ERR-006, ``hash-bit-flip`` ERR-007, ``low-order-client-key`` ERR-008,
    ``field-missing`` ERR-009, ``type-confusion`` ERR-010, ``base64-urlsafe``/``-whitespace``/
    ``-trailing-bits`` ERR-014, ``base64-unpadded`` and ``-surplus-padding`` ERR-015, ``wrong-length`` and
    ``ciphertext-short`` ERR-024, ``integer-form`` ERR-010 and ``body-not-object`` ERR-035 must be refused;
    ``extra-member`` and ``reserialized`` (ENDPOINT-001) must be served. ``include_accepting=False``
    draws only the families a node must refuse.

    Parameters are drawn without seeing the envelope, so :meth:`Mutation.apply` works on any valid one;
    ``ciphertext-bit-flip`` needs a non-empty plaintext (any JSON body is).
    """
    families = [f for f in _FAMILY_LIST if include_accepting or f.expect == "refuse"]
    return st.one_of([family.strategy() for family in families])


# --- SSE framings -------------------------------------------------------------------------------------

_COMMENTS = (b": keep-alive", b":", b": ping", b":keep-alive", b": \xf0\x9f\x92\x93 still here")
_LINE_ENDINGS = (b"\n", b"\r\n", b"\r")


@st.composite
def _sse_framings(draw: st.DrawFn, events: tuple[bytes, ...], allow_done: bool) -> list[bytes]:
    lines: list[bytes] = []  # without line endings; b"" is a blank line (dispatch)
    boundaries: list[int] = []  # indices into lines after which an event has been dispatched
    payloads = events + ((b"[DONE]",) if allow_done and draw(st.booleans()) else ())
    for number, payload in enumerate(payloads):
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            lines.append(draw(st.sampled_from(_COMMENTS)))
            if draw(st.booleans()):
                lines.append(b"")  # a standalone keep-alive: a comment block with no data dispatches nothing
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from((b"event: message", b"event:message"))))
        if draw(st.booleans()):
            lines.append(b"id: " + str(number).encode("ascii"))
        for part in payload.split(b"\n"):
            spaced = part.startswith(b" ") or draw(st.booleans())
            lines.append((b"data: " if spaced else b"data:") + part)
        lines.append(b"")
        boundaries.append(len(lines))
    if draw(st.booleans()):
        lines += [draw(st.sampled_from(_COMMENTS)), b""]
    style = draw(st.sampled_from(("\n", "\r\n", "\r", "mixed")))
    body = bytearray()
    offsets = []
    previous = b""
    for index, line in enumerate(lines):
        if style != "mixed":
            ending = style.encode("ascii")
        else:
            ending = draw(st.sampled_from(_LINE_ENDINGS))
            if not line and previous == b"\r" and ending == b"\n":
                ending = b"\r"  # CR then an empty LF line would read as one CRLF, losing the blank line
        body += line + ending
        previous = ending
        if index + 1 in boundaries:
            offsets.append(len(body))
    if not body:
        return []
    cuts = set(draw(st.lists(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=12)))
    if draw(st.booleans()):
        cuts.update(offsets)  # also one read per event, as a server that flushes per event
    points = sorted(cut for cut in cuts if 0 < cut < len(body))
    return [bytes(body[a:b]) for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def sse_framings(events: list[bytes], *, allow_done: bool = True) -> SearchStrategy[list[bytes]]:
    """The network reads of an SSE body carrying ``events`` (each an event's data payload) in order.

    Why: a client must read a stream however the server and every proxy on the way frame and chunk it.
    Variations: reads split at arbitrary byte offsets or coalescing several events; comments
    (``: keep-alive`` and others) between events, some as standalone blocks; LF, CRLF, CR or mixed line
    endings; optional ``event: message`` and ``id:`` lines; ``data:`` with or without the space; and,
    with ``allow_done``, an optional final ``data: [DONE]`` event. A payload containing LF is sent as
    several ``data:`` lines (which a reader joins with LF). Feeding the reads to
    :class:`~conformance.protocol.sse.SseParser` yields exactly ``events``, then maybe ``[DONE]``.

    A payload must be UTF-8 without CR (no SSE framing can carry a CR in data), else ``ValueError``.
    """
    checked = tuple(bytes(event) for event in events)
    for event in checked:
        if b"\r" in event:
            raise ValueError("an SSE data payload cannot contain CR")
        try:
            event.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("an SSE data payload must be UTF-8 (a reader decodes every line)") from None
    return _sse_framings(checked, allow_done)


def mutation(family: str, *params: Any) -> Mutation:
    """The mutation of ``family`` with exactly ``params``, labelled as a drawn one would be.

    Why: the member table (:mod:`conformance.member_table`) names each of its cases by hand, so that the
    suite and the fuzzer send the same case, whatever Hypothesis would have drawn.
    """
    spec = _FAMILIES.get(family)
    if spec is None:
        raise ValueError(f"unknown mutation family {family!r}")
    return Mutation(spec.name, spec.check_id, spec.spec_refs, spec.expect, spec.describe(params), params)

"""The probes of the plaintext and of the body's framing (docs/spec.md §3.2, §3.3, R1.5, R3.2, R3.3,
R4.1, R9.1).

Two kinds. Plaintexts a node must refuse, each sealed with its correct ``plaintext_body_hash`` under
a lock of its own, so that only the plaintext's shape can be the reason. And valid requests in forms
the spec says a node must accept (another member order, another JSON layout, a key with its top bit
set, a charset, a chunked body, a body of exactly the limit), which must be served and round-trip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..client import ENDPOINT_PATHS
from ..protocol import jsonwire
from ..protocol.b64 import b64decode, b64encode
from ..protocol.primitives import canonical_public_key
from ..records import ExchangeRecord, HttpRecord
from .base import Precondition, Skip
from .judging import earlier_cause, round_trip_problem
from .probe import Probe, probe
from .probes import CHAT, OVERSIZE_BYTES, EnvelopeEdit
from .run import UNKNOWN_MODEL, Run

BODY_LIMIT = 2 * 1024 * 1024  # R3.17: 2 MiB, the largest body a node must accept
CHARSET_JSON = "application/json; charset=utf-8"  # R3.3 allows parameters on the media type
UNKNOWN_MEMBER = "atoma_conformance_unknown_member"  # R3.2: a member a node must ignore


# --- plaintexts a node must refuse ---------------------------------------------------------------------


def _chat_body(run: Run) -> dict[str, Any]:
    """A valid chat plaintext as a value (with its fresh sentinel), for a probe to break."""
    value: dict[str, Any] = jsonwire.loads_object(run.plaintext("chat"))
    return value


# R3.14: not UTF-8 JSON text whose top-level value is an object with a string member model. Each case
# but the empty array keeps the prompt and its sentinel, so a refusal that quotes it is found (ERR-019).
NOT_AN_OBJECT_WITH_A_MODEL: dict[str, Callable[[Run], bytes]] = {
    "an array holding the request": lambda run: jsonwire.dumps([_chat_body(run)]),
    "the request encoded twice, as a JSON string": lambda run: jsonwire.dumps(run.plaintext("chat").decode()),
    "the request cut short (not JSON)": lambda run: run.plaintext("chat")[:-9],
    "no model member": lambda run: jsonwire.dumps({k: v for k, v in _chat_body(run).items() if k != "model"}),
    "model is a number": lambda run: jsonwire.dumps(_chat_body(run) | {"model": 1}),
}


@dataclass
class Cases:
    """Requests a node must refuse, one per named case, each on a fresh lock (a refused request may
    spend its lock: the proxy consumes it before the node refuses)."""

    cases: tuple[tuple[str, ExchangeRecord], ...]

    @property
    def refused(self) -> tuple[ExchangeRecord, ...]:
        return tuple(record for _, record in self.cases)

    @property
    def parts(self) -> tuple[ExchangeRecord, ...]:
        return self.refused


def _plaintext_shapes(run: Run) -> Cases:
    return Cases(tuple((name, run.send("chat", make(run))) for name, make in NOT_AN_OBJECT_WITH_A_MODEL.items()))


_SHAPES = len(NOT_AN_OBJECT_WITH_A_MODEL)
PLAINTEXT_SHAPES: Probe[Cases] = probe("err_plaintext_shapes", sends=_SHAPES, locks=_SHAPES)(_plaintext_shapes)


def _unservable_plaintext(run: Run) -> ExchangeRecord:
    """An object with a served model that no chat model can answer: ``messages`` is the prompt as a
    string, not an array of messages (a client that sent a completions prompt to chat)."""
    body = _chat_body(run)
    return run.send("chat", jsonwire.dumps(body | {"messages": body["messages"][0]["content"]}))


ERR_UNSERVABLE_PLAINTEXT: Probe[ExchangeRecord] = probe("err_unservable_plaintext")(_unservable_plaintext)


def _model_not_served(run: Run) -> ExchangeRecord:
    """The unknown model in the plaintext and in ``model_name`` alike, so that R3.16's comparison of the
    two cannot refuse it first: only the node's own check of the model can."""
    return run.send("chat", run.plaintext("chat", model=UNKNOWN_MODEL), model_name=UNKNOWN_MODEL)


ERR_MODEL_NOT_SERVED: Probe[ExchangeRecord] = probe("err_model_not_served")(_model_not_served)


def _stream_for_images(run: Run) -> ExchangeRecord:
    return run.send("images", run.plaintext("images", stream=True), stream=True)


STREAM_FOR_IMAGES: Probe[ExchangeRecord] = probe("stream_for_images")(_stream_for_images)


def _oversize_chunked(run: Run) -> HttpRecord:
    """ERR-013's oversized body, framed with ``Transfer-Encoding: chunked`` and no ``Content-Length``:
    a node whose limit reads only the declared length never refuses it for its size (R3.18)."""
    lock = run.lock()
    envelope = run.prepare(lock).sealed.request.to_json()
    envelope["ciphertext"] = b64encode(bytes(OVERSIZE_BYTES * 3 // 4))
    body = jsonwire.dumps(envelope)
    return run.raw(ENDPOINT_PATHS["chat"], body, run.client.headers(body=body), chunked=True)


ERR_OVERSIZE_CHUNKED: Probe[HttpRecord] = probe("err_oversize_chunked")(_oversize_chunked)


# --- valid requests in forms a node must accept --------------------------------------------------------


def _without_stream(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in envelope.items() if k != "stream"}


def _null_stream(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"stream": None}


def _null_units(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"num_compute_units": None}


def top_bit_set(key: bytes) -> bytes:
    """R4.1: ``key`` with bit 255 set. X25519 ignores that bit (RFC 7748 §5), so it names the same key:
    a request sealed for ``key`` is sealed for this one too, and a node that masks the bit derives the
    same K."""
    flipped = bytes(key[:31]) + bytes([key[31] | 0x80])
    if canonical_public_key(flipped) != canonical_public_key(key):  # pragma: no cover - RFC 7748 §5
        raise Precondition("setting bit 255 changed the key")
    return flipped


def _top_bit_key(envelope: dict[str, Any]) -> dict[str, Any]:
    key = b64decode(envelope["client_dh_public_key"])
    return envelope | {"client_dh_public_key": b64encode(top_bit_set(key))}


def _other_order(envelope: dict[str, Any]) -> dict[str, Any]:
    """R3.2: the members in reverse order, led by one the spec does not define."""
    return {UNKNOWN_MEMBER: {"note": "a member no node knows; ignore it"}, **dict(reversed(envelope.items()))}


def _other_layout(plaintext: bytes) -> bytes:
    """R3.15: the same plaintext value in another layout: members reversed, indented with spaces around
    the colons, and every '/' written as the escape '\\/' (the model names carry one). The sentinel has no
    '/', so a refusal that echoes the prompt is still found."""
    value = jsonwire.loads_object(plaintext)
    text = json.dumps(dict(reversed(value.items())), indent=2, separators=(",", " : "), ensure_ascii=False)
    return ("\n " + text.replace("/", "\\/") + "\n").encode()


@dataclass(frozen=True)
class Variation:
    """One thing the spec says a node accepts, applied to a valid chat request."""

    name: str
    envelope: EnvelopeEdit | None = None
    plaintext: Callable[[bytes], bytes] | None = None
    content_type: str | None = None
    chunked: bool = False


VARIATIONS: tuple[Variation, ...] = (
    Variation("stream absent", envelope=_without_stream),
    Variation("num_compute_units null", envelope=_null_units),
    Variation("members reordered, an unknown member", envelope=_other_order),
    Variation("client key with bit 255 set", envelope=_top_bit_key),
    Variation("stream null", envelope=_null_stream),
    Variation("plaintext in another JSON layout", plaintext=_other_layout),
    Variation("charset=utf-8", content_type=CHARSET_JSON),
    Variation("chunked body", chunked=True),
)
BY_NAME = {v.name: v for v in VARIATIONS}
# Two requests carry them all: a request can hold one value of `stream`, and the edits are applied in
# this order (the reordering after the removal, so the unknown member still leads).
COMBINED = (VARIATIONS[:4], VARIATIONS[4:])


def _send_varied(run: Run, variations: tuple[Variation, ...]) -> ExchangeRecord:
    plaintext = run.plaintext("chat")
    for variation in variations:
        if variation.plaintext is not None:
            plaintext = variation.plaintext(plaintext)
    prepared = run.prepare(run.lock(), plaintext)
    envelope = prepared.sealed.request.to_json()
    for variation in variations:
        if variation.envelope is not None:
            envelope = variation.envelope(envelope)
    body = jsonwire.dumps(envelope)
    types = [v.content_type for v in variations if v.content_type]
    headers = run.client.headers({"content-type": types[0]} if types else None, body=body)
    chunked = any(v.chunked for v in variations)
    return run.post(replace(prepared, body=body, headers=headers, chunked=chunked), mutated=False)


@dataclass
class Varied:
    """Valid requests that carry the variations, a few to a request. Only when a combined request is not
    served (for no earlier cause than its content) is each of its variations sent alone, so that a
    failure names its cause and a conformant target costs two requests."""

    combined: tuple[tuple[tuple[str, ...], ExchangeRecord], ...]
    alone: dict[str, ExchangeRecord] = field(default_factory=dict)

    def record(self, name: str) -> ExchangeRecord:
        """The request that decides ``name``: its own, if it was sent alone, else the one that carried it.
        (No ``parts``: an answer cut off leaves only the checks it decides not evaluated, each judging
        ``records.cut_off`` of its own record, so a reset on a chunked body spares the other forms.)"""
        if name in self.alone:
            return self.alone[name]
        return next(record for names, record in self.combined if name in names)


def _variations(run: Run) -> Varied:
    varied = Varied(tuple((tuple(v.name for v in group), _send_varied(run, group)) for group in COMBINED))
    failed = [(names, r) for names, r in varied.combined if round_trip_problem(r) is not None]
    # Worth telling apart only when a plain valid request round-trips and no earlier cause refused it: on
    # a target that serves nothing, every check of a variation is "not evaluated" whatever it sends.
    if failed and _serves_plain_requests(run):
        for names, record in failed:
            if earlier_cause(record, ()) is None:
                for name in names:
                    varied.alone[name] = _send_varied(run, (BY_NAME[name],))
    return varied


def _serves_plain_requests(run: Run) -> bool:
    try:
        return round_trip_problem(run.get(CHAT)) is None
    except (Skip, Precondition):
        return False


_WORST = len(COMBINED) + len(VARIATIONS)
ACCEPTED_VARIATIONS: Probe[Varied] = probe("accepted_variations", sends=_WORST, locks=_WORST, reads=(CHAT,))(
    _variations
)


# --- a body of exactly the limit -----------------------------------------------------------------------

# Forms of the envelope that mean the same request (R3.12: an absent or null stream is false, an absent
# or null num_compute_units is no bound); between them they shift its length to each residue mod 4, so
# one of them lets a base64 ciphertext fill the body to the exact byte.
LIMIT_FORMS: tuple[tuple[str, EnvelopeEdit], ...] = (
    ("as sealed", lambda e: e),
    ("stream absent", _without_stream),
    ("stream null", _null_stream),
    ("stream absent, num_compute_units null", lambda e: _null_units(_without_stream(e))),
)
# The variations each form relies on besides the padding: a check of the 2 MiB body is not evaluated
# when the target refuses one of them at any size.
FORM_VARIATIONS = {
    "as sealed": (),
    "stream absent": ("stream absent",),
    "stream null": ("stream null",),
    "stream absent, num_compute_units null": ("stream absent", "num_compute_units null"),
}


@dataclass
class AtLimit:
    """A valid request whose body is exactly ``BODY_LIMIT`` bytes: its plaintext padded with JSON
    whitespace (R3.15), its envelope in ``form``."""

    record: ExchangeRecord
    form: str

    @property
    def parts(self) -> tuple[ExchangeRecord, ...]:
        return (self.record,)


def _padded(plaintext: bytes, length: int) -> bytes:
    """``plaintext``, a compact JSON object, grown to ``length`` bytes with spaces before its last brace."""
    return plaintext[:-1] + b" " * (length - len(plaintext)) + plaintext[-1:]


def _body_at_limit(run: Run) -> AtLimit:
    lock = run.lock()
    plaintext = run.plaintext("chat")
    sealed = run.prepare(lock, plaintext).sealed.request.to_json()
    ciphertext = len(sealed["ciphertext"])
    # The room each form leaves for the base64 ciphertext; base64 comes in quanta of 4 characters.
    rooms = [(form, edit, BODY_LIMIT - (len(jsonwire.dumps(edit(sealed))) - ciphertext)) for form, edit in LIMIT_FORMS]
    fitting = [row for row in rooms if row[2] % 4 == 0]
    if not fitting:  # pragma: no cover - the forms cover every residue mod 4
        raise Precondition("could not frame a body of exactly 2 MiB")
    form, edit, room = fitting[0]
    # A base64 text of `room` characters holds room * 3 / 4 bytes: the plaintext and the 16-byte tag.
    prepared = run.prepare(lock, _padded(plaintext, room * 3 // 4 - 16))
    body = jsonwire.dumps(edit(prepared.sealed.request.to_json()))
    if len(body) != BODY_LIMIT:
        raise Precondition(f"could not frame a body of exactly {BODY_LIMIT} bytes (got {len(body)})")
    record = run.post(replace(prepared, body=body, headers=run.client.headers(body=body)), mutated=False)
    return AtLimit(record, form)


BODY_AT_LIMIT: Probe[AtLimit] = probe("body_at_limit")(_body_at_limit)

"""The core's sealing steps (SealSteps) and the mock node sealing through them.

Two claims are held here. Each step of ``seal_response`` / ``seal_chunk`` can be replaced on its own,
and a replaced step changes the members it feeds and no other. And the mock node's sealing *is* the
core's: its strict path is ``seal_response`` / ``seal_chunk`` with the default steps, byte for byte,
and each of its sealing faults changes only the members that fault names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Literal

import pytest

from conformance.protocol import (
    AeadKey,
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    Exchange,
    FixedBytes,
    Rekey,
    Scheme,
    SealedParts,
    SealSteps,
    SeededRandom,
    StreamChunk,
    SuiSignature,
    SuiSigner,
    Usage,
    b64decode,
    b64encode,
    blake2b_256,
    draw_response_nonce,
    hkdf_sha256,
    jsonwire,
    node_exchange,
    open_chunk,
    open_response,
    seal_chunk,
    seal_request,
    seal_response,
    verify_b64,
    x25519_public_key,
)
from mock_node.behaviour import ATOMA_NODE_COMPAT, STRICT, Behaviour
from mock_node.faults import CATALOGUE, FAULTS
from mock_node.sealing import STATIC_NONCE, Sealer, chunk_body, response_body, seal_steps

NODE_SK = SeededRandom("sealing node key").token_bytes(32)
SIGNERS = {scheme: SuiSigner(scheme, blake2b_256(b"sealing signer " + scheme.label.encode())) for scheme in Scheme}
SIGNER = SIGNERS[Scheme.ED25519]
OTHER_SIGNER = SuiSigner(Scheme.ED25519, blake2b_256(b"another signer"))
USAGE_JSON: dict[str, Any] = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
ANSWER = jsonwire.dumps({"choices": [{"message": {"content": "an answer long enough for +/ in base64"}}]})
ANSWER_WITH_USAGE = jsonwire.dumps({"choices": [], "usage": USAGE_JSON})
NONCE = bytes(range(40, 52))
MEMBERS = ("nonce", "ciphertext", "response_hash", "signature")

Kind = Literal["response", "chunk"]
KINDS: list[Kind] = ["response", "chunk"]


def _node_side(seed: str = "sealing client") -> tuple[Exchange, bytes]:
    """The node's exchange and shared secret for a fresh request (as the mock node holds them)."""
    sealed = seal_request(
        b"{}", node_public_key=x25519_public_key(NODE_SK), model_name="m", stack_small_id=1, rng=SeededRandom(seed)
    )
    wire = ConfidentialComputeRequest.parse(sealed.request.serialize())
    return node_exchange(wire.decode(), NODE_SK)


EXCHANGE, SHARED = _node_side()


def _seal(
    kind: Kind, *, steps: SealSteps | None = None, plaintext: bytes = ANSWER, signer: SuiSigner = SIGNER, **kw: Any
) -> ConfidentialComputeResponse | StreamChunk:
    kw.setdefault("nonce", NONCE)
    if steps is not None:
        kw["steps"] = steps
    if kind == "response":
        return seal_response(plaintext, EXCHANGE, signer, **kw)
    return seal_chunk(plaintext, EXCHANGE, signer, **kw)


def _members(message: ConfidentialComputeResponse | StreamChunk) -> dict[str, str | None]:
    return {name: getattr(message, name) for name in MEMBERS}


def _changed(
    one: ConfidentialComputeResponse | StreamChunk, two: ConfidentialComputeResponse | StreamChunk
) -> set[str]:
    a, b = one.to_json(), two.to_json()
    return {name for name in a.keys() | b.keys() if a.get(name) != b.get(name)}


def _aead_output(message: ConfidentialComputeResponse | StreamChunk, key: AeadKey) -> bytes:
    return key.open(b64decode(message.nonce), b64decode(message.ciphertext))


# --- the default steps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_default_steps_are_the_conformant_sealing(kind: Kind) -> None:
    plain = _seal(kind, rng=SeededRandom("d"), nonce=None)
    explicit = _seal(kind, rng=SeededRandom("d"), nonce=None, steps=SealSteps())
    assert explicit == plain
    # Written out from the spec: AES-GCM under the exchange key, BLAKE2b-256 of the plaintext, signed.
    nonce = b64decode(plain.nonce)
    assert nonce == SeededRandom("d").token_bytes(12)
    assert b64decode(plain.ciphertext) == EXCHANGE.aead.seal(nonce, ANSWER)
    assert plain.response_hash == b64encode(blake2b_256(ANSWER))
    assert plain.signature == SIGNER.sign(blake2b_256(ANSWER)).to_b64()
    if isinstance(plain, ConfidentialComputeResponse):
        assert open_response(plain, EXCHANGE, expected_signer=SIGNER.address).plaintext == ANSWER
    else:
        assert open_chunk(plain, EXCHANGE, expected_signer=SIGNER.address).plaintext == ANSWER


def test_a_drawn_nonce_equal_to_the_request_nonce_is_drawn_again() -> None:
    other = bytes(12)
    assert draw_response_nonce(EXCHANGE, FixedBytes(EXCHANGE.request_nonce, other)) == other
    assert draw_response_nonce(EXCHANGE, FixedBytes(NONCE)) == NONCE  # no second draw otherwise
    for kind in KINDS:
        message = _seal(kind, nonce=None, rng=FixedBytes(EXCHANGE.request_nonce, EXCHANGE.request_nonce, other))
        assert message.nonce == b64encode(other)
    # A nonce the caller passes is used as given, even the request's (the mock's echo-request fault).
    assert _seal("response", nonce=EXCHANGE.request_nonce).nonce == b64encode(EXCHANGE.request_nonce)


# --- each step on its own --------------------------------------------------------------------------------


def _reference_key(salt: bytes, info: bytes) -> AeadKey:
    return AeadKey(hkdf_sha256(SHARED, salt, info, 32))


@pytest.mark.parametrize("kind", KINDS)
def test_the_key_step_changes_only_the_ciphertext(kind: Kind) -> None:
    base = _seal(kind)
    # The exchange's own HKDF inputs derive the exchange's key: nothing changes.
    assert _seal(kind, steps=SealSteps(key=Rekey(SHARED))) == base
    label = Rekey(SHARED, salt_label=b"other salt")
    info = Rekey(SHARED, info=b"response")
    other_salt = blake2b_256(b"other salt" + EXCHANGE.salt)[:16]
    for rekey, reference in (
        (label, _reference_key(other_salt, b"")),
        (info, _reference_key(EXCHANGE.salt, b"response")),
    ):
        moved = _seal(kind, steps=SealSteps(key=rekey))
        assert _changed(base, moved) == {"ciphertext"}
        assert _aead_output(moved, reference) == ANSWER


def test_a_rekey_never_shows_its_secret() -> None:
    text = repr(Rekey(SHARED, salt_label=b"other salt"))
    assert SHARED.hex() not in text and repr(SHARED) not in text
    assert text == "Rekey(salt_label=b'other salt', info=b'')"
    assert repr(SealSteps(key=Rekey(SHARED))).count(SHARED.hex()) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_ciphertext_step_changes_only_the_ciphertext(kind: Kind) -> None:
    base = _seal(kind)
    cut = _seal(kind, steps=SealSteps(ciphertext=lambda sealed: sealed[:-4]))
    assert _changed(base, cut) == {"ciphertext"}
    assert b64decode(cut.ciphertext) == b64decode(base.ciphertext)[:-4]


@pytest.mark.parametrize("kind", KINDS)
def test_the_hashed_bytes_change_the_hash_and_what_is_signed(kind: Kind) -> None:
    base = _seal(kind)
    spaced = _seal(kind, steps=SealSteps(hashed=lambda plaintext: plaintext + b" "))
    assert _changed(base, spaced) == {"response_hash", "signature"}
    digest = blake2b_256(ANSWER + b" ")
    assert spaced.response_hash == b64encode(digest)
    verify_b64(spaced.signature, digest, expected_address=SIGNER.address)  # the signature covers the hash sent


@pytest.mark.parametrize("kind", KINDS)
def test_the_hash_algorithm_changes_the_hash_and_what_is_signed(kind: Kind) -> None:
    base = _seal(kind)
    sha = _seal(kind, steps=SealSteps(hash_algorithm="sha-256"))
    assert _changed(base, sha) == {"response_hash", "signature"}
    digest = hashlib.sha256(ANSWER).digest()
    assert sha.response_hash == b64encode(digest)
    verify_b64(sha.signature, digest)
    both = _seal(kind, steps=SealSteps(hashed=lambda p: p + b"!", hash_algorithm="sha-256"))
    assert both.response_hash == b64encode(hashlib.sha256(ANSWER + b"!").digest())


@pytest.mark.parametrize("kind", KINDS)
def test_the_signed_bytes_change_only_the_signature(kind: Kind) -> None:
    base = _seal(kind)
    seen: list[tuple[bytes, bytes]] = []

    def ciphertext(plaintext: bytes, sealed: bytes) -> bytes:
        seen.append((plaintext, sealed))
        return sealed

    # Runs after the ciphertext step: it is given the bytes that are sent.
    moved = _seal(kind, steps=SealSteps(ciphertext=lambda s: s[:-1], signed=ciphertext))
    assert seen == [(ANSWER, b64decode(moved.ciphertext))]
    assert _changed(_seal(kind, steps=SealSteps(ciphertext=lambda s: s[:-1])), moved) == {"signature"}
    verify_b64(moved.signature, blake2b_256(b64decode(moved.ciphertext)), expected_address=SIGNER.address)
    plain = _seal(kind, steps=SealSteps(signed=lambda plaintext, sealed: plaintext))
    assert plain == base, "the BLAKE2b-256 of the plaintext is the conformant digest"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", list(Scheme))
def test_the_sign_step_changes_only_the_signature(kind: Kind, scheme: Scheme) -> None:
    signer = SIGNERS[scheme]
    base = _seal(kind, signer=signer)
    calls: list[tuple[SuiSigner, bytes]] = []

    def by_another(given: SuiSigner, data: bytes) -> SuiSignature:
        calls.append((given, data))
        return OTHER_SIGNER.sign(data)

    moved = _seal(kind, signer=signer, steps=SealSteps(sign=by_another))
    assert calls == [(signer, blake2b_256(ANSWER))]
    assert _changed(base, moved) == {"signature"}
    assert verify_b64(moved.signature, blake2b_256(ANSWER)).address == OTHER_SIGNER.address
    assert _seal(kind, signer=signer, steps=SealSteps(sign=lambda s, d: s.sign(d))) == base


@pytest.mark.parametrize("kind", KINDS)
def test_the_members_step_is_the_last_word(kind: Kind) -> None:
    base = _seal(kind, usage=Usage.from_json(USAGE_JSON))
    given: list[SealedParts] = []

    def drop(parts: SealedParts) -> SealedParts:
        given.append(parts)
        return dataclasses.replace(parts, signature=None, response_hash=None)

    moved = _seal(kind, usage=Usage.from_json(USAGE_JSON), steps=SealSteps(members=drop))
    assert given == [SealedParts(**_members(base))]  # type: ignore[arg-type]
    assert _changed(base, moved) == {"signature", "response_hash"}
    assert moved.signature is None and moved.response_hash is None
    assert moved.to_json()["usage"] == USAGE_JSON


# --- the mock node seals through the core ---------------------------------------------------------------


def _sealer(behaviour: Behaviour, seed: str, *, streaming: bool, signer: SuiSigner = SIGNER) -> Sealer:
    return Sealer(EXCHANGE, signer, behaviour, SeededRandom(seed), SHARED, streaming=streaming)


def test_strict_and_compat_sealing_pass_the_default_steps() -> None:
    assert seal_steps(STRICT, SHARED, SeededRandom("x")) == SealSteps()
    assert seal_steps(ATOMA_NODE_COMPAT, SHARED, SeededRandom("x")) == SealSteps()


@pytest.mark.parametrize("scheme", list(Scheme))
def test_the_strict_mock_response_is_the_core_response(scheme: Scheme) -> None:
    signer = SIGNERS[scheme]
    for plaintext, usage in ((ANSWER, None), (ANSWER_WITH_USAGE, USAGE_JSON)):
        mock = response_body(_sealer(STRICT, "same", streaming=False, signer=signer).seal(plaintext, usage))
        model = None if usage is None else Usage.from_json(usage)
        core = seal_response(plaintext, EXCHANGE, signer, usage=model, rng=SeededRandom("same"))
        assert mock == core.serialize()


@pytest.mark.parametrize("scheme", list(Scheme))
def test_the_strict_mock_stream_is_the_core_stream(scheme: Scheme) -> None:
    signer = SIGNERS[scheme]
    sealer = _sealer(STRICT, "stream", streaming=True, signer=signer)
    rng = SeededRandom("stream")
    parts = [(ANSWER, None), (ANSWER, None), (ANSWER_WITH_USAGE, USAGE_JSON)]
    for plaintext, usage in parts:
        mock = chunk_body(sealer.seal(plaintext, usage))
        model = None if usage is None else Usage.from_json(usage)
        assert mock == seal_chunk(plaintext, EXCHANGE, signer, usage=model, rng=rng).serialize()


def test_a_usage_the_model_cannot_hold_is_relayed_as_sent() -> None:
    odd = {"total_tokens": 3}  # no prompt_tokens: Usage.from_json refuses it
    members = _sealer(STRICT, "odd", streaming=True).seal(ANSWER, odd)
    assert json.loads(chunk_body(members))["usage"] == odd
    assert list(json.loads(chunk_body(members))) == ["ciphertext", "nonce", "usage", "signature", "response_hash"]
    strict = _sealer(STRICT, "odd", streaming=True).seal(ANSWER, None)
    assert {k: v for k, v in members.items() if k != "usage"} == strict


def test_the_static_nonce_is_the_documented_constant() -> None:
    assert blake2b_256(b"atoma-conformance mock static nonce")[:12] == STATIC_NONCE


# What each sealing fault may change on the first message, against a strict twin with the same randomness.
SEALING_FAULTS: dict[str, set[str]] = {
    "static-nonce": {"nonce", "ciphertext"},
    "echo-request-nonce": {"nonce", "ciphertext"},
    "wrong-response-hash": {"response_hash", "signature"},
    "sha256-response-hash": {"response_hash", "signature"},
    "reserialized-response-hash": {"response_hash", "signature"},
    "signature-wrong-bytes": {"signature"},
    "foreign-signer": {"signature"},
    "malleated-signature": {"signature"},
    "missing-signature": {"signature"},
    "urlsafe-base64": {"ciphertext"},
    "unpadded-base64": {"response_hash"},
    "truncated-tag": {"ciphertext"},
    "response-other-salt": {"ciphertext"},
    "response-hkdf-info": {"ciphertext"},
    "usage-mismatch": {"usage"},
    "usage-absent": {"usage"},
}


def test_the_sealing_fault_table_names_every_sealing_knob() -> None:
    sealing_knobs = {field.name for field in dataclasses.fields(Behaviour)} & {
        "response_nonce",
        "stream_nonce",
        "response_hash",
        "signature",
        "ciphertext_encoding",
        "hash_encoding",
        "tag",
        "response_key",
        "clear_usage",
    }
    touched = {knob for fault in CATALOGUE for knob in fault.changes if knob in sealing_knobs}
    assert touched == sealing_knobs
    for fault in CATALOGUE:
        if set(fault.changes) & sealing_knobs and fault.name != "stream-nonce-reuse":
            assert fault.name in SEALING_FAULTS, fault.name


@pytest.mark.parametrize("name", sorted(SEALING_FAULTS))
@pytest.mark.parametrize("streaming", [False, True])
def test_each_sealing_fault_changes_only_its_members(name: str, streaming: bool) -> None:
    faulty = FAULTS[name].apply(STRICT)
    body = chunk_body if streaming else response_body
    plaintext = jsonwire.dumps({"choices": [{"text": "+/+/ enough bytes for both base64 extras"}], "usage": USAGE_JSON})
    for seed in ("a", "b", "c"):
        good = json.loads(body(_sealer(STRICT, seed, streaming=streaming).seal(plaintext, USAGE_JSON)))
        bad = json.loads(body(_sealer(faulty, seed, streaming=streaming).seal(plaintext, USAGE_JSON)))
        assert {k for k in good.keys() | bad.keys() if good.get(k) != bad.get(k)} == SEALING_FAULTS[name], seed


def test_stream_nonce_reuse_keeps_the_first_chunk_and_reuses_its_nonce() -> None:
    faulty = FAULTS["stream-nonce-reuse"].apply(STRICT)
    strict, reusing = _sealer(STRICT, "s", streaming=True), _sealer(faulty, "s", streaming=True)
    good = [strict.seal(ANSWER, None) for _ in range(3)]
    bad = [reusing.seal(ANSWER, None) for _ in range(3)]
    assert bad[0] == good[0]
    assert {m["nonce"] for m in bad} == {good[0]["nonce"]}
    assert len({m["nonce"] for m in good}) == 3

"""docs/spec.md §8, non-streaming responses: the envelope a node answers with, and the OpenAI object
each endpoint's plaintext holds."""

from __future__ import annotations

from ..base import Group, Verdict
from ..evidence import Exchanges, Messages
from ..probe import Reads
from ..probes import CHAT, COMPLETIONS, EMBEDDINGS, IMAGES, JSON_ENDPOINTS, SERVED
from ._helpers import judge_answers, judge_exchanges, judge_messages

GROUP = Group((8,), "Non-streaming responses")
check = GROUP.check


@check(
    "ENC-001",
    "MUST",
    "Every response and chunk nonce is canonical base64 of exactly 12 bytes",
    spec=("R8.4", "R9.4"),
    reads=SERVED,
    evidence=Messages,
)
def enc_001(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-001", SERVED, "12-byte canonical nonce")


@check(
    "ENC-005",
    "MUST",
    "Non-streaming success is 200 with Content-Type application/json",
    spec="R8.1",
    reads=JSON_ENDPOINTS,
    evidence=Exchanges,
)
def enc_005(reads: Reads) -> Verdict:
    return judge_answers(reads, "ENC-005", JSON_ENDPOINTS, "answered 200 JSON")


@check(
    "ENC-006",
    "MUST",
    "A non-streaming body has exactly nonce, ciphertext, response_hash, signature (and usage)",
    spec=("R8.2", "R8.3"),
    reads=JSON_ENDPOINTS,
    evidence=Messages,
)
def enc_006(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-006", JSON_ENDPOINTS, "the four members, plus usage where due")


@check(
    "ENC-007",
    "SHOULD",
    "Non-streaming members are in the upstream order",
    spec="R8.2",
    reads=JSON_ENDPOINTS,
    evidence=Messages,
    weaker_because="as for LOCK-002, member order changes no parsed value",
)
def enc_007(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-007", JSON_ENDPOINTS, "upstream member order")


@check(
    "ENC-009",
    "MUST",
    "An image response carries no usage member",
    spec="R8.3",
    reads=(IMAGES,),
    evidence=Messages,
)
def enc_009(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-009", (IMAGES,), "no usage member")


@check(
    "ENC-010",
    "SHOULD",
    "Bodies are compact JSON (no insignificant whitespace)",
    spec=("R8.2", "R9.3"),
    reads=JSON_ENDPOINTS,
    evidence=Exchanges,
    weaker_because="whitespace changes no parsed value, and the hashes and signatures cover the plaintext, "
    "not the envelope",
)
def enc_010(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "ENC-010", JSON_ENDPOINTS, "compact JSON")


@check(
    "AEAD-003",
    "MUST",
    "Every decrypted plaintext is one UTF-8 JSON object",
    spec=("R8.5", "R9.5"),
    reads=SERVED,
    evidence=Messages,
)
def aead_003(reads: Reads) -> Verdict:
    return judge_messages(reads, "AEAD-003", SERVED, "a JSON object")


@check(
    "AEAD-004",
    "MUST",
    "The chat plaintext is an OpenAI chat.completion",
    spec="R8.6",
    reads=(CHAT,),
    evidence=Exchanges,
)
def aead_004(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "AEAD-004", (CHAT,), "chat.completion shape")


@check(
    "AEAD-005",
    "MUST",
    "The completions plaintext is an OpenAI text_completion",
    spec="R8.8",
    reads=(COMPLETIONS,),
    evidence=Exchanges,
)
def aead_005(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "AEAD-005", (COMPLETIONS,), "text_completion shape")


@check(
    "AEAD-006",
    "MUST",
    "The embeddings plaintext is an OpenAI embeddings list",
    spec="R8.9",
    reads=(EMBEDDINGS,),
    evidence=Exchanges,
)
def aead_006(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "AEAD-006", (EMBEDDINGS,), "embeddings list shape")


@check(
    "AEAD-007",
    "MUST",
    "The images plaintext carries data[].b64_json holding a decodable image",
    spec="R8.10",
    reads=(IMAGES,),
    evidence=Exchanges,
)
def aead_007(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "AEAD-007", (IMAGES,), "image data present")


@check(
    "AEAD-010",
    "SHOULD",
    "Chat message content is a string, not null",
    spec="R8.7",
    reads=(CHAT,),
    evidence=Exchanges,
)
def aead_010(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "AEAD-010", (CHAT,), "string content")

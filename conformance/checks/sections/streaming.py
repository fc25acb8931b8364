"""docs/spec.md §9, streaming: how a stream is framed and ended, what each chunk envelope holds, and
that the decrypted chunks make one coherent completion."""

from __future__ import annotations

from ..base import Group, Verdict, verdict
from ..evidence import Exchanges, Messages, Refusal
from ..judging import came_back
from ..probe import Reads
from ..probes import CHAT_STREAM, COMPLETIONS_STREAM, STREAM_FOR_EMBEDDINGS, STREAMS
from ._helpers import judge_answers, judge_exchanges, judge_messages, refusal

GROUP = Group((9,), "Streaming")
check = GROUP.check


@check(
    "ENC-008",
    "MUST",
    "A chunk has exactly ciphertext, nonce, signature, response_hash (and usage), in that order",
    spec="R9.4",
    reads=STREAMS,
    evidence=Messages,
)
def enc_008(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-008", STREAMS, "chunk members")


@check(
    "AEAD-008",
    "MUST",
    "Chat stream chunks are chat.completion.chunk objects",
    spec="R9.12",
    reads=(CHAT_STREAM,),
    evidence=Messages,
)
def aead_008(reads: Reads) -> Verdict:
    return judge_messages(reads, "AEAD-008", (CHAT_STREAM,), "chat.completion.chunk")


@check(
    "AEAD-009",
    "MUST",
    "Completions stream chunks are text_completion objects",
    spec="R9.12",
    reads=(COMPLETIONS_STREAM,),
    evidence=Messages,
)
def aead_009(reads: Reads) -> Verdict:
    return judge_messages(reads, "AEAD-009", (COMPLETIONS_STREAM,), "text_completion")


@check(
    "STREAM-001",
    "MUST",
    "A stream is answered 200 with Content-Type text/event-stream",
    spec="R9.2",
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_001(reads: Reads) -> Verdict:
    # Served or not: a stream answered with anything but 200 text/event-stream is this check's failure,
    # not a reason to leave it unevaluated.
    return judge_answers(reads, "STREAM-001", STREAMS, "200 text/event-stream")


@check(
    "STREAM-002",
    "SHOULD",
    "A stream is sent with Cache-Control: no-cache",
    spec="R9.2",
    reads=STREAMS,
    evidence=Exchanges,
    weaker_because="status and media type (the parts a client needs) are MUST checks of their own; a missing "
    "no-cache only exposes the stream to caching intermediaries",
)
def stream_002(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-002", STREAMS, "no-cache")


@check(
    "STREAM-003",
    "MUST",
    "Every event is data: <chunk envelope JSON>",
    spec="R9.3",
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_003(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-003", STREAMS, "every event is a chunk envelope")


@check(
    "STREAM-004",
    "MUST",
    "No [DONE] sentinel: the stream ends with the body",
    spec=("R9.8", "R9.9"),
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_004(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-004", STREAMS, "no [DONE] (the TypeScript SDK fails on it)")


@check(
    "STREAM-005",
    "MUST",
    "A stream ends with a usage chunk (choices [] and a usage object)",
    spec="R9.11",
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_005(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-005", STREAMS, "final usage chunk present")


@check(
    "STREAM-006",
    "MUST",
    "The chunks form one coherent completion (same id and model, nothing after usage)",
    spec="R9.12",
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_006(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-006", STREAMS, "coherent")


@check(
    "STREAM-007",
    "SHOULD",
    "Keep-alive comments are not a flood (at most one per event, plus four)",
    spec="R9.7",
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_007(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-007", STREAMS, "keep-alives within bounds")


@check(
    "STREAM-008",
    "MUST",
    "Embeddings never answer with an event stream",
    spec="R9.1",
    reads=(STREAM_FOR_EMBEDDINGS,),
    evidence=Refusal,
)
def stream_008(reads: Reads) -> Verdict:
    # Serving the request as plain JSON passes as well as refusing it: only an event stream breaks R9.1.
    record = reads.get(STREAM_FOR_EMBEDDINGS)
    return verdict(
        came_back(record) != "event stream",
        f"no event stream (status {record.http.status})",
        "embeddings answered with an event stream",
        refusal(record),
    )


@check(
    "STREAM-009",
    "MUST",
    "The stream is complete: no partial event is left when the body ends",
    spec="R9.9",
    reads=STREAMS,
    evidence=Exchanges,
)
def stream_009(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "STREAM-009", STREAMS, "every event terminated")

"""docs/spec.md §9, streaming: how a stream is framed and ended, what each chunk envelope holds, and
that the decrypted chunks make one coherent completion."""

from __future__ import annotations

from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Exchanges, Messages
from ..judging import earlier_cause, streamed_answer
from ..probe import Reads
from ..probes import CHAT_STREAM, COMPLETIONS_STREAM, STREAM_FOR_EMBEDDINGS, STREAMS
from ..probes_body import STREAM_FOR_IMAGES
from ._helpers import applicable, judge_answers, judge_exchanges, judge_messages

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
    "Embeddings and images asked for a stream answer JSON or a 4xx, never an event stream",
    spec=("R9.1", "R10.2"),
    reads=(STREAM_FOR_EMBEDDINGS, STREAM_FOR_IMAGES),
    evidence=Exchanges,
)
def stream_008(reads: Reads) -> Verdict:
    """Envelope and plaintext both ask for a stream (so R3.16 cannot refuse it first). R9.1 forbids only
    the event stream: serving the request as plain JSON passes as well as refusing it, and a refusal,
    the client's own doing, is 4xx (R10.2). A refusal for want of a lock or a token proves nothing."""
    rows = applicable(reads, (STREAM_FOR_EMBEDDINGS, STREAM_FOR_IMAGES))
    judged = [(probe.name, record, earlier_cause(record, ())) for probe, record in rows]
    bad = [(name, why) for name, record, earlier in judged if earlier is None and (why := streamed_answer(record))]
    if not bad:
        for name, _, earlier in judged:
            if earlier is not None:
                raise Precondition(f"not evaluated: the {name} request was {earlier}")
    statuses = ", ".join(f"{name} {record.http.status}" for name, record, _ in judged)
    return verdict(
        not bad,
        f"no event stream ({statuses})",
        "; ".join(f"{name}: {why}" for name, why in bad),
        Exchanges(len(rows), tuple(name for name, _ in bad)),
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

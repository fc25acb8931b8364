"""The probes of a run against the proxy face (and the node face, where they apply). Each sends what
it needs once; checks read the results.

Each probe is a typed constant (``LOCK_NO_AUTH: Probe[HttpRecord]``) that checks name in ``reads=``,
so ``--dry-run`` and docs/checks.md say what a selection of checks will send before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import member_table
from ..client import ENDPOINT_PATHS
from ..member_table import Case, Depth
from ..protocol import jsonwire
from ..protocol.b64 import b64decode, b64encode
from ..protocol.primitives import AeadKey, blake2b_256, derive_key, low_order_encodings, x25519_public_key
from ..records import ExchangeRecord, HttpRecord, LockRecord
from ..strategies import NotProducible
from .base import Skip
from .probe import Probe, probe
from .run import UNKNOWN_MODEL, Run

OVERSIZE_BYTES = 2 * 1024 * 1024 + 1


# --- locks -------------------------------------------------------------------------------------------


def _lock(run: Run) -> LockRecord:
    return run.client.lock(run.target.chat_model)


LOCK: Probe[LockRecord] = probe("lock", face="proxy", sends=0)(_lock)


def _lock_again(run: Run) -> LockRecord:
    run.get(LOCK)
    return run.client.lock(run.target.chat_model)


LOCK_AGAIN: Probe[LockRecord] = probe("lock_again", face="proxy", sends=0, reads=(LOCK,))(_lock_again)


def _lock_no_auth(run: Run) -> HttpRecord:
    body = jsonwire.dumps({"model": run.target.chat_model})
    return run.raw("/v1/nodes/lock", body, {"content-type": "application/json"})


LOCK_NO_AUTH: Probe[HttpRecord] = probe("lock_no_auth", face="proxy", sends=0)(_lock_no_auth)


def _lock_unknown_model(run: Run) -> LockRecord:
    return run.client.lock(UNKNOWN_MODEL, retries=0)  # a 503 here is the answer, not a reason to retry


LOCK_UNKNOWN_MODEL: Probe[LockRecord] = probe("lock_unknown_model", face="proxy", sends=0)(_lock_unknown_model)


@dataclass
class Pair:
    first: ExchangeRecord
    second: ExchangeRecord | HttpRecord

    @property
    def parts(self) -> tuple[ExchangeRecord | HttpRecord, ...]:
        return (self.first, self.second)


# Locks are per stack: any pending lock on the stack can serve a request. The lock probes therefore
# reserve an unusual number of units and ask for exactly that many, so that only their own lock fits.
REUSE_UNITS = 200_000
EXPIRY_UNITS = 300_000


def _lock_reuse(run: Run) -> Pair:
    lock = run.lock(max_num_tokens=REUSE_UNITS)
    first = run.send("chat", lock=lock, num_compute_units=REUSE_UNITS)
    second = run.send("chat", lock=lock, num_compute_units=REUSE_UNITS)
    return Pair(first, second)


LOCK_REUSE: Probe[Pair] = probe("lock_reuse", face="proxy", sends=2)(_lock_reuse)


def _lock_expired(run: Run) -> ExchangeRecord:
    lock = run.lock(timeout=1, max_num_tokens=EXPIRY_UNITS)
    run.sleep(1.25)
    return run.send("chat", lock=lock, num_compute_units=EXPIRY_UNITS)


LOCK_EXPIRED: Probe[ExchangeRecord] = probe("lock_expired", face="proxy")(_lock_expired)


def _lock_foreign(run: Run) -> ExchangeRecord:
    if run.target.second_api_key is None:
        raise Skip("needs a second API key (--second-api-key) to spend one key's lock with another")
    lock = run.lock()
    other = run.other_client(run.target.second_api_key)
    try:
        return run.send("chat", lock=lock, client=other)
    finally:
        other.close()


LOCK_FOREIGN: Probe[ExchangeRecord] = probe("lock_foreign", face="proxy")(_lock_foreign)


# --- successful exchanges ----------------------------------------------------------------------------


def _chat(run: Run) -> ExchangeRecord:
    return run.send("chat")


CHAT: Probe[ExchangeRecord] = probe("chat")(_chat)


def _chat_again(run: Run) -> ExchangeRecord:
    run.get(CHAT)
    return run.send("chat")


CHAT_AGAIN: Probe[ExchangeRecord] = probe("chat_again", reads=(CHAT,))(_chat_again)


def _completions(run: Run) -> ExchangeRecord:
    return run.send("completions")


COMPLETIONS: Probe[ExchangeRecord] = probe("completions")(_completions)


def _embeddings(run: Run) -> ExchangeRecord:
    return run.send("embeddings")


EMBEDDINGS: Probe[ExchangeRecord] = probe("embeddings")(_embeddings)


def _images(run: Run) -> ExchangeRecord:
    return run.send("images")


IMAGES: Probe[ExchangeRecord] = probe("images")(_images)


def _chat_stream(run: Run) -> ExchangeRecord:
    return run.send("chat", stream=True)


CHAT_STREAM: Probe[ExchangeRecord] = probe("chat_stream")(_chat_stream)


def _completions_stream(run: Run) -> ExchangeRecord:
    return run.send("completions", stream=True)


COMPLETIONS_STREAM: Probe[ExchangeRecord] = probe("completions_stream")(_completions_stream)


JSON_ENDPOINTS = (CHAT, COMPLETIONS, EMBEDDINGS, IMAGES)
TEXT_ENDPOINTS = (CHAT, COMPLETIONS, EMBEDDINGS)
STREAMS = (CHAT_STREAM, COMPLETIONS_STREAM)
SERVED = (*JSON_ENDPOINTS, *STREAMS)
SUCCESSES = (*SERVED, CHAT_AGAIN)


# --- refusals ----------------------------------------------------------------------------------------


def _flip_b64(text: str, index: int) -> str:
    raw = bytearray(b64decode(text))
    raw[index] ^= 0x01
    return b64encode(bytes(raw))


def _other_key(run: Run) -> str:
    return b64encode(x25519_public_key(run.client.rng.token_bytes(32)))


EnvelopeEdit = Callable[[dict[str, Any]], dict[str, Any]]  # a change to a sealed envelope before it is sent
ERR_MUTATIONS: dict[str, Callable[[Run], EnvelopeEdit]] = {
    "err_tampered_ciphertext": lambda run: lambda e: e | {"ciphertext": _flip_b64(e["ciphertext"], 0)},
    "err_tampered_tag": lambda run: lambda e: e | {"ciphertext": _flip_b64(e["ciphertext"], -1)},
    "err_tampered_nonce": lambda run: lambda e: e | {"nonce": _flip_b64(e["nonce"], 0)},
    "err_tampered_salt": lambda run: lambda e: e | {"salt": _flip_b64(e["salt"], 0)},
    "err_wrong_client_key": lambda run: lambda e: e | {"client_dh_public_key": _other_key(run)},
    "err_wrong_node_key": lambda run: lambda e: e | {"node_dh_public_key": _other_key(run)},
    "err_wrong_hash": lambda run: lambda e: e | {"plaintext_body_hash": b64encode(blake2b_256(b"different data"))},
    "err_long_hash": lambda run: (
        lambda e: e | {"plaintext_body_hash": b64encode(b64decode(e["plaintext_body_hash"]) + b"\0")}
    ),
    # Another model the target serves where one is named, so that only the mismatch can be refused (an
    # unknown model_name may be refused as unknown, before the rule R3.16 names).
    "err_model_name_mismatch": lambda run: (
        lambda e: e | {"model_name": run.target.embedding_model or run.target.image_model or UNKNOWN_MODEL}
    ),
}


def _mutated(name: str) -> Probe[ExchangeRecord]:
    def send(run: Run) -> ExchangeRecord:
        return run.send("chat", mutate=ERR_MUTATIONS[name](run))

    return probe(name)(send)


MUTATED: dict[str, Probe[ExchangeRecord]] = {name: _mutated(name) for name in ERR_MUTATIONS}


@dataclass
class TableRun:
    """The member table's cases this run sent (conformance.member_table), each with its answer, or
    None where the case could not be made from any envelope the suite sealed (a node key with no '+'
    or '/' has no URL-safe re-encoding)."""

    depth: Depth
    cases: tuple[Case, ...]
    answers: tuple[ExchangeRecord | None, ...]

    @property
    def refused(self) -> tuple[ExchangeRecord, ...]:
        return tuple(answer for answer in self.answers if answer is not None)

    @property
    def parts(self) -> tuple[ExchangeRecord, ...]:
        return self.refused

    def of(self, check_id: str) -> list[tuple[Case, ExchangeRecord | None]]:
        return [(c, a) for c, a in zip(self.cases, self.answers, strict=True) if c.check_id == check_id]


_RESEALS = 24  # fresh keys, salt and nonce each time, and a plaintext one byte longer every third


def _table_case(run: Run, case: Case, lock: LockRecord) -> ExchangeRecord | None:
    """Seal a valid chat request, break it as ``case`` says, and send it; None if no seal could carry the
    case (sealing sends nothing, so the attempts share the one lock)."""
    for attempt in range(_RESEALS):
        plaintext = run.plaintext("chat", user="u" * (attempt % 3))  # shifts the ciphertext's padding
        prepared = run.prepare(lock, plaintext)
        try:
            body = case.mutation.apply(prepared.sealed.request.to_json())
        except NotProducible:
            continue
        headers = run.client.headers(body=body)
        if run.client.node_face is not None and "x-signature" not in headers:
            # The broken body claims no hash (the member is gone, or the body is not an object): sign the
            # valid request's, so that a node face refuses the case's defect, not a missing X-Signature.
            headers = prepared.headers
        return run.post(replace(prepared, body=body, headers=headers))
    return None


def _member_table(depth: Depth) -> Callable[[Run], TableRun]:
    def send(run: Run) -> TableRun:
        answers: list[ExchangeRecord | None] = []
        spare: LockRecord | None = None  # a lock a case that could not be made left unspent
        for case in member_table.cases(depth):
            lock = spare or run.lock()
            answer = _table_case(run, case, lock)
            spare = lock if answer is None else None
            answers.append(answer)
        return TableRun(depth, member_table.cases(depth), tuple(answers))

    return send


MEMBER_TABLE: Probe[TableRun] = probe(
    "member_table", sends=len(member_table.COVER), locks=len(member_table.COVER), depth="cover"
)(_member_table("cover"))
MEMBER_TABLE_FULL: Probe[TableRun] = probe(
    "member_table_full", sends=len(member_table.TABLE), locks=len(member_table.TABLE), depth="full"
)(_member_table("full"))
MEMBER_TABLES = (MEMBER_TABLE, MEMBER_TABLE_FULL)


@dataclass
class Sweep:
    """Requests a node must refuse, one per value of a set the spec names, each on its own fresh lock
    (a refused request may spend its lock: the proxy consumes it before the node refuses)."""

    refused: tuple[ExchangeRecord, ...]

    @property
    def parts(self) -> tuple[ExchangeRecord, ...]:
        return self.refused


def _under_zero_secret(key: bytes, plaintext: bytes) -> EnvelopeEdit:
    """Swap in a low-order client key, sealing the body under the key a node that does not check
    derives from it (every low-order point gives the all-zero shared secret, R4.2)."""

    def edit(envelope: dict[str, Any]) -> dict[str, Any]:
        salt, nonce = b64decode(envelope["salt"]), b64decode(envelope["nonce"])
        sealed = AeadKey(derive_key(bytes(32), salt)).seal(nonce, plaintext)
        return envelope | {
            "client_dh_public_key": b64encode(key),
            "ciphertext": b64encode(sealed),
            "plaintext_body_hash": b64encode(blake2b_256(plaintext)),
        }

    return edit


def _low_order_keys(run: Run) -> Sweep:
    """Every one of the 14 low-order encodings (docs/spec.md R4.2 names the set, vectors/x25519.json
    lists it), not one example: a node that refuses only the all-zero key would pass one probe."""
    refused = []
    for key in low_order_encodings():
        plaintext = run.plaintext("chat")
        refused.append(run.send("chat", plaintext, mutate=_under_zero_secret(key, plaintext)))
    return Sweep(tuple(refused))


_ENCODINGS = len(low_order_encodings())
LOW_ORDER_KEYS: Probe[Sweep] = probe("err_low_order_keys", sends=_ENCODINGS, locks=_ENCODINGS)(_low_order_keys)


def _err_unknown_model(run: Run) -> ExchangeRecord:
    plaintext = run.plaintext("chat", model=UNKNOWN_MODEL)
    return run.send("chat", plaintext)


ERR_UNKNOWN_MODEL: Probe[ExchangeRecord] = probe("err_unknown_model")(_err_unknown_model)


def _err_no_lock(run: Run) -> ExchangeRecord:
    lock = run.lock()
    return run.send("chat", lock=lock, stack_small_id=lock.lock.stack_small_id + 100_000 if lock.lock else 0)


ERR_NO_LOCK: Probe[ExchangeRecord] = probe("err_no_lock", face="proxy")(_err_no_lock)


def _err_oversize(run: Run) -> HttpRecord:
    lock = run.lock()
    envelope = run.prepare(lock).sealed.request.to_json()
    envelope["ciphertext"] = b64encode(bytes(OVERSIZE_BYTES * 3 // 4))
    body = jsonwire.dumps(envelope)
    return run.raw(ENDPOINT_PATHS["chat"], body, run.client.headers(body=body))


ERR_OVERSIZE: Probe[HttpRecord] = probe("err_oversize")(_err_oversize)


def _err_no_auth(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"authorization": ""})


ERR_NO_AUTH: Probe[ExchangeRecord] = probe("err_no_auth", face="proxy")(_err_no_auth)


def _err_content_type(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"content-type": "text/plain"})


ERR_CONTENT_TYPE: Probe[ExchangeRecord] = probe("err_content_type")(_err_content_type)


# The envelope's probes a node must refuse, but the model-name mismatch (a SHOULD: a node may serve
# it). conformance.checks.refusals gathers them with the other probe modules' refusals.
ENVELOPE_REFUSALS: tuple[Probe[Any], ...] = (
    *(p for name, p in MUTATED.items() if name != "err_model_name_mismatch"),
    *MEMBER_TABLES,
    LOW_ORDER_KEYS,
    ERR_UNKNOWN_MODEL,
    ERR_NO_LOCK,
    ERR_OVERSIZE,
    ERR_NO_AUTH,
    ERR_CONTENT_TYPE,
)


def _overlapping(run: Run) -> Pair:
    """A chat request and a chat stream in flight at once, on two connections, each with its own key
    and sentinel. A node that keeps per-request state in a shared place (one key slot, one nonce
    counter, one output buffer) answers one under the other's key or with the other's content; a suite
    that sends one request at a time never sees it."""
    import threading

    plain, streamed = run.lock(), run.lock()
    other = run.other_client(run.target.api_key)
    start = threading.Barrier(2, timeout=30)
    results: dict[str, ExchangeRecord] = {}
    failures: list[BaseException] = []

    def send(name: str, client: Any, lock: LockRecord, stream: bool) -> None:
        try:
            plaintext = run.plaintext("chat", stream=stream)
            start.wait()
            results[name] = client.send("chat", plaintext, lock=lock, model_name=run.target.chat_model, stream=stream)
        except BaseException as exc:  # re-raised below, in the probe's own thread
            failures.append(exc)

    threads = [
        threading.Thread(target=send, args=("plain", run.client, plain, False), daemon=True),
        threading.Thread(target=send, args=("streamed", other, streamed, True), daemon=True),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    if failures:
        raise failures[0]
    for record in results.values():
        run.observe(record)
    return Pair(results["plain"], results["streamed"])


OVERLAPPING: Probe[Pair] = probe("overlapping", sends=2, locks=2)(_overlapping)


def _replay(run: Run) -> Pair:
    first = run.send("chat")
    run.lock()  # a fresh lock on the same stack, so only the replay itself can be the reason to refuse
    second = run.raw(ENDPOINT_PATHS["chat"], first.request_body, run.client.headers(body=first.request_body))
    return Pair(first, second)


REPLAY: Probe[Pair] = probe("replay", sends=2, locks=2)(_replay)


def _stream_for_embeddings(run: Run) -> ExchangeRecord:
    plaintext = run.plaintext("embeddings", stream=True)
    return run.send("embeddings", plaintext, stream=True)


STREAM_FOR_EMBEDDINGS: Probe[ExchangeRecord] = probe("stream_for_embeddings")(_stream_for_embeddings)

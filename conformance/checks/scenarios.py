"""The probes of a run. Each sends what it needs once; checks read the results.

Probe names are part of the catalogue's data (``Check.scenarios``), so ``--dry-run`` can say what a
selection of checks will send before anything is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..client import ENDPOINT_PATHS
from ..evidence import ExchangeRecord, HttpRecord
from ..protocol import jsonwire
from ..protocol.b64 import b64decode, b64encode
from ..protocol.primitives import AeadKey, blake2b_256, derive_key, x25519_public_key
from .base import Precondition, Skip
from .run import UNKNOWN_MODEL, Run, scenario

SUCCESS_SCENARIOS = ("chat", "completions", "embeddings", "images", "chat_stream", "completions_stream", "chat_again")
OVERSIZE_BYTES = 2 * 1024 * 1024 + 1


# --- locks -------------------------------------------------------------------------------------------


@scenario("lock", face="proxy", sends=0)
def _lock(run: Run) -> Any:
    return run.client.lock(run.target.chat_model)


@scenario("lock_again", face="proxy", sends=0, reads=("lock",))
def _lock_again(run: Run) -> Any:
    run.scenario("lock")
    return run.client.lock(run.target.chat_model)


@scenario("lock_no_auth", face="proxy", sends=0)
def _lock_no_auth(run: Run) -> HttpRecord:
    body = jsonwire.dumps({"model": run.target.chat_model})
    return run.raw("/v1/nodes/lock", body, {"content-type": "application/json"})


@scenario("lock_unknown_model", face="proxy", sends=0)
def _lock_unknown_model(run: Run) -> Any:
    return run.client.lock(UNKNOWN_MODEL, retries=0)  # a 503 here is the answer, not a reason to retry


@dataclass
class Pair:
    first: ExchangeRecord
    second: ExchangeRecord | HttpRecord


# Locks are per stack: any pending lock on the stack can serve a request. The lock probes therefore
# reserve an unusual number of units and ask for exactly that many, so that only their own lock fits.
REUSE_UNITS = 200_000
EXPIRY_UNITS = 300_000


@scenario("lock_reuse", face="proxy", sends=2)
def _lock_reuse(run: Run) -> Pair:
    lock = run.lock(max_num_tokens=REUSE_UNITS)
    first = run.send("chat", lock=lock, num_compute_units=REUSE_UNITS)
    second = run.send("chat", lock=lock, num_compute_units=REUSE_UNITS)
    return Pair(first, second)


@scenario("lock_expired", face="proxy")
def _lock_expired(run: Run) -> ExchangeRecord:
    lock = run.lock(timeout=1, max_num_tokens=EXPIRY_UNITS)
    run.sleep(1.25)
    return run.send("chat", lock=lock, num_compute_units=EXPIRY_UNITS)


@scenario("lock_foreign", face="proxy")
def _lock_foreign(run: Run) -> ExchangeRecord:
    if run.target.second_api_key is None:
        raise Skip("needs a second API key (--second-api-key) to spend one key's lock with another")
    lock = run.lock()
    other = run.other_client(run.target.second_api_key)
    try:
        return run.send("chat", lock=lock, client=other)
    finally:
        other.close()


# --- successful exchanges ----------------------------------------------------------------------------


@scenario("chat")
def _chat(run: Run) -> ExchangeRecord:
    return run.send("chat")


@scenario("chat_again", reads=("chat",))
def _chat_again(run: Run) -> ExchangeRecord:
    run.scenario("chat")
    return run.send("chat")


@scenario("completions")
def _completions(run: Run) -> ExchangeRecord:
    return run.send("completions")


@scenario("embeddings")
def _embeddings(run: Run) -> ExchangeRecord:
    return run.send("embeddings")


@scenario("images")
def _images(run: Run) -> ExchangeRecord:
    return run.send("images")


@scenario("chat_stream")
def _chat_stream(run: Run) -> ExchangeRecord:
    return run.send("chat", stream=True)


@scenario("completions_stream")
def _completions_stream(run: Run) -> ExchangeRecord:
    return run.send("completions", stream=True)


def success(run: Run, name: str) -> ExchangeRecord:
    """A success scenario's record, or a Precondition error naming why there is nothing to examine."""
    record: ExchangeRecord = run.scenario(name)
    if record.http.status != 200:
        raise Precondition(
            f"the {name} exchange did not succeed (status {record.http.status}"
            f"{', ' + record.http.error if record.http.error else ''})"
        )
    return record


def successes(run: Run, names: tuple[str, ...] = SUCCESS_SCENARIOS) -> list[ExchangeRecord]:
    """Every listed success scenario that applies to the target (skipped endpoints are left out)."""
    out = []
    for name in names:
        try:
            out.append(run.scenario(name))
        except Skip:
            continue
    return out


# --- refusals ----------------------------------------------------------------------------------------


def _flip_b64(text: str, index: int) -> str:
    raw = bytearray(b64decode(text))
    raw[index] ^= 0x01
    return b64encode(bytes(raw))


def _other_key(run: Run) -> str:
    return b64encode(x25519_public_key(run.client.rng.token_bytes(32)))


Mutation = Callable[[dict[str, Any]], dict[str, Any]]
ERR_MUTATIONS: dict[str, Callable[[Run], Mutation]] = {
    "err_tampered_ciphertext": lambda run: lambda e: e | {"ciphertext": _flip_b64(e["ciphertext"], 0)},
    "err_tampered_tag": lambda run: lambda e: e | {"ciphertext": _flip_b64(e["ciphertext"], -1)},
    "err_tampered_nonce": lambda run: lambda e: e | {"nonce": _flip_b64(e["nonce"], 0)},
    "err_tampered_salt": lambda run: lambda e: e | {"salt": _flip_b64(e["salt"], 0)},
    "err_wrong_client_key": lambda run: lambda e: e | {"client_dh_public_key": _other_key(run)},
    "err_wrong_node_key": lambda run: lambda e: e | {"node_dh_public_key": _other_key(run)},
    "err_wrong_hash": lambda run: lambda e: e | {"plaintext_body_hash": b64encode(blake2b_256(b"different data"))},
    "err_missing_field": lambda run: lambda e: {k: v for k, v in e.items() if k != "salt"},
    "err_mistyped_field": lambda run: lambda e: e | {"stack_small_id": str(e["stack_small_id"])},
    "err_unpadded_base64": lambda run: lambda e: e | {"salt": e["salt"].rstrip("=")},
    "err_long_hash": lambda run: (
        lambda e: e | {"plaintext_body_hash": b64encode(b64decode(e["plaintext_body_hash"]) + b"\0")}
    ),
    "err_model_name_mismatch": lambda run: lambda e: e | {"model_name": UNKNOWN_MODEL},
    "err_wrong_length": lambda run: lambda e: e | {"nonce": b64encode(b64decode(e["nonce"])[:-1])},
}


def _register_mutation(name: str) -> None:
    @scenario(name)
    def probe(run: Run) -> ExchangeRecord:
        return run.send("chat", mutate=ERR_MUTATIONS[name](run))


for _name in ERR_MUTATIONS:
    _register_mutation(_name)


@scenario("err_urlsafe_base64")
def _err_urlsafe(run: Run) -> ExchangeRecord:
    # Re-seal until the ciphertext's standard encoding has a '+' or '/' to translate (a few tries at most).
    # Sealing sends nothing, so one lock serves every attempt.
    lock = run.lock()
    for _ in range(32):
        plaintext = run.plaintext("chat")
        probe = run.client.prepare(
            "chat",
            plaintext,
            lock,
            model_name=run.target.chat_model,
            stream=False,
            num_compute_units=None,
            mutate=None,
            headers=None,
        )
        if any(c in probe.sealed.request.ciphertext for c in "+/"):
            return run.send(
                "chat",
                plaintext,
                lock=lock,
                mutate=lambda e: e | {"ciphertext": e["ciphertext"].replace("+", "-").replace("/", "_")},
            )
    raise Precondition("could not produce a ciphertext whose base64 uses '+' or '/'")


@scenario("err_low_order_key")
def _err_low_order_key(run: Run) -> ExchangeRecord:
    """A client key of 32 zero bytes, with the body sealed under the key a non-checking node derives."""

    plaintext = run.plaintext("chat")

    def mutate(envelope: dict[str, Any]) -> dict[str, Any]:
        salt, nonce = b64decode(envelope["salt"]), b64decode(envelope["nonce"])
        sealed = AeadKey(derive_key(bytes(32), salt)).seal(nonce, plaintext)
        return envelope | {
            "client_dh_public_key": b64encode(bytes(32)),
            "ciphertext": b64encode(sealed),
            "plaintext_body_hash": b64encode(blake2b_256(plaintext)),
        }

    return run.send("chat", plaintext, mutate=mutate)


@scenario("err_unknown_model")
def _err_unknown_model(run: Run) -> ExchangeRecord:
    plaintext = run.plaintext("chat", model=UNKNOWN_MODEL)
    return run.send("chat", plaintext)


@scenario("err_no_lock", face="proxy")
def _err_no_lock(run: Run) -> ExchangeRecord:
    lock = run.lock()
    return run.send("chat", lock=lock, stack_small_id=lock.lock.stack_small_id + 100_000 if lock.lock else 0)


@scenario("err_oversize")
def _err_oversize(run: Run) -> HttpRecord:
    lock = run.lock()
    envelope = run.client.prepare(
        "chat",
        run.plaintext("chat"),
        lock,
        model_name=run.target.chat_model,
        stream=False,
        num_compute_units=None,
        mutate=None,
        headers=None,
    ).sealed.request.to_json()
    envelope["ciphertext"] = b64encode(bytes(OVERSIZE_BYTES * 3 // 4))
    body = jsonwire.dumps(envelope)
    return run.raw(ENDPOINT_PATHS["chat"], body, run.client.headers(body=body))


@scenario("err_no_auth", face="proxy")
def _err_no_auth(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"authorization": ""})


@scenario("err_content_type")
def _err_content_type(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"content-type": "text/plain"})


ERR_SCENARIOS = (
    *ERR_MUTATIONS,
    "err_urlsafe_base64",
    "err_low_order_key",
    "err_unknown_model",
    "err_no_lock",
    "err_oversize",
    "err_no_auth",
    "err_content_type",
)


@scenario("health_after", reads=tuple(name for name in ERR_SCENARIOS if name != "err_model_name_mismatch"))
def _health_after(run: Run) -> ExchangeRecord:
    """A valid round trip after every refusal probe that this run has sent."""
    for name in ERR_SCENARIOS:
        if name not in ("err_model_name_mismatch",):
            with contextlib.suppress(Skip):  # a probe of the other face
                run.scenario(name)
    return run.send("chat")


@scenario("replay", sends=2, locks=2)
def _replay(run: Run) -> Pair:
    first = run.send("chat")
    run.lock()  # a fresh lock on the same stack, so only the replay itself can be the reason to refuse
    second = run.raw(ENDPOINT_PATHS["chat"], first.request_body, run.client.headers(body=first.request_body))
    return Pair(first, second)


@scenario("stream_for_embeddings")
def _stream_for_embeddings(run: Run) -> ExchangeRecord:
    plaintext = run.plaintext("embeddings", stream=True)
    return run.send("embeddings", plaintext, stream=True)

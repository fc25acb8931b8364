"""One conformance run against one target: the probes it sends, cached, and the nonce
ledgers every exchange feeds.

Every plaintext carries a fresh sentinel string, so that a leak of the plaintext into an error body,
a header or a log can be found by a plain substring search.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..budget import RunStopped
from ..client import BudgetExceeded, ConfidentialClient, Prepared
from ..keybinding import KeySource
from ..protocol import jsonwire
from ..protocol.nonces import NonceLedger
from ..records import ExchangeRecord, HttpRecord, LockRecord, cut_off, shed_body
from ..taxonomy import Face
from ..textsafe import one_line
from .base import Precondition, Skip
from .probe import Probe

T = TypeVar("T")

UNKNOWN_MODEL = "atoma-conformance/no-such-model"


@dataclass
class Target:
    """What the suite is pointed at, and what it may assume about it."""

    base_url: str
    api_key: str | None
    chat_model: str
    embedding_model: str | None = None
    image_model: str | None = None
    node_address: str | None = None
    second_api_key: str | None = None  # lets the suite test that one key cannot spend another's lock
    embedded: bool = False
    profile: str | None = None  # the embedded mock's profile, or the operator's expectation
    face: Face = "proxy"  # "node": the suite stands in for the proxy (X-Signature, no lock endpoint)
    member_table: str = "cover"  # "full": every case of conformance.member_table, not the cover
    key_source: KeySource | None = None  # where the KEY checks read the chain (None: they skip, saying so)


@dataclass
class Run:
    target: Target
    client: ConfidentialClient
    sleep: Callable[[float], None] = time.sleep
    client_factory: Callable[[str | None], ConfidentialClient] | None = None
    exchanges: list[ExchangeRecord] = field(default_factory=list)
    ledger: NonceLedger = field(default_factory=NonceLedger)  # per key, requests and node nonces
    node_nonces: NonceLedger = field(default_factory=NonceLedger)  # node-chosen nonces, keyed by value only
    _cache: dict[str, Any] = field(default_factory=dict)
    _failed: dict[str, Exception] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)

    def get(self, probe: Probe[T]) -> T:
        """The result of ``probe``, sending it on first use."""
        name = probe.name
        if probe.face is not None and probe.face != self.target.face:
            raise Skip(f"{name} probes the {probe.face} face; this run tests the {self.target.face} face")
        if probe.depth is not None and probe.depth != self.target.member_table:
            raise Skip(f"{name} is the member table's {probe.depth} depth; this run sends the other")
        if name in self._failed:
            raise self._failed[name]
        if name not in self._cache:
            if name in self._running:
                raise RuntimeError(f"probe {name} depends on itself")
            self._running.add(name)
            try:
                try:
                    result = probe.send(self)
                except BudgetExceeded as exc:  # --max-requests: a check the budget stopped is not evaluated
                    raise Precondition(f"not evaluated: {exc} (--max-requests)") from None
                except RunStopped as exc:  # the run's deadline passed, or the target proved unusable
                    raise Precondition(f"not evaluated: {exc}") from None
                cut = _cut_off(result)
                if cut is not None:
                    raise Precondition(f"not evaluated: the {name} exchange {cut}")
                self._cache[name] = result
            except (Skip, Precondition) as exc:
                # Remembered: a probe that failed once is not re-sent for every check that reads it. A
                # copy without the traceback, which would keep the probe's frames (and a huge record) alive.
                self._failed[name] = type(exc)(*exc.args)
                raise
            finally:
                self._running.discard(name)
        cached: T = self._cache[name]
        return cached

    def ran(self, name: str) -> bool:
        return name in self._cache

    # --- building blocks for probes ------------------------------------------------------------------

    def sentinel(self) -> str:
        return f"atoma-conformance-sentinel-{secrets.token_hex(8)}"

    def plaintext(self, endpoint: str, *, stream: bool = False, model: str | None = None, **extra: Any) -> bytes:
        """A valid plaintext request carrying a fresh sentinel."""
        chosen = model or (self.target.chat_model if endpoint in ("chat", "completions") else self.model_for(endpoint))
        return valid_plaintext(endpoint, chosen, self.sentinel(), stream=stream, **extra)

    def model_for(self, endpoint: str) -> str:
        if endpoint in ("chat", "completions"):
            return self.target.chat_model
        model = self.target.embedding_model if endpoint == "embeddings" else self.target.image_model
        if model is None:
            flag = "--embedding-model" if endpoint == "embeddings" else "--image-model"
            raise Skip(f"no {endpoint} model was named ({flag})")
        return model

    def lock(self, endpoint: str = "chat", **kwargs: Any) -> LockRecord:
        model = self.model_for(endpoint)
        if endpoint == "images":
            kwargs.setdefault("max_num_tokens", 1_048_576)
        record = self.client.lock(model, **kwargs)
        if not record.ok:
            status = record.http.status
            raise Precondition(
                f"could not take a usable lock for {model} (status {status}, "
                f"{record.parse_error or record.public_key_error or record.http.error or 'low-order key'})"
            )
        return record

    def send(
        self,
        endpoint: str,
        plaintext: bytes | None = None,
        *,
        stream: bool = False,
        lock: LockRecord | None = None,
        model_name: str | None = None,
        mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        client: ConfidentialClient | None = None,
        **kwargs: Any,
    ) -> ExchangeRecord:
        plaintext = plaintext if plaintext is not None else self.plaintext(endpoint, stream=stream)
        lock = lock or self.lock(endpoint)
        units = 1_048_576 if endpoint == "images" else None
        record = (client or self.client).send(
            endpoint,
            plaintext,
            lock=lock,
            model_name=model_name or self.model_for(endpoint),
            stream=stream,
            num_compute_units=kwargs.pop("num_compute_units", units),
            mutate=mutate,
            **kwargs,
        )
        self._observe(record, mutated=mutate is not None)
        return record

    def prepare(self, lock: LockRecord, plaintext: bytes | None = None) -> Prepared:
        """A valid chat request, sealed and ready but not sent, for a probe to alter or inspect first."""
        return self.client.prepare(
            "chat",
            plaintext if plaintext is not None else self.plaintext("chat"),
            lock,
            model_name=self.target.chat_model,
            stream=False,
            num_compute_units=None,
            mutate=None,
            headers=None,
        )

    def post(self, prepared: Prepared, *, mutated: bool = True) -> ExchangeRecord:
        """Send a request prepared (and perhaps altered) by a probe, and observe it like :meth:`send`."""
        record = self.client.post_prepared(prepared)
        self._observe(record, mutated=mutated)
        return record

    def observe(self, record: ExchangeRecord) -> None:
        """Feed an exchange a probe sent through a client of its own (not :meth:`send`) to the ledgers."""
        self._observe(record, mutated=False)

    def _observe(self, record: ExchangeRecord, *, mutated: bool) -> None:
        self.exchanges.append(record)
        key = record.exchange.key_id
        if not mutated:
            self.ledger.observe(key, record.exchange.request_nonce, f"{record.endpoint} request")
        if record.http.status != 200:
            return
        for message in record.messages:
            if message.nonce is not None and message.nonce_error is None:
                where = f"{record.endpoint}{' stream' if record.streaming else ''} {message.where}"
                self.ledger.observe(key, message.nonce, where)
                self.node_nonces.observe("any", message.nonce, f"{key} {where}")

    def raw(self, path: str, body: bytes, headers: dict[str, str], *, chunked: bool = False) -> HttpRecord:
        return shed_body(self.client.request("POST", path, content=body, headers=headers, chunked=chunked))

    def other_client(self, api_key: str | None) -> ConfidentialClient:
        if self.client_factory is None:
            raise Skip("no way to build a second client")
        return self.client_factory(api_key)


def _cut_off(result: Any) -> str | None:
    """Why a probe's answer was not a whole answer (``records.cut_off``), or None when every exchange
    in it was. An answer cut short or never given is evidence of nothing the rules judge: a 200 cut
    off at the deadline is not a served answer, and silence is not a refusal. Checks that read it are
    "not evaluated", never pass."""
    parts = getattr(result, "parts", (result,))
    for part in parts:
        if not isinstance(part, HttpRecord | ExchangeRecord | LockRecord):
            continue
        why = cut_off(part)
        if why is not None:
            http = part if isinstance(part, HttpRecord) else part.http
            if http.status is None:
                return f"got no answer ({one_line(http.detail or why, 160)})"
            return f"was cut off ({why}) after status {http.status}"
    return None


def valid_plaintext(endpoint: str, model: str, mark: str, *, stream: bool = False, **extra: Any) -> bytes:
    """The smallest request each endpoint must serve, carrying ``mark`` (a sentinel the privacy checks
    look for in answers): what ``run``'s probes and ``load``'s users send."""
    if endpoint == "chat":
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": f"Say hello. ({mark})"}],
            "max_tokens": 16,
            "stream": stream,
        }
    elif endpoint == "completions":
        body = {"model": model, "prompt": f"Once upon a time ({mark})", "max_tokens": 16, "stream": stream}
    elif endpoint == "embeddings":
        body = {"model": model, "input": f"embed me ({mark})"}
    else:
        body = {
            "model": model,
            "prompt": f"a small square ({mark})",
            "n": 1,
            "size": "256x256",
            "response_format": "b64_json",
        }
    if stream and endpoint in ("embeddings", "images"):
        # Asked for inside the plaintext too, so that envelope and plaintext agree (R3.16) and only
        # the endpoint's not streaming (R9.1) is left to decide the answer.
        body["stream"] = True
    body.update(extra)
    return jsonwire.dumps(body)

"""Probes of the HTTP layer and the lock endpoint's input: routes that do not exist, bearer tokens that
are malformed or unknown, lock bodies that are malformed or carry defaults, and what a lock's capacity
admits (docs/spec.md §2, R10.1, R10.7).

Most are refusals, each cheap: a lock request or a request to a path with no handler. Where a refusal
provably comes before lock consumption (a request without a valid token, one larger than every lock on
its stack), the probe reuses one lock for the refusals and then sends a valid request on it, which
both shows the target serves that request and that the refusals left the lock in place.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ..client import ENDPOINT_PATHS, LOCK_PATH
from ..protocol import jsonwire
from ..records import ExchangeRecord, HttpRecord, LockRecord, analyse_lock, shed_body
from .probe import Probe, probe
from .run import Run

UNKNOWN_PATH = "/v1/atoma-conformance/no-such-endpoint"
DEFAULT_LOCK_TIMEOUT_S = 5  # R2.1: an absent or null timeout
DEFAULT_UNITS = 8192  # R2.1 and R2.12: an absent or null max_num_tokens, an absent or null num_compute_units
# A capacity no other lock of the run reserves (the default 8192, LOCK_REUSE's 200,000, LOCK_EXPIRED's
# 300,000), so that only the probe's own lock can serve its requests: locks are per stack.
AUTH_UNITS = 450_000
SMALL_UNITS = 16  # a lock too small for a request of the default size (R2.12)
MALFORMED = 2  # the Authorization values of _malformed_authorization


def _malformed_authorization(run: Run) -> dict[str, str]:
    """Authorization values that are not "Bearer <token>", by label: the run's own key under another
    scheme (a target that strips any 7-character prefix, or ignores the scheme, lets it in), and the
    scheme with nothing after it (an HTTP client strips the trailing space of "Bearer ", as the header
    grammar lets it)."""
    return {"the key under another scheme": f"Digest {run.target.api_key or 'atoma-conformance'}", "no token": "Bearer"}


def _unknown_token() -> str:
    """A well-formed bearer token no target issued: fresh randomness, so it cannot be a real key."""
    return f"atoma-conformance-unknown-key-{secrets.token_hex(16)}"


def _lock_headers(run: Run, **changes: str) -> dict[str, str]:
    """The headers of a lock request with the run's key, with ``changes`` (a header name's ``_`` as
    ``-``) applied; an empty value drops the header."""
    headers = run.client.headers()
    for name, value in changes.items():
        headers.pop(name.replace("_", "-"), None)
        if value:
            headers[name.replace("_", "-")] = value
    return headers


def _lock_body(run: Run) -> bytes:
    return jsonwire.dumps({"model": run.target.chat_model})


# --- routes that do not exist (R10.1) ------------------------------------------------------------------


def _unknown_path(run: Run) -> HttpRecord:
    body = b"{}"
    return shed_body(run.client.request("POST", UNKNOWN_PATH, content=body, headers=run.client.headers(body=body)))


HTTP_UNKNOWN_PATH: Probe[HttpRecord] = probe("http_unknown_path", locks=0)(_unknown_path)


def _confidential_get(run: Run) -> HttpRecord:
    return shed_body(run.client.request("GET", ENDPOINT_PATHS["chat"], headers=run.client.headers()))


HTTP_WRONG_METHOD: Probe[HttpRecord] = probe("http_wrong_method", locks=0)(_confidential_get)


def _lock_get(run: Run) -> HttpRecord:
    return shed_body(run.client.request("GET", LOCK_PATH, headers=run.client.headers()))


LOCK_WRONG_METHOD: Probe[HttpRecord] = probe("lock_wrong_method", face="proxy", sends=0)(_lock_get)


# --- bearer tokens (R2.2, R2.4, R10.7) -------------------------------------------------------------------


@dataclass
class Tokens:
    """Requests refused for their Authorization header: each malformed value (by label), and one with
    ``unknown_token``, a well-formed token no target issued."""

    malformed: dict[str, HttpRecord | ExchangeRecord]
    unknown: HttpRecord | ExchangeRecord
    unknown_token: str = field(repr=False)

    @property
    def refused(self) -> tuple[HttpRecord | ExchangeRecord, ...]:
        return (*self.malformed.values(), self.unknown)

    @property
    def parts(self) -> tuple[HttpRecord | ExchangeRecord, ...]:
        return self.refused


def _lock_bad_tokens(run: Run) -> Tokens:
    body = _lock_body(run)
    malformed: dict[str, HttpRecord | ExchangeRecord] = {
        label: run.raw(LOCK_PATH, body, _lock_headers(run, authorization=value))
        for label, value in _malformed_authorization(run).items()
    }
    token = _unknown_token()
    unknown = run.raw(LOCK_PATH, body, _lock_headers(run, authorization=f"Bearer {token}"))
    return Tokens(malformed, unknown, token)


LOCK_BAD_TOKENS: Probe[Tokens] = probe("lock_bad_tokens", face="proxy", sends=0, locks=MALFORMED + 1)(_lock_bad_tokens)


def _lock_no_token_bad_body(run: Run) -> HttpRecord:
    return run.raw(LOCK_PATH, b"not json", _lock_headers(run, authorization=""))


LOCK_NO_TOKEN_BAD_BODY: Probe[HttpRecord] = probe("lock_no_token_bad_body", face="proxy", sends=0)(
    _lock_no_token_bad_body
)


@dataclass
class SpentTokens(Tokens):
    """:class:`Tokens` on a confidential endpoint, then ``valid``: a request with the run's key.

    The malformed ones and ``valid`` share one lock of the run's key, which only they can spend. The
    unknown token's request uses a lock of that token's own where the target grants one (it did in
    lock_bad_tokens: ``unknown_own_lock``); else the shared lock, where a target that binds locks to keys
    (R2.14) may answer it 425, as a request with two faults, and not show whether it knows the token."""

    valid: ExchangeRecord
    unknown_own_lock: bool

    @property
    def parts(self) -> tuple[HttpRecord | ExchangeRecord, ...]:
        return (*self.refused, self.valid)


def _err_bad_tokens(run: Run) -> SpentTokens:
    granted = run.get(LOCK_BAD_TOKENS)  # first: its requests do not belong between these
    shared = run.lock(max_num_tokens=AUTH_UNITS)

    def send(authorization: str, lock: LockRecord, units: int | None = AUTH_UNITS) -> ExchangeRecord:
        return run.send("chat", lock=lock, num_compute_units=units, headers={"authorization": authorization})

    malformed: dict[str, HttpRecord | ExchangeRecord] = {
        label: send(value, shared) for label, value in _malformed_authorization(run).items()
    }
    # A target that granted the unknown token a lock grants it another now (the first may have expired).
    bearer = f"Bearer {granted.unknown_token}"
    own_lock = None
    if isinstance(granted.unknown, HttpRecord) and granted.unknown.status == 200:
        own = analyse_lock(
            run.client.request(
                "POST", LOCK_PATH, content=_lock_body(run), headers=_lock_headers(run, authorization=bearer)
            )
        )
        own_lock = own if own.ok else None
    unknown = send(bearer, own_lock, None) if own_lock is not None else send(bearer, shared)
    valid = run.send("chat", lock=shared, num_compute_units=AUTH_UNITS)
    return SpentTokens(malformed, unknown, granted.unknown_token, valid, own_lock is not None)


ERR_BAD_TOKENS: Probe[SpentTokens] = probe(
    "err_bad_tokens", face="proxy", sends=MALFORMED + 2, locks=2, reads=(LOCK_BAD_TOKENS,)
)(_err_bad_tokens)


# --- lock bodies (R2.1, R2.3) ----------------------------------------------------------------------------


@dataclass
class Bodies:
    """Lock requests a target must refuse for their body, by label."""

    by_label: dict[str, HttpRecord]

    @property
    def refused(self) -> tuple[HttpRecord, ...]:
        return tuple(self.by_label.values())

    @property
    def parts(self) -> tuple[HttpRecord, ...]:
        return self.refused


def _malformed_lock_bodies(run: Run) -> dict[str, bytes]:
    model = run.target.chat_model
    return {
        "not JSON": b"not json",
        "no model": jsonwire.dumps({"max_num_tokens": SMALL_UNITS}),
        "max_num_tokens a string": jsonwire.dumps({"model": model, "max_num_tokens": "x"}),
        "negative timeout": jsonwire.dumps({"model": model, "timeout": -1}),
    }


MALFORMED_LOCK_BODIES = 4


def _lock_malformed(run: Run) -> Bodies:
    headers = _lock_headers(run)
    return Bodies({label: run.raw(LOCK_PATH, body, headers) for label, body in _malformed_lock_bodies(run).items()})


LOCK_MALFORMED: Probe[Bodies] = probe("lock_malformed", face="proxy", sends=0, locks=MALFORMED_LOCK_BODIES)(
    _lock_malformed
)


def _lock_content_type(run: Run) -> HttpRecord:
    return run.raw(LOCK_PATH, _lock_body(run), _lock_headers(run, content_type="text/plain"))


LOCK_CONTENT_TYPE: Probe[HttpRecord] = probe("lock_content_type", face="proxy", sends=0)(_lock_content_type)


# --- what a lock's capacity admits (R2.1, R2.12) ---------------------------------------------------------


def _null_units(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"num_compute_units": None}


@dataclass
class Capacity:
    """A small lock (``SMALL_UNITS``): a request one unit larger, one with ``num_compute_units: null``
    (8192 units), then one that fits; and a lock whose body leaves the defaults to the target (null
    members and an unknown one), with a ``null``-units request on it. Sent after every lock the run
    took earlier has expired, so only these locks can serve these requests."""

    larger: ExchangeRecord
    null_units: ExchangeRecord
    fits: ExchangeRecord
    defaults_lock: LockRecord
    on_defaults: ExchangeRecord | None  # None: the defaults lock was not granted

    @property
    def refused(self) -> tuple[ExchangeRecord, ...]:
        return (self.larger, self.null_units)

    @property
    def parts(self) -> tuple[ExchangeRecord | LockRecord, ...]:
        sent = (self.larger, self.null_units, self.fits, self.defaults_lock, self.on_defaults)
        return tuple(part for part in sent if part is not None)


def _lock_capacity(run: Run) -> Capacity:
    # Every earlier lock on the stack expires first (a default lock lives 5 s, R2.1): any of them could
    # serve these requests, which is conformant and would hide the rule. Free against the embedded mock,
    # whose clock the run advances.
    run.sleep(DEFAULT_LOCK_TIMEOUT_S + 0.5)
    small = run.lock(max_num_tokens=SMALL_UNITS)
    larger = run.send("chat", lock=small, num_compute_units=SMALL_UNITS + 1)
    null_units = run.send("chat", lock=small, mutate=_null_units)
    fits = run.send("chat", lock=small, num_compute_units=SMALL_UNITS)
    members = {"atoma_conformance_unknown": {"ignored": [1]}, "model": run.target.chat_model}
    body = jsonwire.dumps(members | {"max_num_tokens": None, "timeout": None})
    defaults_lock = analyse_lock(run.client.request("POST", LOCK_PATH, content=body, headers=_lock_headers(run)))
    on_defaults = run.send("chat", lock=defaults_lock, mutate=_null_units) if defaults_lock.ok else None
    return Capacity(larger, null_units, fits, defaults_lock, on_defaults)


LOCK_CAPACITY: Probe[Capacity] = probe("lock_capacity", face="proxy", sends=4, locks=2)(_lock_capacity)


# The probes here whose requests (``refused``, where a probe also sends valid ones) a target must refuse:
# for refusals.REFUSALS, which the shared refusal rules (ERR-017, ERR-018, ERR-019, ERR-026) and the health
# check after the refusals read.
HTTP_REFUSALS: tuple[Probe[Any], ...] = (
    HTTP_UNKNOWN_PATH,
    HTTP_WRONG_METHOD,
    LOCK_WRONG_METHOD,
    LOCK_BAD_TOKENS,
    LOCK_NO_TOKEN_BAD_BODY,
    ERR_BAD_TOKENS,
    LOCK_MALFORMED,
    LOCK_CONTENT_TYPE,
    LOCK_CAPACITY,
)

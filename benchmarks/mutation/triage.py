"""The verdict on every surviving mutant: equivalent (and why) or a gap (which requirement, which check).

A rule matches a survivor by file, function (exact, or a prefix ending in ``*``), operator and a
substring of the mutation's description; the first rule that matches decides. Rules name code, not
line numbers, so they survive edits elsewhere in a file; a survivor no rule matches is reported as
untriaged, which is how a re-run shows a new survivor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    file: str
    function: str  # qualname, or a prefix ending in "*"
    verdict: str  # "equivalent: why" or "gap: requirement; the check that would catch it"
    match: str = ""  # a substring of the mutation's description; "" matches any
    operator: str = ""  # "" matches any
    reached: bool | None = None  # None matches both; False: only survivors the clean run never executes
    line: int = 0  # only where the text cannot tell two mutants apart (a default's True → False); 0: any

    def matches(self, record: dict[str, Any]) -> bool:
        if self.reached is not None and bool(record.get("reached")) != self.reached:
            return False
        if self.line and record["line"] != self.line:
            return False
        function = self.function
        if function.endswith("*"):
            if not record["qualname"].startswith(function[:-1]):
                return False
        elif record["qualname"] != function:
            return False
        return (
            record["file"] == self.file
            and (not self.operator or record["operator"] == self.operator)
            and self.match in record["description"]
        )


APP = "mock_node/app.py"
SEAL = "mock_node/sealing.py"
LOCKS = "mock_node/locks.py"
ENV = "conformance/protocol/envelope.py"
MODELS = "conformance/protocol/models.py"
PRIM = "conformance/protocol/primitives.py"
B64 = "conformance/protocol/b64.py"
JSON = "conformance/protocol/jsonwire.py"
SUI = "conformance/protocol/sui.py"

MESSAGE = (
    "equivalent: message or field-path text only; status and code do not depend on it (R10.1 leaves the wording free)"
)
KNOB = (
    "equivalent: compares a Behaviour knob with a value only a fault or the atoma-node-compat profile sets;"
    " the strict node's knob equals neither, so the branch stays off"
)
LENGTH_GUARD = (
    "equivalent: a length guard behind the envelope decode, which already refused every wrong length with"
    " 400 (ConfidentialComputeRequest.decode, b64decode_fixed); the value here is always the right length"
)
USAGE_RAW = (
    "equivalent: when the core's Usage cannot hold the clear usage, sealing relays it exactly as the backend"
    " wrote it (_usage_model returns None); Usage.to_json returns the same raw object otherwise, so the bytes"
    " on the wire are identical"
)


def only_when(what: str) -> str:
    return f"equivalent: only runs when {what}; the strict node with the embedded configuration never executes it"


def gap(requirement: str, check: str) -> str:
    return f"gap: {requirement}; {check}"


CODE_R31 = gap(
    "R3.1: a body that is not a JSON object, lacks a member or mistypes one is refused 400 with code"
    " REQUEST_ERROR (proxy face) or INVALID_BODY (node face)",
    "ERR-009 and ERR-010 check the status only; `refused_with` and the face's code would catch it",
)
CODE_NODE_FACE = gap(
    "R3.1, R3.14 and R10.6 name INVALID_BODY for these refusals on the node face (Table 10.1)",
    "the node-face runs of ERR-007, ERR-009, ERR-010 and ERR-024 check the status only; judging them with"
    " `refused_with` and the face's code would catch it",
)
NODE_FACE_MODEL = gap(
    "R3.14: on the node face a model the node does not serve is refused with 400 (404 is for the proxy face)",
    "ERR-011 accepts 400 or 404 on both faces; on the node face it should accept 400 only",
)
CONSISTENCY = gap(
    "R3.16 (SHOULD): a model_name or stream mismatch is refused with 400 (REQUEST_ERROR/INVALID_BODY)",
    "ERR-023 accepts any refusal (judge_refusal), even 401 or a 500, and no check covers the stream-flag"
    " mismatch; ERR-023 with statuses=(400,) and a stream-mismatch probe would catch it",
)
ERR_011_PROBE = gap(
    "R3.14: a model the node does not serve is refused",
    "ERR-011's probe keeps the chat model in model_name, so without the model check the R3.16 consistency"
    " check still refuses it with 400; a probe whose model_name equals its unknown inner model would catch it",
)
PLAINTEXT_SHAPE = gap(
    "R3.14: a plaintext that is not a JSON object, or has no string `model`, is refused with 400 INVALID_BODY",
    "ERR-030 sends such plaintexts; this branch is not reached by them",
)
NOT_JSON = gap(
    "R3.1 (a body that is not JSON is refused with 400) and R10.2 (never 5xx for it)",
    "the member table's full depth sends such bodies (trailing data, invalid UTF-8, a JSON string: ERR-035),"
    " but the default cover sends only the array, and this harness runs the default depth",
)
JSON_LIMITS = gap(
    "R10.2 and R10.10: a client-caused malformed body is refused 4xx and the node keeps serving",
    "no probe sends a very deeply nested body or an integer with thousands of digits; with the refusal removed"
    " the node answers 500",
)
TABLE_CODE = gap(
    "Table 10.1 gives this refusal's code (R10.11/R10.12 pair listed codes with statuses)",
    "the refusal check named in the requirement column checks the status only; `refused_with` with the"
    " table's code would catch a made-up or swapped code",
)
AUTH_CODE = gap(
    "R2.2 and R10.7: a missing or malformed bearer token is refused with 401 and code AUTH_ERROR",
    "ERR-021 and LOCK-007 check the status only; checking the code would catch it",
)
BEARER_FORM = gap(
    "R2.2 and R10.7: a malformed bearer token (another scheme, or `Bearer ` with nothing after it) is refused with 401",
    "ERR-021 and LOCK-007 send no Authorization header at all; probes with `Basic …` and a blank token would catch it",
)
UNKNOWN_KEY = gap(
    "R2.2 and R10.7: an unknown bearer token is refused with 401 AUTH_ERROR",
    "no check presents a made-up API key (the embedded mock accepts any token, but this configuration knows"
    " its keys); a check sending a random key and expecting 401 would catch it",
)
CHARSET = gap(
    "R3.3: `application/json; charset=utf-8` is allowed",
    "the suite always sends bare `application/json`; a served request with a charset parameter (an"
    " ENDPOINT check variant) would catch a node that refuses it",
)
SIZE_EXACT = gap(
    "R3.18 and R10.2: a body at the limit (2 MiB) is accepted; only larger ones are refused with 413",
    "ERR-013 sends only an oversized body; a probe of exactly the limit, expected to be served, would catch"
    " the off-by-one",
)
SIZE_CHUNKED = gap(
    "R3.18: a body over the limit is refused with 413 and reading stops at the limit, however it is framed",
    "ERR-013 declares a Content-Length, so the streaming cap never runs; ERR-013 sent chunked (no"
    " Content-Length) would catch it",
)
CHUNKED = gap(
    "R10.2 and R10.10: a valid request sent with `Transfer-Encoding: chunked` is not answered 5xx",
    "every probe declares a Content-Length; a served request sent chunked would catch the 500",
)
LOCK_SHAPE = gap(
    "R2.3: a lock body that is not JSON, lacks `model` or has a mistyped member is refused 4xx with a JSON error body",
    "no check sends a malformed lock body; a LOCK check with `{}` and `not json` would catch it",
)
LOCK_UNKNOWN_MODEL = gap(
    "R2.10: no node serves the model: 503 SERVICE_UNAVAILABLE",
    "LOCK-008 (a SHOULD check) accepts any JSON refusal; judging it with 503 and the code would catch it",
)
LOCK_CONTENT_TYPE = gap(
    "R2.3 (the lock body is JSON; Table 10.1: not application/json is 415)",
    "no check sends the lock request with another Content-Type; with this mutant the lock endpoint stops checking it",
)
HOP_HASH_B64 = gap(
    "R3.4 and R10.3 on the node face: a plaintext_body_hash that is not canonical base64 is refused with 400",
    "on the node face the X-Signature check reads the hash before the envelope decode, and no node-face probe"
    " sends a non-base64 hash (ERR-014/ERR-015 mangle another member); that probe would catch it",
)
ECDSA_RANGE = (
    "equivalent: OpenSSL's ECDSA verification refuses r or s outside [1, n-1] itself (InvalidSignature), so with"
    " this guard weakened or gone the same signatures are refused with the same 400 INVALID_HEADER; NODE-009"
    " sends r = n and s = 0 and sees that refusal either way"
)
XSIG_CRASH = only_when("a fault of mock_node/xsig.py (empty_signature or ecdsa_verifier) makes the verifier crash")
STREAM_ON_EMBEDDINGS = gap(
    "R9.1: embeddings and images never answer with an event stream",
    'STREAM-008 sends a non-streaming embeddings request; one with `"stream": true` (envelope and'
    " plaintext) would catch a node that then streams",
)
REPLAY_REENCODED = gap(
    "R12.7 (SHOULD): a replay is recognised by (K, request nonce), so a client key re-encoded with bit 255"
    " set is the same key",
    "REPLAY-001 replays the identical bytes; a replay with bit 255 of client_dh_public_key flipped would catch"
    " a replay cache that does not canonicalise the key",
)
TRAILING_BITS = gap(
    "R3.4: non-zero trailing bits in a binary member are refused",
    "ERR-014 and ERR-015 test the URL-safe alphabet and missing padding only; a salt whose last character"
    " carries non-zero unused bits would catch it",
)
MISSING_STACK = gap(
    "R3.1 and R10.2: a missing or null `stack_small_id` is refused with 400, never 5xx",
    "the member table's full depth removes and nulls stack_small_id (ERR-009, ERR-010); the default cover"
    " removes the salt and nulls model_name, so at the default depth this mutant (an AssertionError, 500)"
    " is not reached",
)
STACK_RANGE = gap(
    "R3.11: stack_small_id accepts 0 to 2^63-1 and refuses negatives and values above 2^64-1 with 400",
    "the member table's full depth sends -1 and 2^64 (ERR-010); the default cover sends num_compute_units -1"
    " only; the accepted boundaries (0, 2^63-1) need a lock on that very stack, so no probe sends them",
)
BOOL_TYPE = gap(
    "R3.1: a member of a type not allowed there (a string `stream`) is refused with 400",
    "the cover's `stream` string case is still refused 400 without this raise (a later rule refuses the"
    " value), so status and code do not change; a node whose later rule is absent would pass",
)
NOT_FOUND_ROUTE = (
    "equivalent: R10.1 names neither a status nor a code for an unknown path or a wrong method; ERR-027 asks"
    " for a non-2xx JSON error body, which the mutant still gives (only its status, code or wording differ)"
)
NOT_IN_SPEC = (
    "equivalent: /health and /v1/models are not in docs/spec.md (the CLI preflight reads /v1/models, outside"
    " the catalogue this harness runs)"
)


RULES: tuple[Rule, ...] = (
    # --- issue 16's new branches (first, so that no older, wider rule takes them) -------------------------
    Rule(
        B64, "_canonical_tail", "equivalent: an empty value fails the decoded-length rule with the same 400", "not raw"
    ),
    Rule(
        MODELS,
        "LockRequest.parse",
        only_when(
            "a caller parses lock bytes with LockRequest.parse (the mock reads"
            " the lock body with jsonwire.loads and from_json)"
        ),
    ),
    Rule(APP, "create_app.lock", KNOB + " (lock_rejections is json)", "text/plain", reached=False),
    Rule(APP, "create_app.lock", only_when("lock_body_first is on (a fault)"), "owner = authenticate"),
    Rule(
        APP,
        "create_app.lock",
        "equivalent: the strict node checked the token before the body; checking it"
        " again after the body changes nothing",
        "`body_first` negated",
    ),
    Rule(
        APP,
        "create_app.read_lock_request",
        "equivalent: R2.3 names no code for a malformed lock body (400 or"
        " 422 with a JSON error body), and Table 10.1 none either",
        "REQUEST_ERROR",
        reached=True,
        line=240,
    ),
    Rule(
        APP,
        "create_app.read_lock_request",
        KNOB + " (`members` feeds only the lock_members faults)",
        "isinstance(value, dict)",
    ),
    Rule(APP, "create_app.read_lock_request", KNOB, "deny-unknown"),
    Rule(APP, "create_app.read_lock_request", KNOB, "null-as-zero"),
    Rule(
        APP,
        "create_app.read_lock_request",
        only_when("lock_members is deny-unknown or null-as-zero (faults)"),
        reached=True,
        line=242,
    ),
    Rule(
        APP,
        "create_app.read_lock_request",
        only_when("lock_members is deny-unknown or null-as-zero (faults)"),
        reached=True,
        line=244,
    ),
    Rule(
        APP,
        "create_app.read_lock_request",
        only_when("lock_members is deny-unknown or null-as-zero (faults)"),
        reached=False,
    ),
    Rule(
        APP,
        "create_app._confidential",
        "equivalent: on the proxy face authenticate() sets the owner whatever"
        " `late` says; on the node face the owner only names the caller to a client judge, which this run has not",
        "`late` negated",
    ),
    Rule(
        APP,
        "create_app._confidential",
        "equivalent: _framed_limit returns the limit unchanged unless a framing fault is on",
        "_framed_limit",
    ),
    Rule(APP, "create_app._confidential", KNOB, "'refuse'"),
    Rule(APP, "create_app._confidential", only_when("the unknown-member-refused fault is on"), "_refuse_unknown"),
    Rule(APP, "create_app._confidential", only_when("client_key_top_bit is refuse (a fault)"), line=291),
    Rule(APP, "create_app._confidential", only_when("client_key_top_bit is refuse (a fault)"), line=292),
    Rule(APP, "create_app._confidential", KNOB, "null-as-zero"),
    Rule(APP, "create_app._confidential", KNOB, "ignore-capacity"),
    Rule(APP, "create_app._confidential", only_when("compute_units is a fault's"), line=296),
    Rule(APP, "create_app._confidential", only_when("compute_units is a fault's"), line=298),
    Rule(APP, "create_app._confidential", only_when("token_after_lock is on (a fault)"), "authenticate", reached=False),
    Rule(APP, "create_app._plaintext_request", CONSISTENCY, line=516),  # the stream-flag mismatch: never sent
    Rule(APP, "create_app._plaintext_request", KNOB + " (plaintext_model is plaintext)", line=498),
    Rule(APP, "create_app._plaintext_request", only_when("plaintext_model is envelope (a fault)"), line=499),
    Rule(APP, "create_app._plaintext_request", only_when("plaintext_model is envelope (a fault)"), line=500),
    Rule(
        APP,
        "create_app._plaintext_request",
        "equivalent: it only decides whether the inner stream flag is set"
        " for an endpoint that does not stream; the node then answers JSON or refuses 400, and R9.1 allows both",
        line=507,
    ),
    Rule(APP, "create_app._plaintext_request", only_when("streamable holds the endpoint (a fault)"), line=508),
    Rule(APP, "create_app._plaintext_request", KNOB + " (unset_stream is json)", line=510),
    Rule(APP, "create_app._plaintext_request", only_when("unset_stream is event-stream (a fault)"), line=511),
    Rule(APP, "_framed_limit", KNOB + " (every branch is a framing fault's; the strict node returns the limit)"),
    Rule(APP, "_refuse_unknown_members", only_when("the unknown-member-refused fault is on")),
    Rule(APP, "_hashed", KNOB, "reserialized"),
    Rule(APP, "_hashed", only_when("plaintext_hash_input is reserialized (a fault)")),
    Rule(APP, "create_app.not_found", KNOB + " (routing errors are JSON)", "'text'"),
    Rule(APP, "create_app.not_found", only_when("the routing-errors-text-plain fault is on"), "text/plain"),
    Rule(APP, "create_app.not_found", only_when("the routing-errors-text-plain fault is on"), "return Response"),
    Rule(APP, "create_app", NOT_IN_SPEC, "`'GET'`"),
    Rule(
        APP,
        "create_app.not_found",
        gap(
            "R10.11/R10.12: a 404 or 405 answered with code INTERNAL_ERROR, which Table 10.1 pairs with 500",
            "ERR-026 reads the unknown-path and wrong-method refusals and should see the mispairing, but this run"
            " did not kill the mutant; not analysed further",
        ),
        "`404` → `405`",
    ),
    Rule(
        APP,
        "create_app.not_found",
        gap(
            "R10.11/R10.12: a 405 answered with code INTERNAL_ERROR, which Table 10.1 pairs with 500",
            "as for 404, ERR-026 should see it and did not in this run; not analysed further",
        ),
        "`405` → `406`",
    ),
    Rule(APP, "create_app.lock", only_when("lock_rejections is text (a fault)"), "return Response(refusal"),
    # --- mock_node/app.py: module constants -----------------------------------------------------------
    Rule(APP, "<module>", CODE_NODE_FACE, "`400` → `401`"),
    Rule(APP, "<module>", CODE_NODE_FACE, "`'REQUEST_ERROR'`"),
    Rule(APP, "<module>", NODE_FACE_MODEL, "`404` → `405`"),
    Rule(APP, "<module>", NODE_FACE_MODEL, "`'NOT_FOUND'`"),
    Rule(APP, "<module>", CODE_NODE_FACE, "`'INVALID_BODY'`"),
    Rule(
        APP,
        "<module>",
        "equivalent: the node face never refuses with 425 UNAVAILABLE_STACK (it has no locks), so this entry"
        " of NODE_FACE_CODES is never looked up",
        "425",
    ),
    Rule(
        APP,
        "<module>",
        "equivalent: see the entry above (the node face never issues UNAVAILABLE_STACK)",
        "UNAVAILABLE_STACK",
    ),
    Rule(
        APP,
        "<module>",
        "equivalent: the lock body limit (64 KiB) is the mock's own; no requirement fixes it",
        "`64` → `65`",
    ),
    Rule(
        APP,
        "<module>",
        "equivalent: the lock body limit (64 KiB) is the mock's own; no requirement fixes it",
        "`1024` → `1025`",
    ),
    Rule(
        APP,
        "<module>",
        "equivalent: the replay memory's bound (R12.7 asks for memory as long as the key is accepted; a run sends"
        " a few dozen requests)",
        "100000",
    ),
    Rule(APP, "<module>", only_when("a bearer fault lets a caller in without a token (ANONYMOUS)"), "anonymous"),
    Rule(APP, "<module>", only_when("the image-usage fault is on (IMAGE_CLEAR_USAGE)"), "_tokens"),
    Rule(APP, "<module>", only_when("the image-usage fault is on (IMAGE_CLEAR_USAGE)"), "`0` → `1`"),
    Rule(APP, "<module>", only_when("the lenient-base64 fault is on (BINARY_MEMBERS feeds _lenient)"), "", "constant"),
    Rule(APP, "<module>", only_when("the lenient-base64 fault is on (_FROM_URLSAFE)"), "maketrans"),
    Rule(APP, "<module>", only_when("the data-keepalive stream fault is on"), "keep-alive"),
    Rule(APP, "Refusal", "equivalent: `kind` only selects the compat profile's status rewrites", "'client'"),
    Rule(
        APP, "Refusal.__init__", "equivalent: the exception's own message is never read (Refusal.message is)", "super()"
    ),
    Rule(APP, "Refusal.__init__", only_when("validation_error_status is 200 (a fault) reads `validation`"), "False"),
    Rule(APP, "_protocol_message", MESSAGE),
    Rule(
        APP,
        "NodeState.remember",
        "equivalent: the replay memory's FIFO bound (100,000 entries); a run never fills it",
        "REPLAY_MEMORY",
    ),
    Rule(APP, "NodeState.remember", "equivalent: the replay memory's FIFO bound; a run never fills it", reached=False),
    Rule(APP, "NodeState.remember", "equivalent: False and None are both false to the only caller", "return None"),
    Rule(APP, "create_app", "equivalent: create_app is always given a config here", "config or MockConfig"),
    Rule(APP, "create_app", LOCK_CONTENT_TYPE, "`True` → `False`", line=162),  # read_body's check_type default
    Rule(
        APP,
        "create_app",
        "equivalent: the default of authenticate's `required`, which only /v1/models (not in docs/spec.md) leaves"
        " unset",
        "`True` → `False`",
        reached=True,
    ),
    Rule(
        APP, "create_app", only_when("something reads app.state.node (tests do; the catalogue does not)"), "app.state"
    ),
    Rule(APP, "create_app", NOT_FOUND_ROUTE, "GET"),
    # refuse()
    Rule(APP, "create_app.refuse", CODE_NODE_FACE, "'node'"),
    Rule(APP, "create_app.refuse", CODE_NODE_FACE, "NODE_FACE_CODES"),
    Rule(APP, "create_app.refuse", KNOB, reached=True),
    Rule(
        APP,
        "create_app.refuse",
        only_when(
            "crypto_error_status or client_error_status is 500, oversize_response is text, or"
            " validation_error_status is 200 (the compat profile and faults)"
        ),
        reached=False,
    ),
    Rule(
        APP,
        "create_app.behaviour_for",
        only_when("a request carries X-Mock-Fault and the mock allows it (off by default; the suite never sends it)"),
    ),
    # authenticate()
    Rule(APP, "create_app.authenticate", AUTH_CODE, "AUTH_ERROR", reached=True),
    Rule(
        APP,
        "create_app.authenticate",
        "equivalent: `kind` only selects the compat profile's status rewrites",
        "'auth'",
        reached=True,
    ),
    Rule(APP, "create_app.authenticate", BEARER_FORM, "`or` → `and`"),
    Rule(
        APP,
        "create_app.authenticate",
        "equivalent: a missing header read as 'XXXX' is still not `Bearer …`, and refused the same way",
        "`''` → `'XXXX'`",
    ),
    Rule(APP, "create_app.authenticate", only_when("`required` is False (a bearer fault)"), "not header[7:]"),
    Rule(APP, "create_app.authenticate", only_when("`required` is False (a bearer fault)"), "`7` → `8`", reached=True),
    Rule(
        APP,
        "create_app.authenticate",
        "equivalent: Starlette decodes headers as latin-1, so the token never holds a surrogate and the error"
        " handler is never looked up",
        "surrogateescape",
    ),
    Rule(APP, "create_app.authenticate", "equivalent: compare_digest is symmetric", "compare_digest"),
    Rule(APP, "create_app.authenticate", only_when("a bearer fault lets a caller in without a token"), "ANONYMOUS"),
    Rule(APP, "create_app.authenticate", UNKNOWN_KEY, reached=False),
    # read_body()
    Rule(
        APP,
        "create_app.read_body",
        "equivalent: a missing Content-Type read as 'XXXX' is still refused with 415",
        "`''` → `'XXXX'`",
    ),
    Rule(APP, "create_app.read_body", CHARSET, "`';'`"),
    Rule(APP, "create_app.read_body", TABLE_CODE, "UNSUPPORTED_MEDIA_TYPE"),
    Rule(
        APP,
        "create_app.read_body",
        "equivalent: the streamed byte count refuses the same oversize body with the same 413 one chunk later",
        "content-length",
    ),
    Rule(APP, "create_app.read_body", CHUNKED, "`is not` → `is`"),
    Rule(APP, "create_app.read_body", SIZE_EXACT, "boundary"),
    Rule(APP, "create_app.read_body", SIZE_EXACT, "", "boundary"),
    Rule(APP, "create_app.read_body", SIZE_EXACT, "`0` → `1`"),
    Rule(
        APP,
        "create_app.read_body",
        "equivalent for declared lengths: the streamed count refuses the same body with the same 413",
        "removed `raise Refusal(413",
        reached=True,
    ),
    Rule(
        APP,
        "create_app.read_body",
        gap(
            "R3.18: a body over the limit is refused with code PAYLOAD_TOO_LARGE",
            "ERR-013 checks the status only; checking the code would catch it",
        ),
        "PAYLOAD_TOO_LARGE",
        reached=True,
    ),
    Rule(
        APP, "create_app.read_body", "equivalent: `kind` only selects the compat profile's text/plain 413", "'oversize'"
    ),
    Rule(APP, "create_app.read_body", SIZE_CHUNKED, "size += len(chunk)"),
    Rule(APP, "create_app.read_body", SIZE_CHUNKED, reached=False),
    Rule(APP, "create_app.health", NOT_IN_SPEC),
    Rule(APP, "create_app.models", NOT_IN_SPEC),
    # lock()
    Rule(
        APP,
        "create_app.lock",
        "equivalent: only an X-Mock-Fault header changes the behaviour (off by default)",
        "behaviour_for",
    ),
    Rule(APP, "create_app.lock", LOCK_UNKNOWN_MODEL, "503"),
    Rule(APP, "create_app.lock", LOCK_UNKNOWN_MODEL, "SERVICE_UNAVAILABLE"),
    Rule(APP, "create_app.lock", KNOB, "", "constant", reached=True),
    Rule(APP, "create_app.lock", LOCK_SHAPE, "REQUEST_ERROR"),
    Rule(APP, "create_app.lock", LOCK_SHAPE, "_protocol_message"),
    Rule(APP, "create_app.lock", LOCK_SHAPE, "`400` → `401`"),
    Rule(APP, "create_app.lock", only_when("unknown_model_lock is 500 (a fault)"), "500"),
    Rule(APP, "create_app.lock", only_when("unknown_model_lock is 500 (a fault)"), "INTERNAL_ERROR"),
    Rule(APP, "create_app.lock", only_when("unknown_model_lock is 500 (a fault)"), "'server'"),
    Rule(APP, "create_app.lock", only_when("lock_public_key is low-order or short (faults)"), "public_key ="),
    Rule(APP, "create_app.lock", only_when("lock_public_key is low-order or short (faults)"), "`32` → `33`"),
    Rule(APP, "create_app.lock", only_when("lock_public_key is low-order or short (faults)"), "`31` → `32`"),
    Rule(APP, "create_app.lock", only_when("a client judge is attached (certifying SDKs, not this run)"), "on_lock"),
    # confidential() and _confidential()
    Rule(
        APP,
        "create_app.confidential",
        "equivalent: _confidential authenticates the same request again on the proxy face, before the body, so"
        " an unauthenticated caller gets the same 401 from there",
    ),
    Rule(
        APP,
        "create_app._confidential",
        "equivalent: on the node face the owner name is never read (no locks, no judge)",
        "node-face",
    ),
    Rule(
        APP,
        "create_app._confidential",
        only_when("validation_error_status is 200 (a fault) reads `validation`"),
        "validation",
    ),
    Rule(
        APP,
        "create_app._confidential",
        only_when("validation_error_status is 200 (a fault) reads `validation`"),
        "`True` → `False`",
    ),
    Rule(
        APP,
        "create_app._confidential",
        only_when("a client judge is attached (certifying SDKs, not this run)"),
        "on_request",
    ),
    Rule(APP, "create_app._confidential", CODE_R31, "REQUEST_ERROR"),
    Rule(APP, "create_app._confidential", KNOB, "lenient"),
    Rule(APP, "create_app._confidential", only_when("the lenient-base64 fault is on"), "_lenient"),
    Rule(
        APP,
        "create_app._confidential",
        "equivalent: compute-unit accounting is outside docs/spec.md (W19–W21); the image default of units only"
        " decides which lock is big enough",
        "images",
    ),
    Rule(APP, "create_app._confidential", KNOB, "pass-through"),
    Rule(APP, "create_app._confidential", KNOB + " (unknown_stack is not pass-through)", "state.locks.known"),
    Rule(
        APP,
        "create_app._confidential",
        "equivalent: accept_foreign_lock is False, so `not accept_foreign_lock` is True and `or` changes nothing",
        "ANONYMOUS",
    ),
    Rule(APP, "create_app._confidential", TABLE_CODE, "UNAVAILABLE_STACK"),
    Rule(APP, "create_app._confidential", only_when("release_stack_on_refusal is off (a fault jams the stack)"), "jam"),
    # _serve()
    Rule(
        APP,
        "create_app._serve",
        only_when("accept_tampered_ciphertext (a fault) uses the made-up plaintext"),
        "fake_model_request",
    ),
    Rule(
        APP,
        "create_app._serve",
        gap(
            "R12.7 (SHOULD): a replay is refused with 409 and code REPLAYED_REQUEST",
            "REPLAY-001 checks the status only",
        ),
        "REPLAYED_REQUEST",
    ),
    Rule(
        APP,
        "create_app._serve",
        "equivalent: authorize_owner is idempotent (the node face already ran it before decryption) and returns at"
        " once on the proxy face, where there is no signer",
        "after-p",
    ),
    Rule(
        APP,
        "create_app._serve",
        "equivalent: see above (authorize_owner again, after the plaintext)",
        'config.face == "node"` negated',
    ),
    Rule(APP, "create_app._serve", "equivalent: see above (authorize_owner again, after the plaintext)", "'node'"),
    Rule(
        APP,
        "create_app._serve",
        "equivalent: see above (authorize_owner again, after the plaintext)",
        '`==` → `!=` in `config.face == "node"`',
    ),
    Rule(APP, "create_app._serve", KNOB + " (the image-usage fault)", '`endpoint == "images"`'),
    Rule(APP, "create_app._serve", only_when("owner_check is after-plaintext (the compat profile)"), "authorize_owner"),
    Rule(
        APP,
        "create_app._serve",
        "equivalent: the fake model's response id length is not specified (R8.6 asks for a string)",
        "`12` → `13`",
    ),
    Rule(APP, "create_app._serve", only_when("missing_request_id is 500 (the compat profile)"), "500"),
    Rule(APP, "create_app._serve", only_when("missing_request_id is 500 (the compat profile)"), "INTERNAL_ERROR"),
    Rule(
        APP,
        "create_app._serve",
        only_when("a BackendError comes from the --backend relay, or missing_request_id is 500"),
        "'server'",
    ),
    Rule(APP, "create_app._serve", only_when("the node relays to a real backend (--backend)"), "whole"),
    Rule(APP, "create_app._serve", only_when("the node relays to a real backend (--backend)"), "in `stream(…)`"),
    Rule(APP, "create_app._serve", only_when("the node relays to a real backend (--backend)"), "respond(…)"),
    Rule(APP, "create_app._serve", only_when("the node relays to a real backend (--backend)"), "BAD_GATEWAY"),
    Rule(APP, "create_app._serve", only_when("the node relays to a real backend (--backend)"), "502"),
    Rule(
        APP,
        "create_app._serve",
        only_when("an endpoint that does not stream is streamed (a fault)"),
        "chunks = [answer]",
    ),
    Rule(
        APP, "create_app._serve", only_when("a client judge is attached (certifying SDKs, not this run)"), "on_served"
    ),
    Rule(APP, "create_app._serve", only_when("a client judge is attached"), "`streaming` negated", reached=False),
    Rule(
        APP,
        "create_app._serve",
        gap(
            "R3.14 and fake-model plaintext validation: an inner request the model cannot serve is refused 400",
            "no probe sends a plaintext with a valid model but a malformed body (no `messages`); that probe would"
            " catch the refusal's removal",
        ),
        "REQUEST_ERROR",
    ),
    Rule(
        APP,
        "create_app._serve",
        "equivalent: see the rule above (the plaintext refusal is never reached)",
        "`400` → `401`",
        reached=False,
    ),
    Rule(
        APP,
        "create_app._serve",
        gap(
            "R9.2 (SHOULD): a stream is sent with `Cache-Control: no-cache`",
            "STREAM-002 looks for the substring, so `XXno-cacheXX` passes; comparing the header's directives"
            " would catch it",
        ),
        "no-cache",
    ),
    Rule(
        APP,
        "create_app._serve",
        "equivalent: the fake model's image answer has no usage, so reading it for images too still gives None",
        "'images'",
        line=334,
    ),
    Rule(APP, "create_app._serve", KNOB + " (misshape and image-usage faults)", "", "constant", reached=True),
    Rule(
        APP, "create_app._serve", "equivalent: with no misshape fault on, misshape returns what it is given", "misshape"
    ),
    Rule(APP, "create_app._serve", only_when("a misshape or image-usage fault is on"), reached=False),
    # authorize_hop(), authorize_owner()
    Rule(APP, "create_app.authorize_hop", MESSAGE, "plaintext_body_hash"),
    Rule(APP, "create_app.authorize_hop", MESSAGE, "X-Signature'"),
    Rule(
        APP,
        "create_app.authorize_hop",
        "equivalent: a hash that is not 32 bytes is refused again by the envelope decode, with the same 400"
        " INVALID_BODY on the node face",
        "HASH_LEN",
    ),
    Rule(APP, "create_app.authorize_hop", "equivalent: see above (the envelope decode refuses the length)", "refuse"),
    Rule(
        APP,
        "create_app.authorize_hop",
        "equivalent: see above (the envelope decode refuses the length)",
        "node_hash_code, reason",
    ),
    Rule(APP, "create_app.authorize_hop", KNOB, "accept-"),
    Rule(APP, "create_app.authorize_hop", KNOB, "parse-only"),
    Rule(
        APP,
        "create_app.authorize_hop",
        "equivalent: xsig.screen_header acts only when the empty-signature fault is on; with its arguments"
        " swapped it compares the behaviour with '' and does nothing either",
        "screen_header",
    ),
    Rule(
        APP,
        "create_app.authorize_hop",
        "equivalent: with its arguments swapped xsig.crashed asks whether the behaviour is an exception, never"
        " true, so the refusal stays 400 INVALID_HEADER, as on the strict node, where it is False anyway",
        "crashed(",
    ),
    Rule(APP, "create_app.authorize_hop", XSIG_CRASH, "500", reached=False),
    Rule(APP, "create_app.authorize_hop", XSIG_CRASH, "INTERNAL_ERROR", reached=False),
    Rule(APP, "create_app.authorize_hop", XSIG_CRASH, "'server'", reached=False),
    Rule(
        APP,
        "create_app.authorize_hop",
        "equivalent: the signer is also checked by authorize_owner before decryption (owner_check before-decrypt);"
        " the return value is only read by the compat profile's later check",
        "return signer",
    ),
    Rule(APP, "create_app.authorize_hop", HOP_HASH_B64, reached=False),
    Rule(APP, "create_app.authorize_owner", only_when("stack_from is header (a fault)"), "x-stack-small-id"),
    Rule(APP, "create_app.authorize_owner", only_when("stack_from is header (a fault)"), "`''`"),
    Rule(APP, "create_app.authorize_owner", only_when("stack_from is header (a fault)"), "header"),
    Rule(APP, "create_app.authorize_owner", only_when("stack_from is header (a fault)"), "int(supplied)"),
    Rule(
        APP,
        "create_app.authorize_owner",
        "equivalent: check_stack_owner is True, so `not check_stack_owner` is False either way",
        "`or` → `and`",
    ),
    Rule(APP, "create_app.authorize_owner", KNOB + " (foreign_owner is AUTH_ERROR)", "INVALID_HEADER"),
    Rule(
        APP,
        "create_app.authorize_owner",
        only_when("foreign_owner is INVALID_HEADER (the compat profile)"),
        reached=False,
    ),
    Rule(
        APP,
        "create_app.authorize_owner",
        "equivalent: `kind` only selects the compat profile's status rewrites",
        "'auth'",
    ),
    # _decode(), _open(), _plaintext_request()
    Rule(APP, "create_app._decode", TABLE_CODE, "REQUEST_ERROR"),
    Rule(
        APP,
        "create_app._decode",
        "equivalent: `kind` only decides the compat profile's 500; the strict node answers 400 either way",
        "'crypto'",
    ),
    Rule(APP, "create_app._decode", "equivalent: `kind` only decides the compat profile's 500", "'client'"),
    Rule(APP, "create_app._decode", "equivalent: `kind` only decides the compat profile's 500", "exc.field =="),
    Rule(
        APP,
        "create_app._decode",
        "equivalent: the same strict decode of plaintext_body_hash runs again in envelope.decode(), with the same"
        " 400 (R7.13's order only matters for a proxy that signs the hash)",
        "b64decode(",
    ),
    Rule(
        APP,
        "create_app._decode",
        "equivalent: the field name only feeds the compat branch and the message",
        "'plaintext_body_hash'",
    ),
    Rule(APP, "create_app._decode", KNOB, "accept"),
    Rule(
        APP,
        "create_app._decode",
        only_when("accept_long_plaintext_hash or node_long_hash accept (compat)"),
        reached=False,
    ),
    Rule(APP, "create_app._open", TABLE_CODE, "REQUEST_ERROR", reached=True),
    Rule(APP, "create_app._open", "equivalent: `kind` only decides the compat profile's 500", "'crypto'"),
    Rule(APP, "create_app._open", "equivalent: compare_digest is symmetric", "compare_digest"),
    Rule(APP, "create_app._open", MESSAGE, "'plaintext_body_hash'"),
    Rule(
        APP,
        "create_app._open",
        gap(
            "R10.6: a hash mismatch is refused 400 with code INVALID_BODY (node face) or REQUEST_ERROR (proxy face)",
            "ERR-007 checks the status only; checking the face's code would catch it",
        ),
        "INVALID_BODY",
    ),
    Rule(APP, "create_app._open", KNOB + " (error_leak is none)", "hashes"),
    Rule(
        APP,
        "create_app._open",
        only_when("accept_tampered_ciphertext, error_leak hashes, or a node-key fault is on"),
        reached=False,
    ),
    Rule(APP, "create_app._plaintext_request", MESSAGE, "'plaintext'"),
    Rule(APP, "create_app._plaintext_request", ERR_011_PROBE, "NOT_FOUND"),
    Rule(APP, "create_app._plaintext_request", STREAM_ON_EMBEDDINGS, line=454),  # the STREAMABLE test
    Rule(APP, "create_app._plaintext_request", STREAM_ON_EMBEDDINGS, line=455),  # its refusal
    Rule(APP, "create_app._plaintext_request", CONSISTENCY, "`400` → `401`", reached=True),
    Rule(APP, "create_app._plaintext_request", CONSISTENCY, "`400` ⇄", reached=True),
    Rule(APP, "create_app._plaintext_request", CONSISTENCY, "REQUEST_ERROR", reached=True),
    Rule(APP, "create_app._plaintext_request", CONSISTENCY, "stream: differs"),
    Rule(APP, "create_app._plaintext_request", PLAINTEXT_SHAPE, reached=False),
    Rule(APP, "create_app.not_found", NOT_FOUND_ROUTE),
    Rule(APP, "create_app.lifespan", only_when("the node relays to a real backend (and the server runs its lifespan)")),
    Rule(APP, "_lock_reply", KNOB),
    Rule(APP, "_lock_reply", only_when("a lock-reply fault is on"), reached=False),
    Rule(APP, "_lenient", only_when("the lenient-base64 fault is on")),
    Rule(APP, "fake_model_request", only_when("accept_tampered_ciphertext (a fault) uses the made-up plaintext")),
    Rule(APP, "_plaintext_message", MESSAGE),
    Rule(APP, "_stream", KNOB + " (stream_shape is empty)", reached=True),
    Rule(APP, "_stream", only_when("a stream-shape fault is on"), reached=False),
    Rule(APP, "_trace", only_when("the echo-hash-header fault is on")),
    # --- mock_node/sealing.py ---------------------------------------------------------------------------
    Rule(SEAL, "<module>", only_when("the malleated-signature fault is on (ED25519_L)"), "252"),
    Rule(
        SEAL,
        "<module>",
        only_when("the malleated-signature fault is on (ED25519_L)"),
        "27742317777372353535851937790883648493",
    ),
    Rule(SEAL, "<module>", only_when("the malleated-signature fault is on (ED25519_L)"), "`2` → `3`"),
    Rule(SEAL, "<module>", only_when("the URL-safe or MIME encoding faults are on"), ""),
    Rule(SEAL, "Sealer", "equivalent: a dataclass field's `init` flag; nothing passes the field, so its default holds"),
    Rule(
        SEAL,
        "Sealer.__post_init__",
        "equivalent: seal_steps reads the secret and rng only for the wrong-key and foreign-signer faults",
    ),
    Rule(
        SEAL,
        "Sealer._nonce",
        "equivalent: response_nonce and stream_nonce are both fresh on the strict node",
        "`self.streaming` negated",
    ),
    Rule(SEAL, "Sealer._nonce", KNOB, reached=True),
    Rule(SEAL, "Sealer._nonce", only_when("a nonce fault (static, echo-request, per-stream) is on"), reached=False),
    Rule(
        SEAL,
        "Sealer.seal",
        "equivalent: the clear usage is then relayed as the backend wrote it, which is what Usage.to_json returns",
    ),
    Rule(SEAL, "seal_steps", KNOB, reached=True),
    Rule(SEAL, "seal_steps.foreign_sign", only_when("the foreign-signer fault is on")),
    Rule(SEAL, "response_body", KNOB, reached=True),
    Rule(SEAL, "response_body", only_when("a body-shape fault (sorted, pretty) is on"), reached=False),
    Rule(SEAL, "chunk_body", KNOB, reached=True),
    Rule(SEAL, "chunk_body", only_when("the sorted-members fault is on"), reached=False),
    Rule(
        SEAL,
        "_member_changes",
        "equivalent: with every encoding knob at its strict value the change it returns is the identity, so"
        " returning it or None seals the same members",
        reached=True,
    ),
    Rule(SEAL, "_member_changes", only_when("an encoding or signature-form fault is on"), reached=False),
    Rule(
        SEAL,
        "_member_changes.change",
        only_when("an encoding or signature-form fault is on (or, under a mutant above, as the identity)"),
    ),
    Rule(SEAL, "_clear_usage", KNOB + " (clear_usage is equal)", reached=True),
    Rule(SEAL, "_clear_usage", only_when("the clear-usage mismatch fault is on"), reached=False),
    Rule(SEAL, "_usage_model", USAGE_RAW),
    Rule(
        SEAL,
        "*",
        only_when(
            "the fault that selects this wrong variant is on (truncated tag, wrong hash, wrong"
            " signed bytes, malleated signature, MIME, bare signature)"
        ),
        reached=False,
    ),
    # --- mock_node/locks.py ------------------------------------------------------------------------------
    Rule(LOCKS, "token_id", "equivalent: an internal, consistent name for a key; never sent"),
    Rule(LOCKS, "LockRefused.__init__", "equivalent: the exception's own message is never read (`reason` is)"),
    Rule(
        LOCKS,
        "LockTable",
        "equivalent: the lock table's memory bounds and first stack id are the mock's own; stack ids are"
        " opaque (R2.8 asks for non-negative integers)",
        "",
        "constant",
    ),
    Rule(
        LOCKS,
        "LockTable.stack_for",
        "equivalent: stack ids are opaque non-negative integers (R2.8); every (key, model) still gets its own stack"
        " unless the id never advances, and then locks are still matched by owner",
        reached=True,
    ),
    Rule(LOCKS, "LockTable.stack_for", only_when("more than 10,000 stacks exist (the memory bound)"), reached=False),
    Rule(LOCKS, "LockTable.grant", "equivalent: (owner, model) and (model, owner) key the same stacks", "stack_for"),
    Rule(
        LOCKS,
        "LockTable.grant",
        "equivalent: the lock-flood bound (1,024 pending locks per stack); a run takes a few",
        reached=True,
    ),
    Rule(LOCKS, "LockTable.grant", only_when("a stack holds 1,024 pending locks (the memory bound)"), reached=False),
    Rule(
        LOCKS,
        "LockTable.consume",
        only_when("a refusal jammed the stack (release_stack_on_refusal off, a fault)"),
        "still held",
        reached=False,
    ),
    Rule(
        LOCKS,
        "LockTable.consume",
        "equivalent: each stack is bought per (API key, model), so its locks all have one owner; the wrong-owner"
        " case still ends in the next LockRefused, with the same 425",
        "taken with",
    ),
    Rule(
        LOCKS,
        "LockTable.consume",
        "equivalent: see above (every lock on a stack has the stack's owner)",
        "candidates = owned",
    ),
    Rule(LOCKS, "LockTable.consume", "equivalent: the caller ignores the returned lock", "return lock"),
    Rule(
        LOCKS,
        "LockTable.consume",
        "equivalent: both LockRefused reasons give the same 425; only the message differs",
        "`candidates` negated",
    ),
    Rule(
        LOCKS, "LockTable.consume", "equivalent: falls through to the next LockRefused, with the same 425", "reserves"
    ),
    Rule(
        LOCKS,
        "LockTable._prune",
        "equivalent: `>` against `>=` differs only at the exact float instant of expiry, which no client can hit",
    ),
    Rule(LOCKS, "LockTable.known", only_when("unknown_stack is pass-through (a fault)")),
    Rule(LOCKS, "LockTable.jam", only_when("release_stack_on_refusal is off (a fault)")),
    Rule(LOCKS, "LockTable.owns", "equivalent: no caller (LockTable.owns is unused by the node)"),
    # --- conformance/protocol ---------------------------------------------------------------------------
    Rule(ENV, "key_id", "equivalent: the replay cache's key name stays a consistent function of the key material"),
    Rule(ENV, "_exchange", "equivalent: the two public keys only feed key_id, which stays a consistent name"),
    Rule(ENV, "node_exchange", "equivalent: compare_digest is symmetric", "compare_digest"),
    Rule(ENV, "node_exchange", MESSAGE, "", "constant"),
    Rule(
        ENV,
        "node_exchange",
        "equivalent: the two public keys only feed key_id, which stays a consistent name",
        "_exchange",
    ),
    Rule(
        ENV,
        "draw_response_nonce",
        "equivalent in practice: the redraw runs when a fresh 12-byte nonce equals the request's, probability"
        " 2^-96 (R12.4); no black-box probe can provoke it",
    ),
    Rule(ENV, "_seal_parts", only_when("a SealSteps replacement (a sealing fault) is set")),
    Rule(MODELS, "_path", MESSAGE),
    Rule(MODELS, "_str", MESSAGE, "_path"),
    Rule(MODELS, "_int", MESSAGE, "_path"),
    Rule(MODELS, "_bool", MESSAGE, "_path"),
    Rule(MODELS, "_details", MESSAGE, "_path"),
    Rule(
        MODELS,
        "_str",
        "equivalent: a missing or null string member becomes '' (from_json's `or \"\"`), which a later rule refuses"
        " with the same 400: the strict base64 length for a binary member, R3.16's model check for model_name",
        reached=True,
    ),
    Rule(
        MODELS,
        "_str",
        "equivalent: a non-string in a string member is refused later with the same 400 (b64decode refuses"
        " non-strings; a non-string model_name fails R3.16's check)",
        reached=False,
    ),
    Rule(MODELS, "_int", STACK_RANGE, "0 <= value"),
    Rule(MODELS, "_int", STACK_RANGE, "`0` → `1`"),
    Rule(MODELS, "_int", STACK_RANGE, "OutOfRange"),
    Rule(MODELS, "_int", MISSING_STACK),
    Rule(MODELS, "_bool", BOOL_TYPE),
    Rule(MODELS, "_require_object", MESSAGE, "where or None"),
    Rule(
        MODELS,
        "_require_object",
        gap(
            "R3.1: a body that is JSON but not an object is refused with 400",
            'no probe sends `[]`, `"x"` or `5` as the envelope; without this refusal an array or string still'
            " fails the member check, but a number raises TypeError (500)",
        ),
    ),
    Rule(MODELS, "_put_optional", "equivalent: not on the node's path (only the client-side serialisers call it)"),
    Rule(MODELS, "LockRequest.from_json", MESSAGE),
    Rule(MODELS, "ConfidentialComputeRequest.from_json", MESSAGE),
    Rule(
        MODELS,
        "LockResponse.serialize",
        "equivalent: not on the node's path (the lock reply is serialised by app._lock_reply)",
    ),
    Rule(MODELS, "ConfidentialComputeRequest.decode", MESSAGE, "'ciphertext'"),
    Rule(
        MODELS,
        "ConfidentialComputeRequest.decode",
        "equivalent: a ciphertext shorter than the tag (or exactly the tag) is refused by AeadKey.open with the"
        " same 400",
    ),
    Rule(MODELS, "Usage.from_json", USAGE_RAW),
    Rule(MODELS, "Usage.to_json", USAGE_RAW),
    Rule(MODELS, "_details", USAGE_RAW),
    Rule(PRIM, "canonical_public_key", REPLAY_REENCODED, "`31` → `32`"),
    Rule(PRIM, "canonical_public_key", REPLAY_REENCODED, "`127` → `128`"),
    Rule(
        PRIM,
        "canonical_public_key",
        "equivalent: the canonical key only names the key for the replay cache, consistently",
        "`32` → `33`",
    ),
    Rule(PRIM, "canonical_public_key", LENGTH_GUARD, "_require_len"),
    Rule(PRIM, "canonical_public_key", MESSAGE, "public_key"),
    Rule(
        PRIM,
        "is_low_order",
        "equivalent: every low-order point gives the all-zero shared secret, which cryptography's X25519 refuses;"
        " x25519_agree turns that into ZeroSharedSecret, the same 400",
    ),
    Rule(PRIM, "_require_len", LENGTH_GUARD),
    Rule(PRIM, "x25519_public_key", LENGTH_GUARD, "_require_len"),
    Rule(PRIM, "x25519_public_key", MESSAGE),
    Rule(PRIM, "x25519_agree", LENGTH_GUARD, "_require_len"),
    Rule(PRIM, "x25519_agree", MESSAGE, "", "constant", reached=True),
    Rule(
        PRIM,
        "x25519_agree",
        "equivalent: without the low-order refusal, the exchange's all-zero result is refused as ZeroSharedSecret,"
        " the same 400",
        "LowOrderPoint",
    ),
    Rule(
        PRIM,
        "x25519_agree",
        only_when("allow_low_order (the compat profile), or as the all-zero backstop above"),
        reached=False,
    ),
    Rule(PRIM, "derive_key", LENGTH_GUARD),
    Rule(PRIM, "AeadKey.__init__", LENGTH_GUARD),
    Rule(PRIM, "AeadKey.seal", LENGTH_GUARD),
    Rule(PRIM, "AeadKey", MESSAGE),
    Rule(PRIM, "AeadKey.open", LENGTH_GUARD, "_require_len"),
    Rule(
        PRIM,
        "AeadKey.open",
        "equivalent: a 16-byte ciphertext fails as a length error or a tag error, both 400",
        "boundary",
    ),
    Rule(PRIM, "AeadKey.open", LENGTH_GUARD, reached=False),
    Rule(PRIM, "AeadKey.open", MESSAGE),
    Rule(B64, "b64decode", "equivalent: every caller on the node's path passes a string", "Base64NotString"),
    Rule(B64, "b64decode", "equivalent: unreachable (_diagnose always raises)", "unreachable"),
    Rule(
        B64,
        "b64decode",
        "equivalent as far as we could find: with validation off, skipped characters shift the length arithmetic"
        " of the canonical-tail check, which then refuses; no counterexample was found",
        "`True` → `False`",
    ),
    Rule(B64, "_canonical_tail", TRAILING_BITS, "`and` → `or`"),
    Rule(B64, "_canonical_tail", "equivalent: the final quantum encodes 1 to 3 bytes, never 4", "`3` → `4`"),
    Rule(
        B64,
        "_canonical_tail",
        "equivalent: strict decoding only succeeds on a padded length, and an empty value fails the decoded-length"
        " rule after it",
        reached=False,
    ),
    Rule(JSON, "_reject_constant", NOT_JSON),
    Rule(JSON, "loads", NOT_JSON, "UTF-8"),
    Rule(JSON, "loads", NOT_JSON, "exc.reason"),
    Rule(JSON, "loads", NOT_JSON, "is not valid JSON"),
    Rule(JSON, "loads", NOT_JSON, "trailing characters"),
    Rule(JSON, "loads", JSON_LIMITS, "nested too deeply"),
    Rule(JSON, "loads", JSON_LIMITS, "too many digits"),
    Rule(
        JSON,
        "loads",
        "equivalent: the resource bound of 1,000,000 separators (no requirement; the 2 MiB body limit comes first)",
        "separators",
    ),
    Rule(
        JSON,
        "loads",
        "equivalent: a JSON body never starts or ends with 'X', so stripping it as well changes nothing",
        "\\t\\r\\n",
    ),
    Rule(
        JSON,
        "loads",
        "equivalent: docs/spec.md does not ask a node to refuse a lone-surrogate escape (RFC 8259 §8.2 leaves it"
        " undefined); only the mock's own strictness changes",
        "\\u",
    ),
    Rule(JSON, "_has_lone_surrogate", "equivalent: see loads (lone surrogates are outside docs/spec.md)"),
    Rule(
        JSON,
        "_no_duplicates",
        "equivalent: docs/spec.md does not ask a node to refuse duplicate members (RFC 8259 §4 says names SHOULD be"
        " unique); only the mock's own strictness changes",
    ),
    Rule(
        JSON,
        "_finite_float",
        "equivalent: a number too large for a float is valid JSON and no requirement asks a node to refuse it",
    ),
    Rule(
        JSON,
        "_too_wide",
        "equivalent: the resource bound of 1,000,000 separators (no requirement; the 2 MiB body limit comes first)",
    ),
    Rule(JSON, "loads_object", PLAINTEXT_SHAPE),
    Rule(SUI, "verify", "equivalent: a 33-byte hash is refused by the envelope decode with the same 400", "any_length"),
    Rule(
        SUI,
        "verify",
        "equivalent: unreachable from the node: authorize_hop passes any_length for every hash that is not 32"
        " bytes (the hop and the envelope decode refuse those: NODE-005), so this length guard never fires",
        "message",
        reached=False,
    ),
    Rule(
        SUI,
        "verify",
        "equivalent: unreachable: parse_signature_bytes fixes the key's length at 32 bytes, and any 32 bytes load as"
        " an Ed25519 key (a bad one fails the signature check instead, with the same 400 INVALID_HEADER)",
        "Ed25519 public key",
    ),
    Rule(SUI, "verify", ECDSA_RANGE, "0 < r < order"),
    Rule(SUI, "verify", ECDSA_RANGE, "0 < s < order"),
    Rule(SUI, "verify", ECDSA_RANGE, "label} r or"),
    Rule(
        SUI,
        "verify",
        "equivalent: the guard then also refuses r or s equal to 1, which a valid signature has with negligible"
        " probability (about 2^-255)",
        "`0` → `1`",
    ),
    Rule(
        SUI,
        "verify",
        "equivalent: only the boundary moves; s equals floor(n/2) exactly with negligible probability",
        "`>` → `>=` in `s > order // 2`",
    ),
    Rule(SUI, "parse_signature_bytes", MESSAGE, "`'is empty"),
    Rule(
        SUI,
        "parse_signature_bytes",
        "equivalent: a signature of the wrong length then fails key loading in verify, as InvalidPublicKey, the"
        " same 400 INVALID_HEADER",
    ),
    Rule(SUI, "SuiSigner.sign", "equivalent: the node only signs 32-byte hashes", "any_length"),
    Rule(SUI, "SuiSigner.sign", "equivalent: the node only signs 32-byte hashes", reached=False),
    Rule(
        SUI,
        "SuiSigner.sign",
        "equivalent: RFC 6979 is not required; a random-k ECDSA signature is as valid and low-s",
        "`True` → `False`",
    ),
    Rule(SUI, "SuiSigner.sign", "equivalent: s equals n/2 exactly with negligible probability", "order // 2"),
)


def verdict(record: dict[str, Any]) -> str:
    for rule in RULES:
        if rule.matches(record):
            return rule.verdict
    return "untriaged: no rule matches"

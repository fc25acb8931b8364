"""The mock node's conformant behaviour (strict profile): endpoints, validation order, locks, replay,
consistency, streaming framing, and the mock command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from conformance.protocol import LockResponse, Scheme, b64decode, b64encode, blake2b_256, jsonwire
from mock_node import fake_model
from mock_node.config import ConfigError, MockConfig
from tests.mockclient import CHAT_MODEL, PATHS, MockClient, plaintext_for

MakeClient = Callable[..., MockClient]


def _error(sent_or_response: Any) -> tuple[int, str]:
    response = getattr(sent_or_response, "response", sent_or_response)
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return response.status_code, body["error"]["code"]


# --- endpoints ---------------------------------------------------------------------------------------


def test_health_and_models(make_client: MakeClient) -> None:
    client = make_client()
    health = client.get("/health")
    assert (health.status_code, health.content) == (200, b'{"message":"ok"}')
    models = client.get("/v1/models", headers={"authorization": "Bearer t"})
    assert [m["id"] for m in models.json()["data"]] == list(client.config.models)
    assert _error(client.get("/v1/models")) == (401, "AUTH_ERROR")


def test_lock_reply_has_the_upstream_key_order_and_types(make_client: MakeClient) -> None:
    client = make_client()
    response = client.post("/v1/nodes/lock", b'{"model":"' + CHAT_MODEL.encode() + b'"}', client.headers())
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert list(json.loads(response.content)) == ["public_key", "node_small_id", "stack_entry_digest", "stack_small_id"]
    lock = LockResponse.parse(response.content)
    assert lock.node_public_key() == client.config.node_public_key
    assert lock.stack_entry_digest is None and lock.node_small_id == 1 and lock.stack_small_id == 1


@pytest.mark.parametrize("endpoint", ["chat", "completions", "embeddings", "images"])
def test_every_endpoint_round_trips_and_is_signed_by_the_configured_signer(
    make_client: MakeClient, endpoint: str
) -> None:
    client = make_client()
    sent = client.send(endpoint)
    assert sent.status == 200 and sent.response.headers["content-type"] == "application/json"
    keys = list(sent.envelope())
    assert keys == (["nonce", "ciphertext", "response_hash", "signature"] + ([] if endpoint == "images" else ["usage"]))
    opened = sent.open(expected_signer=client.config.signer_address)
    answer = json.loads(opened.plaintext)
    if endpoint != "images":
        assert sent.envelope()["usage"] == answer["usage"]
    assert opened.plaintext == jsonwire.dumps(answer), "the plaintext is compact JSON"


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_streams_are_sse_with_keepalive_no_done_and_a_final_usage_chunk(make_client: MakeClient, endpoint: str) -> None:
    client = make_client()
    sent = client.send(endpoint, stream=True)
    assert sent.status == 200
    assert sent.response.headers["content-type"] == "text/event-stream"
    assert sent.response.headers["cache-control"] == "no-cache"
    assert sent.response.content.startswith(b": keep-alive\n\ndata: {")
    assert b"[DONE]" not in sent.response.content
    opened = sent.open_chunks(expected_signer=client.config.signer_address)
    chunks = [json.loads(m.plaintext) for m in opened]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])
    assert len({m.nonce for m in opened}) == len(opened), "a fresh nonce per chunk"
    assert [list(json.loads(e.data)) for e in sent.events()][-1] == [
        "ciphertext",
        "nonce",
        "usage",
        "signature",
        "response_hash",
    ]
    assert all(
        list(json.loads(e.data)) == ["ciphertext", "nonce", "signature", "response_hash"] for e in sent.events()[:-1]
    )


def test_stream_content_equals_the_non_streaming_answer(make_client: MakeClient) -> None:
    client = make_client()
    whole = json.loads(client.send("chat").open().plaintext)["choices"][0]["message"]["content"]
    deltas = [json.loads(m.plaintext) for m in client.send("chat", stream=True).open_chunks()]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in deltas if c["choices"]) == whole


@pytest.mark.parametrize("scheme", [Scheme.SECP256K1, Scheme.SECP256R1])
def test_ecdsa_signers_are_selectable(make_client: MakeClient, scheme: Scheme) -> None:
    client = make_client(signer_scheme=scheme)
    opened = client.send("chat").open(expected_signer=client.config.signer_address)
    assert opened.signature is not None and opened.signature.scheme is scheme


def test_the_seed_fixes_the_node_key_and_signer_address() -> None:
    a, b, c = MockConfig(seed="x"), MockConfig(seed="x"), MockConfig(seed="y")
    assert (a.node_public_key, a.signer_address) == (b.node_public_key, b.signer_address)
    assert a.node_public_key != c.node_public_key and a.signer_address != c.signer_address


# --- refusals and their order ------------------------------------------------------------------------


def test_auth_is_checked_before_the_body_on_lock(make_client: MakeClient) -> None:
    client = make_client()
    assert _error(client.post("/v1/nodes/lock", b"not json", {"content-type": "application/json"})) == (
        401,
        "AUTH_ERROR",
    )
    assert _error(client.post("/v1/nodes/lock", b"not json", client.headers())) == (400, "REQUEST_ERROR")
    assert _error(client.post("/v1/nodes/lock", b'{"model":"nope"}', client.headers())) == (503, "SERVICE_UNAVAILABLE")


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer ", "bearer tok"])
def test_confidential_requests_need_a_bearer_token(make_client: MakeClient, header: str | None) -> None:
    client = make_client()
    headers = {"content-type": "application/json"} | ({"authorization": header} if header else {})
    assert _error(client.post(PATHS["chat"], b"{}", headers)) == (401, "AUTH_ERROR")


def test_configured_api_keys_are_enforced(make_client: MakeClient) -> None:
    client = make_client(api_keys=("good",))
    client.token = "bad"
    assert _error(client.post(PATHS["chat"], b"{}", client.headers())) == (401, "AUTH_ERROR")
    client.token = "good"
    assert client.send("chat").status == 200


def test_content_type_must_be_json(make_client: MakeClient) -> None:
    client = make_client()
    headers = client.headers() | {"content-type": "text/plain"}
    assert _error(client.post(PATHS["chat"], b"{}", headers)) == (415, "UNSUPPORTED_MEDIA_TYPE")
    with_charset = client.headers() | {"content-type": "application/json; charset=utf-8"}
    assert _error(client.post(PATHS["chat"], b"{}", with_charset)) == (400, "REQUEST_ERROR")


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (lambda e: {k: v for k, v in e.items() if k != "salt"}, "salt"),
        (lambda e: e | {"stack_small_id": True}, "stack_small_id"),
        (lambda e: e | {"stack_small_id": 1.0}, "stack_small_id"),
        (lambda e: e | {"nonce": e["nonce"][:-4]}, "nonce"),
        (lambda e: e | {"salt": e["salt"].replace("=", "")}, "salt"),
        (lambda e: e | {"client_dh_public_key": b64encode(bytes(31))}, "client_dh_public_key"),
        (lambda e: e | {"plaintext_body_hash": b64encode(bytes(33))}, "plaintext_body_hash"),
        (lambda e: e | {"ciphertext": b64encode(bytes(15))}, "ciphertext"),
        (lambda e: e | {"node_dh_public_key": e["client_dh_public_key"]}, "node_dh_public_key"),
        (lambda e: e | {"client_dh_public_key": b64encode(bytes(32))}, "client_dh_public_key"),
    ],
)
def test_envelope_refusals_are_400_and_name_the_field(
    make_client: MakeClient, mutation: Callable[[dict[str, Any]], dict[str, Any]], field: str
) -> None:
    client = make_client()
    sent = client.send("chat", mutate=mutation)
    assert _error(sent) == (400, "REQUEST_ERROR")
    message = sent.error()["error"]["message"]
    assert message.startswith(f"{field}:")
    for secret in (sent.sealed.request.plaintext_body_hash, sent.sealed.request.ciphertext[:24]):
        assert secret not in message


def test_tampered_ciphertext_and_wrong_hash_are_refused_without_echoing_hashes(make_client: MakeClient) -> None:
    client = make_client()
    flipped = client.send("chat", mutate=lambda e: e | {"ciphertext": _flip_b64(e["ciphertext"])})
    assert _error(flipped) == (400, "REQUEST_ERROR")
    wrong = client.send("chat", mutate=lambda e: e | {"plaintext_body_hash": b64encode(blake2b_256(b"other"))})
    assert _error(wrong) == (400, "REQUEST_ERROR")
    message = wrong.error()["error"]["message"]
    assert "plaintext_body_hash" in message and b64encode(blake2b_256(b"other")) not in message
    assert str(list(blake2b_256(b"other"))) not in message


def _flip_b64(text: str) -> str:
    raw = bytearray(b64decode(text))
    raw[0] ^= 1
    return b64encode(bytes(raw))


def test_plaintext_problems_are_400_without_quoting_the_plaintext(make_client: MakeClient) -> None:
    client = make_client()
    not_json = client.send("chat", b"SENTINEL not json")
    assert _error(not_json) == (400, "REQUEST_ERROR") and b"SENTINEL" not in not_json.response.content
    bad = client.send("chat", plaintext_for("chat", messages="SENTINEL"))
    assert _error(bad) == (400, "REQUEST_ERROR") and b"SENTINEL" not in bad.response.content
    unknown = client.send("chat", {"model": "SENTINEL-model", "messages": []}, lock=client.lock())
    assert _error(unknown) == (404, "NOT_FOUND") and b"SENTINEL" not in unknown.response.content


def test_model_name_and_stream_must_match_the_plaintext(make_client: MakeClient) -> None:
    client = make_client()
    assert _error(client.send("chat", mutate=lambda e: e | {"model_name": "other"})) == (400, "REQUEST_ERROR")
    assert _error(client.send("chat", plaintext_for("chat", stream=True), stream=False)) == (400, "REQUEST_ERROR")
    assert _error(client.send("embeddings", plaintext_for("embeddings", stream=True), stream=True)) == (
        400,
        "REQUEST_ERROR",
    )


def test_oversize_bodies_get_413_json(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=4096)
    assert _error(client.post(PATHS["chat"], b"x" * 4097, client.headers())) == (413, "PAYLOAD_TOO_LARGE")


def test_unknown_routes_and_methods_get_json_errors(make_client: MakeClient) -> None:
    client = make_client()
    assert _error(client.get("/v1/nope")) == (404, "NOT_FOUND")
    assert _error(client.get(PATHS["chat"])) == (405, "METHOD_NOT_ALLOWED")


# --- locks and replay --------------------------------------------------------------------------------


def test_a_lock_serves_exactly_one_request(make_client: MakeClient) -> None:
    client = make_client()
    lock = client.lock()
    assert client.send("chat", lock=lock).status == 200
    assert _error(client.send("chat", lock=lock)) == (425, "UNAVAILABLE_STACK")


def test_a_lock_expires_after_its_timeout(make_client: MakeClient) -> None:
    now = [1000.0]
    client = make_client(clock=lambda: now[0])
    lock = client.lock(timeout=2)
    now[0] += 2.5
    assert _error(client.send("chat", lock=lock)) == (425, "UNAVAILABLE_STACK")
    fresh = client.lock()
    now[0] += 4.9
    assert client.send("chat", lock=fresh).status == 200


def test_a_lock_must_cover_the_compute_units(make_client: MakeClient) -> None:
    client = make_client()
    small = client.lock(max_num_tokens=10)
    assert _error(client.send("chat", lock=small, num_compute_units=11)) == (425, "UNAVAILABLE_STACK")
    assert client.send("chat", lock=client.lock(max_num_tokens=10), num_compute_units=10).status == 200


def test_another_api_keys_lock_cannot_be_spent(make_client: MakeClient) -> None:
    client = make_client()
    lock = client.lock()
    client.token = "someone-else"
    sent = client.send("chat", lock=lock)
    assert _error(sent) == (425, "UNAVAILABLE_STACK") and "another API key" in sent.error()["error"]["message"]


def test_images_default_to_a_megapixel_of_compute_units(make_client: MakeClient) -> None:
    client = make_client()
    assert _error(client.send("images", lock=client.lock(fake_model_image := "black-forest-labs/FLUX.1-schnell"))) == (
        425,
        "UNAVAILABLE_STACK",
    )
    assert client.send("images", lock=client.lock(fake_model_image, max_num_tokens=1_048_576)).status == 200


def test_an_identical_replayed_request_is_refused(make_client: MakeClient) -> None:
    client = make_client()
    first = client.send("chat")
    assert first.status == 200
    replay = client.post(PATHS["chat"], first.request_body, client.headers())
    assert _error(replay) == (425, "UNAVAILABLE_STACK"), "the lock is spent first"
    client.lock()  # a fresh lock on the same stack, then the same bytes again
    assert _error(client.post(PATHS["chat"], first.request_body, client.headers())) == (409, "REPLAYED_REQUEST")


# --- the fake model through the node -----------------------------------------------------------------


def test_max_tokens_stop_and_n_reach_the_model(make_client: MakeClient) -> None:
    client = make_client()
    request = plaintext_for("chat", max_tokens=2, n=3)
    answer = json.loads(client.send("chat", request).open().plaintext)
    assert len(answer["choices"]) == 3
    expected = fake_model.respond("chat", request, request_id="x", created=0)
    assert [c["message"] for c in answer["choices"]] == [c["message"] for c in expected["choices"]]
    assert answer["usage"] == expected["usage"]


# --- configuration and command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"profile": "lenient"}, "--profile"),
        ({"faults": ["nope"]}, "--fault"),
        ({"max_body_bytes": 10}, "--max-body-bytes"),
        ({"models": ()}, "--model"),
    ],
)
def test_bad_configuration_names_the_option(kwargs: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigError, match=f"^{option}: "):
        MockConfig(**kwargs)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_node", *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_mock_command_lists_faults() -> None:
    proc = _cli("--list-faults")
    assert proc.returncode == 0
    assert "stream-nonce-reuse" in proc.stdout and "R12.3" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "nope"], "--fault: unknown fault 'nope'"),
        (["--port", "70000"], "argument --port: must be between 0 and 65535"),
        (["--profile", "lenient"], "argument --profile: invalid choice: 'lenient'"),
    ],
)
def test_mock_command_refuses_bad_values_in_one_line(args: list[str], message: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("atoma-conformance: error: " + message)
    assert proc.stderr.count("\n") == 1


def test_docs_faults_md_is_generated_from_the_catalogue() -> None:
    from pathlib import Path

    from mock_node.serve import fault_table

    path = Path(__file__).resolve().parents[1] / "docs" / "faults.md"
    assert path.read_text(encoding="utf-8") == fault_table("markdown"), (
        "docs/faults.md is stale: atoma-conformance mock --list-faults --format markdown > docs/faults.md"
    )


def test_the_stack_table_is_bounded_and_ids_are_never_reused() -> None:
    from mock_node.locks import LockTable

    table = LockTable(clock=lambda: 0.0, max_stacks=3)
    ids = [table.stack_for(f"owner-{i}", "m") for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert len(table._stacks) == 3
    assert table.stack_for("owner-0", "m") == 6, "a forgotten owner gets a new stack, never an old id"


# --- exposure: the public default seed stays on loopback, and --backend is announced ---------------------


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record where ``mock`` would listen instead of binding (no test binds a non-loopback address), then
    stop the command as Ctrl-C would: exit 130 means it got past every check to the bind."""
    import mock_node.serve

    calls: list[tuple[str, int]] = []

    def listen(host: str, port: int) -> Any:
        calls.append((host, port))
        raise KeyboardInterrupt

    monkeypatch.setattr(mock_node.serve, "_listen", listen)
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "[2001:db8::1]", "node.example"])
def test_the_public_default_seed_is_never_served_beyond_loopback(
    host: str, no_serving: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.cli import main

    for extra in ([], ["--backend", "http://127.0.0.1:9"]):
        assert main(["mock", "--host", host, "--port", "0", *extra]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert err.startswith("atoma-conformance: error: --host: ") and "--seed" in err and "public" in err
    assert no_serving == [], "refused before anything was bound"


@pytest.mark.parametrize(
    ("host", "seed"),
    [("0.0.0.0", ["--seed", "an operator's own secret"]), ("127.0.0.1", []), ("::1", []), ("localhost", [])],
)
def test_loopback_or_a_seed_of_ones_own_gets_to_listen(
    host: str, seed: list[str], no_serving: list[tuple[str, int]]
) -> None:
    from conformance.cli import main

    assert main(["mock", "--host", host, "--port", "0", *seed]) == 130
    assert no_serving == [(host.strip("[]"), 0)]


def test_the_default_seed_given_explicitly_is_still_public(no_serving: list[tuple[str, int]]) -> None:
    from conformance.cli import main
    from mock_node.config import DEFAULT_SEED

    assert main(["mock", "--host", "0.0.0.0", "--seed", DEFAULT_SEED]) == 2
    assert no_serving == []


def test_backend_is_announced_loudly_on_stderr(
    no_serving: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.cli import main

    assert main(["mock", "--port", "0", "--backend", "http://127.0.0.1:9/v1"]) == 130
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("WARNING: --backend relays every DECRYPTED prompt in the clear to http://127.0.0.1:9/v1")
    assert "this machine only" in err
    assert (
        main(["mock", "--host", "0.0.0.0", "--seed", "s3cret", "--port", "0", "--backend", "http://127.0.0.1:9"]) == 130
    )
    assert "anyone who can reach 0.0.0.0" in capsys.readouterr().err
    assert main(["mock", "--port", "0"]) == 130
    assert "WARNING" not in capsys.readouterr().err, "no warning without --backend"

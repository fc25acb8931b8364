"""The mock node's fake model: deterministic, exactly counted, upstream-shaped, and it never echoes plaintext.

The oracles here are written from the contract (token-prefix caps, first-occurrence stop cuts, per-index
seeds, the PNG and zlib formats), not by calling the module's private helpers, so that a change in the
module that breaks the contract cannot also change what the test expects.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import pickle
import re
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_node.fake_model import (
    STREAMABLE,
    Endpoint,
    PlaintextError,
    count_tokens,
    respond,
    stream,
    tokenize,
    validate,
)

SENTINEL = "SENTINEL-9f3c"
RID = "req-1"
CREATED = 1_700_000_000
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
ROLES = ("system", "user", "assistant", "tool", "developer", "function")
ENDPOINTS: tuple[Endpoint, ...] = ("chat", "completions", "embeddings", "images")

CHAT: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "Hello, world!"}]}
COMPLETIONS: dict[str, Any] = {"model": "m", "prompt": "Once upon a time"}
EMBEDDINGS: dict[str, Any] = {"model": "m", "input": "hello"}
IMAGES: dict[str, Any] = {"model": "m", "prompt": "a cat"}
VALID: dict[Endpoint, dict[str, Any]] = {
    "chat": CHAT,
    "completions": COMPLETIONS,
    "embeddings": EMBEDDINGS,
    "images": IMAGES,
}


def _respond(endpoint: Endpoint, request: dict[str, Any]) -> dict[str, Any]:
    return respond(endpoint, request, request_id=RID, created=CREATED)


def _stream(endpoint: Endpoint, request: dict[str, Any]) -> list[dict[str, Any]]:
    return stream(endpoint, request, request_id=RID, created=CREATED)


def _texts(endpoint: Endpoint, body: dict[str, Any]) -> list[str]:
    if endpoint == "chat":
        return [choice["message"]["content"] for choice in body["choices"]]
    return [choice["text"] for choice in body["choices"]]


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


# --- strategies ---------------------------------------------------------------------------------------

texts = st.text(max_size=40)
nonempty_texts = st.text(min_size=1, max_size=40)
models = st.text(min_size=1, max_size=12)
# Fragments that occur in generated text often enough to exercise cuts, plus arbitrary short strings.
stop_strings = st.one_of(
    st.sampled_from(["e", "the", ".", ",", " a", "an", "ou", "er", "T", "", "and", "to", "is", "node", "model", "or"]),
    st.text(max_size=3),
)
token_ids = st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=6)


@st.composite
def chat_messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        role = draw(st.sampled_from(ROLES))
        options: list[st.SearchStrategy[Any]] = [
            texts,
            st.lists(
                st.one_of(
                    texts.map(lambda t: {"type": "text", "text": t}),
                    st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}),
                ),
                max_size=3,
            ),
        ]
        if role in ("assistant", "tool"):
            options.append(st.none())
        message: dict[str, Any] = {"role": role, "content": draw(st.one_of(options))}
        if draw(st.booleans()):
            message["name"] = draw(texts)
        messages.append(message)
    return messages


completion_prompts = st.one_of(
    nonempty_texts,
    st.lists(nonempty_texts, min_size=1, max_size=3),
    token_ids,
    st.lists(token_ids, min_size=1, max_size=3),
)


@st.composite
def text_requests(draw: st.DrawFn, endpoint: str) -> dict[str, Any]:
    request: dict[str, Any] = {"model": draw(models)}
    if endpoint == "chat":
        request["messages"] = draw(chat_messages())
    else:
        request["prompt"] = draw(completion_prompts)
    if draw(st.booleans()):
        request["max_tokens"] = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=40)))
    if draw(st.booleans()):
        request["n"] = draw(st.integers(min_value=1, max_value=8))
    if draw(st.booleans()):
        request["stop"] = draw(st.one_of(stop_strings, st.lists(stop_strings, max_size=4)))
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        request["x_mock_natural_tokens"] = draw(st.integers(min_value=1, max_value=80))
    return request


TEXT_ENDPOINTS: tuple[Endpoint, ...] = ("chat", "completions")
text_endpoints = st.sampled_from(TEXT_ENDPOINTS)


@st.composite
def any_text_request(draw: st.DrawFn) -> tuple[Endpoint, dict[str, Any]]:
    endpoint: Endpoint = draw(text_endpoints)
    return endpoint, draw(text_requests(endpoint))


embedding_inputs = st.one_of(
    nonempty_texts,
    st.lists(nonempty_texts, min_size=1, max_size=4),
    token_ids,
    st.lists(token_ids, min_size=1, max_size=3),
)


@st.composite
def any_request(draw: st.DrawFn) -> tuple[Endpoint, dict[str, Any]]:
    endpoint: Endpoint = draw(st.sampled_from(ENDPOINTS))
    if endpoint in STREAMABLE:
        return endpoint, draw(text_requests(endpoint))
    if endpoint == "embeddings":
        request: dict[str, Any] = {"model": draw(models), "input": draw(embedding_inputs)}
        if draw(st.booleans()):
            request["dimensions"] = draw(st.integers(min_value=1, max_value=64))
        return endpoint, request
    request = {"model": draw(models), "prompt": draw(nonempty_texts)}
    if draw(st.booleans()):
        request["n"] = draw(st.integers(min_value=1, max_value=4))
    return endpoint, request


# --- tokenizer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("   \n\t", []),
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("don't", ["don", "'", "t"]),
        ("a_b c9 ...", ["a_b", "c9", ".", ".", "."]),
        ("héllo wörld", ["héllo", "wörld"]),
        ("x+=1", ["x", "+", "=", "1"]),
    ],
)
def test_tokenize_examples(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens
    assert count_tokens(text) == len(tokens)


@given(st.text())
def test_count_tokens_is_the_length_of_tokenize(text: str) -> None:
    tokens = tokenize(text)
    assert count_tokens(text) == len(tokens) == len(TOKEN_RE.findall(text))
    assert tokenize(" ".join(tokens)) == tokens  # tokens are atomic: separated by spaces they come back


# --- determinism and shapes ---------------------------------------------------------------------------


@given(any_request())
def test_same_input_same_output_and_plain_json(case: tuple[Endpoint, dict[str, Any]]) -> None:
    endpoint, request = case
    before = copy.deepcopy(request)
    body = _respond(endpoint, request)
    assert request == before  # the request is not mutated
    assert _respond(endpoint, copy.deepcopy(request)) == body
    assert json.loads(json.dumps(body)) == body
    assert json.dumps(body) == json.dumps(_respond(endpoint, request))  # key order is stable too
    if endpoint in STREAMABLE:
        chunks = _stream(endpoint, request)
        assert chunks == _stream(endpoint, copy.deepcopy(request))
        assert json.loads(json.dumps(chunks)) == chunks
        assert request == before


def test_chat_response_shape_and_key_order() -> None:
    body = _respond("chat", CHAT)
    assert list(body) == ["id", "object", "created", "model", "choices", "usage"]
    assert body["id"] == f"chatcmpl-{RID}"
    assert body["object"] == "chat.completion"
    assert body["created"] == CREATED
    assert body["model"] == "m"
    [choice] = body["choices"]
    assert list(choice) == ["index", "message", "logprobs", "finish_reason"]
    assert list(choice["message"]) == ["role", "content"]
    assert choice["message"]["role"] == "assistant"
    assert choice["logprobs"] is None
    assert list(body["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    assert body["usage"]["prompt_tokens"] == 1 + 4  # "user" + "Hello , world !"


def test_completions_response_shape_and_key_order() -> None:
    body = _respond("completions", COMPLETIONS)
    assert list(body) == ["id", "object", "created", "model", "choices", "usage"]
    assert body["id"] == f"cmpl-{RID}"
    assert body["object"] == "text_completion"
    [choice] = body["choices"]
    assert list(choice) == ["index", "text", "logprobs", "finish_reason"]
    assert choice["logprobs"] is None
    assert body["usage"]["prompt_tokens"] == 4


def test_generated_text_looks_like_text() -> None:
    text = _respond("completions", _with(COMPLETIONS, x_mock_natural_tokens=400))["choices"][0]["text"]
    assert text[0].isupper()
    assert re.search(r"[A-Za-z]+ [a-z]+", text)
    assert not re.search(r"[^\w\s][^\w\s]", text)  # never two marks in a row
    assert set(re.findall(r"[^\w\s]", text)) <= set(",.;!?:")


# --- text semantics -----------------------------------------------------------------------------------


def _expected(full: str, cap: int | None, stops: list[str]) -> tuple[str, str]:
    """What a choice must be, given the uncapped, unstopped text of the same seed."""
    ends = [m.end() for m in TOKEN_RE.finditer(full)]
    natural = len(ends)
    count = natural if cap is None else min(cap, natural)
    text = full[: ends[count - 1]]
    finish = "length" if count < natural else "stop"
    hits = [text.find(s) for s in stops if s and s in text]
    if hits:
        text, finish = text[: min(hits)], "stop"
    return text, finish


def _stops(request: dict[str, Any]) -> list[str]:
    stop = request.get("stop")
    return [] if stop is None else [stop] if isinstance(stop, str) else list(stop)


@given(any_text_request())
def test_max_tokens_stop_and_n_semantics(case: tuple[Endpoint, dict[str, Any]]) -> None:
    endpoint, request = case
    body = _respond(endpoint, request)
    n = request.get("n", 1)
    assert [choice["index"] for choice in body["choices"]] == list(range(n))

    free = {key: value for key, value in request.items() if key not in ("max_tokens", "stop")}
    free_body = _respond(endpoint, free)
    cap = request.get("max_tokens")
    stops = _stops(request)
    for choice, text, full, full_choice in zip(
        body["choices"], _texts(endpoint, body), _texts(endpoint, free_body), free_body["choices"], strict=True
    ):
        natural = count_tokens(full)
        assert full_choice["finish_reason"] == "stop"
        if "x_mock_natural_tokens" in request:
            assert natural == request["x_mock_natural_tokens"]
        else:
            assert 4 <= natural <= 32
        assert (text, choice["finish_reason"]) == _expected(full, cap, stops)
        assert full.startswith(text)
        if cap is not None:
            assert count_tokens(text) <= cap
        assert not any(s and s in text for s in stops)
        if choice["finish_reason"] == "length":
            assert cap is not None
            assert count_tokens(text) == cap < natural


@given(any_text_request(), st.integers(min_value=1, max_value=8))
def test_choice_i_does_not_depend_on_n(case: tuple[Endpoint, dict[str, Any]], n: int) -> None:
    endpoint, request = case
    small = _respond(endpoint, _with(request, n=n))["choices"]
    large = _respond(endpoint, _with(request, n=8))["choices"]
    assert small == large[:n]


@given(any_text_request())
def test_usage_counts_exactly(case: tuple[Endpoint, dict[str, Any]]) -> None:
    endpoint, request = case
    usage = _respond(endpoint, request)["usage"]
    if endpoint == "chat":
        prompt = 0
        for message in request["messages"]:
            content = message["content"]
            parts = [content] if isinstance(content, str) else [] if content is None else content
            prompt += count_tokens(message["role"])
            prompt += sum(
                count_tokens(p) if isinstance(p, str) else count_tokens(p["text"]) if p["type"] == "text" else 0
                for p in parts
            )
    else:
        value = request["prompt"]
        if isinstance(value, str):
            prompt = count_tokens(value)
        elif isinstance(value[0], str):
            prompt = sum(count_tokens(item) for item in value)
        elif isinstance(value[0], int):
            prompt = len(value)
        else:
            prompt = sum(len(item) for item in value)
    completion = sum(count_tokens(text) for text in _texts(endpoint, _respond(endpoint, request)))
    assert usage == {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@given(models, nonempty_texts, st.integers(min_value=0, max_value=7))
def test_outputs_differ_by_model_prompt_and_index(model: str, prompt: str, index: int) -> None:
    # Not a law (hashes can collide), but with 64 words and 4..32 tokens a collision is ~never.
    def choices(model: str, prompt: str) -> list[str]:
        return _texts("completions", _respond("completions", {"model": model, "prompt": prompt, "n": 8}))

    base = choices(model, prompt)
    assert base[index] != choices(model + "x", prompt)[index]
    assert base[index] != choices(model, prompt + "x")[index]
    assert len(set(base)) == 8


def test_max_completion_tokens_wins_over_max_tokens_in_chat() -> None:
    request = _with(CHAT, x_mock_natural_tokens=50, max_tokens=30, max_completion_tokens=7)
    body = _respond("chat", request)
    assert body["usage"]["completion_tokens"] == 7
    assert body["choices"][0]["finish_reason"] == "length"
    only_new = _respond("chat", _with(CHAT, x_mock_natural_tokens=50, max_completion_tokens=9))
    assert only_new["usage"]["completion_tokens"] == 9


def test_natural_length_override_and_its_bounds() -> None:
    for natural in (1, 61, 4096):
        body = _respond("chat", _with(CHAT, x_mock_natural_tokens=natural))
        assert body["usage"]["completion_tokens"] == natural
        assert body["choices"][0]["finish_reason"] == "stop"
    for bad in (0, 4097, True, 2.0, "3"):
        with pytest.raises(PlaintextError) as info:
            validate("chat", _with(CHAT, x_mock_natural_tokens=bad))
        assert info.value.field == "x_mock_natural_tokens"


def test_empty_stop_strings_are_ignored_and_a_cut_at_zero_gives_empty_text() -> None:
    plain = _respond("completions", COMPLETIONS)
    assert _respond("completions", _with(COMPLETIONS, stop=[""]))["choices"] == plain["choices"]
    first_word = _texts("completions", plain)[0].split()[0]
    cut = _respond("completions", _with(COMPLETIONS, stop=first_word))
    assert cut["choices"][0]["text"] == ""
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["usage"]["completion_tokens"] == 0


def _words(text: str) -> list[str]:
    return re.findall(r"\b[a-z]{2,}\b", text)


def test_the_earliest_stop_wins_whatever_the_list_order() -> None:
    request = _with(COMPLETIONS, x_mock_natural_tokens=60)
    full = _texts("completions", _respond("completions", request))[0]
    words = _words(full)
    early, late = words[1], next(w for w in words[2:] if full.find(w) > full.find(words[1]))
    cut = min(full.find(early), full.find(late))
    for stop in ([late, early], [early, late], [early], [late, "zzz", early]):
        body = _respond("completions", _with(request, stop=stop))
        assert body["choices"][0]["text"] == full[:cut]
        assert body["choices"][0]["finish_reason"] == "stop"


def test_a_cut_before_a_word_keeps_the_trailing_space_in_the_stream() -> None:
    request = _with(CHAT, x_mock_natural_tokens=40)
    full = _texts("chat", _respond("chat", request))[0]
    word = next(w for w in _words(full) if full.find(w) > 0 and full[full.find(w) - 1] == " ")
    cut_request = _with(request, stop=word)
    text = _texts("chat", _respond("chat", cut_request))[0]
    assert text == full[: full.find(word)]
    assert text.endswith(" ")
    chunks = _stream("chat", cut_request)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == text
    assert len(chunks) == count_tokens(text) + 3


def test_ignored_and_unknown_fields_do_not_change_the_output() -> None:
    knobs: dict[str, Any] = {
        "temperature": 1.7,
        "top_p": 0,
        "seed": 42,
        "user": "u",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "presence_penalty": -1,
        "frequency_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "stream_options": {"include_usage": True},
        "stream": True,
        "logprobs": False,
        "top_logprobs": None,
        "x_unknown": {"anything": [1, 2]},
    }
    assert _respond("chat", {**CHAT, **knobs}) == _respond("chat", CHAT)
    assert _respond("completions", {**COMPLETIONS, **knobs, "logprobs": 2, "echo": False}) == _respond(
        "completions", COMPLETIONS
    )


def test_null_means_absent() -> None:
    nulls = dict.fromkeys(("max_tokens", "max_completion_tokens", "n", "stop", "stream", "temperature", "seed"))
    assert _respond("chat", {**CHAT, **nulls}) == _respond("chat", CHAT)
    emb_nulls = dict.fromkeys(("dimensions", "encoding_format", "user"))
    assert _respond("embeddings", {**EMBEDDINGS, **emb_nulls}) == _respond("embeddings", EMBEDDINGS)
    img_nulls = dict.fromkeys(("n", "size", "response_format", "quality", "style"))
    assert _respond("images", {**IMAGES, **img_nulls}) == _respond("images", IMAGES)


# --- streaming ----------------------------------------------------------------------------------------


@given(any_text_request())
def test_stream_matches_respond(case: tuple[Endpoint, dict[str, Any]]) -> None:
    endpoint, request = case
    body = _respond(endpoint, request)
    chunks = _stream(endpoint, request)
    chat = endpoint == "chat"
    n = len(body["choices"])
    object_ = "chat.completion.chunk" if chat else "text_completion"
    for chunk in chunks:
        assert list(chunk) == ["id", "object", "created", "model", "choices", "usage"]
        assert (chunk["id"], chunk["object"], chunk["created"], chunk["model"]) == (
            body["id"],
            object_,
            CREATED,
            body["model"],
        )

    *per_choice, last = chunks
    assert last["choices"] == []
    assert last["usage"] == body["usage"]
    assert all(chunk["usage"] is None and len(chunk["choices"]) == 1 for chunk in per_choice)

    completion_tokens = body["usage"]["completion_tokens"]
    assert len(chunks) == completion_tokens + (2 * n + 1 if chat else n + 1)

    seen: dict[int, list[dict[str, Any]]] = {i: [] for i in range(n)}
    for chunk in per_choice:
        [choice] = chunk["choices"]
        assert choice["logprobs"] is None
        seen[choice["index"]].append(choice)
    for index, expected in enumerate(body["choices"]):
        choices = seen[index]
        *middle, finish = choices
        assert finish["finish_reason"] == expected["finish_reason"]
        if chat:
            assert list(finish) == ["index", "delta", "logprobs", "finish_reason"]
            role, *pieces = middle
            assert role["delta"] == {"role": "assistant", "content": ""}
            assert role["finish_reason"] is None
            assert finish["delta"] == {}
            contents = [piece["delta"]["content"] for piece in pieces]
            assert all(list(piece["delta"]) == ["content"] for piece in pieces)
            assert "".join(contents) == expected["message"]["content"]
        else:
            assert list(finish) == ["index", "text", "logprobs", "finish_reason"]
            assert finish["text"] == ""
            pieces = middle
            contents = [piece["text"] for piece in pieces]
            assert "".join(contents) == expected["text"]
        assert all(piece["finish_reason"] is None for piece in pieces)
        assert all(count_tokens(content) == 1 for content in contents)  # one token per chunk

    # Every role chunk precedes every token chunk, and every finish chunk follows them.
    def kind(choice: dict[str, Any]) -> int:
        if choice["finish_reason"] is not None:
            return 2
        return 0 if "role" in choice.get("delta", {}) else 1

    kinds = [kind(chunk["choices"][0]) for chunk in per_choice]
    assert kinds == sorted(kinds)


@pytest.mark.parametrize(("natural", "finish"), [(61, "stop"), (62, "length"), (4096, "length")])
def test_benchmark_recipe_gives_64_chunks(natural: int, finish: str) -> None:
    request = _with(CHAT, max_tokens=61, x_mock_natural_tokens=natural)
    chunks = _stream("chat", request)
    assert len(chunks) == 64
    assert chunks[-1]["usage"]["completion_tokens"] == 61
    assert chunks[-2]["choices"][0]["finish_reason"] == finish


def test_stream_interleaves_choices_round_robin() -> None:
    chunks = _stream("chat", _with(CHAT, n=2, x_mock_natural_tokens=3))
    indexes = [chunk["choices"][0]["index"] for chunk in chunks[:-1]]
    assert indexes == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("endpoint", ["embeddings", "images"])
def test_stream_refused_for_non_streaming_endpoints(endpoint: Endpoint) -> None:
    with pytest.raises(PlaintextError) as info:
        _stream(endpoint, VALID[endpoint])
    assert info.value.field == "stream"
    assert frozenset({"chat", "completions"}) == STREAMABLE


def test_stream_validates_first() -> None:
    with pytest.raises(PlaintextError) as info:
        _stream("embeddings", {"model": "m"})
    assert info.value.field == "input"


# --- embeddings ---------------------------------------------------------------------------------------


@given(models, embedding_inputs, st.one_of(st.none(), st.integers(min_value=1, max_value=300)))
def test_embeddings_are_unit_vectors_of_the_requested_dimension(model: str, value: Any, dims: int | None) -> None:
    request: dict[str, Any] = {"model": model, "input": value}
    if dims is not None:
        request["dimensions"] = dims
    body = _respond("embeddings", request)
    assert list(body) == ["object", "data", "model", "usage"]
    assert body["object"] == "list"
    assert body["model"] == model
    if isinstance(value, str):
        inputs: list[Any] = [value]
    elif isinstance(value[0], int):
        inputs = [value]
    else:
        inputs = value
    assert len(body["data"]) == len(inputs)
    dimension = 16 if dims is None else dims
    for index, item in enumerate(body["data"]):
        assert list(item) == ["object", "index", "embedding"]
        assert item["object"] == "embedding"
        assert item["index"] == index
        vector = item["embedding"]
        assert len(vector) == dimension
        assert all(type(x) is float and x == round(x, 6) for x in vector)
        assert not any(x == 0 and math.copysign(1, x) < 0 for x in vector)  # no -0.0 in the JSON
        norm = math.sqrt(math.fsum(x * x for x in vector))
        assert abs(norm - 1) <= 0.5e-6 * math.sqrt(dimension) + 1e-12
    tokens = sum(count_tokens(item) if isinstance(item, str) else len(item) for item in inputs)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    # Seeded by model and input alone: the same input embeds the same anywhere in a batch.
    alone = _respond("embeddings", {**request, "input": [inputs[-1]]})
    assert alone["data"][0]["embedding"] == body["data"][-1]["embedding"]


def test_embeddings_differ_by_input_and_model() -> None:
    body = _respond("embeddings", {"model": "m", "input": ["a", "b", "a"]})
    vectors = [item["embedding"] for item in body["data"]]
    assert vectors[0] == vectors[2] != vectors[1]
    assert _respond("embeddings", {"model": "m2", "input": ["a"]})["data"][0]["embedding"] != vectors[0]
    assert len(_respond("embeddings", {"model": "m", "input": "a", "dimensions": 4096})["data"][0]["embedding"]) == 4096


# --- images -------------------------------------------------------------------------------------------


def _check_png(data: bytes) -> tuple[int, int, int]:
    """Parse ``data`` as a PNG from first principles; return its single colour."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset = 8
    chunks: list[tuple[bytes, bytes]] = []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        tag = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert len(body) == length
        assert crc == zlib.crc32(tag + body), tag
        chunks.append((tag, body))
        offset += 12 + length
    assert offset == len(data)
    assert [tag for tag, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, compression, filtering, interlace) == (8, 8, 8, 2, 0, 0, 0)
    assert chunks[2][1] == b""
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == 8 * (1 + 24)
    rows = [raw[i * 25 : (i + 1) * 25] for i in range(8)]
    assert all(row[0] == 0 for row in rows)  # filter type None
    pixels = {row[1 + 3 * x : 4 + 3 * x] for row in rows for x in range(8)}
    assert len(pixels) == 1
    r, g, b = pixels.pop()
    return r, g, b


@given(nonempty_texts, st.integers(min_value=1, max_value=4), st.sampled_from([None, "256x256", "1024x1792", "1x4096"]))
def test_images_are_valid_pngs(prompt: str, n: int, size: str | None) -> None:
    request: dict[str, Any] = {"model": "m", "prompt": prompt, "n": n}
    if size is not None:
        request["size"] = size
    body = _respond("images", request)
    assert list(body) == ["created", "data"]  # no usage
    assert body["created"] == CREATED
    assert len(body["data"]) == n
    colours = []
    for item in body["data"]:
        assert list(item) == ["b64_json", "revised_prompt"]
        assert item["revised_prompt"] == prompt
        encoded = item["b64_json"]
        raw = base64.b64decode(encoded, validate=True)
        assert base64.b64encode(raw).decode() == encoded  # standard alphabet, canonical padding
        colours.append(_check_png(raw))
    # The picture depends on prompt and index only, never on size.
    assert _respond("images", {"model": "m", "prompt": prompt, "n": n}) == body
    assert len(colours) == n


def test_images_default_to_one_and_colours_follow_the_index() -> None:
    one = _respond("images", IMAGES)
    four = _respond("images", _with(IMAGES, n=4))
    assert len(one["data"]) == 1
    assert four["data"][0] == one["data"][0]
    colours = {_check_png(base64.b64decode(item["b64_json"])) for item in four["data"]}
    assert len(colours) == 4


# --- validation ---------------------------------------------------------------------------------------

S = SENTINEL
M0 = [{"role": "user", "content": "hi"}]

INVALID: list[tuple[Endpoint, Any, str]] = [
    # model
    ("chat", {"messages": M0}, "model"),
    ("chat", {"model": "", "messages": M0}, "model"),
    ("chat", {"model": [S], "messages": M0}, "model"),
    ("images", {"prompt": "p"}, "model"),
    # chat messages
    ("chat", {"model": "m"}, "messages"),
    ("chat", {"model": "m", "messages": []}, "messages"),
    ("chat", {"model": "m", "messages": S}, "messages"),
    ("chat", {"model": "m", "messages": {S: S}}, "messages"),
    ("chat", {"model": "m", "messages": [S]}, "messages[0]"),
    ("chat", {"model": "m", "messages": [*M0, {"content": S}]}, "messages[1].role"),
    ("chat", {"model": "m", "messages": [{"role": S, "content": "x"}]}, "messages[0].role"),
    ("chat", {"model": "m", "messages": [{"role": "User", "content": S}]}, "messages[0].role"),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ("chat", {"model": "m", "messages": [{"role": "system"}]}, "messages[0].content"),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": {S: S}}]}, "messages[0].content"),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": [S]}]}, "messages[0].content[0]"),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": [{"text": S}]}]}, "messages[0].content[0].type"),
    (
        "chat",
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "messages[0].content[0].text",
    ),
    (
        "chat",
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": [S]}]}]},
        "messages[0].content[0].text",
    ),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": "x", "name": [S]}]}, "messages[0].name"),
    # completions prompt
    ("completions", {"model": "m"}, "prompt"),
    ("completions", {"model": "m", "prompt": ""}, "prompt"),
    ("completions", {"model": "m", "prompt": []}, "prompt"),
    ("completions", {"model": "m", "prompt": {S: S}}, "prompt"),
    ("completions", {"model": "m", "prompt": [S, 3]}, "prompt[1]"),
    ("completions", {"model": "m", "prompt": [S, ""]}, "prompt[1]"),
    ("completions", {"model": "m", "prompt": [1, S]}, "prompt[1]"),
    ("completions", {"model": "m", "prompt": [1, -1]}, "prompt[1]"),
    ("completions", {"model": "m", "prompt": [1, True]}, "prompt[1]"),
    ("completions", {"model": "m", "prompt": [True]}, "prompt[0]"),
    ("completions", {"model": "m", "prompt": [1.0]}, "prompt[0]"),
    ("completions", {"model": "m", "prompt": [[1], []]}, "prompt[1]"),
    ("completions", {"model": "m", "prompt": [[1], [2, S]]}, "prompt[1][1]"),
    ("completions", {"model": "m", "prompt": [[1], S]}, "prompt[1]"),
    # common knobs
    ("chat", {**CHAT, "max_tokens": S}, "max_tokens"),
    ("chat", {**CHAT, "max_tokens": 0}, "max_tokens"),
    ("chat", {**CHAT, "max_tokens": True}, "max_tokens"),
    ("chat", {**CHAT, "max_tokens": 5.0}, "max_tokens"),
    ("chat", {**CHAT, "max_completion_tokens": -3}, "max_completion_tokens"),
    ("completions", {**COMPLETIONS, "max_tokens": [S]}, "max_tokens"),
    ("embeddings", {**EMBEDDINGS, "max_tokens": S}, "max_tokens"),
    ("chat", {**CHAT, "n": 0}, "n"),
    ("chat", {**CHAT, "n": 9}, "n"),
    ("completions", {**COMPLETIONS, "n": True}, "n"),
    ("completions", {**COMPLETIONS, "n": 2.0}, "n"),
    ("chat", {**CHAT, "stream": S}, "stream"),
    ("chat", {**CHAT, "stream": 1}, "stream"),
    ("images", {**IMAGES, "stream": "true"}, "stream"),
    ("chat", {**CHAT, "stop": [S] * 5}, "stop"),
    ("chat", {**CHAT, "stop": {S: S}}, "stop"),
    ("chat", {**CHAT, "stop": 7}, "stop"),
    ("completions", {**COMPLETIONS, "stop": [S, 7]}, "stop[1]"),
    ("chat", {**CHAT, "x_mock_natural_tokens": S}, "x_mock_natural_tokens"),
    # accepted-and-ignored fields still have types
    ("chat", {**CHAT, "temperature": S}, "temperature"),
    ("chat", {**CHAT, "temperature": math.nan}, "temperature"),
    ("chat", {**CHAT, "top_p": True}, "top_p"),
    ("chat", {**CHAT, "seed": 1.5}, "seed"),
    ("chat", {**CHAT, "user": [S]}, "user"),
    ("chat", {**CHAT, "tools": S}, "tools"),
    ("chat", {**CHAT, "tools": [S]}, "tools[0]"),
    ("chat", {**CHAT, "tool_choice": [S]}, "tool_choice"),
    ("chat", {**CHAT, "response_format": S}, "response_format"),
    ("chat", {**CHAT, "logit_bias": {S: S}}, "logit_bias"),
    ("chat", {**CHAT, "logit_bias": [S]}, "logit_bias"),
    ("chat", {**CHAT, "stream_options": S}, "stream_options"),
    ("chat", {**CHAT, "stream_options": {"include_usage": S}}, "stream_options.include_usage"),
    ("chat", {**CHAT, "logprobs": 2}, "logprobs"),
    ("completions", {**COMPLETIONS, "logprobs": True}, "logprobs"),
    ("completions", {**COMPLETIONS, "echo": S}, "echo"),
    # embeddings
    ("embeddings", {"model": "m"}, "input"),
    ("embeddings", {"model": "m", "input": ""}, "input"),
    ("embeddings", {"model": "m", "input": []}, "input"),
    ("embeddings", {"model": "m", "input": [None, S]}, "input[0]"),
    ("embeddings", {"model": "m", "input": [S, None]}, "input[1]"),
    ("embeddings", {**EMBEDDINGS, "dimensions": 0}, "dimensions"),
    ("embeddings", {**EMBEDDINGS, "dimensions": 4097}, "dimensions"),
    ("embeddings", {**EMBEDDINGS, "dimensions": True}, "dimensions"),
    ("embeddings", {**EMBEDDINGS, "dimensions": S}, "dimensions"),
    ("embeddings", {**EMBEDDINGS, "encoding_format": "base64"}, "encoding_format"),
    ("embeddings", {**EMBEDDINGS, "encoding_format": S}, "encoding_format"),
    ("embeddings", {**EMBEDDINGS, "encoding_format": 1}, "encoding_format"),
    # images
    ("images", {"model": "m"}, "prompt"),
    ("images", {"model": "m", "prompt": ""}, "prompt"),
    ("images", {"model": "m", "prompt": [S]}, "prompt"),
    ("images", {**IMAGES, "n": 5}, "n"),
    ("images", {**IMAGES, "n": 0}, "n"),
    ("images", {**IMAGES, "n": False}, "n"),
    ("images", {**IMAGES, "size": S}, "size"),
    ("images", {**IMAGES, "size": "0x256"}, "size"),
    ("images", {**IMAGES, "size": "4097x1"}, "size"),
    ("images", {**IMAGES, "size": "256x256\n"}, "size"),
    ("images", {**IMAGES, "size": "12345x1"}, "size"),
    ("images", {**IMAGES, "size": "\u0663x3"}, "size"),  # a non-ASCII digit
    ("images", {**IMAGES, "size": 256}, "size"),
    ("images", {**IMAGES, "response_format": "url"}, "response_format"),
    ("images", {**IMAGES, "response_format": S}, "response_format"),
    ("images", {**IMAGES, "quality": [S]}, "quality"),
    # the body itself
    ("chat", [S], "$"),
    ("images", S, "$"),
]


@pytest.mark.parametrize(("endpoint", "request_", "field"), INVALID, ids=[f"{e}-{f}" for e, _, f in INVALID])
def test_invalid_requests_name_the_field_and_never_echo_it(endpoint: Endpoint, request_: Any, field: str) -> None:
    for call in (validate, _respond, _stream):
        with pytest.raises(PlaintextError) as info:
            call(endpoint, request_)
        error = info.value
        assert isinstance(error, ValueError)
        assert error.field == field
        assert error.reason
        assert str(error) == f"{field}: {error.reason}"
        assert SENTINEL not in str(error)
        assert SENTINEL not in repr(error)


def test_refusal_reasons_explain() -> None:
    with pytest.raises(PlaintextError, match="URL"):
        validate("images", _with(IMAGES, response_format="url"))
    with pytest.raises(PlaintextError, match="'base64' is not supported"):
        validate("embeddings", _with(EMBEDDINGS, encoding_format="base64"))
    with pytest.raises(PlaintextError, match="between 1 and 8"):
        validate("chat", _with(CHAT, n=9))
    with pytest.raises(PlaintextError, match="got boolean"):
        validate("chat", _with(CHAT, max_tokens=True))


@pytest.mark.parametrize(
    ("endpoint", "request_"),
    [
        ("chat", {"model": "m", "messages": [{"role": "assistant", "content": None}]}),
        ("chat", {"model": "m", "messages": [{"role": "assistant", "tool_calls": []}]}),
        ("chat", {"model": "m", "messages": [{"role": "tool", "content": None, "tool_call_id": "c"}]}),
        ("chat", {"model": "m", "messages": [{"role": "user", "content": []}]}),
        ("chat", {"model": "m", "messages": [{"role": "developer", "content": [{"type": "input_audio"}]}]}),
        ("chat", {**CHAT, "stop": []}),
        ("chat", {**CHAT, "stop": ["a", "b", "c", "d"]}),
        ("chat", {**CHAT, "max_tokens": 10**30}),
        ("completions", {"model": "m", "prompt": [0]}),
        ("completions", {"model": "m", "prompt": [[0, 1], [2]]}),
        ("embeddings", {"model": "m", "input": [[0]], "encoding_format": "float", "dimensions": 4096}),
        ("images", {**IMAGES, "size": "4096x1", "response_format": "b64_json", "n": 4}),
        ("images", {**IMAGES, "size": "0001x0001"}),
    ],
)
def test_edge_requests_are_accepted(endpoint: Endpoint, request_: dict[str, Any]) -> None:
    validate(endpoint, request_)
    _respond(endpoint, request_)


def test_unknown_endpoint_is_a_caller_bug_not_a_plaintext_error() -> None:
    with pytest.raises(ValueError, match="endpoint") as info:
        validate("audio", CHAT)  # type: ignore[arg-type]
    assert not isinstance(info.value, PlaintextError)


def test_plaintext_error_pickles() -> None:
    error = PlaintextError(field="messages[0].role", reason="is required")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is PlaintextError
    assert (clone.field, clone.reason, str(clone)) == (error.field, error.reason, str(error))


# Arbitrary JSON with the sentinel in every string and key, and keys that lead the validator deeper.
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=10),
    st.floats(),
    st.text(max_size=3).map(lambda t: t + SENTINEL),
    st.sampled_from((*ROLES, "text", "image_url", "b64_json", "url", "float", "base64", "256x256")),
)
_keys = st.one_of(
    st.sampled_from(["role", "content", "type", "text", "name", "include_usage"]), st.text(max_size=3).map(S.__add__)
)
json_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=10,
)
FIELDS: dict[Endpoint, tuple[str, ...]] = {
    "chat": (
        *("model", "messages", "max_tokens", "max_completion_tokens", "n", "stream", "stop", "temperature", "tools"),
        *("tool_choice", "logit_bias", "stream_options", "logprobs", "user", "x_mock_natural_tokens", "seed"),
    ),
    "completions": ("model", "prompt", "max_tokens", "n", "stop", "logprobs", "echo", "suffix", "best_of", "top_p"),
    "embeddings": ("model", "input", "dimensions", "encoding_format", "user", "stop"),
    "images": ("model", "prompt", "n", "size", "response_format", "quality", "style", "max_tokens"),
}


@st.composite
def mutated_requests(draw: st.DrawFn) -> tuple[Endpoint, str, dict[str, Any]]:
    endpoint: Endpoint = draw(st.sampled_from(ENDPOINTS))
    field = draw(st.sampled_from(FIELDS[endpoint]))
    return endpoint, field, {**VALID[endpoint], field: draw(json_values)}


def _refusal(endpoint: Endpoint, request: Any) -> PlaintextError | None:
    try:
        validate(endpoint, request)
    except PlaintextError as error:
        return error
    return None


@given(mutated_requests())
def test_any_value_in_a_field_is_accepted_or_refused_by_name(case: tuple[Endpoint, str, dict[str, Any]]) -> None:
    endpoint, field, request = case
    error = _refusal(endpoint, request)
    if error is not None:
        assert error.field == field or error.field.startswith((f"{field}[", f"{field}."))
        assert SENTINEL not in str(error)
        assert SENTINEL not in error.field
    else:
        body = _respond(endpoint, request)  # whatever validate accepts can be answered
        json.dumps(body)
        if endpoint in STREAMABLE:
            _stream(endpoint, request)


@given(st.sampled_from(ENDPOINTS), st.dictionaries(_keys | st.sampled_from(["model", "prompt", "input"]), json_values))
def test_arbitrary_bodies_raise_nothing_but_plaintext_errors(endpoint: Endpoint, request: dict[str, Any]) -> None:
    error = _refusal(endpoint, request)  # anything but PlaintextError propagates and fails
    if error is not None:
        assert SENTINEL not in str(error)
    else:
        _respond(endpoint, request)


def test_embeddings_refuse_an_answer_larger_than_the_cap() -> None:
    from mock_node.fake_model import MAX_EMBEDDING_VALUES

    request = {"model": "m", "input": [[0]] * 64, "dimensions": 4096}
    assert MAX_EMBEDDING_VALUES < 64 * 4096
    with pytest.raises(PlaintextError) as exc:
        respond("embeddings", request, request_id="x", created=0)
    assert exc.value.field == "input"
    respond("embeddings", {"model": "m", "input": [[0]] * 16, "dimensions": 4096}, request_id="x", created=0)

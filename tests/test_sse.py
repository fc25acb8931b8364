"""The incremental SSE parser: any split of the bytes gives the same events, framing is measured,
and a hostile stream cannot grow memory without bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import DONE, KEEPALIVE, SseError, SseEvent, SseEventTooLarge, SseParser, encode_event

STREAM = KEEPALIVE + encode_event(b'{"a":1}') + b": comment\n\n" + encode_event(b'{"b":2}') + DONE


def _parse_all(chunks: list[bytes], parser: SseParser | None = None) -> list[SseEvent]:
    parser = parser or SseParser()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def test_events_comments_and_done_are_seen() -> None:
    parser = SseParser()
    events = _parse_all([STREAM], parser)
    assert [e.data for e in events] == ['{"a":1}', '{"b":2}', "[DONE]"]
    assert parser.stats.comments == 2 and parser.stats.events == 3
    assert parser.stats.bytes == len(STREAM)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert [e.data for e in _parse_all(chunks)] == ['{"a":1}', '{"b":2}', "[DONE]"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_is_accepted(newline: bytes) -> None:
    stream = b"data: x" + newline + newline + b"data: y" + newline + newline
    parser = SseParser()
    assert [e.data for e in _parse_all([stream], parser)] == ["x", "y"]
    if newline == b"\r\n":
        assert parser.stats.crlf_lines == 4 and parser.stats.cr_lines == 0
    if newline == b"\r":
        assert parser.stats.cr_lines == 4


def test_crlf_split_between_reads_counts_as_one_line_end() -> None:
    parser = SseParser()
    assert _parse_all([b"data: x\r", b"\n\r", b"\n"], parser)[0].data == "x"
    assert parser.stats.crlf_lines == 2 and parser.stats.cr_lines == 0


def test_multi_line_data_event_and_id_fields() -> None:
    events = _parse_all([b"event: delta\nid: 7\ndata: a\ndata:b\nretry: 5\nunknown\n\n"])
    assert events == [SseEvent("a\nb", "delta", "7", events[0].raw_size)]
    assert events[0].raw_size > 0


def test_id_with_nul_is_ignored_and_blank_event_lines_do_not_dispatch() -> None:
    events = _parse_all([b"\n\nid: a\x00b\ndata: z\n\n"])
    assert events == [SseEvent("z", "message", None, events[0].raw_size)]


def test_a_utf8_bom_at_the_start_is_skipped() -> None:
    assert _parse_all([b"\xef\xbb", b"\xbfdata: x\n\n"])[0].data == "x"


def test_an_unterminated_final_event_is_discarded_and_measured() -> None:
    parser = SseParser()
    assert parser.feed(b"data: complete\n\ndata: cut-off") == [SseEvent("complete", raw_size=15)]
    assert parser.pending_bytes == len(b"data: cut-off")
    assert parser.close() == []
    assert parser.pending_bytes == 0


def test_invalid_utf8_in_a_line_is_a_named_error() -> None:
    with pytest.raises(SseError) as exc:
        SseParser().feed(b"data: \xff\n\n")
    assert exc.value.code == "SSE_INVALID" and exc.value.field == "stream"


def test_an_endless_line_is_refused_once_it_exceeds_the_bound() -> None:
    parser = SseParser(max_event_bytes=64)
    parser.feed(b"data: " + b"x" * 50)
    with pytest.raises(SseEventTooLarge) as exc:
        parser.feed(b"x" * 20)
    assert exc.value.code == "SSE_EVENT_TOO_LARGE"


def test_an_endless_event_of_short_lines_is_refused_too() -> None:
    parser = SseParser(max_event_bytes=64)
    for _ in range(4):  # 13 bytes a line: 52 bytes held, under the 64-byte bound
        parser.feed(b"data: xxxxxx\n")
    with pytest.raises(SseEventTooLarge):
        parser.feed(b"data: xxxxxx\n")


def test_encode_event_is_the_exact_node_framing() -> None:
    assert encode_event(b"{}") == b"data: {}\n\n"
    assert KEEPALIVE == b": keep-alive\n\n" and DONE == b"data: [DONE]\n\n"

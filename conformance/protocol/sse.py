"""Server-sent events, sans-I/O: an incremental parser and the exact event encoding.

Why our own parser: the suite must survive hostile servers (endless lines, floods of comments,
events split at any byte) and must be able to say *how* a stream was framed (comments seen, a
``[DONE]`` sentinel, CRLF line ends) as evidence. The parser follows the WHATWG event-stream grammar:
lines end in CRLF, LF or CR; lines starting with ``:`` are comments; ``data`` lines of one event are
joined with ``\\n``; an empty line dispatches the event. Memory is bounded by ``max_event_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ProtocolError


class SseError(ProtocolError):
    code = "SSE_INVALID"


class SseEventTooLarge(SseError):
    code = "SSE_EVENT_TOO_LARGE"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event. ``data`` is the joined data lines, decoded as UTF-8."""

    data: str
    event: str = "message"
    id: str | None = None
    raw_size: int = 0


@dataclass
class SseStats:
    """Framing facts a conformance check may need as evidence."""

    comments: int = 0
    events: int = 0
    crlf_lines: int = 0
    cr_lines: int = 0
    bytes: int = 0


@dataclass
class SseParser:
    """Feed bytes as they arrive; get complete events back."""

    max_event_bytes: int = 16 * 1024 * 1024
    stats: SseStats = field(default_factory=SseStats)
    _buffer: bytearray = field(default_factory=bytearray)
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None
    _event_size: int = 0
    _pending_cr: bool = False
    _bom_checked: bool = False
    _scanned: int = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume ``chunk``; return the events it completed (possibly none)."""
        self.stats.bytes += len(chunk)
        self._buffer += chunk
        if not self._bom_checked and len(self._buffer) >= 3:
            if self._buffer.startswith(b"\xef\xbb\xbf"):
                del self._buffer[:3]
            self._bom_checked = True
        events: list[SseEvent] = []
        while True:
            line = self._next_line()
            if line is None:
                break
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._event_size > self.max_event_bytes:
            raise SseEventTooLarge(f"an event exceeds {self.max_event_bytes} bytes without ending", field="stream")
        return events

    def close(self) -> list[SseEvent]:
        """End of body: per the grammar, an event without its terminating blank line is discarded."""
        self._buffer.clear()
        self._data.clear()
        self._event_size = 0
        return []

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete event held back (evidence of a truncated final event)."""
        return len(self._buffer) + self._event_size

    def _next_line(self) -> bytes | None:
        buf = self._buffer
        if self._pending_cr:
            if not buf:
                return None
            self._pending_cr = False
            if buf[0] == 0x0A:
                del buf[0]
                self.stats.crlf_lines += 1
                self.stats.cr_lines -= 1
        # Resume the search where the last one stopped: an endless line must cost linear time.
        start = self._scanned
        lf, cr = buf.find(b"\n", start), buf.find(b"\r", start)
        ends = [i for i in (lf, cr) if i != -1]
        if not ends:
            self._scanned = len(buf)
            return None
        i = min(ends)
        line = bytes(buf[:i])
        del buf[: i + 1]
        self._scanned = 0
        if i == cr:
            self._pending_cr = True
            self.stats.cr_lines += 1
        return line

    def _line(self, line: bytes) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event, self._event_size = "", 0
                return None
            event = SseEvent("\n".join(self._data), self._event or "message", self._id, self._event_size)
            self._data.clear()
            self._event, self._event_size = "", 0
            self.stats.events += 1
            return event
        self._event_size += len(line) + 1
        if line.startswith(b":"):
            self.stats.comments += 1
            return None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise SseError("an event line is not valid UTF-8", field="stream") from None
        name, _, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._id = value
        return None


def encode_event(data: bytes) -> bytes:
    """The exact bytes of one event as the node sends it: ``data: <json>\\n\\n``."""
    return b"data: " + data + b"\n\n"


KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"

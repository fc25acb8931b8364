"""Target-controlled text made safe for a terminal, a log or a text report.

A target chooses its header values, error codes and messages. Printed as they are, an escape sequence
can clear the screen, move the cursor and print a fake ``PASS`` over the real ``FAIL``; a megabyte of
text floods a CI log. So every such string passes through :func:`one_line` first: control characters
(C0, DEL, C1, and the Unicode line and paragraph separators and bidi overrides) are shown escaped,
and the length is capped with the full length stated.
"""

from __future__ import annotations

import unicodedata

_SHOWN = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(ch: str) -> str:
    if ch in _SHOWN:
        return _SHOWN[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    # Cc: C0, DEL and C1 controls; Cf: format characters (bidi overrides, zero-width joiners);
    # Zl/Zp: line and paragraph separators; Cs: lone surrogates.
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters of it shown."""
    raw = text if isinstance(text, str) else str(text)
    head = raw[:limit]
    shown = "".join(_escape(ch) if _unsafe(ch) else ch for ch in head)
    if len(raw) > limit:
        shown += f"… ({len(raw)} characters)"
    return shown


def escaped(text: str) -> str:
    """``text`` whole, its control characters escaped (for stored text, which has its own length cap)."""
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)

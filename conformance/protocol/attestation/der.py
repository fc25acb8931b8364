"""Just enough DER to read what cryptography does not expose: a certificate's outer frame and the
firmware ID inside NVIDIA's TCG DICE extension.

Single-byte tags and definite lengths of at most four bytes, which is all DER certificates use;
anything else is refused with ``ValueError``, and every read is bounded by the slice it is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
CONSTRUCTED = 0x20


@dataclass(frozen=True, slots=True)
class Item:
    """One DER item: its tag, its content, and its whole encoding (tag, length and content)."""

    tag: int
    content: bytes
    encoding: bytes


def items(data: bytes) -> Iterator[Item]:
    """The DER items of ``data``, back to back; raises ``ValueError`` on a malformed header or length."""
    i = 0
    while i < len(data):
        start = i
        if i + 2 > len(data):
            raise ValueError("truncated header")
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 4 or i + count > len(data):
                raise ValueError("bad length")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > len(data):
            raise ValueError("truncated content")
        yield Item(tag, data[i : i + length], data[start : i + length])
        i += length


def children(item: Item) -> list[Item]:
    return list(items(item.content))

"""The nonce that binds a node's X25519 key to its GPU attestation reports.

Upstream (atoma-node ``atoma-confidential/src/service.rs``, ``submit_nvidia_cc_attestation``) asks
every GPU, and the NVSwitches when PPCIe is on, for a report over one and the same 32-byte nonce::

    report_nonce = BLAKE3( u64_le(contract_nonce) ‖ node_x25519_pk[32] ‖ u16_le(300) )

``contract_nonce`` is the nonce of the on-chain key rotation, and 300 is ``NVIDIA_CC_GPU_DEVICE_SLOT``,
the ``device_type`` of the commitment. A report whose SPDM request carries this nonce was produced
after that rotation and for that key; that is the whole binding, so this function is what every
key check starts from.

Why our own BLAKE3: the input is always 42 bytes, one chunk of at most 1024 bytes, where BLAKE3 is
one compression per 64-byte block and nothing else (no tree, no parent nodes). Sixty lines of Python,
checked in the tests against the ``blake3`` package and BLAKE3's published vectors, keep a native
extension out of the suite's runtime dependencies.
"""

from __future__ import annotations

import struct

from ..errors import LengthError, OutOfRange

NVIDIA_CC_GPU_DEVICE_SLOT = 300
REPORT_NONCE_LEN = 32
NODE_PUBLIC_KEY_LEN = 32
_U64_MAX = 2**64 - 1

# BLAKE3 (the specification, section 2): SHA-256's IV, the message word permutation, and the flags.
_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _ROOT = 1, 2, 8
_BLOCK_LEN = 64
CHUNK_LEN = 1024
_MASK = 0xFFFFFFFF

# The quarter-round G is applied to these (a, b, c, d) state positions: four columns, then four diagonals.
_G_POSITIONS = (
    (0, 4, 8, 12),
    (1, 5, 9, 13),
    (2, 6, 10, 14),
    (3, 7, 11, 15),
    (0, 5, 10, 15),
    (1, 6, 11, 12),
    (2, 7, 8, 13),
    (3, 4, 9, 14),
)


def _compress(cv: tuple[int, ...], words: list[int], counter: int, block_len: int, flags: int) -> list[int]:
    """BLAKE3's compression function; returns the 16-word output (the first 8 are the next CV)."""
    v = [*cv, *_IV[:4], counter & _MASK, counter >> 32, block_len, flags]
    m = list(words)
    for round_index in range(7):
        for g, (a, b, c, d) in enumerate(_G_POSITIONS):
            x, y = m[2 * g], m[2 * g + 1]
            v[a] = (v[a] + v[b] + x) & _MASK
            t = v[d] ^ v[a]
            v[d] = ((t >> 16) | (t << 16)) & _MASK
            v[c] = (v[c] + v[d]) & _MASK
            t = v[b] ^ v[c]
            v[b] = ((t >> 12) | (t << 20)) & _MASK
            v[a] = (v[a] + v[b] + y) & _MASK
            t = v[d] ^ v[a]
            v[d] = ((t >> 8) | (t << 24)) & _MASK
            v[c] = (v[c] + v[d]) & _MASK
            t = v[b] ^ v[c]
            v[b] = ((t >> 7) | (t << 25)) & _MASK
        if round_index < 6:
            m = [m[i] for i in _PERMUTATION]
    return [v[i] ^ v[i + 8] for i in range(8)] + [v[i + 8] ^ cv[i] for i in range(8)]


def blake3_single_chunk(data: bytes) -> bytes:
    """BLAKE3-256 of ``data``, for inputs of one chunk (at most 1024 bytes) only.

    The chunk's blocks are compressed in turn (the first flagged CHUNK_START, the last CHUNK_END and,
    since a lone chunk is the root of the tree, ROOT); the root output's first 32 bytes are the hash.
    """
    if len(data) > CHUNK_LEN:
        raise ValueError(f"blake3_single_chunk hashes at most {CHUNK_LEN} bytes, got {len(data)}")
    blocks = [data[i : i + _BLOCK_LEN] for i in range(0, len(data), _BLOCK_LEN)] or [b""]
    cv: tuple[int, ...] = _IV
    for i, block in enumerate(blocks):
        flags = _CHUNK_START if i == 0 else 0
        if i == len(blocks) - 1:
            flags |= _CHUNK_END | _ROOT
        words = list(struct.unpack("<16I", block.ljust(_BLOCK_LEN, b"\0")))
        cv = tuple(_compress(cv, words, 0, len(block), flags)[:8])
    return struct.pack("<8I", *cv)


def report_nonce_preimage(contract_nonce: int, node_public_key: bytes) -> bytes:
    """The 42 bytes upstream hashes: ``u64_le(contract_nonce) ‖ node_public_key ‖ u16_le(300)``."""
    if type(contract_nonce) is not int or not 0 <= contract_nonce <= _U64_MAX:
        raise OutOfRange(f"must be an integer in [0, {_U64_MAX}]", field="contract_nonce")
    if len(node_public_key) != NODE_PUBLIC_KEY_LEN:
        raise LengthError(
            f"is {len(node_public_key)} bytes, an X25519 public key is {NODE_PUBLIC_KEY_LEN}", field="node_public_key"
        )
    return struct.pack("<Q", contract_nonce) + bytes(node_public_key) + struct.pack("<H", NVIDIA_CC_GPU_DEVICE_SLOT)


def report_nonce(contract_nonce: int, node_public_key: bytes) -> bytes:
    """The 32-byte nonce every report of a key commitment must carry (see the module docstring)."""
    return blake3_single_chunk(report_nonce_preimage(contract_nonce, node_public_key))

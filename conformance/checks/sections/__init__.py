"""The check catalogue, one module per docs/spec.md section (as h2spec keeps one file per RFC section).

A check lives in the module of the section its first requirement belongs to, whatever its id's
category: ERR-012 (a request without a lock) is a §2 lock rule, AEAD-004 (the chat plaintext's
shape) a §8 response rule. Importing this package registers every check.
"""

from __future__ import annotations

from . import (
    aead,
    endpoints,
    errors,
    hashes,
    key_encodings,
    keys,
    lock,
    node_face,
    nonces,
    plaintext,
    replay,
    requests,
    responses,
    signatures,
    streaming,
    usage,
)

MODULES = (
    endpoints,
    lock,
    requests,
    plaintext,
    aead,
    key_encodings,
    hashes,
    signatures,
    responses,
    streaming,
    errors,
    usage,
    nonces,
    replay,
    node_face,
    keys,
)
__all__ = ["GROUPS", "MODULES"]
GROUPS = tuple(module.GROUP for module in MODULES)

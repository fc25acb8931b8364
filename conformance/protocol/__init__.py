"""The reference implementation of Atoma's confidential compute protocol, sans-I/O.

Bytes and values go in, values come out: no sockets, no clocks, and randomness is injected. The
client, the mock node, the vector generator and the benchmarks all call these functions, so there is
exactly one place where a key is derived or a field is base64-encoded.
"""

from .b64 import b64decode, b64decode_fixed, b64encode
from .envelope import (
    Exchange,
    OpenedMessage,
    OpenedRequest,
    SealedRequest,
    key_id,
    open_chunk,
    open_request,
    open_response,
    seal_chunk,
    seal_request,
    seal_response,
)
from .errors import ProtocolError
from .models import (
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    DecodedRequest,
    ErrorBody,
    LockRequest,
    LockResponse,
    StreamChunk,
    Usage,
)
from .primitives import (
    AeadKey,
    aead_open,
    aead_seal,
    blake2b_256,
    derive_key,
    hkdf_sha256,
    is_low_order,
    low_order_encodings,
    x25519_public_key,
    x25519_shared_secret,
)
from .randomness import SYSTEM_RANDOM, FixedBytes, RandomSource, SeededRandom
from .sui import Scheme, SuiSignature, SuiSigner, parse_signature, sui_address, verify, verify_b64

__all__ = [
    "SYSTEM_RANDOM",
    "AeadKey",
    "ConfidentialComputeRequest",
    "ConfidentialComputeResponse",
    "DecodedRequest",
    "ErrorBody",
    "Exchange",
    "FixedBytes",
    "LockRequest",
    "LockResponse",
    "OpenedMessage",
    "OpenedRequest",
    "ProtocolError",
    "RandomSource",
    "Scheme",
    "SealedRequest",
    "SeededRandom",
    "StreamChunk",
    "SuiSignature",
    "SuiSigner",
    "Usage",
    "aead_open",
    "aead_seal",
    "b64decode",
    "b64decode_fixed",
    "b64encode",
    "blake2b_256",
    "derive_key",
    "hkdf_sha256",
    "is_low_order",
    "key_id",
    "low_order_encodings",
    "open_chunk",
    "open_request",
    "open_response",
    "parse_signature",
    "seal_chunk",
    "seal_request",
    "seal_response",
    "sui_address",
    "verify",
    "verify_b64",
    "x25519_public_key",
    "x25519_shared_secret",
]

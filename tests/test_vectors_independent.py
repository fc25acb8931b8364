"""Every known-answer vector, confirmed by libraries that share no code with pyca/cryptography or OpenSSL.

The project rule is that a vector is reproducible by the generator *and* confirmed by an independent
implementation. The generator runs on :mod:`conformance.protocol` (pyca/cryptography, hashlib); this
module never calls that core for the thing it confirms. It uses:

- libsodium (PyNaCl): X25519, Ed25519, BLAKE2b;
- pycryptodome: HKDF-SHA256, AES-256-GCM, SHA-256, BLAKE2s, P-256 ECDSA (its own C and Python code);
- libsecp256k1 (coincurve): secp256k1 ECDSA, the library Sui itself uses;
- the standard library's ``base64`` and ``json`` for the strict base64 decoder and JSON parsing.

``conformance.vectors`` is used only to locate and load the files. Invalid vectors are not just
"refused": each confirmer shows the specific defect the vector claims (a one-bit tag flip, a hash of
other bytes, a low-order key libsodium refuses, a high-s twin, ...), keyed off its flags and error code.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import coincurve
import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.signing
import pytest
from Crypto.Cipher import AES
from Crypto.Hash import SHA256, BLAKE2s
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

from conformance.vectors import SCHEMA_FILE, Vector, default_dir, iter_vectors, load

Test = dict[str, Any]

# --- independent primitives ----------------------------------------------------------------------------

TAG_LEN = 16
ED25519, SECP256K1, SECP256R1 = 0, 1, 2
SCHEME_FLAG = {"ed25519": ED25519, "secp256k1": SECP256K1, "secp256r1": SECP256R1}
SERIALIZED_LEN = {ED25519: 1 + 64 + 32, SECP256K1: 1 + 64 + 33, SECP256R1: 1 + 64 + 33}
# Group orders from SEC 2 (secp256k1) and FIPS 186-4 D.1.2.3 (P-256), written out here, not imported.
ORDER = {
    SECP256K1: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    SECP256R1: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}
B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def blake2b_256(data: bytes) -> bytes:
    return nacl.hash.blake2b(data, digest_size=32, encoder=nacl.encoding.RawEncoder)


def sha256(data: bytes) -> bytes:
    return SHA256.new(data).digest()


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, size: int) -> bytes:
    out = HKDF(master=ikm, key_len=size, salt=salt, hashmod=SHA256, context=info)
    assert isinstance(out, bytes)
    return out


def gcm_seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    ct, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(plaintext)
    return ct + tag


def gcm_open(key: bytes, nonce: bytes, sealed: bytes) -> bytes:
    """Open ``ct || tag`` as the wire carries it: the last 16 bytes are the tag. Raises ValueError."""
    if len(sealed) < TAG_LEN:
        raise ValueError("shorter than the GCM tag")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    return cipher.decrypt_and_verify(sealed[:-TAG_LEN], sealed[-TAG_LEN:])


def gcm_refuses(key: bytes, nonce: bytes, sealed: bytes) -> bool:
    try:
        gcm_open(key, nonce, sealed)
    except ValueError:
        return True
    return False


def x25519(private: bytes, public: bytes) -> bytes:
    return nacl.bindings.crypto_scalarmult(private, public)


def x25519_base(private: bytes) -> bytes:
    return nacl.bindings.crypto_scalarmult_base(private)


def libsodium_refuses(private: bytes, public: bytes) -> bool:
    """libsodium's crypto_scalarmult fails (returns -1) exactly when the output is all zeros."""
    try:
        x25519(private, public)
    except nacl.exceptions.RuntimeError:
        return True
    return False


def strict_b64(text: str) -> bytes:
    """Canonical standard base64: alphabet and padding checked, then the re-encoding must be identical."""
    raw = base64.b64decode(text, validate=True)  # raises binascii.Error (a ValueError) or ValueError
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not the canonical encoding of its bytes")
    return raw


def strict_b64_or_none(text: str) -> bytes | None:
    try:
        return strict_b64(text)
    except (ValueError, binascii.Error):
        return None


def bit_distance(a: bytes, b: bytes) -> int:
    assert len(a) == len(b)
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def first_difference(a: bytes, b: bytes) -> int:
    return next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)


# --- ECDSA and Sui signatures ------------------------------------------------------------------------


def der_signature(r: int, s: int) -> bytes:
    def integer(x: int) -> bytes:
        body = x.to_bytes(x.bit_length() // 8 + 1, "big")
        return b"\x02" + bytes([len(body)]) + body

    seq = integer(r) + integer(s)
    return b"\x30" + bytes([len(seq)]) + seq


def parse_der_signature(der: bytes) -> tuple[int, int]:
    assert der[0] == 0x30 and der[1] == len(der) - 2
    values: list[int] = []
    i = 2
    while i < len(der):
        assert der[i] == 0x02
        n = der[i + 1]
        values.append(int.from_bytes(der[i + 2 : i + 2 + n], "big"))
        i += 2 + n
    assert len(values) == 2
    return values[0], values[1]


def split_rs(sig: bytes) -> tuple[int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")


def join_rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def low_s(flag: int, sig: bytes) -> bytes:
    r, s = split_rs(sig)
    n = ORDER[flag]
    return join_rs(r, min(s, n - s))


def point_is_valid(flag: int, public_key: bytes) -> bool:
    try:
        if flag == SECP256K1:
            coincurve.PublicKey(public_key)
        else:
            ECC.import_key(public_key, curve_name="P-256")
    except ValueError:
        return False
    return True


def ed25519_verifies(public_key: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(msg, sig)
    except (nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def secp256k1_verifies(public_key: bytes, sig: bytes, msg: bytes) -> bool:
    """libsecp256k1's verdict over SHA-256(msg); it refuses high-s signatures itself."""
    r, s = split_rs(sig)
    try:
        return coincurve.PublicKey(public_key).verify(der_signature(r, s), msg, hasher=sha256)
    except ValueError:
        return False


def p256_verifies(public_key: bytes, sig: bytes, msg: bytes) -> bool:
    """pycryptodome's verdict over SHA-256(msg). It checks the ECDSA equation only: high-s passes."""
    try:
        key = ECC.import_key(public_key, curve_name="P-256")
        DSS.new(key, "fips-186-3").verify(SHA256.new(msg), sig)
    except ValueError:
        return False
    return True


def signature_verifies(flag: int, public_key: bytes, sig: bytes, msg: bytes) -> bool:
    if flag == ED25519:
        return ed25519_verifies(public_key, sig, msg)
    if flag == SECP256K1:
        return secp256k1_verifies(public_key, sig, msg)
    return p256_verifies(public_key, sig, msg)


def sui_address(flag: int, public_key: bytes) -> str:
    return "0x" + blake2b_256(bytes([flag]) + public_key).hex()


def sui_verdict(blob: bytes, msg: bytes, address: str | None) -> str | None:
    """Why a Sui serialized signature is refused (a stable code), or None when every check passes.

    The checks run in the order the spec lists them: flag, exact length, ECDSA scalar range, low-s,
    public key decoding, the signature equation, then the signer's address.
    """
    assert len(msg) == 32
    if not blob:
        return "SIGNATURE_WRONG_LENGTH"
    flag = blob[0]
    if flag not in SERIALIZED_LEN:
        return "SIGNATURE_UNKNOWN_SCHEME"
    if len(blob) != SERIALIZED_LEN[flag]:
        return "SIGNATURE_WRONG_LENGTH"
    sig, public_key = blob[1:65], blob[65:]
    if flag != ED25519:
        r, s = split_rs(sig)
        n = ORDER[flag]
        if not (0 < r < n and 0 < s < n):
            return "SIGNATURE_VERIFICATION_FAILED"
        if s > n // 2:
            return "SIGNATURE_HIGH_S"
        if not point_is_valid(flag, public_key):
            return "SIGNATURE_INVALID_PUBLIC_KEY"
    if not signature_verifies(flag, public_key, sig, msg):
        return "SIGNATURE_VERIFICATION_FAILED"
    if address is not None and sui_address(flag, public_key) != address:
        return "SIGNATURE_WRONG_SIGNER"
    return None


# --- the test keys, rebuilt from their published derivation --------------------------------------------


@dataclass(frozen=True)
class Key:
    flag: int
    secret: bytes
    public_key: bytes

    @property
    def address(self) -> str:
        return sui_address(self.flag, self.public_key)

    def sign(self, msg: bytes) -> bytes:
        """The 64-byte signature Sui's sign_hashed produces: Ed25519, or RFC 6979 ECDSA normalised to low-s."""
        if self.flag == ED25519:
            return nacl.signing.SigningKey(self.secret).sign(msg).signature
        if self.flag == SECP256K1:
            der = coincurve.PrivateKey(self.secret).sign(msg, hasher=sha256)
            return low_s(self.flag, join_rs(*parse_der_signature(der)))
        key = ECC.construct(curve="P-256", d=int.from_bytes(self.secret, "big"))
        return low_s(self.flag, DSS.new(key, "deterministic-rfc6979").sign(SHA256.new(msg)))


def make_key(flag: int, secret: bytes) -> Key:
    if flag == ED25519:
        public_key = nacl.signing.SigningKey(secret).verify_key.encode()
    elif flag == SECP256K1:
        public_key = coincurve.PrivateKey(secret).public_key.format(compressed=True)
    else:
        key = ECC.construct(curve="P-256", d=int.from_bytes(secret, "big"))
        public_key = key.public_key().export_key(format="SEC1", compress=True)
    return Key(flag, secret, public_key)


def label_secret(scheme: str, label: str) -> bytes:
    """generate.py's deterministic test secrets: SHA-256('atoma-conformance test key <scheme>/<label>')."""
    return sha256(b"atoma-conformance test key " + f"{scheme}/{label}".encode())


# --- loading -------------------------------------------------------------------------------------------


def load_vectors() -> list[Vector]:
    """Every test of every vector file in vectors/, whether or not the generator registry lists it."""
    out: list[Vector] = []
    for path in sorted(default_dir().glob("*.json")):
        if path.name == SCHEMA_FILE:
            continue
        for group in load(path)["testGroups"]:
            out.extend(Vector(path.name, group, test) for test in group["tests"])
    return out


VECTORS = load_vectors()


@cache
def known_keys() -> dict[str, Key]:
    """Address -> key for every signer the vectors use: the labelled test keys and the keystore entries."""
    keys = [make_key(SCHEME_FLAG[s], label_secret(s, label)) for s in SCHEME_FLAG for label in ("node", "other")]
    for v in VECTORS:
        if v.group["type"] == "KeystoreTest":
            raw = strict_b64(v.test["keystore"])
            keys.append(make_key(raw[0], raw[1:]))
    return {k.address: k for k in keys}


def key_for(address: str) -> Key:
    keys = known_keys()
    assert address in keys, f"no independently rebuilt key has address {address}"
    return keys[address]


def other_key(flag: int) -> Key:
    scheme = next(s for s, f in SCHEME_FLAG.items() if f == flag)
    return key_for(make_key(flag, label_secret(scheme, "other")).address)


def _result(t: Test) -> bool:
    """True for 'valid', False for 'invalid'. An 'acceptable' vector needs a confirmer that says what it allows."""
    assert t["result"] in ("valid", "invalid"), f"no independent semantics for result {t['result']!r}"
    return bool(t["result"] == "valid")


def valid_flags(t: Test, evidence: dict[str, bool] | None = None) -> None:
    """A valid vector carries only descriptive flags, each exactly when its evidence holds."""
    evidence = evidence or {}
    assert set(t["flags"]) <= set(evidence), f"unexpected flags on a valid vector: {t['flags']}"
    for flag, present in evidence.items():
        assert (flag in t["flags"]) == present, f"flag {flag} does not match the data"
    assert t.get("error") is None


# --- X25519 --------------------------------------------------------------------------------------------


def confirm_x25519(v: Vector) -> None:
    t = v.test
    private, public, shared = _h(t["private"]), _h(t["public"]), _h(t["shared"])
    if _result(t):
        assert x25519(private, public) == shared
        valid_flags(t, {"HighBitSet": bool(public[31] & 0x80)})
        if public[31] & 0x80:
            masked = public[:31] + bytes([public[31] & 0x7F])
            assert x25519(private, masked) == shared, "libsodium does not mask bit 255 like RFC 7748"
        return
    assert set(t["flags"]) == {"LowOrderPublic", "ZeroSharedSecret"}
    assert shared == bytes(32), "a non-checking party computes 32 zero bytes"
    # libsodium refuses because the output is all zeros; whatever the private key, since the point has low order.
    assert libsodium_refuses(private, public)
    assert libsodium_refuses(blake2b_256(private), public)
    assert libsodium_refuses(bytes([0xFF]) * 32, public)


def confirm_x25519_iteration(v: Vector) -> None:
    t = v.test
    assert _result(t)
    valid_flags(t)
    k = u = (9).to_bytes(32, "little")
    for _ in range(t["iterations"]):
        k, u = x25519(k, u), k
    assert k.hex() == t["result_k"]


# --- HKDF ----------------------------------------------------------------------------------------------


def confirm_hkdf(v: Vector) -> None:
    t = v.test
    ikm, salt, info, size, okm = _h(t["ikm"]), _h(t["salt"]), _h(t["info"]), t["size"], _h(t["okm"])
    assert len(okm) == size
    if _result(t):
        assert hkdf_sha256(ikm, salt, info, size) == okm
        valid_flags(t, {"EmptySalt": not salt})
        if not salt:
            # RFC 5869: an absent salt is HashLen zero bytes. pycryptodome maps b"" to that too; check
            # both spellings so the vector does not depend on that library's convention.
            assert hkdf_sha256(ikm, bytes(32), info, size) == okm
        return
    # A mis-parameterised key. The inputs are those of a valid protocol KDF vector, the protocol KDF
    # (salt = request salt, info = "", L = 32) on them gives that vector's key and never this one...
    assert size == 32 and len(salt) == 16 and len(ikm) == 32 and not info
    correct = hkdf_sha256(ikm, salt, b"", 32)
    assert correct != okm
    assert any(
        w.group["type"] == "HkdfTest" and w.test["result"] == "valid" and _h(w.test["okm"]) == correct for w in VECTORS
    )
    # ...and the named mistake gives exactly this one.
    flags = set(t["flags"])
    if flags == {"NonEmptyInfo"}:
        assert hkdf_sha256(ikm, salt, b"atoma", 32) == okm
    elif flags == {"SaltOmitted"}:
        assert hkdf_sha256(ikm, bytes(32), b"", 32) == okm
    elif flags == {"SwappedInputs"}:
        assert hkdf_sha256(salt, ikm, b"", 32) == okm
    elif flags == {"NoKdf"}:
        assert okm == ikm
    else:
        raise AssertionError(f"no independent evidence for HKDF flags {sorted(flags)}")


# --- AES-256-GCM ---------------------------------------------------------------------------------------


def confirm_aead(v: Vector) -> None:
    t = v.test
    key, iv, msg, ct, tag = _h(t["key"]), _h(t["iv"]), _h(t["msg"]), _h(t["ct"]), _h(t["tag"])
    wire = ct + tag
    if _result(t):
        assert gcm_seal(key, iv, msg) == wire
        assert len(tag) == TAG_LEN
        assert gcm_open(key, iv, wire) == msg
        valid_flags(t)
        return
    assert gcm_refuses(key, iv, wire)
    honest = gcm_seal(key, iv, msg)
    honest_ct, honest_tag = honest[:-TAG_LEN], honest[-TAG_LEN:]
    flags = set(t["flags"])
    if flags == {"ModifiedTag"}:
        assert ct == honest_ct and len(tag) == TAG_LEN and tag != honest_tag
        assert bit_distance(tag, honest_tag) == 1 or tag == bytes(TAG_LEN)
    elif flags == {"ModifiedCiphertext"}:
        assert tag == honest_tag and ct != honest_ct
        if len(ct) == len(honest_ct):
            assert bit_distance(ct, honest_ct) == 1
        else:
            assert honest_ct.startswith(ct), "only truncation of the ciphertext"
    elif flags == {"ModifiedNonce"}:
        # The sealed bytes are authentic under a nonce one bit away from the one given.
        twins = [
            bytes(b ^ (1 << bit) if i == byte else b for i, b in enumerate(iv))
            for byte in range(12)
            for bit in range(8)
        ]
        opened = [gcm_open(key, n, wire) for n in twins if not gcm_refuses(key, n, wire)]
        assert opened == [msg]
    elif flags == {"TruncatedTag"}:
        assert ct == honest_ct and len(tag) < TAG_LEN and honest_tag.startswith(tag)
    elif flags == {"WrongKey"}:
        assert wire != honest and len(wire) == len(honest)
        assert gcm_open(hkdf_sha256_from_aead_wrong_key(t), iv, wire) == msg
    else:
        raise AssertionError(f"no independent evidence for AEAD flags {sorted(flags)}")


def hkdf_sha256_from_aead_wrong_key(t: Test) -> bytes:
    """The WrongKey vector is sealed under HKDF-SHA256(shared, salt, info='response'); find its inputs.

    The vector's key is the protocol key HKDF(shared, salt, '') of the end-to-end exchange; the HKDF
    vectors publish that exchange's shared secret and salt, so the wrong key can be rebuilt here.
    """
    for v in VECTORS:
        if v.group["type"] == "HkdfTest" and v.test["result"] == "valid" and v.test["okm"] == t["key"]:
            return hkdf_sha256(_h(v.test["ikm"]), _h(v.test["salt"]), b"response", 32)
    raise AssertionError("the AEAD key is not the output of any HKDF vector")


# --- BLAKE2b-256 ---------------------------------------------------------------------------------------


def confirm_hash(v: Vector) -> None:
    t = v.test
    msg, digest = _h(t["msg"]), _h(t["digest"])
    if _result(t):
        assert blake2b_256(msg) == digest
        valid_flags(t)
        return
    assert blake2b_256(msg) != digest
    flags = set(t["flags"])
    if flags == {"TruncatedBlake2b512"}:
        expected = nacl.hash.blake2b(msg, digest_size=64, encoder=nacl.encoding.RawEncoder)[:32]
    elif flags == {"Sha256Instead"}:
        expected = sha256(msg)
    elif flags == {"Blake2sInstead"}:
        expected = BLAKE2s.new(data=msg, digest_bits=256).digest()
    elif flags == {"KeyedBlake2b"}:
        expected = nacl.hash.blake2b(msg, digest_size=32, key=b"atoma", encoder=nacl.encoding.RawEncoder)
    else:
        raise AssertionError(f"no independent evidence for hash flags {sorted(flags)}")
    assert digest == expected


# --- base64 --------------------------------------------------------------------------------------------


BASE64_FLAGS = {
    "BASE64_URLSAFE_ALPHABET": "UrlSafeAlphabet",
    "BASE64_WHITESPACE": "Whitespace",
    "BASE64_INVALID_CHARACTER": "InvalidCharacter",
    "BASE64_MISSING_PADDING": "MissingPadding",
    "BASE64_BAD_PADDING": "BadPadding",
    "BASE64_INVALID_LENGTH": "InvalidLength",
    "BASE64_NONCANONICAL_TRAILING_BITS": "NonCanonicalTrailingBits",
}


def base64_defect_present(code: str, text: str) -> bool:
    """Independent evidence that ``text`` has the defect the error code names."""
    body = text.rstrip("=")
    pad = len(text) - len(body)
    if code == "BASE64_URLSAFE_ALPHABET":
        return bool(set(text) & {"-", "_"})
    if code == "BASE64_WHITESPACE":
        return any(c.isspace() for c in text)
    if code == "BASE64_INVALID_CHARACTER":
        return any(c not in B64_ALPHABET and c != "=" and not c.isspace() and c not in "-_" for c in text)
    if code == "BASE64_MISSING_PADDING":
        return pad == 0 and len(text) % 4 in (2, 3) and strict_b64_or_none(text + "=" * (-len(text) % 4)) is not None
    if code == "BASE64_BAD_PADDING":
        return "=" in body or pad != (-len(body) % 4)
    if code == "BASE64_INVALID_LENGTH":
        return len(body) % 4 == 1
    if code == "BASE64_NONCANONICAL_TRAILING_BITS":
        # The alphabet and padding are right (the stdlib's validating decoder accepts it), only the
        # re-encoding differs: the unused low bits of the last character are not zero.
        return base64.b64encode(base64.b64decode(text, validate=True)).decode() != text
    raise AssertionError(f"no independent evidence for base64 error {code}")


def confirm_base64(v: Vector) -> None:
    t = v.test
    decoded = strict_b64_or_none(t["encoded"])
    if _result(t):
        assert decoded is not None and decoded.hex() == t["decoded"]
        valid_flags(t)
        return
    assert decoded is None, "the strict decoder accepted an invalid encoding"
    assert t["decoded"] is None
    assert set(t["flags"]) == {BASE64_FLAGS[t["error"]]}
    assert base64_defect_present(t["error"], t["encoded"])


# The exact decoded lengths the protocol fixes for these fields (X25519 keys, GCM nonce, salt, BLAKE2b-256).
FIELD_LENGTHS = {
    "nonce": 12,
    "salt": 16,
    "client_dh_public_key": 32,
    "node_dh_public_key": 32,
    "plaintext_body_hash": 32,
    "public_key": 32,
}


def confirm_field_length(v: Vector) -> None:
    t = v.test
    decoded = strict_b64(t["encoded"])  # the encoding itself is always canonical here; only the length varies
    assert FIELD_LENGTHS[t["field"]] == t["length"], "the protocol fixes another length for this field"
    if _result(t):
        assert len(decoded) == t["length"] and decoded.hex() == t["decoded"]
        valid_flags(t)
        return
    assert t["decoded"] is None
    assert t["error"] == "WRONG_LENGTH"
    assert len(decoded) != t["length"]
    oracle = t["field"] == "plaintext_body_hash" and len(decoded) > 32
    assert set(t["flags"]) == ({"PlaintextHashNot32Bytes"} if oracle else {"WrongLength"})


# --- Sui signatures ------------------------------------------------------------------------------------


def confirm_sui_signature(v: Vector) -> None:
    t = v.test
    flag = SCHEME_FLAG[t["scheme"]]
    msg, address = _h(t["msg"]), t["address"]
    blob = strict_b64(t["signature"])
    key = key_for(address)
    assert key.flag == flag
    verdict = sui_verdict(blob, msg, address)
    if _result(t):
        assert verdict is None
        valid_flags(t)
        assert blob == bytes([flag]) + key.sign(msg) + key.public_key, "signature not reproduced byte for byte"
        return
    assert verdict == t["error"], f"independent verdict {verdict}, vector says {t['error']}"
    honest_sig = key.sign(msg)
    honest = bytes([flag]) + honest_sig + key.public_key
    flags = set(t["flags"])

    def accepted(candidate: bytes, message: bytes = msg) -> bool:
        return sui_verdict(candidate, message, address) is None

    if flags == {"WrongFlag"}:
        assert blob[0] in SERIALIZED_LEN and blob[0] != flag and blob[1:] == honest[1:]
        assert accepted(bytes([flag]) + blob[1:])
    elif flags == {"UnknownFlag"}:
        assert blob[0] not in SERIALIZED_LEN and blob[1:] == honest[1:]
    elif flags == {"Truncated"}:
        assert blob == honest[:-1]
    elif flags == {"Extended"}:
        assert len(blob) == len(honest) + 1 and blob[:-1] == honest and accepted(blob[:-1])
    elif flags == {"WrongKey"}:
        assert blob[1:65] == honest_sig and blob[65:] == other_key(flag).public_key != key.public_key
        assert sui_address(flag, blob[65:]) != address
    elif flags == {"ModifiedMessage"}:
        # Signed over the original hash; the vector presents it with bit 0 of byte 0 flipped.
        original = bytes([msg[0] ^ 1]) + msg[1:]
        assert blob == bytes([flag]) + key.sign(original) + key.public_key
        assert accepted(blob, original)
    elif flags == {"ModifiedSignature"}:
        assert blob[65:] == key.public_key and bit_distance(blob[1:65], honest_sig) == 1
    elif flags == {"HighS"}:
        confirm_high_s(flag, key, blob, msg, honest_sig)
    else:
        raise AssertionError(f"no independent evidence for signature flags {sorted(flags)}")


def confirm_high_s(flag: int, key: Key, blob: bytes, msg: bytes, honest_sig: bytes) -> None:
    """The vector is exactly the malleated twin (r, n - s) of the honest low-s signature."""
    assert flag in ORDER
    sig = blob[1:65]
    r, s = split_rs(sig)
    n = ORDER[flag]
    assert s > n // 2
    assert join_rs(r, n - s) == honest_sig
    assert blob[65:] == key.public_key
    if flag == SECP256K1:
        # libsecp256k1 refuses high-s by itself; its low-s twin verifies.
        assert not secp256k1_verifies(key.public_key, sig, msg)
        assert secp256k1_verifies(key.public_key, honest_sig, msg)
    else:
        # pycryptodome checks only the ECDSA equation: the high-s signature is mathematically valid.
        assert p256_verifies(key.public_key, sig, msg)


def confirm_sui_address(v: Vector) -> None:
    t = v.test
    assert _result(t)
    valid_flags(t)
    flag, public_key = SCHEME_FLAG[t["scheme"]], _h(t["public_key"])
    assert len(public_key) == SERIALIZED_LEN[flag] - 65
    if flag != ED25519:
        assert point_is_valid(flag, public_key)
    assert sui_address(flag, public_key) == t["address"]
    assert key_for(t["address"]).public_key == public_key


def confirm_keystore(v: Vector) -> None:
    t = v.test
    assert _result(t)
    valid_flags(t)
    raw = strict_b64(t["keystore"])
    assert len(raw) == 33 and raw[0] == ED25519
    signing = nacl.signing.SigningKey(raw[1:])
    public_key = signing.verify_key.encode()
    assert public_key.hex() == t["public_key"]
    assert sui_address(ED25519, public_key) == t["address"]
    digest = blake2b_256(_h(t["msg"]))
    assert base64.b64encode(digest).decode() == t["msg_hash"]
    expected = bytes([ED25519]) + signing.sign(digest).signature + public_key
    assert strict_b64(t["signature"]) == expected
    assert sui_verdict(expected, digest, t["address"]) is None


# --- envelopes -----------------------------------------------------------------------------------------


class Refused(Exception):
    """An independent party refused a message; ``code`` is the stable reason."""

    def __init__(self, code: str, field: str) -> None:
        super().__init__(f"{field}: {code}")
        self.code = code
        self.field = field


def field_bytes(body: dict[str, Any], name: str, length: int | None = None, *, minimum: int = 0) -> bytes:
    """A base64 field, strictly decoded, of exactly ``length`` (or at least ``minimum``) bytes, else Refused."""
    value = body.get(name)
    if value is None:
        raise Refused("MISSING_FIELD", name)
    assert isinstance(value, str)
    raw = strict_b64_or_none(value)
    if raw is None:
        raise Refused("BASE64", name)
    if (length is not None and len(raw) != length) or len(raw) < minimum:
        raise Refused("WRONG_LENGTH", name)
    return raw


@dataclass(frozen=True)
class ClientSide:
    """What the client of an envelope vector holds, rebuilt with libsodium and pycryptodome only."""

    client_public: bytes
    node_public: bytes
    shared: bytes
    salt: bytes
    request_nonce: bytes
    key: bytes


def client_side(t: Test) -> ClientSide:
    client_private, node_private = _h(t["client_private"]), _h(t["node_private"])
    node_public = x25519_base(node_private)
    client_public = x25519_base(client_private)
    shared = x25519(client_private, node_public)
    assert x25519(node_private, client_public) == shared, "the two sides of X25519 disagree"
    salt = _h(t["salt"])
    return ClientSide(
        client_public, node_public, shared, salt, _h(t["request_nonce"]), hkdf_sha256(shared, salt, b"", 32)
    )


def node_open_request(body: dict[str, Any], node_private: bytes) -> bytes:
    """A node built on libsodium and pycryptodome: decode, agree, derive, decrypt, check the hash."""
    digest = field_bytes(body, "plaintext_body_hash", 32)
    salt = field_bytes(body, "salt", 16)
    nonce = field_bytes(body, "nonce", 12)
    client_public = field_bytes(body, "client_dh_public_key", 32)
    node_public = field_bytes(body, "node_dh_public_key", 32)
    sealed = field_bytes(body, "ciphertext", minimum=TAG_LEN)
    if node_public != x25519_base(node_private):
        raise Refused("NODE_KEY_MISMATCH", "node_dh_public_key")
    try:
        shared = x25519(node_private, client_public)
    except nacl.exceptions.RuntimeError:
        raise Refused("LOW_ORDER_POINT", "client_dh_public_key") from None
    try:
        plaintext = gcm_open(hkdf_sha256(shared, salt, b"", 32), nonce, sealed)
    except ValueError:
        raise Refused("AEAD_AUTHENTICATION_FAILED", "ciphertext") from None
    if blake2b_256(plaintext) != digest:
        raise Refused("HASH_MISMATCH", "plaintext_body_hash")
    return plaintext


def refusal(action: Callable[[], object]) -> Refused:
    try:
        action()
    except Refused as exc:
        return exc
    raise AssertionError("the independent implementation accepted an invalid vector")


def code_matches(independent: str, vector: str) -> bool:
    return independent == vector or (independent == "BASE64" and vector.startswith("BASE64_"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def changed_fields(body: dict[str, Any], honest: dict[str, Any]) -> set[str]:
    return {name for name, value in honest.items() if body.get(name) != value}


def defect_fields(flags: list[str], table: dict[str, set[str]]) -> set[str]:
    out: set[str] = set()
    for flag in flags:
        assert flag in table, f"no independent evidence for flag {flag}"
        out |= table[flag]
    return out


def honest_request(c: ClientSide, plaintext: bytes) -> dict[str, str]:
    """The binary fields of the request an honest client sends for these inputs, built from scratch."""
    return {
        "ciphertext": b64(gcm_seal(c.key, c.request_nonce, plaintext)),
        "client_dh_public_key": b64(c.client_public),
        "node_dh_public_key": b64(c.node_public),
        "nonce": b64(c.request_nonce),
        "plaintext_body_hash": b64(blake2b_256(plaintext)),
        "salt": b64(c.salt),
    }


# Which request fields each defect changes; every other binary field must be the honest one.
REQUEST_DEFECTS: dict[str, set[str]] = {
    "WrongPlaintextHash": {"plaintext_body_hash"},
    "HashOverReserializedJson": {"plaintext_body_hash"},
    "PlaintextHashNot32Bytes": {"plaintext_body_hash"},
    "ModifiedCiphertext": {"ciphertext"},
    "ModifiedTag": {"ciphertext"},
    "UrlSafeAlphabet": {"ciphertext"},
    "ModifiedNonce": {"nonce"},
    "ModifiedSalt": {"salt"},
    "MissingPadding": {"salt"},
    "WrongNodeKey": {"node_dh_public_key"},
    "LowOrderPublic": {"client_dh_public_key"},
    "ZeroSharedSecret": {"ciphertext"},
}


def confirm_request_envelope(v: Vector) -> None:
    t = v.test
    node_private = _h(t["node_private"])
    plaintext = _h(t["plaintext"])
    c = client_side(t)
    body: dict[str, Any] = json.loads(t["body"])
    changed = changed_fields(body, honest_request(c, plaintext))
    # spec R13.5 / R3.16: nothing binds the clear members to the ciphertext (empty AAD), so a client copies
    # them from the plaintext; every request vector, valid or not, differs from an honest one elsewhere.
    inner = json.loads(plaintext)
    assert body["model_name"] == inner["model"]
    assert bool(body.get("stream")) == bool(inner.get("stream", False))
    if _result(t):
        valid_flags(t, {"KeyOrder": list(body) != sorted(body)})
        assert node_open_request(body, node_private) == plaintext
        assert t["key"] == c.key.hex()
        # Re-encrypting with the vector's salt and nonce gives the body's ciphertext byte for byte, and
        # every other binary field is what an honest client computes.
        assert changed == set()
        if "KeyOrder" not in t["flags"]:
            # The compact, alphabetically ordered serialization both official SDKs send.
            assert json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False) == t["body"]
        return
    refused = refusal(lambda: node_open_request(body, node_private))
    code = t["error"]
    assert code_matches(refused.code, code), f"independent node refused with {refused.code}, vector says {code}"
    assert changed == defect_fields(t["flags"], REQUEST_DEFECTS), f"fields changed: {sorted(changed)}"
    assert t["key"] is None or "ZeroSharedSecret" in t["flags"]
    confirm_request_defect(t, body, refused, c, plaintext)


def confirm_request_defect(t: Test, body: dict[str, Any], refused: Refused, c: ClientSide, plaintext: bytes) -> None:
    """Show the specific defect the invalid request vector names."""
    flags, code = set(t["flags"]), t["error"]
    honest = gcm_seal(c.key, c.request_nonce, plaintext)
    if code == "HASH_MISMATCH":
        claimed = strict_b64(body["plaintext_body_hash"])
        assert len(claimed) == 32 and claimed != blake2b_256(plaintext)
        if flags == {"HashOverReserializedJson"}:
            assert claimed == blake2b_256(json.dumps(json.loads(plaintext)).encode())
        else:
            assert flags == {"WrongPlaintextHash"}
    elif code == "AEAD_AUTHENTICATION_FAILED":
        sealed = strict_b64(body["ciphertext"])
        if flags in ({"ModifiedCiphertext"}, {"ModifiedTag"}):
            assert len(sealed) == len(honest) and bit_distance(sealed, honest) == 1
            in_tag = first_difference(sealed, honest) >= len(honest) - TAG_LEN
            assert in_tag == (flags == {"ModifiedTag"})
        elif flags == {"ModifiedNonce"}:
            assert bit_distance(strict_b64(body["nonce"]), c.request_nonce) == 1
        elif flags == {"ModifiedSalt"}:
            assert bit_distance(strict_b64(body["salt"]), c.salt) == 1
        else:
            raise AssertionError(f"no independent evidence for AEAD flags {sorted(flags)}")
    elif code == "NODE_KEY_MISMATCH":
        assert flags == {"WrongNodeKey"}
        assert strict_b64(body["node_dh_public_key"]) != c.node_public
    elif code == "LOW_ORDER_POINT":
        client_public = strict_b64(body["client_dh_public_key"])
        # libsodium refuses the key whichever private key meets it: the point has low order.
        assert libsodium_refuses(_h(t["node_private"]), client_public)
        assert libsodium_refuses(_h(t["client_private"]), client_public)
        if flags == {"LowOrderPublic", "ZeroSharedSecret"}:
            # What a non-checking node computes: K = HKDF(salt, 32 zero bytes), which anyone can derive.
            zero_key = hkdf_sha256(bytes(32), c.salt, b"", 32)
            assert t["key"] == zero_key.hex()
            assert gcm_open(zero_key, c.request_nonce, strict_b64(body["ciphertext"])) == plaintext
        else:
            assert flags == {"LowOrderPublic"}
    elif code == "WRONG_LENGTH":
        assert flags == {"PlaintextHashNot32Bytes"} and refused.field == "plaintext_body_hash"
        claimed = strict_b64(body["plaintext_body_hash"])
        assert len(claimed) == 33 and claimed[:32] == blake2b_256(plaintext)
    elif code == "BASE64_URLSAFE_ALPHABET":
        assert flags == {"UrlSafeAlphabet"} and refused.field == "ciphertext"
        text = body["ciphertext"]
        assert base64_defect_present(code, text)
        assert base64.urlsafe_b64decode(text) == honest
    elif code == "BASE64_MISSING_PADDING":
        assert flags == {"MissingPadding"} and refused.field == "salt"
        text = body["salt"]
        assert base64_defect_present(code, text)
        assert strict_b64(text + "=" * (-len(text) % 4)) == c.salt
    else:
        raise AssertionError(f"no independent evidence for request error {code}")


def client_open(
    message: dict[str, Any], c: ClientSide, signer_address: str, *, reject_request_nonce: bool = True
) -> bytes:
    """A client built on libsodium, pycryptodome and coincurve opening a response or a stream chunk."""
    nonce = field_bytes(message, "nonce", 12)
    if reject_request_nonce and nonce == c.request_nonce:
        raise Refused("NONCE_REUSE", "nonce")
    sealed = field_bytes(message, "ciphertext", minimum=TAG_LEN)
    try:
        plaintext = gcm_open(c.key, nonce, sealed)
    except ValueError:
        raise Refused("AEAD_AUTHENTICATION_FAILED", "ciphertext") from None
    digest = blake2b_256(plaintext)
    if field_bytes(message, "response_hash", 32) != digest:
        raise Refused("HASH_MISMATCH", "response_hash")
    if message.get("signature") is None:
        raise Refused("MISSING_FIELD", "signature")
    verdict = sui_verdict(field_bytes(message, "signature"), digest, signer_address)
    if verdict is not None:
        raise Refused(verdict, "signature")
    if message.get("usage") is not None and json.loads(plaintext).get("usage") != message["usage"]:
        raise Refused("USAGE_MISMATCH", "usage")
    return plaintext


def honest_message(c: ClientSide, plaintext: bytes, nonce: bytes, signer_address: str) -> dict[str, Any]:
    """The fields of a response or chunk an honest node sends under this nonce, built from scratch."""
    key = key_for(signer_address)
    digest = blake2b_256(plaintext)
    return {
        "nonce": b64(nonce),
        "ciphertext": b64(gcm_seal(c.key, nonce, plaintext)),
        "response_hash": b64(digest),
        "signature": b64(bytes([key.flag]) + key.sign(digest) + key.public_key),
    }


def assert_answers_a_valid_request(t: Test) -> None:
    """A response or stream vector reuses the exchange (same K and request nonce) of a valid request vector."""
    names = ("client_private", "node_private", "salt", "request_nonce")
    assert any(
        w.group["type"] == "RequestEnvelopeTest"
        and w.test["result"] == "valid"
        and all(w.test[n] == t[n] for n in names)
        for w in VECTORS
    ), "the exchange is not that of any valid request vector"


RESPONSE_KEYS = ["nonce", "ciphertext", "response_hash", "signature", "usage"]
# Which response fields each defect changes; every other field must be the honest one.
RESPONSE_DEFECTS: dict[str, set[str]] = {
    "EchoedRequestNonce": set(),  # an honest response in every other respect, under the request's nonce
    "WrongResponseHash": {"response_hash"},
    "Sha256Instead": {"response_hash"},
    "WrongSigner": {"signature"},
    "SignatureOverWrongBytes": {"signature"},
    "MissingSignature": {"signature"},
    "UsageMismatch": {"usage"},
    "ModifiedTag": {"ciphertext"},
}


def confirm_response_envelope(v: Vector) -> None:
    t = v.test
    c = client_side(t)
    assert_answers_a_valid_request(t)
    plaintext = _h(t["plaintext"])
    signer = t["signer_address"]
    body: dict[str, Any] = json.loads(t["body"])
    assert list(body) == RESPONSE_KEYS
    nonce = strict_b64(body["nonce"])
    honest = honest_message(c, plaintext, nonce, signer)
    honest["usage"] = json.loads(plaintext)["usage"]
    changed = changed_fields(body, honest)
    if _result(t):
        valid_flags(t)
        assert client_open(body, c, signer) == plaintext
        # Rebuilt from scratch under the body's nonce: same ciphertext, hash, signature and usage, byte for byte.
        assert changed == set()
        assert nonce != c.request_nonce
        return
    refused = refusal(lambda: client_open(body, c, signer))
    code = t["error"]
    assert refused.code == code, f"independent client refused with {refused.code}, vector says {code}"
    assert changed == defect_fields(t["flags"], RESPONSE_DEFECTS), f"fields changed: {sorted(changed)}"
    confirm_response_defect(t, body, c, plaintext)


def confirm_response_defect(t: Test, body: dict[str, Any], c: ClientSide, plaintext: bytes) -> None:
    """Show the specific defect the invalid response vector names."""
    flags, code, signer = set(t["flags"]), t["error"], t["signer_address"]
    digest = blake2b_256(plaintext)
    if code == "NONCE_REUSE":
        assert flags == {"EchoedRequestNonce"}
        assert strict_b64(body["nonce"]) == c.request_nonce
        assert client_open(body, c, signer, reject_request_nonce=False) == plaintext
    elif code == "HASH_MISMATCH":
        claimed = strict_b64(body["response_hash"])
        assert claimed != digest
        if flags == {"Sha256Instead"}:
            assert claimed == sha256(plaintext)
        else:
            assert flags == {"WrongResponseHash"}
    elif code == "SIGNATURE_WRONG_SIGNER":
        # A valid signature over the right hash, by another key.
        blob = strict_b64(body["signature"])
        assert flags == {"WrongSigner"}
        assert sui_verdict(blob, digest, None) is None
        assert sui_address(blob[0], blob[65:]) != signer
        assert blob[65:] == other_key(blob[0]).public_key
    elif code == "SIGNATURE_VERIFICATION_FAILED":
        # The node's own key signed, but over BLAKE2b-256 of the ciphertext instead of the plaintext.
        blob = strict_b64(body["signature"])
        assert flags == {"SignatureOverWrongBytes"}
        assert sui_verdict(blob, blake2b_256(strict_b64(body["ciphertext"])), signer) is None
    elif code == "MISSING_FIELD":
        assert flags == {"MissingSignature"}
        assert "signature" in body and body["signature"] is None
    elif code == "USAGE_MISMATCH":
        assert flags == {"UsageMismatch"}
        assert body["usage"] != json.loads(plaintext)["usage"]
    elif code == "AEAD_AUTHENTICATION_FAILED":
        assert flags == {"ModifiedTag"}
        sealed = strict_b64(body["ciphertext"])
        honest = gcm_seal(c.key, strict_b64(body["nonce"]), plaintext)
        assert len(sealed) == len(honest) and bit_distance(sealed, honest) == 1
        assert first_difference(sealed, honest) >= len(honest) - TAG_LEN
    else:
        raise AssertionError(f"no independent evidence for response error {code}")


def confirm_stream_envelope(v: Vector) -> None:
    t = v.test
    c = client_side(t)
    assert_answers_a_valid_request(t)
    signer = t["signer_address"]
    plaintexts = [_h(p) for p in t["chunk_plaintexts"]]
    assert len(t["events"]) == len(plaintexts) >= 2
    nonces: list[bytes] = []
    sealed: list[bytes] = []
    for event, expected in zip(t["events"], plaintexts, strict=True):
        assert event.startswith("data: ") and event.endswith("\n\n")
        chunk: dict[str, Any] = json.loads(event[len("data: ") : -2])
        assert client_open(chunk, c, signer) == expected
        nonce = strict_b64(chunk["nonce"])
        # Every chunk is exactly what an honest node seals under its nonce (usage in clear on the last one).
        honest = honest_message(c, expected, nonce, signer)
        keys = ["ciphertext", "nonce", "signature", "response_hash"]
        if "usage" in chunk:
            honest["usage"] = json.loads(expected)["usage"]
            keys.insert(2, "usage")
        assert list(chunk) == keys
        assert changed_fields(chunk, honest) == set()
        nonces.append(nonce)
        sealed.append(strict_b64(chunk["ciphertext"]))
    if _result(t):
        valid_flags(t)
        assert len(set(nonces)) == len(nonces), "a fresh nonce per chunk"
        assert c.request_nonce not in nonces
        return
    assert t["error"] == "NONCE_REUSE" and set(t["flags"]) == {"StreamNonceReuse"}
    assert len(set(nonces)) < len(nonces)
    # The consequence, from the independent decryption: one keystream, so ct0 ^ ct1 == pt0 ^ pt1.
    ct0, ct1 = sealed[0][:-TAG_LEN], sealed[1][:-TAG_LEN]
    n = min(len(ct0), len(ct1))
    assert n > 0
    x_ct = bytes(a ^ b for a, b in zip(ct0[:n], ct1[:n], strict=True))
    x_pt = bytes(a ^ b for a, b in zip(plaintexts[0][:n], plaintexts[1][:n], strict=True))
    assert x_ct == x_pt


# --- JSON hashing --------------------------------------------------------------------------------------


def confirm_json_hash(v: Vector) -> None:
    t = v.test
    data = t["serialization"].encode("utf-8")
    assert json.loads(t["serialization"]) == t["logical"]
    matches = b64(blake2b_256(data)) == t["hash"]
    if _result(t):
        valid_flags(t)
        assert matches
        return
    assert not matches
    assert set(t["flags"]) == {"HashOverReserializedJson"}
    # The hash is that of another serialization of the same value: the one a re-serializing node hashes.
    assert any(
        w.group["type"] == "JsonHashTest"
        and w.test["result"] == "valid"
        and w.test["logical"] == t["logical"]
        and w.test["serialization"] != t["serialization"]
        and b64(blake2b_256(w.test["serialization"].encode())) == t["hash"]
        for w in VECTORS
    )


CONFIRMERS: dict[str, Callable[[Vector], None]] = {
    "X25519Test": confirm_x25519,
    "X25519IterationTest": confirm_x25519_iteration,
    "HkdfTest": confirm_hkdf,
    "AeadTest": confirm_aead,
    "HashTest": confirm_hash,
    "Base64Test": confirm_base64,
    "FieldLengthTest": confirm_field_length,
    "SuiSignatureTest": confirm_sui_signature,
    "SuiAddressTest": confirm_sui_address,
    "KeystoreTest": confirm_keystore,
    "RequestEnvelopeTest": confirm_request_envelope,
    "ResponseEnvelopeTest": confirm_response_envelope,
    "StreamEnvelopeTest": confirm_stream_envelope,
    "JsonHashTest": confirm_json_hash,
}


# --- tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", [pytest.param(v, id=v.id) for v in VECTORS])
def test_vector_confirmed_independently(vector: Vector) -> None:
    assert vector.group["type"] in CONFIRMERS, f"no independent confirmer for {vector.group['type']}"
    CONFIRMERS[vector.group["type"]](vector)


def test_vector_files_are_the_generator_registry() -> None:
    """The files on disk and the generator's registry name the same vectors (none stale, none missing)."""
    on_disk = sorted((v.file, v.id) for v in VECTORS)
    registered = sorted((v.file, v.id) for v in iter_vectors())
    assert on_disk == registered


def test_every_vector_has_an_independent_confirmation() -> None:
    """Every vector in every file is confirmed, and every group type has a confirmer.

    This runs the confirmers itself (rather than counting other tests' outcomes), so it holds under any
    test order or distribution, and a new group type or vector without a confirmation fails here.
    """
    total = 0
    types: set[str] = set()
    for path in sorted(default_dir().glob("*.json")):
        if path.name == SCHEMA_FILE:
            continue
        doc = load(path)
        in_file = sum(len(group["tests"]) for group in doc["testGroups"])
        assert doc["numberOfTests"] == in_file, path.name
        total += in_file
        types |= {group["type"] for group in doc["testGroups"]}
    assert total > 0
    assert types <= set(CONFIRMERS), f"group types without an independent confirmer: {sorted(types - set(CONFIRMERS))}"
    confirmed = 0
    for v in VECTORS:
        CONFIRMERS[v.group["type"]](v)
        confirmed += 1
    assert confirmed == total
    assert len({v.id for v in VECTORS}) == total, "vector ids are not unique"
    assert types == {v.group["type"] for v in VECTORS}

"""Judging a refusal: shared by the check catalogue and the fuzz oracle, so "refused cleanly" and
"leaked nothing" mean the same thing in both."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from ..evidence import ExchangeRecord, HttpRecord
from ..protocol.b64 import b64encode
from ..protocol.primitives import blake2b_256


def response_of(result: Any) -> HttpRecord:
    return result.http if isinstance(result, ExchangeRecord) else result


def refusal_problem(result: Any) -> str | None:
    """Why ``result`` is not a clean refusal (None when it is one)."""
    http = response_of(result)
    if http.status is None:
        return f"no answer ({http.error})"
    if 200 <= http.status < 300:
        return f"accepted with {http.status}"
    if http.media_type == "text/event-stream":
        return "an event stream was started"
    value = http.json()
    if isinstance(value, dict) and "ciphertext" in value:
        return "the refusal carries a ciphertext"
    if isinstance(result, ExchangeRecord) and result.plaintext and result.plaintext in http.body:
        return "the refusal carries the plaintext"
    return None


def secrets_of(api_key: str | None, result: Any) -> dict[str, str]:
    """Strings that must never appear in a refusal: the API key, the plaintext, and both hashes."""
    found: dict[str, str] = {}
    if api_key and len(api_key) >= 8:  # a shorter test token would match ordinary words
        found["api key"] = api_key
    if not isinstance(result, ExchangeRecord):
        return found
    mark = re.search(rb"atoma-conformance-sentinel-[0-9a-f]{16}", result.plaintext)
    if mark:
        found["plaintext"] = mark.group().decode()
    hashes = {"computed plaintext hash": blake2b_256(result.plaintext)}
    try:
        sent = json.loads(result.request_body)
        claimed = base64.b64decode(sent["plaintext_body_hash"])
        hashes["claimed plaintext hash"] = claimed
        if len(sent.get("ciphertext", "")) > 32:
            found["ciphertext"] = sent["ciphertext"][:32]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    for label, value in hashes.items():
        if len(value) < 8:
            continue
        found[f"{label} (base64)"] = b64encode(value)
        found[f"{label} (hex)"] = value.hex()
        found[f"{label} (byte list)"] = ", ".join(str(b) for b in value[:8])
        found[f"{label} (compact byte list)"] = ",".join(str(b) for b in value[:8])
    return found

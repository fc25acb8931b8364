"""A transport failure in words, with the fix when there is an obvious one.

httpx reports every failed connection as ``ConnectError``; the operator needs to know whether the
port refused, the name did not resolve, the port speaks plain HTTP, or the certificate was not trusted,
because each has a different fix (``http://``, ``--ca-bundle``, a firewall). The client records this
description beside the short error code of every exchange that got no answer (``HttpRecord.detail``).
Every text that may come from the peer (an SSL alert, a reason phrase) is sanitised and capped.
"""

from __future__ import annotations

import ssl

import httpx

from .textsafe import one_line

_PLAIN_HTTP_PORT = (
    "wrong_version_number",
    "wrong version number",
    "record layer failure",
    "http request",
    "packet length too long",
    "unknown protocol",
)
_RECORD_WORDS = {
    "timeout": "timed out (no answer within --timeout)",
    "deadline": "the exchange overran its --deadline",
}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe_transport_error(error: BaseException | str | None) -> str:
    """What went wrong reaching the target, in words, with the fix when there is an obvious one.

    Takes the exception (the client does, for ``HttpRecord.detail``) or, failing that, the
    ``HttpRecord.error`` code. TLS failures say so, since "unreachable" sends an operator looking for
    a firewall when the fix is ``http://`` or ``--ca-bundle``.
    """
    if error is None:
        return "no answer"
    if isinstance(error, str):
        text = one_line(error, 160)
        lowered = text.lower()
        if lowered in _RECORD_WORDS:
            return _RECORD_WORDS[lowered]
        return _classify(lowered, text, None) or text
    chain = _chain(error)
    name = type(error).__name__
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            detail = link.verify_message or link.reason or "untrusted certificate"
            return f"certificate verify failed: {one_line(str(detail), 120)} (use --ca-bundle or --insecure)"
    messages = " | ".join(one_line(str(link), 160) for link in chain if str(link))
    found = _classify(messages.lower(), messages, chain)
    if found:
        return found if found.startswith(("TLS", "certificate")) else f"{name}: {found}"
    if isinstance(error, httpx.ConnectTimeout):
        return f"the connection timed out ({name})"
    if isinstance(error, httpx.TimeoutException):
        return f"timed out waiting for an answer ({name})"
    first = one_line(str(error), 120)
    return f"{name}: {first}" if first else name


def _classify(lowered: str, text: str, chain: list[BaseException] | None) -> str | None:
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        detail = "self-signed certificate" if "self-signed" in lowered or "self signed" in lowered else "untrusted"
        return f"certificate verify failed: {detail} (use --ca-bundle or --insecure)"
    if any(word in lowered for word in _PLAIN_HTTP_PORT):
        reason = "wrong version number" if "version number" in lowered else "not a TLS answer"
        return f"TLS handshake failed: {reason} (is the port plain HTTP? use http://)"
    if (chain is not None and any(isinstance(link, ssl.SSLError) for link in chain)) or "[ssl" in lowered:
        return f"TLS handshake failed: {one_line(text, 120)}"
    if "connection refused" in lowered or (chain and any(isinstance(x, ConnectionRefusedError) for x in chain)):
        return "connection refused"
    if any(
        w in lowered for w in ("name or service not known", "nodename nor servname", "name resolution", "getaddrinfo")
    ):
        return "the host name does not resolve"
    if "network is unreachable" in lowered or "no route to host" in lowered:
        return "no route to the host"
    return None


def record_words(detail: str | None, error: str | None) -> str:
    """An exchange that got no answer, in words: the client's own description when it made one
    (``HttpRecord.detail``, from the exception), else the error code's."""
    return detail or describe_transport_error(error)


def unreachable_message(where: str, why: str) -> str:
    """``<where> is unreachable (<why>)``, or ``<where>: <TLS problem>`` (which is not unreachability);
    ``why`` is a description (:func:`describe_transport_error`, :func:`record_words`)."""
    if why.startswith(("TLS", "certificate")):
        return f"{where}: {why}"
    return f"{where} is unreachable ({why})"

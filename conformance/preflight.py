"""A handful of requests that tell a setup mistake from a verdict, before the run spends its budget.

A mistyped ``--model``, a ``/v1`` suffix on the URL, a web server that is not the API, or a node's own
face addressed as a proxy would otherwise run the whole suite into ~80 "could not be evaluated"
checks. Each of these has a cheap, unambiguous signature, and each gets one line naming the option to
change. Anything that is not clearly a setup mistake is left to the checks: the preflight never takes
a verdict away from them (a lock that answers 200 with a broken body is LOCK-001's to judge).

Every string that comes from the target and reaches the message is sanitised and capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .client import ClientOptions, ConfidentialClient
from .exits import UserError
from .protocol import jsonwire
from .records import HttpRecord
from .results import redact_url
from .textsafe import one_line
from .transport_errors import record_words, unreachable_message


@dataclass(frozen=True)
class ProxyProbe:
    base_url: str
    api_key: str | None
    model: str
    options: ClientOptions


def _is_html(record: HttpRecord) -> bool:
    media = (record.media_type or "").lower()
    return media in ("text/html", "application/xhtml+xml") or record.body[:64].lstrip().lower().startswith(
        (b"<!doctype html", b"<html")
    )


def check_proxy(probe: ProxyProbe) -> None:
    """Lock once; on a refusal, one or two more requests name the mistake."""
    where = redact_url(probe.base_url)
    with ConfidentialClient(probe.base_url, probe.api_key, options=probe.options) as client:
        lock = client.lock(probe.model, retries=0)
        http = lock.http
        if http.error in ("timeout", "deadline", "drip", "too-fragmented"):  # it connected, then stalled
            answered = f"after status {http.status}" if http.status is not None else "before any status line"
            raise UserError(
                "--target",
                f"target too slow: {where} did not answer POST /v1/nodes/lock within the preflight's "
                f"{probe.options.timeout_s:g} s read timeout and {probe.options.deadline_s:g} s deadline "
                f"({http.error} {answered})",
            )
        if http.status is None:
            raise UserError("--target", unreachable_message(where, record_words(http.detail, http.error)))
        if _is_html(http):
            raise UserError(
                "--target",
                f"{where} answered POST /v1/nodes/lock with an HTML page (status {http.status}), not the Atoma "
                "API: is this the API's base URL?",
            )
        if http.status == 401:
            raise UserError("--api-key", f"the target refused the API key (401 on /v1/nodes/lock at {where})")
        if http.status in (404, 405):
            path = urlsplit(probe.base_url).path.rstrip("/")
            if path.endswith("/v1"):
                raise UserError(
                    "--target",
                    f"{where} ends in /v1, and the suite adds /v1/... itself: use "
                    f"{redact_url(probe.base_url.rstrip('/')[: -len('/v1')])}",
                )
            if _serves_confidential_chat(client):
                raise UserError(
                    "--face",
                    f"{where} has no /v1/nodes/lock but serves /v1/confidential/chat/completions: it looks like "
                    "a node's own face; run with --face node (docs/node-operators.md)",
                )
            raise UserError(
                "--target",
                f"{where} has no /v1/nodes/lock ({http.status}): is this an Atoma proxy's base URL?",
            )
        if http.status in (400, 404, 422, 503) and not lock.ok:
            known = _model_list(client)
            if known is not None and probe.model not in known:
                shown = ", ".join(one_line(name, 60) for name in known[:5])
                more = f" and {len(known) - 5} more" if len(known) > 5 else ""
                raise UserError(
                    "--model",
                    f"{one_line(probe.model, 80)!r} is not among the {len(known)} models the target lists on "
                    f"/v1/models ({shown or 'none'}{more})",
                )
            if http.status == 503 and known is None:
                raise UserError(
                    "--model",
                    f"the target has no node for {one_line(probe.model, 80)!r} (503 on /v1/nodes/lock at {where}); "
                    "check the model name, or retry if the target is overloaded",
                )


def _serves_confidential_chat(client: ConfidentialClient) -> bool:
    """A node's face answers an empty confidential request with a refusal of its own, not a 404."""
    record = client.request(
        "POST", "/v1/confidential/chat/completions", content=b"{}", headers={"content-type": "application/json"}
    )
    return record.status is not None and record.status not in (404, 405) and not _is_html(record)


def _model_list(client: ConfidentialClient) -> list[str] | None:
    """The names on GET /v1/models (OpenAI's shape), or None when the target has no usable list."""
    record = client.request("GET", "/v1/models", headers=client.headers())
    if record.status != 200:
        return None
    try:
        doc = jsonwire.loads(record.body)
    except ValueError:  # ProtocolError is a ValueError: not strict JSON
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return None
    return [item["id"] for item in data[:1000] if isinstance(item, dict) and isinstance(item.get("id"), str)]

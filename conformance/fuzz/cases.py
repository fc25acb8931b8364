"""Replay cases: one failure of a fuzz campaign, saved as a self-contained JSON file.

A case says how to make the failing request again, not what was sent: the endpoint, the stream flag,
the model, the mutation (its label and its drawn parameters), the campaign seed, the finding's check
id, and the *shape* of the plaintext (its JSON with every piece of free text replaced by as many
``x``; roles, tool names and the knobs such as ``max_tokens`` stay). ``replay`` takes a fresh lock,
seals a plaintext of that shape under the node's current key with fresh randomness, applies the same
mutation and judges the answer. So a case holds no key, no salt or nonce and no ciphertext: nothing in
it opens a request that was sent, and the plaintext's text is not in it. With ``--keep-plaintext`` the
exact plaintext is stored as well, and the replay seals that instead of the shape.

Why not the exact bytes, as version 1 did: to judge a replayed answer the replay must decrypt it, so
version 1 stored the request's ephemeral X25519 secret next to its ciphertext, and anyone holding the
file could read the plaintext that ``--keep-plaintext`` promised not to keep. Re-sealing also replays
against a node that has already seen the request (a conformant node refuses identical bytes twice).
The cost: a failure that depends on the exact text (one code point a node chokes on) reproduces only
from a case written with ``--keep-plaintext``. Version 1 cases are refused with a one-line message.

A case file is input from anywhere (a colleague's bug report, a CI artefact), so :meth:`ReplayCase.read`
checks every member before anything is sent: a wrong type, an unknown check or mutation, a wait of a
week, a step naming a lock never taken would otherwise surface as a traceback half-way through a
replay, or as a verdict about a different question. Each problem is one line naming the member.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..exits import UserError

CASE_VERSION = 2
OLD_VERSIONS = (1,)  # held the request's secret next to its ciphertext: refused, never read
# The largest real case is a --keep-plaintext one (a few 4 KiB messages); nothing legitimate is near this.
MAX_CASE_BYTES = 1024 * 1024
MAX_STEPS = 1_000
MAX_WAIT_S = 60.0  # one step's wait; the session machine never waits more than a lock's timeout + 1 s
MAX_TOTAL_WAIT_S = 600.0
MAX_PRIOR_NONCES = 10_000
EXPECTS = ("refuse", "accept", "session")
STEP_MEMBERS = {
    "lock": {"action", "key"},
    "use": {"action", "lock", "key", "stream"},
    "wait": {"action", "seconds"},
    "replay": {"action", "key"},
}
_HEX = re.compile(r"[0-9a-f]*")


@dataclass
class ReplayCase:
    check_id: str
    level: str
    reason: str
    seed: int
    endpoint: str
    stream: bool
    model: str
    mutation: str | None  # the mutation's label, or None for a valid request
    expect: str  # "refuse" or "accept"
    plaintext_sha256: str  # of the plaintext that failed (it names the file; it opens nothing)
    plaintext_bytes: int
    # The plaintext's JSON with its free text replaced by "x"s: what a replay seals (None for a session).
    shape: dict[str, Any] | None = None
    mutation_params: list[Any] | None = None  # an envelope mutation's drawn parameters, as JSON
    plaintext: str | None = None  # only with --keep-plaintext: then the replay seals exactly this
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = CASE_VERSION

    def plaintext_value(self) -> dict[str, Any]:
        """The plaintext a replay seals: the kept one, else one of the stored shape."""
        # A copy either way: sealing does not change the case.
        value = json.loads(self.plaintext if self.plaintext is not None else json.dumps(self.shape))
        assert isinstance(value, dict)  # checked when the case was read
        return value

    def name(self) -> str:
        digest = self.plaintext_sha256[:8]
        return f"{self.check_id.lower()}-{self.endpoint}-{digest}.json"

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.name()
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path, option: str | None = None) -> ReplayCase:
        """The case in ``path``, every member checked; :class:`UserError` names the first bad one
        (after ``option``, the argument that named the file, when given)."""
        where = _shown_path(path) if option is None else f"{option}: {_shown_path(path)}"
        try:
            info = os.stat(path)
        except OSError as exc:
            raise UserError(where, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        if not stat.S_ISREG(info.st_mode):
            raise UserError(where, "not a regular file")  # a FIFO or a device would block or never end
        if info.st_size > MAX_CASE_BYTES:
            raise UserError(
                where, f"{info.st_size} bytes, over the {MAX_CASE_BYTES // (1024 * 1024)} MiB a case can hold"
            )
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_CASE_BYTES + 1)
        except OSError as exc:
            raise UserError(where, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        if len(raw) > MAX_CASE_BYTES:
            raise UserError(where, f"over the {MAX_CASE_BYTES // (1024 * 1024)} MiB a case can hold")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(where, f"not UTF-8 text (byte {exc.start})") from None
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise UserError(where, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        except (RecursionError, ValueError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise UserError(where, f"not JSON ({reason})") from None
        return cls.from_json(data, where)

    @classmethod
    def from_json(cls, data: Any, where: str = "case") -> ReplayCase:
        """A case from its parsed JSON, every member checked."""
        if isinstance(data, dict) and _is_int(data.get("version")) and data["version"] in OLD_VERSIONS:
            raise UserError(
                where,
                f"written by an older version of atoma-conformance (case version {data['version']}, which kept "
                "the request's secret): re-run the fuzz campaign",
            )
        if not isinstance(data, dict) or data.get("version") != CASE_VERSION:
            raise UserError(where, f"not an atoma-conformance replay case (version {CASE_VERSION})")
        known = {f.name for f in fields(cls)}
        for name in data:
            if name not in known:
                raise UserError(f"{where}: {_shown(name)}", "unknown member")
        for f in fields(cls):
            if f.name not in data and f.name not in ("plaintext", "extra", "shape", "mutation_params"):
                raise UserError(f"{where}: {f.name}", "missing")
        _validate(data, where)
        return cls(**data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 and text.isprintable() else f"a name of {len(text)} characters"


def _shown_path(path: Path) -> str:
    text = str(path)
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ids() -> set[str]:
    from ..checks import CATALOGUE

    return {check.id for check in CATALOGUE}


def _mutation_names() -> set[str]:
    from .. import strategies
    from .campaign import CAMPAIGN_MUTATIONS

    return set(strategies._FAMILIES) | {m.name for m in CAMPAIGN_MUTATIONS}


def _validate(data: dict[str, Any], where: str) -> None:
    from ..client import ENDPOINT_PATHS
    from ..taxonomy import LEVELS

    def bad(member: str, reason: str) -> UserError:
        return UserError(f"{where}: {member}", reason)

    def text(member: str, *, empty: bool = False) -> str:
        value = data[member]
        if not isinstance(value, str):
            raise bad(member, f"must be a string, not {_json_type(value)}")
        if not empty and not value:
            raise bad(member, "must not be empty")
        return value

    checks = _check_ids()
    if not _is_int(data["version"]):
        raise bad("version", "must be an integer")
    check_id = text("check_id")
    if check_id not in checks:
        raise bad("check_id", f"unknown check {_shown(check_id)} (see 'atoma-conformance checks')")
    if text("level") not in LEVELS:
        raise bad("level", f"must be one of {', '.join(LEVELS)}")
    text("reason", empty=True)
    if not _is_int(data["seed"]):
        raise bad("seed", f"must be an integer, not {_json_type(data['seed'])}")
    if text("endpoint") not in ENDPOINT_PATHS:
        raise bad("endpoint", f"must be one of {', '.join(ENDPOINT_PATHS)}")
    if not isinstance(data["stream"], bool):
        raise bad("stream", f"must be true or false, not {_json_type(data['stream'])}")
    text("model")
    expect = text("expect")
    if expect not in EXPECTS:
        raise bad("expect", f"must be one of {', '.join(EXPECTS)}")
    mutation = data["mutation"]
    if mutation is not None:
        label = text("mutation")
        mutation_check, _, rest = label.partition(" ")
        name = rest.split(" ", 1)[0]
        if mutation_check not in checks or name not in _mutation_names():
            raise bad("mutation", f"unknown mutation {_shown(label[:60])} (expected '<CHECK-ID> <family> ...')")
    digest = text("plaintext_sha256")
    if not _HEX.fullmatch(digest) or len(digest) != 64:
        raise bad("plaintext_sha256", "must be 64 lowercase hex digits")
    if not _is_int(data["plaintext_bytes"]) or data["plaintext_bytes"] < 0:
        raise bad("plaintext_bytes", "must be a non-negative integer")
    plaintext = data.get("plaintext")
    if plaintext is not None:
        if not isinstance(plaintext, str):
            raise bad("plaintext", f"must be a string or null, not {_json_type(plaintext)}")
        try:
            parsed = json.loads(plaintext, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise bad("plaintext", "not a JSON text") from None
        if not isinstance(parsed, dict):
            raise bad("plaintext", f"must be the text of a JSON object, not {_json_type(parsed)}")
    shape = data.get("shape")
    params = data.get("mutation_params")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise bad("extra", f"must be an object, not {_json_type(extra)}")
    if expect == "session":
        for member in ("shape", "mutation_params"):
            if data.get(member) is not None:
                raise bad(member, "a session case has none (its steps say what to send)")
        _validate_session(extra, f"{where}: extra")
        return
    if "steps" in extra:
        raise bad("extra.steps", "only a case with expect 'session' has steps")
    if not isinstance(shape, dict):
        raise bad("shape", f"a request case needs the plaintext's shape, a JSON object, not {_json_type(shape)}")
    if params is not None and not isinstance(params, list):
        raise bad("mutation_params", f"must be a list or null, not {_json_type(params)}")
    if mutation is not None:
        from .campaign import mutation_from_case

        try:
            mutation_from_case(mutation, params)
        except ValueError as exc:
            raise bad("mutation_params", str(exc)) from None
    named = extra.get("mutation_check")
    if named is not None and named not in checks:
        raise bad("extra.mutation_check", f"unknown check {_shown(str(named)[:40])}")
    prior = extra.get("prior_nonces", [])
    if not isinstance(prior, list) or len(prior) > MAX_PRIOR_NONCES:
        raise bad("extra.prior_nonces", f"must be a list of at most {MAX_PRIOR_NONCES} nonces")
    for index, nonce in enumerate(prior):
        if not isinstance(nonce, str) or len(nonce) != 24 or not _HEX.fullmatch(nonce):
            raise bad(f"extra.prior_nonces[{index}]", "must be 24 lowercase hex digits (a 12-byte nonce)")


def _validate_session(extra: dict[str, Any], where: str) -> None:
    def bad(member: str, reason: str) -> UserError:
        return UserError(f"{where}.{member}", reason)

    keys = extra.get("keys", ["a"])
    if not isinstance(keys, list) or not all(k in ("a", "b") for k in keys):
        raise bad("keys", "must be a list of the session keys 'a' and 'b'")
    steps = extra.get("steps")
    if not isinstance(steps, list) or not steps:
        raise bad("steps", "a session case needs a non-empty list of steps")
    if len(steps) > MAX_STEPS:
        raise bad("steps", f"{len(steps)} steps, more than the {MAX_STEPS} a session replay runs")
    locks = 0  # locks the steps so far can have taken (a replay step takes one)
    waited = 0.0
    for index, step in enumerate(steps):
        at = f"steps[{index}]"
        if not isinstance(step, dict):
            raise bad(at, f"must be an object, not {_json_type(step)}")
        action = step.get("action")
        if action not in STEP_MEMBERS:
            shown = _shown(action) if isinstance(action, str) else _json_type(action)
            raise bad(f"{at}.action", f"unknown action {shown} (lock, use, wait or replay)")
        for name in step:
            if name not in STEP_MEMBERS[action]:
                raise bad(f"{at}", f"unknown member {_shown(str(name))} for a {action} step")
        if action in ("lock", "use") or "key" in step:
            key = step.get("key")
            if key not in ("a", "b"):
                raise bad(f"{at}.key", "must be 'a' or 'b'")
            if key not in keys:
                raise bad(f"{at}.key", f"key {key!r} is not among the case's keys")
        if action in ("lock", "replay"):
            locks += 1
        elif action == "use":
            lock = step.get("lock")
            if not isinstance(lock, int) or isinstance(lock, bool) or not 0 <= lock < locks:
                raise bad(f"{at}.lock", f"must name a lock an earlier step took (0 to {locks - 1})")
            if not isinstance(step.get("stream", False), bool):
                raise bad(f"{at}.stream", "must be true or false")
        elif action == "wait":
            seconds = step.get("seconds")
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
                raise bad(f"{at}.seconds", "must be a number of seconds")
            if not 0 < seconds <= MAX_WAIT_S:
                raise bad(f"{at}.seconds", f"must be more than 0 and at most {MAX_WAIT_S:g} seconds")
            waited += seconds
            if waited > MAX_TOTAL_WAIT_S:
                raise bad(f"{at}.seconds", f"the steps wait over {MAX_TOTAL_WAIT_S:g} seconds in all")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"

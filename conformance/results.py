"""The results of a run as one JSON document, written by the pytest plugin and read by the CLI.

It holds verdicts and evidence (hashes, lengths, codes and counts), never plaintext, keys or tokens.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .checks import CATALOGUE, Check, Verdict
from .textsafe import escaped

RESULTS_VERSION = 1


def vector_set_digest() -> str | None:
    """SHA-256 over the vector files (sorted by name, name and bytes): names the exact vector set a
    verdict was reached with. The vectors ship with the package; None only for a broken install."""
    import hashlib

    from .resources import vectors_dir

    try:
        directory = vectors_dir()
    except FileNotFoundError:
        return None
    files = sorted(directory.glob("*.json"))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def redact_url(url: str) -> str:
    """The target URL without credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class CheckResult:
    id: str
    level: str
    category: str
    title: str
    spec: list[str]
    outcome: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, check: Check, verdict: Verdict) -> CheckResult:
        return cls(
            check.id,
            check.level,
            check.category,
            check.title,
            list(check.spec),
            verdict.outcome,
            bounded(verdict.reason, MAX_REASON_CHARS),
            _jsonable(verdict.evidence_json()),
        )


# What a target says reaches results.json only this long: a reason or evidence string past its bound
# keeps its head, its full length and a hash (enough to compare runs), and a list keeps its first items
# and its length. One 32 MB lock reply once made 214 MB of reports.
MAX_REASON_CHARS = 2000
MAX_EVIDENCE_CHARS = 500
MAX_EVIDENCE_ITEMS = 64


def bounded(text: str, limit: int) -> str:
    """``text`` if it fits, else its first ``limit`` characters, its length and a SHA-256 prefix; either
    way with its control characters escaped, since ``jq -r`` prints stored strings raw."""
    if len(text) <= limit:
        return escaped(text)
    import hashlib

    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{escaped(text[:limit])}… [{len(text):,} characters, sha256 {digest}]"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        out = {bounded(str(k), 100): _jsonable(v) for k, v in items[:MAX_EVIDENCE_ITEMS]}
        if len(items) > MAX_EVIDENCE_ITEMS:
            out["…"] = f"{len(items) - MAX_EVIDENCE_ITEMS} more of {len(items)} entries"
        return out
    if isinstance(value, (list, tuple, set)):
        seq = list(value)
        kept = [_jsonable(v) for v in seq[:MAX_EVIDENCE_ITEMS]]
        if len(seq) > MAX_EVIDENCE_ITEMS:
            kept.append(f"… {len(seq) - MAX_EVIDENCE_ITEMS} more of {len(seq)} items")
        return kept
    if isinstance(value, bytes):
        return bounded(value.hex(), MAX_EVIDENCE_CHARS)
    if isinstance(value, str):
        return bounded(value, MAX_EVIDENCE_CHARS)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return bounded(str(value), MAX_EVIDENCE_CHARS)


@dataclass
class Results:
    target: dict[str, Any]
    checks: list[CheckResult]
    nonce_audit: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    duration_s: float = 0.0
    requests: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    # Ctrl-C ended the run: the verdicts are those reached so far, and no gate may treat them as a run.
    incomplete: bool = False
    # The run's guard stopped it (budget.RunGuard): the run deadline passed, or the target was too slow.
    stopped_early: str | None = None
    # A load run (``atoma-conformance load``): no check results, its findings and numbers (issue 17).
    load: dict[str, Any] | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for result in self.checks:
            level = out.setdefault(result.level, {"pass": 0, "fail": 0, "skip": 0, "error": 0})
            level[result.outcome] += 1
        return out

    @property
    def must_failures(self) -> list[CheckResult]:
        return [r for r in self.checks if r.level == "MUST" and r.outcome in ("fail", "error")]

    def certification(self) -> dict[str, str]:
        """A verdict per level: "pass" when no check of that level failed or errored (skips are listed,
        not counted against it), "fail" otherwise; INFO checks never fail certification."""
        out = {}
        found = {f.get("level") for f in (self.load or {}).get("findings", [])}
        for level in ("MUST", "SHOULD"):
            bad = [r for r in self.checks if r.level == level and r.outcome in ("fail", "error")]
            out[level] = "fail" if bad or level in found else "pass"
        out["INFO"] = "pass"
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "results_version": RESULTS_VERSION,
            "suite_version": __version__,
            "vector_set_digest": vector_set_digest(),
            "catalogue_size": len(CATALOGUE),
            "target": self.target,
            "options": self.options,
            "seed": self.seed,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "counts": self.counts(),
            "certification": self.certification(),
            "nonce_audit": self.nonce_audit,
            "checks": [vars(r) for r in self.checks],
            **({"incomplete": True} if self.incomplete else {}),
            **({"stopped_early": self.stopped_early} if self.stopped_early else {}),
            **({"load": self.load} if self.load is not None else {}),
        }

    def write(self, path: Path) -> None:
        """Write results.json atomically, never through a link planted at its name (UserError then)."""
        from .paths import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        write_atomic(path, text.encode("utf-8"), "--report-dir")

    @classmethod
    def read(cls, path: Path) -> Results:
        doc = json.loads(path.read_text(encoding="utf-8"))
        results = cls(
            doc["target"],
            [CheckResult(**c) for c in doc["checks"]],
            doc.get("nonce_audit", {}),
            doc.get("started", 0.0),
            doc.get("duration_s", 0.0),
            doc.get("requests", 0),
            doc.get("options", {}),
            doc.get("seed"),
            bool(doc.get("incomplete", False)),
            doc.get("stopped_early"),
            doc.get("load"),
        )
        return results

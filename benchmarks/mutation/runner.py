"""Run the whole check catalogue against one (mutated or clean) strict mock and compare the verdicts.

The node runs in its own interpreter from a scratch copy of ``conformance/`` and ``mock_node/``
(:mod:`.node_process`); the suite runs here, from the unmutated tree, exactly as
tests/test_meta_faults.py ``run_catalogue`` runs it against an embedded mock (same keys, same
targets, a clock the suite advances instead of sleeping). A mutant is killed when any check's outcome
differs from the clean run's on any configuration; a mutant whose node does not start is killed as a
crash, and one that runs past the per-mutant timeout is killed as a timeout (its node is ended, so
the rest of the run fails fast).
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import select
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.checks import CATALOGUE, Run, Target
from conformance.client import ClientOptions, ConfidentialClient, NodeFace
from conformance.protocol import Scheme, SuiSigner
from conformance.textsafe import one_line
from mock_node.config import DEFAULT_MODELS, MockConfig

from .node_process import API_KEYS, CONFIGURATIONS, NODE_FACE_STACK, SharedClock
from .operators import Mutant, apply

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("node_process.py")
PACKAGES = ("conformance", "mock_node")
# The suite's keys when it stands in for the proxy, one per scheme, as tests/test_meta_faults.py has them.
SIGNERS = {scheme.name: SuiSigner(scheme, bytes(range(32))) for scheme in Scheme}
START_TIMEOUT_S = 30.0
# Per exchange: far above what the in-process mock needs (milliseconds), far below the suite's
# defaults, so that a node that hangs one exchange does not hold the mutant for minutes.
OPTIONS = ClientOptions(timeout_s=10.0, deadline_s=20.0)

Outcomes = dict[str, dict[str, str]]  # configuration -> check id -> outcome


@dataclass
class SuiteRun:
    status: str  # "ran", "crashed" (the node did not start) or "timeout"
    outcomes: Outcomes = field(default_factory=dict)
    detail: str = ""
    seconds: float = 0.0


def make_scratch(dest: Path, source: Path = ROOT) -> None:
    """Copy the two packages the node imports, byte-compiled so that only a mutated file is recompiled.

    Checked-hash pycs are validated against the source's hash, not its mtime: a mutant written in the
    same second as its original, with the same size, cannot be served a stale pyc.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        shutil.rmtree(dest / package, ignore_errors=True)
        shutil.copytree(source / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
        compileall.compile_dir(
            dest / package, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH, workers=1
        )


def _expected(name: str) -> tuple[str, MockConfig, SuiSigner]:
    """What the suite knows of the node before it starts (its registered keys), from unmutated code,
    and the stack owner it signs as on the node face."""
    _, face, scheme = next(c for c in CONFIGURATIONS if c[0] == name)
    signer = SIGNERS[scheme]
    owners = {NODE_FACE_STACK: signer.address} if face == "node" else {}
    config = MockConfig(face=face, signer_scheme=Scheme[scheme], stack_owners=owners)  # type: ignore[arg-type]
    return face, config, signer


def run_catalogue(name: str, url: str, clock: SharedClock) -> dict[str, str]:
    """Every check's outcome against the node at ``url`` (configuration ``name``)."""
    face, config, signer = _expected(name)
    hop = NodeFace(signer, NODE_FACE_STACK, config.node_public_key) if face == "node" else None

    def make(key: str | None) -> ConfidentialClient:
        return ConfidentialClient(url, key, node_face=hop, options=OPTIONS)

    target = Target(
        url,
        API_KEYS[0] if face == "proxy" else None,
        DEFAULT_MODELS[0],
        DEFAULT_MODELS[1],
        DEFAULT_MODELS[2],
        config.signer_address,
        API_KEYS[1] if face == "proxy" else None,
        embedded=True,
        profile=config.profile,
        face=face,  # type: ignore[arg-type]
    )
    client = make(target.api_key)
    try:
        run = Run(target, client, client_factory=make, sleep=clock.advance)
        return {check.id: check.run(run).outcome for check in CATALOGUE}
    finally:
        client.close()


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else b""


def run_suite(
    scratch: Path,
    *,
    baseline: Outcomes | None = None,
    timeout: float = 60.0,
    coverage_out: Path | None = None,
) -> SuiteRun:
    """Start the node from ``scratch`` and run the catalogue on each configuration.

    With a ``baseline``, stop at the first configuration whose outcomes differ (the mutant is killed;
    the rest would only cost time).
    """
    started = time.monotonic()
    clock_file = scratch / "clock"
    clock_file.write_bytes(bytes(8))
    clock = SharedClock(clock_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COV_", "COVERAGE"))}
    env.update(PYTHONPATH=str(scratch), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    owners = json.dumps({scheme: signer.address for scheme, signer in SIGNERS.items()})
    argv = [sys.executable, str(CHILD), str(clock_file), owners]
    if coverage_out is not None:
        argv.append(str(coverage_out))
    stderr_path = scratch / "node.stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our own script, our own interpreter
            argv, cwd=scratch, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(timeout, expire)
    watchdog.start()
    result = SuiteRun("ran")
    try:
        line = _first_line(proc, START_TIMEOUT_S)
        if not line:
            result.status = "crashed"
            proc.kill()
            proc.wait()
            lines = stderr_path.read_bytes().decode("utf-8", "replace").strip().splitlines()
            result.detail = one_line(lines[-1] if lines else f"exit code {proc.returncode}", 200)
            return result
        urls: dict[str, str] = json.loads(line)
        for name, _, _ in CONFIGURATIONS:
            outcomes = run_catalogue(name, urls[name], clock)
            result.outcomes[name] = outcomes
            if baseline is not None and any(outcomes.get(k) != v for k, v in baseline[name].items()):
                break
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        result.seconds = time.monotonic() - started
    if timed_out.is_set():
        result.status = "timeout"
        result.detail = f"still running after {timeout:g} s; the node was ended"
    return result


def compare(baseline: Outcomes, mutated: Outcomes) -> list[tuple[str, str, str, str]]:
    """(configuration, check, clean outcome, mutant outcome) for every check whose outcome changed."""
    return [
        (name, check, clean, mutated[name].get(check, "missing"))
        for name, checks in baseline.items()
        if name in mutated
        for check, clean in checks.items()
        if mutated[name].get(check) != clean
    ]


# --- worker processes -------------------------------------------------------------------------------

_SCRATCH: Path | None = None
_ORIGINALS: dict[str, bytes] = {}


def init_worker(base: str) -> None:
    """Each worker process gets its own scratch copy (a mutant is written into it, then undone)."""
    global _SCRATCH
    _SCRATCH = Path(base) / f"worker-{os.getpid()}"
    make_scratch(_SCRATCH, source=Path(base) / "source")


def run_mutant(mutant: Mutant, baseline: Outcomes, unstable: dict[str, list[str]], timeout: float) -> dict[str, Any]:
    """The verdict on one mutant, as a JSON-ready record."""
    assert _SCRATCH is not None, "init_worker first"
    path = _SCRATCH / mutant.file
    original = _ORIGINALS.setdefault(mutant.file, path.read_bytes())
    stable = {
        name: {k: v for k, v in checks.items() if k not in unstable.get(name, [])} for name, checks in baseline.items()
    }
    path.write_bytes(apply(original, mutant))
    try:
        run = run_suite(_SCRATCH, baseline=stable, timeout=timeout)
    finally:
        path.write_bytes(original)
    changed = compare(stable, run.outcomes) if run.status == "ran" else []
    status = run.status if run.status != "ran" else ("killed" if changed else "survived")
    return {
        "key": mutant.key,
        "file": mutant.file,
        "qualname": mutant.qualname,
        "line": mutant.line,
        "statement_line": mutant.statement_line,
        "operator": mutant.operator,
        "description": mutant.description,
        "status": status,
        "changed": [list(c) for c in changed[:12]],
        "changed_count": len(changed),
        "detail": run.detail,
        "seconds": round(run.seconds, 2),
    }

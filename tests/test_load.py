"""``atoma-conformance load``: the bounded audit as data, and the command end to end against the mock.

The end-to-end runs are subprocesses (the engine is one anyway: Locust monkey-patches the standard
library, which must not happen inside pytest), each a few seconds long against the embedded mock.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance.exits import UserError
from conformance.load.audit import IndexObserver, NonceIndex, Tally, ingest, key_fingerprint
from conformance.load.judge import LoadJudge
from conformance.load.measure import error_class, percentile
from conformance.load.plan import LoadPlan, parse_mix
from conformance.records import HttpRecord, LockRecord, analyse_lock
from conformance.resources import results_schema
from mock_node.faults import CATALOGUE as FAULT_CATALOGUE
from mock_node.faults import Fault

CLI = [sys.executable, "-m", "conformance.cli"]
RUN_TIMEOUT_S = 120


# --- the bounded nonce index ----------------------------------------------------------------------------


def _nonce(i: int) -> bytes:
    return i.to_bytes(12, "big")


def test_the_index_finds_an_exact_repeat_and_names_the_first_key_and_worker() -> None:
    index = NonceIndex(capacity=64)
    assert index.add(_nonce(1), 11, origin=0) is None
    assert index.add(_nonce(2), 12, origin=1) is None
    repeat = index.add(_nonce(1), 13, origin=1)
    assert repeat is not None and repeat.first_key == 11 and repeat.first_origin == 0
    assert index.cross_key_repeats == 1 and index.cross_origin_repeats == 1
    # Same first 8 bytes, other last 4: not a repeat (the index compares all 12 bytes).
    assert index.add(_nonce(1)[:8] + b"\x00\x00\x00\x09", 14) is None


def test_the_index_is_bounded_and_still_sees_the_last_half_capacity() -> None:
    """Memory: two generations of ``capacity`` slots, whatever the number of nonces; a repeat within the
    last ``capacity // 2`` nonces is always found."""
    index = NonceIndex(capacity=64)
    for i in range(10_000):
        assert index.add(_nonce(i), i + 1) is None
    assert index.generations > 100  # retired, not grown
    for i in range(10_000 - 32, 10_000):
        assert index.add(_nonce(i), 1) is not None
    assert index.add(_nonce(5), 1) is None  # long forgotten, and the report says how many generations


def test_the_index_refuses_a_capacity_it_cannot_mask() -> None:
    with pytest.raises(ValueError, match="power of two"):
        NonceIndex(capacity=100)


def test_a_worker_ships_only_nonces_new_to_it_and_the_master_finds_only_cross_worker_repeats() -> None:
    """A repeat within a worker is that worker's finding; the master must not count it again."""
    workers = [IndexObserver(NonceIndex(capacity=64), origin) for origin in (0, 1)]
    for w in workers:
        w.shipping = True
    key_a, key_b, key_c = "aa" * 16, "bb" * 16, "cc" * 16
    assert workers[0].observe("any", _nonce(7), f"{key_a} chat response") is None
    local = workers[0].observe("any", _nonce(7), f"{key_b} chat response")  # found by worker 0 itself
    assert local is not None and local.first.where.split(" ")[0] != key_b
    assert workers[1].observe("any", _nonce(7), f"{key_c} chat response") is None  # new to worker 1
    master = NonceIndex(capacity=64)
    assert ingest(master, workers[0].drain(), 0) == 0
    assert ingest(master, workers[1].drain(), 1) == 1  # the one repeat only the master sees
    assert workers[0].drain() == b""  # drained


def test_a_same_key_repeat_is_named_by_the_key_itself() -> None:
    """The oracle's ``across_keys`` compares the first words of the two uses: a repeat under the same key
    (a stream's chunks) must not read as NONCE-004."""
    observer = IndexObserver(NonceIndex(capacity=64))
    key = "ab" * 16
    observer.observe("any", _nonce(3), f"{key} chat chunk 0")
    repeat = observer.observe("any", _nonce(3), f"{key} chat chunk 1")
    assert repeat is not None and repeat.first.where.split(" ")[0] == key


def test_key_fingerprint_is_never_the_empty_marker() -> None:
    assert key_fingerprint("0" * 32) != 0
    assert key_fingerprint("not hex") != 0


# --- tallies, mixes, plans ------------------------------------------------------------------------------


def test_a_tally_keeps_counts_and_a_few_capped_examples_and_merges() -> None:
    worker = Tally()
    for i in range(20):
        worker.finding("NONCE-004", f"reason {i} " + "x" * 1000)
    worker.signer("0x" + "1" * 64)
    master = Tally()
    master.merge(worker.take())
    master.merge(worker.take())  # an empty delta changes nothing
    assert master.counts == {"NONCE-004": 20}
    assert len(master.examples["NONCE-004"]) == 5 and all(
        len(e) <= 340 for e in master.examples["NONCE-004"]
    )  # 300 + the cut's note
    assert master.signers == {"0x" + "1" * 64}


@pytest.mark.parametrize(
    ("text", "field_reason"),
    [
        ("chat", "expected NAME=WEIGHT"),
        ("chat=1,video=2", "unknown kind 'video'"),
        ("chat=-1", "whole number"),
        ("chat=0,stream=0", "every weight is 0"),
    ],
)
def test_a_bad_mix_names_the_option_and_the_reason(text: str, field_reason: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_mix(text)
    assert caught.value.field == "--mix" and field_reason in caught.value.reason


def test_a_mix_with_embeddings_needs_an_embeddings_model_on_a_target() -> None:
    assert parse_mix("chat=1,embeddings=0", embeddings=False)["embeddings"] == 0
    with pytest.raises(UserError, match="embedding-model"):
        parse_mix("embeddings=1", embeddings=False)


@pytest.mark.parametrize(("cap", "workers"), [(10, 3), (1, 2), (1000, 7), (2, 2)])
def test_worker_shares_add_up_to_the_cap_exactly(cap: int, workers: int) -> None:
    plan = LoadPlan("master", "http://127.0.0.1:1", "m", None, 1, 1.0, 5.0, cap)
    shares = [plan.for_worker(i, workers)["budget_share"] for i in range(workers)]
    assert sum(shares) == cap and max(shares) - min(shares) <= 1


def test_the_deployment_key_never_goes_into_a_workers_plan() -> None:
    plan = LoadPlan("master", "https://proxy.example", "m", None, 1, 1.0, 5.0, None)
    assert plan.for_worker(0, 1)["shared_api_key"] is None


def test_percentiles_of_a_histogram_window() -> None:
    window = {1: 50, 2: 40, 100: 10}
    assert percentile(window, 0.5) == 1.0 and percentile(window, 0.9) == 2.0 and percentile(window, 0.99) == 100.0
    assert percentile({}, 0.5) is None


@pytest.mark.parametrize(
    ("status", "error", "finding", "kind"),
    [
        (200, None, None, None),
        (200, None, "NONCE-004 x", "finding"),
        (429, None, None, "shed-429"),
        (503, None, None, "shed-503"),
        (404, None, None, "http-4xx"),
        (500, None, None, "http-5xx"),
        (None, "read timeout after 30 s", None, "timeout"),
        (None, "connection reset", None, "transport"),
    ],
)
def test_error_classes(status: int | None, error: str | None, finding: str | None, kind: str | None) -> None:
    failure = error_class(status, error, finding)
    assert (failure[0] if failure else None) == kind


# --- the command, end to end ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _load(tmp_path: Path, *args: str, name: str = "r") -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / name
    proc = subprocess.run(
        [*CLI, "load", "--report-dir", str(report), "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=tmp_path,
        env=_env(),
    )
    doc = (
        json.loads((report / "results.json").read_text(encoding="utf-8")) if (report / "results.json").exists() else {}
    )
    return proc, doc


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATOMA_", "ATOMASDK_"))}
    env.pop("COV_CORE_SOURCE", None)  # the engine is not measured for coverage
    return env


def _findings(doc: dict[str, Any]) -> dict[str, int]:
    return {f["check_id"]: f["count"] for f in doc["load"]["findings"]}


def test_a_short_load_against_the_strict_mock_judges_every_answer_and_finds_nothing(tmp_path: Path) -> None:
    proc, doc = _load(tmp_path, "--duration", "5", "--users", "4")
    assert proc.returncode == 0, proc.stderr
    load = doc["load"]
    jsonschema.validate(doc, results_schema())
    assert load["findings"] == [] and load["errors"] == []
    assert load["exchanges"] > 50 and load["requests"] == 2 * load["exchanges"]  # a lock per exchange
    assert {e["name"] for e in load["endpoints"]} == {"lock", "chat", "chat-stream", "completions", "embeddings"}
    assert load["nonce_audit"]["messages"] > load["exchanges"]  # streams have many messages
    assert load["nonce_audit"]["cross_key_repeats"] == 0 and load["nonce_audit"]["within_key_reuses"] == 0
    assert load["signers"]["distinct"] == 1
    assert len(load["series"]) >= 4 and load["server_rss_mb"]
    assert doc["checks"] == [] and doc["certification"]["MUST"] == "pass"
    assert "no finding in" in proc.stderr
    assert 'tests="1" failures="0" errors="0"' in (tmp_path / "r" / "junit.xml").read_text(encoding="utf-8")
    assert (tmp_path / "r" / "report.html").read_text(encoding="utf-8").count("<svg") >= 3


def test_the_compat_profile_fails_on_the_stream_nonce_reuse_under_load(tmp_path: Path) -> None:
    """The upstream node's one nonce per stream (protocol.md 8.3) is a MUST failure, under load too."""
    proc, doc = _load(tmp_path, "--duration", "3", "--users", "4", "--mock-profile", "atoma-node-compat")
    assert proc.returncode == 1, proc.stderr
    assert "NONCE-003" in _findings(doc) and doc["certification"]["MUST"] == "fail"
    assert doc["load"]["nonce_audit"]["within_key_reuses"] > 0
    assert doc["target"]["detected_profile"] == "atoma-node-compat"
    junit = (tmp_path / "r" / "junit.xml").read_text(encoding="utf-8")  # a CI reporter shows the run red
    assert 'failures="1"' in junit and "NONCE-003 under load" in junit


def test_max_requests_is_a_hard_cap(tmp_path: Path) -> None:
    proc, doc = _load(tmp_path, "--duration", "60", "--users", "8", "--max-requests", "41")
    assert proc.returncode == 0, proc.stderr
    assert doc["load"]["stopped_by"] == "max-requests" and doc["load"]["requests"] <= 41


def test_a_master_and_two_workers_merge_their_audit_and_find_a_cross_worker_nonce_repeat(tmp_path: Path) -> None:
    """The planted fault (one response nonce for every answer) repeats a nonce across the two workers'
    exchanges: only the master's merged audit can see those repeats, and it names them NONCE-004."""
    port = str(_free_port())
    report = tmp_path / "d"
    command = [*CLI, "load", "--master", "--expect-workers", "2", "--master-port", port, "--duration", "4"]
    command += ["--users", "4", "--mock-fault", "static-nonce", "--report-dir", str(report), "--quiet"]
    pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    master = subprocess.Popen(command, cwd=tmp_path, env=_env(), **pipes)
    time.sleep(1.0)
    worker = [*CLI, "load", "--worker", "--master-port", port]
    workers = [subprocess.Popen(worker, cwd=tmp_path, env=_env(), **pipes) for _ in range(2)]
    try:
        _, err = master.communicate(timeout=RUN_TIMEOUT_S)
        outs = [w.communicate(timeout=30) for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    assert master.returncode == 1, err
    assert all(w.returncode == 0 for w in workers), outs
    doc = json.loads((report / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, results_schema())
    load = doc["load"]
    assert load["mode"] == "distributed" and load["workers"] == 2
    assert load["nonce_audit"]["cross_worker_repeats"] > 0
    assert _findings(doc)["NONCE-004"] >= load["nonce_audit"]["cross_worker_repeats"]
    assert "across workers" in err


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--mix", "chat=1,video=1"], "--mix"),
        (["--worker", "--target", "http://127.0.0.1:1"], "--target"),
        (["--target", "http://127.0.0.1:1"], "--model"),
        (["--mock-fault", "no-such-fault"], "--mock-fault"),
        (["--users", "0"], "--users"),
        (["--master-port", "70000"], "--master-port"),
    ],
)
def test_bad_options_exit_2_with_one_line_naming_the_option(tmp_path: Path, args: list[str], field: str) -> None:
    proc, _ = _load(tmp_path, *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in proc.stderr


CONCURRENCY_FAULTS = [f for f in FAULT_CATALOGUE if f.concurrent]


def test_there_are_concurrency_faults_to_prove() -> None:
    assert {f.name for f in CONCURRENCY_FAULTS} >= {"handler-key-race", "handler-nonce-race"}


@pytest.mark.parametrize("fault", CONCURRENCY_FAULTS, ids=[f.name for f in CONCURRENCY_FAULTS])
def test_load_finds_each_concurrency_fault_in_a_few_seconds(tmp_path: Path, fault: Fault) -> None:
    """A serial run passes under these faults (tests/test_meta_faults.py proves it); eight users for four
    seconds make every check the fault names fail."""
    proc, doc = _load(tmp_path, "--duration", "4", "--users", "8", "--mock-fault", fault.name)
    assert proc.returncode == 1, proc.stderr
    assert set(fault.caught_by) <= set(_findings(doc)), _findings(doc)


# --- load shed ------------------------------------------------------------------------------------------


def _lock_answer(status: int, code: str, media: str = "application/json") -> LockRecord:
    body = json.dumps({"error": {"code": code, "message": "busy"}}).encode()
    return analyse_lock(HttpRecord("POST", "/v1/nodes/lock", status, {"content-type": media}, body))


@pytest.mark.parametrize(("status", "code"), [(429, "TOO_MANY_REQUESTS"), (503, "SERVICE_UNAVAILABLE")])
def test_a_well_formed_429_or_503_is_load_shed_not_a_finding(status: int, code: str) -> None:
    """Table 10.1 lets a proxy shed load: counted, never judged as a lock that should have been granted."""
    judge = LoadJudge(api_key="k")
    assert judge.lock(_lock_answer(status, code)) is False
    assert judge.tally.shed == 1 and judge.tally.counts == {}


def test_a_shed_answer_is_still_held_to_the_refusal_rules() -> None:
    judge = LoadJudge(api_key="k")
    judge.lock(_lock_answer(429, "SERVICE_UNAVAILABLE"))  # Table 10.1 pairs that code with 503
    judge.lock(_lock_answer(503, "SERVICE_UNAVAILABLE", media="text/html"))
    assert set(judge.tally.counts) == {"ERR-026", "ERR-018"}


def test_a_refused_api_key_is_a_setup_problem_not_a_finding() -> None:
    judge = LoadJudge(api_key="k")
    assert judge.lock(_lock_answer(401, "AUTH_ERROR")) is False
    assert judge.tally.refused_key == 1 and judge.tally.counts == {}


def test_a_500_lock_under_load_is_a_finding() -> None:
    judge = LoadJudge(api_key="k")
    judge.lock(_lock_answer(500, "INTERNAL_ERROR"))
    assert judge.tally.counts == {"LOCK-001": 1}


def test_a_worker_without_a_master_gives_up_and_names_the_option(tmp_path: Path) -> None:
    proc, _ = _load(tmp_path, "--worker", "--master-port", str(_free_port()), "--worker-wait", "2s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("atoma-conformance: error: --master-host: no master")


def test_a_master_without_its_workers_gives_up_and_names_the_option(tmp_path: Path) -> None:
    args = ["--master", "--expect-workers", "2", "--master-port", str(_free_port()), "--worker-wait", "1s"]
    proc, doc = _load(tmp_path, *args)
    assert proc.returncode == 2 and doc == {}
    assert proc.stderr.strip().splitlines() == [
        "atoma-conformance: error: --expect-workers: 0 of 2 workers connected within 1 s"
    ]


def test_the_index_buffers_are_what_the_docs_say() -> None:
    """docs/load.md and the audit's docstring promise 22 bytes a slot, two generations: 44 MiB at 2^20."""
    index = NonceIndex(capacity=1 << 10)
    table = index._current
    per_slot = sum(buffer.itemsize for buffer in (table.hi, table.lo, table.key, table.origin))
    assert per_slot == 22 and len(table.hi) == 1 << 10

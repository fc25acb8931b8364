"""The run's time bound and the too-slow judgement (conformance.guard), shared by run and fuzz."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conformance.budget import RunStopped
from conformance.cli import main
from conformance.client import ClientOptions, ConfidentialClient
from conformance.guard import RunGuard, Usability
from conformance.records import HttpRecord, cut_off
from tests.hostile_server import hostile_node

CHAT = "/v1/confidential/chat/completions"


def http(error: str | None, status: int | None = 200, path: str = CHAT) -> HttpRecord:
    elapsed = 120.0 if error == "deadline" else 0.1  # a deadline hit after the whole 120 s
    return HttpRecord("POST", path, status, error=error, elapsed_s=elapsed)


def test_cut_off_names_every_way_an_answer_is_not_whole() -> None:
    assert cut_off(http(None)) is None
    assert cut_off(http("stopped")) is None, "a stream stopped for broken framing is STREAM-003's evidence"
    for error in ("timeout", "deadline", "too-large", "content-encoding", "RemoteProtocolError"):
        assert cut_off(http(error)) == error
    assert cut_off(http(None, status=None)) == "no answer"


def test_five_of_the_first_six_cut_off_make_a_target_unusable() -> None:
    judge = Usability(timeout_s=30, deadline_s=120)
    for error in ("deadline", None, "deadline", "deadline", "deadline"):
        judge.observe(http(error))
        assert judge.unusable is None
    judge.observe(http("deadline"))
    assert judge.unusable == "target too slow: 5 of the first 6 exchanges hit the 120 s exchange deadline"


def test_a_lock_answered_in_time_neither_counts_nor_breaks_a_run_of_cut_offs() -> None:
    judge = Usability(timeout_s=30, deadline_s=120)
    for _ in range(4):
        judge.observe(http(None, path="/v1/nodes/lock"))
        judge.observe(http("timeout", status=None))
    assert judge.unusable is None
    judge.observe(http(None, path="/v1/nodes/lock"))
    judge.observe(http("timeout", status=None))
    assert judge.unusable == "target too slow: 5 of the first 5 exchanges hit the 30 s read timeout"


def test_a_target_that_overruns_the_cap_is_unusable_not_slow() -> None:
    judge = Usability(timeout_s=30, deadline_s=120)
    for _ in range(5):
        judge.observe(http("too-large"))
    assert judge.unusable == "target unusable: 5 of the first 5 exchanges ran past the 32 MiB response cap"


def test_the_run_deadline_stops_sending_and_bounds_each_exchange() -> None:
    now = [0.0]
    guard = RunGuard(10.0, timeout_s=30, deadline_s=120, clock=lambda: now[0])
    client = ConfidentialClient("http://127.0.0.1:9", None, options=ClientOptions(guard=guard))
    try:
        assert client._deadline_s() == 10.0, "the exchange gets what is left of the run, not its 120 s"
        now[0] = 9.5
        assert client._deadline_s() == pytest.approx(0.5)
        now[0] = 10.0
        with pytest.raises(RunStopped, match=r"run deadline: 10 s passed \(--run-deadline\)"):
            client.request("GET", "/")
        assert client.requests_sent == 0, "nothing is sent once the run is over"
    finally:
        client.close()


def test_a_slow_target_stops_the_run_with_exit_2_and_nothing_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock answers at once; every answer then drips until the exchange deadline."""
    with hostile_node("slow-drip") as node:
        started = time.monotonic()
        code = main(
            [
                *("run", "--target", node.url, "--model", "m", "--api-key", "hostile-key-123"),
                *("--timeout", "1", "--deadline", "1.5", "--report-dir", str(tmp_path)),
            ]
        )
        took = time.monotonic() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and took < 30
    expected = "target too slow: 5 of the first 5 exchanges dripped less than 1 KiB in the 1 s read timeout"
    assert err[-1] == f"atoma-conformance: error: {expected}"
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["stopped_early"].startswith("target too slow")
    judged = [c for c in results["checks"] if c["category"] not in ("LOCK",) and c["outcome"] in ("pass", "fail")]
    assert judged == [], "a cut-off answer is neither a served answer nor a refusal"


def test_whole_answers_slower_than_the_read_timeout_count_too() -> None:
    """A body dripped for 30 s and then ended is judged, but five of them make a target untestable."""
    judge = Usability(timeout_s=30, deadline_s=120)
    for _ in range(4):
        assert judge.observe(HttpRecord("POST", CHAT, 200, elapsed_s=31.0)) is None, "still judged"
    judge.observe(HttpRecord("POST", CHAT, 200, elapsed_s=2.0))
    assert judge.unusable is None and judge.cut_total == 0
    judge.observe(HttpRecord("POST", CHAT, 200, elapsed_s=45.0))
    assert (
        judge.unusable == "target too slow: 5 of the first 6 exchanges took longer than the 30 s read timeout to answer"
    )


def test_a_drip_and_a_flood_of_tiny_chunks_are_cut_like_timeouts() -> None:
    from conformance.client import _Pace

    started = time.monotonic()
    drip = _Pace(started - 31, stall_after_s=30)
    assert drip.problem(received=600) == "drip", "600 bytes in a whole read timeout is a stall"
    assert _Pace(started - 31, stall_after_s=30).problem(received=4096) is None, "a slow stream is not"
    flood = _Pace(started, stall_after_s=30, max_pieces=3)
    assert [flood.problem(received=n) for n in (1, 2, 3, 4)] == [None, None, None, "too-fragmented"]
    judge = Usability(timeout_s=30, deadline_s=120)
    for _ in range(5):
        judge.observe(http("drip"))
    assert (
        judge.unusable == "target too slow: 5 of the first 5 exchanges dripped less than 1 KiB in the 30 s read timeout"
    )

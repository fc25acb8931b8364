"""The family sweep (issue 16): every fuzz campaign first sends every mutation family on every endpoint
the target has, in both stream modes where it streams, whatever the seed; the summary and the JSON
list each family with its requests and its outcome; a budget too small for the sweep names the cells
it left. Against a chat-only node that serves a wrong ``plaintext_body_hash``, seed 0 used to find
nothing in 20 s (seed 5 did)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import member_table
from conformance import strategies as fs
from conformance.checks import Target
from conformance.cli import main
from conformance.client import ConfidentialClient
from conformance.fuzz.campaign import (
    CAMPAIGN_MUTATIONS,
    DEFAULT_LOCK_RETRIES,
    Campaign,
    CampaignConfig,
    CampaignResult,
    plan,
    sweep_plan,
)
from conformance.fuzz.command import _result_json, _summary
from conformance.fuzz.guard import Guard
from conformance.fuzz.sweep import Mode, modes_of, sweep_order
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.testing import running_node

CHAT = DEFAULT_MODELS[0]
KEY = "sweep-test-key-0001"
FAMILIES = [f.name for f in fs.MUTATION_FAMILIES] + [m.name for m in CAMPAIGN_MUTATIONS]
TEXT_MODES = ["chat", "chat stream", "completions", "completions stream"]
FAMILY_CELLS = len(FAMILIES) * len(TEXT_MODES)  # 25 families x 4 modes = 100
CELLS = FAMILY_CELLS + len(member_table.COVER)  # and the member table's cover (13 cases), on chat


@pytest.fixture(scope="module")
def faulty() -> Iterator[str]:
    """A chat-only node (it lists and serves one model) that serves a request whose hash is wrong."""
    with running_node(MockConfig(models=(CHAT,), faults=("accept-wrong-plaintext-hash",))) as url:
        yield url


@pytest.fixture(scope="module")
def clean() -> Iterator[str]:
    with running_node(MockConfig(models=(CHAT,))) as url:
        yield url


def fuzz_json(
    url: str, report: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any], str]:
    argv = ["fuzz", "--json", "--target", url, "--model", CHAT, "--api-key", KEY, "--report-dir", str(report)]
    code = main([*argv, *extra])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def campaign(url: str, report: Path, **config: Any) -> CampaignResult:
    """A campaign through the API, without sessions (against a --target they wait in real seconds)."""
    target = Target(url, KEY, CHAT)
    with ConfidentialClient(url, KEY) as client:
        return Campaign(CampaignConfig(report_dir=report, **config), target, client, sessions=0).run()


def family(done: dict[str, Any], name: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [row for row in done["sweep"]["families"] if row["family"] == name]
    assert len(rows) == 1
    return rows[0]


# --- the order ------------------------------------------------------------------------------------------


def test_the_order_sends_every_cell_once_and_every_family_on_chat_first() -> None:
    modes = modes_of(["chat", "completions", "embeddings", "images"])
    assert [m.label() for m in modes] == [*TEXT_MODES, "embeddings", "images"]
    order = sweep_order(FAMILIES, modes)
    assert len(order) == len(set(order)) == len(FAMILIES) * 6
    first = order[: len(FAMILIES)]
    assert [cell.family for cell in first] == FAMILIES, "the first pass is every family once"
    assert {cell.mode for cell in first} == {Mode("chat", False)}, "on chat, the endpoint every target has"
    assert modes_of(["embeddings"]) == [Mode("embeddings", False)], "an endpoint that does not stream has one mode"


def test_the_plan_counts_every_cell_of_the_sweep() -> None:
    target = Target("http://127.0.0.1:1", None, CHAT)  # chat only: the chat and completions endpoints
    sweep = sweep_plan(target, "ci")
    assert [m.label() for m in sweep.modes] == TEXT_MODES and len(sweep.to_send()) == CELLS
    with_sweep = plan(CampaignConfig(max_examples=5), target, sessions=0)
    without = plan(CampaignConfig(max_examples=5, mutations=False), target, sessions=0)
    assert with_sweep.stateless - without.stateless == CELLS * (1 + DEFAULT_LOCK_RETRIES + 1)
    live = sweep_plan(target, "live")
    assert len(live.to_send()) == CELLS - len(TEXT_MODES), "the live profile sends no 2 MiB body"


# --- the sweep finds what the seed used to decide -----------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_the_sweep_finds_a_wrong_plaintext_hash_at_every_seed(
    seed: int, faulty: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, done, err = fuzz_json(faulty, tmp_path, capsys, "--seed", str(seed), "--duration", "20s")
    assert code == 1 and done["stopped_by"] == "finding"
    assert done["duration_s"] < 10, "the sweep finds it in seconds, not at the end of the duration"
    assert [f["check_id"] for f in done["findings"]] == ["ERR-007"]
    row = family(done, "hash-bit-flip")
    assert row["outcome"] == "finding" and row["findings"] == ["ERR-007"]
    assert [cell["outcome"] for cell in row["by_cell"]] == ["finding"] * 4, "in every mode"
    others = [r["outcome"] for r in done["sweep"]["families"] if r["family"] != "hash-bit-flip"]
    assert others == ["no finding"] * (len(FAMILIES) - 1), "the fault breaks one rule"
    case = json.loads(Path(done["findings"][0]["case_path"]).read_text())
    assert case["check_id"] == "ERR-007" and case["mutation"].startswith("ERR-007 hash-bit-flip")
    assert "  hash-bit-flip" in err and "FINDING ERR-007" in err


def test_a_sweep_case_replays_like_any_other(
    faulty: str, clean: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, done, _ = fuzz_json(faulty, tmp_path, capsys, "--profile", "live")
    path = done["findings"][0]["case_path"]
    assert main(["replay", path, "--target", faulty, "--api-key", KEY]) == 1
    assert capsys.readouterr().out.startswith("STILL FAILING: ERR-007")
    assert main(["replay", path, "--target", clean, "--api-key", KEY]) == 0
    assert capsys.readouterr().out.startswith("FIXED: ERR-007")


# --- the ledger: every cell, its requests and its outcome -------------------------------------------------


def test_every_cell_is_in_the_results_with_its_requests(clean: str, tmp_path: Path) -> None:
    result = campaign(clean, tmp_path, max_examples=10)
    assert result.findings == [] and result.stopped_by == "examples"
    done = _result_json(CampaignConfig(max_examples=10).resolved(), result, 0)
    sweep = json.loads(json.dumps(done["sweep"]))  # what --json prints
    assert (sweep["cells"], sweep["swept"], sweep["complete"]) == (CELLS, CELLS, True)
    assert sweep["modes"] == TEXT_MODES and sweep["not_swept"] == []
    table = sweep["member_table"]
    assert (table["cases"], table["swept"], table["findings"], table["not_swept"]) == (
        len(member_table.COVER),
        len(member_table.COVER),
        [],
        [],
    )
    assert [row["family"] for row in sweep["families"]] == FAMILIES
    for row in sweep["families"]:
        assert row["outcome"] == "no finding" and row["findings"] == [], row["family"]
        assert [(c["endpoint"], c["stream"]) for c in row["by_cell"]] == [
            ("chat", False),
            ("chat", True),
            ("completions", False),
            ("completions", True),
        ]
        assert all(c["outcome"] == "no finding" and c["requests"] == 2 for c in row["by_cell"]), "a lock and a request"
        assert row["requests"] == 8 and row["swept"] == 4
    assert sweep["requests"] == 2 * CELLS
    assert sweep["random_search"] is True, "the random search follows a clean sweep"
    random = sweep["random_valid_requests"] + sum(row["random_requests"] for row in sweep["families"])
    assert random > 0 and result.requests == sweep["requests"] + random
    text = _summary(CampaignConfig().resolved(), Target(clean, None, CHAT), result)
    lines = [line for line in text.splitlines() if line.startswith("  ") and line.split()[0] in FAMILIES]
    assert len(lines) == len(FAMILIES) and all(line.endswith("  no finding") for line in lines)
    assert "atoma-conformance-sentinel" not in text + json.dumps(done), "no plaintext in a report"


def test_a_budget_too_small_for_the_sweep_names_the_cells_it_left(
    clean: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, done, err = fuzz_json(clean, tmp_path, capsys, "--max-requests", "30")
    sweep = done["sweep"]
    assert code == 0 and done["stopped_by"] == "max-requests" and sweep["complete"] is False
    assert 0 < sweep["swept"] < len(FAMILIES), "the cap ends the first pass"
    left = sweep["not_swept"] + sweep["member_table"]["not_swept"]  # the table's own cells are listed apart
    assert len(left) == CELLS - sweep["swept"]
    assert {cell["reason"] for cell in left} == {"max-requests"}
    outcomes = {row["family"]: row["outcome"] for row in sweep["families"]}
    assert list(outcomes.values()).count("no finding") == sweep["swept"], "one cell each, in the first pass"
    assert outcomes["long-plaintext-hash"] == "not swept"  # the last family of the first pass
    assert f"not swept: {CELLS - sweep['swept']} cells: the --max-requests cap was reached" in err
    (line,) = [line for line in err.splitlines() if line.startswith("  long-plaintext-hash ")]
    assert line.endswith("  not swept") and " - " in line, line


def test_past_the_first_pass_the_sweep_leaves_the_random_search_its_share(clean: str, tmp_path: Path) -> None:
    result = campaign(clean, tmp_path, max_examples=5, max_requests=100)
    sweep = result.sweep
    assert sweep is not None and sweep.random_ran
    assert len(FAMILIES) <= sweep.swept() < CELLS, "every family once, then the rest stops at half the cap"
    assert {reason for _, reason in sweep.not_swept()} == {"sweep-share"}
    assert all(sweep.family_outcome(name) == "no finding" for name in FAMILIES)
    assert sum(sweep.random_requests.values()) > 0, "the random search got the rest"


def test_the_live_profile_reports_the_family_it_does_not_send(clean: str, tmp_path: Path) -> None:
    result = campaign(clean, tmp_path, profile="live", max_examples=2)
    sweep = result.sweep
    assert sweep is not None
    assert sweep.family_outcome("oversize-body") == "not swept"
    oversize = [reason for cell, reason in sweep.not_swept() if cell.family == "oversize-body"]
    assert oversize == ["live-profile"] * len(TEXT_MODES)
    assert all(sweep.family_outcome(name) == "no finding" for name in FAMILIES if name != "oversize-body")


def test_a_duration_too_short_for_the_sweep_says_so(clean: str, tmp_path: Path) -> None:
    target = Target(clean, KEY, CHAT)
    with ConfidentialClient(clean, KEY) as client:
        # A clock that moves a quarter second per request sent: the 5 s run out after 20 requests,
        # inside the first pass, however fast the machine.
        guard = Guard(5.0, client.options, clock=lambda: 0.25 * client.requests_sent)
        config = CampaignConfig(report_dir=tmp_path, duration_s=5.0)
        result = Campaign(config, target, client, sessions=0, guard=guard).run()
    sweep = result.sweep
    assert sweep is not None and result.stopped_by == "duration"
    assert 0 < sweep.swept() < len(FAMILIES)
    assert {reason for _, reason in sweep.not_swept()} == {"duration"}
    assert len(sweep.not_swept()) == CELLS - sweep.swept()

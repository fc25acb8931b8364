"""Privacy by default: a sentinel placed in every prompt and used as the API key appears in no artefact
of a run (results.json, JUnit, HTML, Markdown), nor in its output; fuzz replay cases hold it only with
--keep-plaintext."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.checks.run import Run
from conformance.cli import main
from mock_node.config import MockConfig
from mock_node.testing import running_node

PROMPT_SENTINEL = "atoma-conformance-sentinel-5e57a17e5e57a17e"
KEY_SENTINEL = "KEY-SENTINEL-0c4a1f2e9b7d"
CHAT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def _artefacts(directory: Path) -> dict[str, str]:
    return {str(p): p.read_text(encoding="utf-8", errors="replace") for p in directory.rglob("*") if p.is_file()}


def test_no_artefact_of_a_run_holds_the_prompt_or_the_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Run, "sentinel", lambda self: PROMPT_SENTINEL)
    with running_node(MockConfig(profile="atoma-node-compat")) as url:  # refusals that leak hashes, not text
        code = main(
            ["run", "--target", url, "--model", CHAT_MODEL, "--api-key", KEY_SENTINEL, "--report-dir", str(tmp_path)]
        )
    assert code == 1
    files = _artefacts(tmp_path)
    assert {Path(f).name for f in files} >= {"results.json"}
    output = capsys.readouterr()
    for name, text in {**files, "stdout": output.out, "stderr": output.err}.items():
        assert PROMPT_SENTINEL not in text, f"the prompt leaked into {name}"
        assert KEY_SENTINEL not in text, f"the API key leaked into {name}"


def test_fuzz_cases_hold_the_plaintext_only_when_asked(tmp_path: Path) -> None:
    redacted, kept = tmp_path / "redacted", tmp_path / "kept"
    assert main(["fuzz", "--mock-fault", "usage-mismatch", "--report-dir", str(redacted)]) == 1
    assert main(["fuzz", "--mock-fault", "usage-mismatch", "--report-dir", str(kept), "--keep-plaintext"]) == 1
    assert not any("atoma-conformance-sentinel-" in t for t in _artefacts(redacted).values())
    kept_files = {p: t for p, t in _artefacts(kept).items() if "atoma-conformance-sentinel-" in t}
    assert kept_files and all("/cases/" in p for p in kept_files), "only the replay cases, and only when asked"

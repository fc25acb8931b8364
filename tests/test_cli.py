"""The CLI contract: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance import __version__
from conformance.cli import main


def test_unknown_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("atoma-conformance: error: ")


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "required" in capsys.readouterr().err


def test_check_on_a_missing_directory_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "check", "--dir", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"atoma-conformance: error: --dir: {tmp_path / 'nope'} is not a directory"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"atoma-conformance {__version__}"


def test_help_lists_the_exit_code_contract(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Exit codes: 0 success; 1 a verdict failed; 2 the command could not be carried out." in " ".join(
        capsys.readouterr().out.split()
    )


def test_console_script_runs_without_a_traceback_on_bad_usage() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "vectors", "check", "--dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "atoma-conformance: error: argument --dir: expected one argument"

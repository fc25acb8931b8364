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


def test_every_subcommand_help_says_what_it_does_and_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import build_parser, subparsers

    names = []
    for name, parser in subparsers(build_parser()):
        names.append(name)
        assert parser.description, f"{name}: no description"
        assert "Exit codes" in parser.description, f"{name}: the description does not list the exit codes"
        with pytest.raises(SystemExit) as exc:
            main([*name.split(), "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "Exit codes:" in out and "\n  2 " in out, f"{name} --help does not show the exit codes"
    expected = {"vectors", "vectors generate", "vectors check", "run", "fuzz", "replay", "baseline"}
    expected |= {"baseline create", "diff", "certify", "verify-report", "checks", "keygen", "clients", "mock", "load"}
    assert set(names) == expected


def test_checks_json_is_the_whole_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from conformance.checks import CATALOGUE
    from conformance.clients.checks import CLIENT_CHECKS

    assert main(["checks", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in entries] == [c.id for c in CATALOGUE] + [c.id for c in CLIENT_CHECKS]
    first = entries[0]
    check = CATALOGUE[0]
    assert first["level"] == check.level and first["title"] == check.title
    assert first["category"] == check.category and first["spec_refs"] == list(check.spec)
    assert first["judges"] == "node" and entries[-1]["judges"] == "client"
    assert {e["level"] for e in entries} <= {"MUST", "SHOULD", "INFO"}


def test_keygen_refuses_to_clobber_and_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "owner.key"
    assert main(["keygen", "--out", str(out)]) == 0
    address = capsys.readouterr().out.strip()
    assert address.startswith("0x") and (out.stat().st_mode & 0o777) == 0o600
    first = out.read_text()
    assert main(["keygen", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(
        f"atoma-conformance: error: --out: {out} exists; pass --force to overwrite it"
    )
    assert out.read_text() == first
    out.chmod(0o644)
    assert main(["keygen", "--out", str(out), "--force"]) == 0
    assert out.read_text() != first and (out.stat().st_mode & 0o777) == 0o600

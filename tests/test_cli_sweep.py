"""The bad-input sweep: every subcommand, under every user mistake we could think of, exits 2 with ONE
line on stderr that names the option, argument or file member at fault, and never a traceback.

The table is data: families of bad values crossed with the options that take them. Each row runs
``cli.main`` in-process, in its own tmp_path, with the files it names created there. Nothing reaches
the network but loopback (closed or busy 127.0.0.1 ports), and no row may get as far as real work:
pytest.main, a fuzz campaign, a replay, a client matrix and the mock's server are replaced by a
tripwire, so a row whose input is not refused fails fast, as an "internal error", instead of running
the suite or serving for ever. A timer does the same for a row that blocks (a FIFO read).

``PENDING_OTHERS`` are rows whose fix belongs to another module's owner (runner, fuzz, vectors).
They run like every other row and fail until fixed; they are apart only so the lead can see them.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

from conformance import paths
from conformance.cli import build_parser, main, subparsers
from conformance.exits import UserError

# --- the files a row can ask for ----------------------------------------------------------------

_RESULT = '{"id": "LOCK-001", "level": "MUST", "outcome": "pass", "reason": ""}'
_OK_RESULTS = '{"results_version": 1, "checks": [' + _RESULT + '], "certification": {"MUST": "pass"}}'


def _text(content: str | bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return make


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)

    return make


def _pem_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _reports_dir(path: Path) -> None:
    path.mkdir()
    (path / "results.json").write_text(_OK_RESULTS)


def _full_dir(path: Path) -> None:
    path.mkdir()
    (path / "something").write_text("x")


def _not_executable(path: Path) -> None:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)


FILES: dict[str, Callable[[Path], None]] = {
    "afile": _text("x"),
    "adir": lambda p: p.mkdir(),
    "fifo": lambda p: os.mkfifo(p),
    "empty.json": _text(""),
    "huge.json": _sparse(64 * 1024 * 1024 + 1),
    "binary.json": _text(b"\xff\xfe\x00{"),
    "notjson.json": _text("{nope"),
    "deep.json": _text("[" * 100_000),
    "bignum.json": _text('{"checks": [' + "1" * 5000 + "]}"),
    "list.json": _text("[1, 2]"),
    "string.json": _text('"checks"'),
    "null.json": _text("null"),
    "nochecks.json": _text('{"target": {}}'),
    "checks-string.json": _text('{"checks": "all"}'),
    "check-int.json": _text('{"checks": [7]}'),
    "check-noid.json": _text('{"checks": [{"level": "MUST", "outcome": "pass"}]}'),
    "check-badoutcome.json": _text('{"checks": [{"id": "A-1", "level": "MUST", "outcome": "great"}]}'),
    "check-outcome-int.json": _text('{"checks": [{"id": "A-1", "level": "MUST", "outcome": 1}]}'),
    "check-dupe.json": _text('{"checks": [' + _RESULT + ", " + _RESULT + "]}"),
    "ok.json": _text(_OK_RESULTS),
    "nocert.json": _text('{"checks": [' + _RESULT + "]}"),
    "key.pem": _pem_key,
    "key-text": _text("this is not a key\n"),
    "key-printable32": _text("A" * 32),
    "key-b64-31": _text(base64.b64encode(b"k" * 31).decode()),
    "key-cert.pem": _text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    "key-enc.pem": _text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"),
    "key-bad.pem": _text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"),
    "key-big": _sparse(65 * 1024),
    "bundle-empty": lambda p: p.mkdir(),
    "bundle-reports": _reports_dir,
    "full-dir": _full_dir,
    "manifest.json": _text("{}"),
    "bad name.html": _text("<html>"),
    "not-executable": _not_executable,
    "baseline-bad.json": _text(
        '{"baseline_version": 1, "entries": [{"check_id": "X-1", "reason": "r", "expires": "soon"}]}'
    ),
    "baseline-v9.json": _text('{"baseline_version": 9, "entries": []}'),
}
LONG = "x" * 300  # a file name longer than any file system allows (255 bytes)

# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    argv: tuple[str, ...]
    field: str
    """A regex the one stderr line must match: the option, argument or member at fault (and a reason)."""
    files: tuple[str, ...] = ()
    owner: str = "cli"
    """Whose module the fix is in: cli (here), or runner / fuzz / vectors for PENDING_OTHERS."""


ROWS: list[Row] = []


def row(row_id: str, argv: str | list[str], field: str, *files: str, owner: str = "cli") -> None:
    words = argv.split() if isinstance(argv, str) else argv
    needed = tuple(f for f in FILES if f in words or any(w.startswith(f + "/") for w in words)) + files
    assert row_id not in {r.id for r in ROWS}, row_id
    ROWS.append(Row(row_id, tuple(words), field, tuple(dict.fromkeys(needed)), owner))


def fill(template: str, value: str) -> list[str]:
    """``template``'s words with ``{}`` replaced by ``value`` (which may be empty or hold spaces)."""
    return [value if word == "{}" else word for word in template.split()]


# Input files: each reader refuses what is not a readable regular file, without blocking on a FIFO.
BAD_INPUT_PATHS = {
    "missing": ("missing.json", "no such file|does not exist|no such"),
    "dir": ("adir", "directory|not a regular file"),
    "fifo": ("fifo", "pipe|FIFO|not a regular file"),
    "under-a-file": ("afile/x.json", "no such|not a directory|a part of the path"),
    "empty-name": ("", "empty|no such"),
    "long-name": (LONG + ".json", "too long|no such"),
}
INPUT_SLOTS = {
    "diff-old": ("diff {} ok.json", r"OLD\.json", "cli"),
    "diff-new": ("diff ok.json {}", r"NEW\.json", "cli"),
    "baseline-create": ("baseline create {} --out b.json --expires 2030-01-01", r"RESULTS\.json", "cli"),
    "certify-results": ("certify --results {} --out bundle --key key.pem", "--results", "cli"),
    "certify-key": ("certify --results ok.json --out bundle --key {}", "--key", "cli"),
    "certify-artefact": ("certify --results ok.json --out bundle --key key.pem --artefact {}", "--artefact", "cli"),
    "replay-case": ("replay {}", r"CASE\.json", "cli"),
    "run-baseline": ("run --dry-run --baseline {}", "--baseline", "cli"),
    "run-signer-key": ("run --dry-run --face node --signer-key {}", "--signer-key", "runner"),
}
for slot, (template, field, owner) in INPUT_SLOTS.items():
    for name, (value, reason) in BAD_INPUT_PATHS.items():
        if slot == "run-signer-key" and name != "empty-name":
            reason += "|is not a readable file"  # the runner's own wording, clear enough
        row(f"{slot}-{name}", fill(template, value), rf"{field}.*({reason})", owner=owner)
    if slot != "certify-artefact":  # an artefact has no size limit: it is copied, whatever it is
        row(f"{slot}-huge", fill(template, "huge.json"), rf"{field}.*(bytes|too large|more than)", owner=owner)

# JSON that is not a results.json: each reader names the file and what is wrong with it.
BAD_RESULTS = {
    "empty": ("empty.json", "not JSON"),
    "binary": ("binary.json", "UTF-8"),
    "notjson": ("notjson.json", "not JSON"),
    "deep": ("deep.json", "nested too deeply|not usable JSON|not JSON"),
    "bignum": ("bignum.json", "not usable JSON|digits"),
    "list": ("list.json", "not a results.json.*list"),
    "string": ("string.json", "not a results.json.*string"),
    "null": ("null.json", "not a results.json.*null"),
    "nochecks": ("nochecks.json", "checks"),
    "checks-string": ("checks-string.json", "checks"),
    "check-int": ("check-int.json", r"checks\[0\]"),
    "check-noid": ("check-noid.json", r"checks\[0\]\.id"),
    "check-badoutcome": ("check-badoutcome.json", r"checks\[0\]\.outcome"),
    "check-outcome-int": ("check-outcome-int.json", r"checks\[0\]\.outcome"),
    "check-dupe": ("check-dupe.json", r"checks\[1\]\.id.*twice"),
}
for slot in ("diff-old", "diff-new", "baseline-create", "certify-results"):
    template, field, owner = INPUT_SLOTS[slot]
    for name, (value, reason) in BAD_RESULTS.items():
        row(f"{slot}-{name}", fill(template, value), rf"{field}.*{reason}", owner=owner)
row("certify-results-nocert", "certify --results nocert.json --out bundle --key key.pem", "--results.*certification")
for name in ("notjson", "deep", "list", "binary", "empty"):
    value = BAD_RESULTS[name][0]
    row(f"run-baseline-{name}", f"run --dry-run --baseline {value}", "--baseline")
row("run-baseline-bad-entry", "run --dry-run --baseline baseline-bad.json", r"--baseline.*entries\[0\]\.expires")
row("run-baseline-version", "run --dry-run --baseline baseline-v9.json", r"--baseline.*baseline_version")
for name in ("notjson", "deep", "list", "binary", "empty", "null"):
    value = BAD_RESULTS[name][0]
    row(f"replay-case-{name}", f"replay {value}", r"CASE\.json", owner="fuzz")

# Signing keys: anything but a 32-byte seed, its base64 or a PKCS8 Ed25519 PEM, named by --key.
BAD_KEYS = {
    "text": "key-text",
    "printable32": "key-printable32",
    "b64-31": "key-b64-31",
    "cert-pem": "key-cert.pem",
    "encrypted-pem": "key-enc.pem",
    "malformed-pem": "key-bad.pem",
    "big": "key-big",
    "empty": "empty.json",
}
for name, value in BAD_KEYS.items():
    row(f"certify-key-{name}", f"certify --results ok.json --out bundle --key {value}", "--key")

# Output files: a directory, a FIFO, a missing or non-directory parent, an empty or too long name.
BAD_OUTPUTS = {
    "dir": ("adir", "directory"),
    "fifo": ("fifo", "pipe|FIFO"),
    "no-parent": ("nodir/out", "does not exist"),
    "parent-is-file": ("afile/out", "a part of the path is a file|not a directory"),
    "empty-name": ("", "empty"),
    "long-name": (LONG, "too long"),
}
OUTPUT_SLOTS = {
    "baseline-out": ("baseline create ok.json --out {} --expires 2030-01-01", "--out"),
    "keygen-out": ("keygen --out {}", "--out"),
    "keygen-force-out": ("keygen --force --out {}", "--out"),
    "certify-generate-key": ("certify --generate-key {}", "--generate-key"),
}
for slot, (template, field) in OUTPUT_SLOTS.items():
    for name, (value, reason) in BAD_OUTPUTS.items():
        row(f"{slot}-{name}", fill(template, value), rf"{field}.*({reason})")
row("keygen-out-exists", "keygen --out afile", "--out.*exists.*--force")
row("certify-generate-key-exists", "certify --generate-key afile", "--generate-key.*exists")
row("certify-generate-key-with-results", "certify --generate-key k.pem --results ok.json", "--generate-key")

# Directories to write into: a file, a FIFO, under a file, an empty or too long name.
BAD_DIRS = {
    "file": ("afile", "not a directory|is a directory"),
    "fifo": ("fifo", "not a directory"),
    "under-a-file": ("afile/sub", "a part of the path is a file|is not a directory"),
    "empty-name": ("", "empty"),
    "long-name": (LONG, "too long"),
}
DIR_SLOTS = {
    "clients-report-dir": ("clients --adapter reference --report-dir {}", "--report-dir", "cli"),
    "clients-cache-dir": ("clients --adapter atoma-sdk-py --cache-dir {}", "--cache-dir", "cli"),
    "fuzz-report-dir": ("fuzz --dry-run --report-dir {}", "--report-dir", "cli"),
    "run-report-dir": ("run --dry-run --report-dir {}", "--report-dir", "cli"),
    "vectors-generate-dir": ("vectors generate --dir {}", "--dir", "cli"),
    "certify-out": ("certify --results ok.json --key key.pem --out {}", "--out", "cli"),
}
for slot, (template, field, owner) in DIR_SLOTS.items():
    for name, (value, reason) in BAD_DIRS.items():
        row(f"{slot}-{name}", fill(template, value), rf"{field}.*({reason})", owner=owner)
row("certify-out-not-empty", "certify --results ok.json --key key.pem --out full-dir", "--out.*not empty")
for name, value in (("missing", "nodir"), ("file", "afile"), ("fifo", "fifo"), ("empty-name", "")):
    row(f"vectors-check-dir-{name}", fill("vectors check --dir {}", value), "--dir")

# Bundles to verify, and the key to pin.
for name, value, reason in (
    ("missing", "nodir", "no such directory"),
    ("file", "afile", "not a directory"),
    ("fifo", "fifo", "not a directory"),
    ("empty-dir", "bundle-empty", "not a certification bundle"),
    ("reports-dir", "bundle-reports", "not a certification bundle"),
    ("empty-name", "", "empty"),
):
    row(f"verify-bundle-{name}", fill("verify-report {}", value), rf"BUNDLE_DIR.*{reason}")
for name, value in (
    ("garbage", "garbage!"),
    ("empty", ""),
    ("short", "AAAA"),
    ("31-bytes", base64.b64encode(b"p" * 31).decode()),
    ("non-ascii", "clé"),
    ("hex", "ab" * 32),
):
    row(f"verify-public-key-{name}", ["verify-report", "bundle-reports", "--public-key", value], "--public-key")

# URLs: malformed, IPv6 without its closing bracket, wrong scheme, no host, a bad port, unreachable.
BAD_URLS = {
    "ipv6-unclosed": "http://[::1",
    "ipv6-bad-port": "http://[::1]:abc",
    "ftp": "ftp://example.invalid",
    "no-host": "http://",
    "not-a-url": "not a url",
    "port-out-of-range": "http://127.0.0.1:99999",
    "space": "http://a b",
    "empty": "",
}
for name, value in BAD_URLS.items():
    row(f"run-target-{name}", ["run", "--target", value, "--model", "m"], "--target", owner="runner")
    row(f"fuzz-target-{name}", ["fuzz", "--target", value, "--model", "m"], "--target", owner="fuzz")
    row(f"load-target-{name}", ["load", "--target", value, "--model", "m"], "--target")
    if name not in ("empty",):
        row(f"mock-backend-{name}", ["mock", "--backend", value], "--backend")
row(
    "run-target-unreachable",
    "run --target http://127.0.0.1:{closed} --model m",
    "--target.*unreachable",
    owner="runner",
)
row("fuzz-target-unreachable", "fuzz --target http://127.0.0.1:{closed} --model m", "--target", owner="fuzz")
row("run-target-no-model", "run --target http://127.0.0.1:{closed}", "--model", owner="runner")
row("fuzz-target-no-model", "fuzz --target http://127.0.0.1:{closed}", "--model", owner="fuzz")
row("load-target-unreachable", "load --target http://127.0.0.1:{closed} --model m", "--target")
row("load-target-no-model", "load --target http://127.0.0.1:{closed}", "--model")
row("load-mix-no-weight", "load --mix chat", "--mix.*NAME=WEIGHT")
row("load-mix-unknown-kind", "load --mix chat=1,video=2", "--mix.*video")
row("load-mix-all-zero", "load --mix chat=0", "--mix.*every weight is 0")
row(
    "load-mix-embeddings-without-model", "load --target http://127.0.0.1:{closed} --model m --mix embeddings=1", "--mix"
)
row("load-worker-with-target", "load --worker --target http://127.0.0.1:{closed}", "--target.*master")
row("load-worker-with-mock-fault", "load --worker --mock-fault static-nonce", "--mock-fault.*master")
row("load-master-and-worker", "load --master --worker", "--worker|--master")
row("load-mock-fault-unknown", "load --mock-fault nope", "--mock-fault.*nope")
row("load-insecure-without-target", "load --insecure", "--insecure")

# The KEY checks' options (conformance.keybinding.key_source_from): what they need, and what they refuse.
_T = "run --target http://127.0.0.1:{closed} --model m"
_PKG = "0x" + "ab" * 32
row("run-sui-rpc-bad-url", [*["run", "--sui-rpc"], "ftp://x", "--sui-package", _PKG], "--sui-rpc", owner="runner")
row("run-sui-rpc-without-package", f"{_T} --sui-rpc http://127.0.0.1:9", "--sui-rpc.*--sui-package", owner="runner")
row("run-sui-package-without-rpc", f"{_T} --sui-package {_PKG}", "--sui-package.*--sui-rpc", owner="runner")
row("run-sui-package-not-hex", f"{_T} --sui-package 0xzz", "--sui-package", owner="runner")
row("run-sui-package-too-long", f"{_T} --sui-package 0x{'a' * 65}", "--sui-package", owner="runner")
row(
    "run-attestation-service-alone",
    f"{_T} --attestation-service http://127.0.0.1:9",
    "--attestation-service",
    owner="runner",
)
row(
    "run-attestation-service-bad-url",
    [*["run", "--attestation-service"], "http://"],
    "--attestation-service",
    owner="runner",
)
row("run-max-key-age-alone", f"{_T} --max-key-age 90d", "--max-key-age.*--sui-rpc", owner="runner")
row("run-trust-test-ca-alone", f"{_T} --trust-test-ca", "--trust-test-ca", owner="runner")
row(
    "run-sui-rpc-embedded",
    f"run --sui-rpc http://127.0.0.1:9 --sui-package {_PKG}",
    "--sui-rpc.*embedded",
    owner="runner",
)
row("run-trust-test-ca-embedded", "run --trust-test-ca", "--trust-test-ca.*embedded", owner="runner")
row("run-node-small-id-proxy", f"{_T} --node-small-id 3", "--node-small-id.*--face node", owner="runner")
row(
    "run-node-face-sui-rpc-without-node-small-id",
    f"run --face node --target http://127.0.0.1:{{closed}} --model m --sui-rpc http://127.0.0.1:9 --sui-package {_PKG}",
    "--node-small-id|--signer-key",
    owner="runner",
)
for value in ("0", "-1d", "1y", "", "nan", "99999d"):
    row(f"run--max-key-age-{value or 'empty'}", ["run", f"--max-key-age={value}"], "--max-key-age", owner="runner")

# Numbers: not a number, not finite, negative, zero where a positive one is needed, out of range.
POSITIVE_SECONDS = ("nan", "inf", "-1", "0", "abc", "", "1e999")
POSITIVE_INT = ("0", "-1", "abc", "", "1.5", "nan")
NUMERIC = [
    ("run", "--timeout", POSITIVE_SECONDS, "runner"),
    ("run", "--deadline", POSITIVE_SECONDS, "runner"),
    ("run", "--max-requests", POSITIVE_INT, "runner"),
    ("run", "--workers", POSITIVE_INT, "runner"),
    ("run", "--max-response-bytes", POSITIVE_INT, "runner"),
    ("run --face node", "--stack-small-id", ("-1", "18446744073709551616", "abc", ""), "runner"),
    ("fuzz --dry-run", "--max-examples", POSITIVE_INT, "fuzz"),
    ("fuzz --dry-run", "--max-requests", POSITIVE_INT, "fuzz"),
    ("fuzz --dry-run", "--max-compute-units", POSITIVE_INT, "fuzz"),
    ("fuzz --dry-run", "--rps", ("nan", "inf", "-1", "0", "abc", ""), "fuzz"),
    ("fuzz --dry-run", "--duration", ("0s", "-1", "10x", "", "nan"), "fuzz"),
    ("fuzz --dry-run", "--seed", ("abc", "", "1.5"), "fuzz"),
    ("load", "--users", POSITIVE_INT, "cli"),
    ("load", "--spawn-rate", ("nan", "inf", "-1", "0", "abc", ""), "cli"),
    ("load", "--duration", ("0s", "-1", "10x", "", "nan"), "cli"),
    ("load", "--max-requests", POSITIVE_INT, "cli"),
    ("load", "--expect-workers", POSITIVE_INT, "cli"),
    ("load", "--master-port", ("0", "65536", "abc", ""), "cli"),
    ("load", "--worker-wait", ("0s", "-1", "10x", "", "nan"), "cli"),
    ("load", "--timeout", POSITIVE_SECONDS, "cli"),
    ("clients --adapter reference", "--timeout", POSITIVE_SECONDS, "cli"),
    ("mock", "--port", ("-1", "65536", "70000", "abc", "", "1.5"), "cli"),
    ("mock", "--max-body-bytes", ("-5", "0", "1023", "abc", ""), "cli"),
    ("mock", "--node-small-id", ("-1", "18446744073709551616", "abc", ""), "cli"),
]
for prefix, option, values, owner in NUMERIC:
    for value in values:
        slug = value.replace(".", "_") or "empty"
        row(
            f"{prefix.split()[0]}{option}-{slug}",
            [*prefix.split(), f"{option}={value}"],
            re.escape(option),
            owner=owner,
        )

# Choices.
CHOICES = [
    ("run", "--profile", "runner"),
    ("run", "--face", "runner"),
    ("fuzz", "--profile", "fuzz"),
    ("fuzz", "--mock-profile", "fuzz"),
    ("keygen --out k", "--scheme", "cli"),
    ("checks", "--format", "cli"),
    ("mock", "--profile", "cli"),
    ("mock", "--face", "cli"),
    ("mock", "--signer-scheme", "cli"),
    ("mock", "--format", "cli"),
]
for prefix, option, owner in CHOICES:
    for value in ("nope", ""):
        row(
            f"{prefix.split()[0]}{option}-{value or 'empty'}",
            [*prefix.split(), f"{option}={value}"],
            option,
            owner=owner,
        )

# The mock: everything is refused before it serves.
for name, value in (
    ("ipv6-unclosed", "::1]"),
    ("ipv6-open-bracket", "[::1"),
    ("space", "a b"),
    ("bad-ipv4", "999.1.1.1"),
    ("short-ipv4", "1.2.3"),
    ("empty", ""),
    ("brackets-only", "[]"),
    ("punctuation", "host_name!"),
    ("not-mine", "10.255.255.1"),
):
    row(f"mock-host-{name}", ["mock", f"--host={value}", "--port", "0"], "--host")
row("mock-port-busy", "mock --port {busy}", "--port.*in use")
row("mock-fault-unknown", "mock --fault nope", "--fault.*nope")
row("mock-model-empty", ["mock", "--model", ""], "--model")
row("mock-model-blank", ["mock", "--model", "  "], "--model")
row("mock-api-key-empty", ["mock", "--api-key", ""], "--api-key")
row("mock-api-key-space", ["mock", "--api-key", "a b"], "--api-key")
row("mock-api-key-non-ascii", ["mock", "--api-key", "clé"], "--api-key")
row("mock-stack-owner-shape", "mock --face node --stack-owner nope", "--stack-owner")
row("mock-stack-owner-address", "mock --face node --stack-owner 0x1:1", "--stack-owner")
row("mock-stack-owner-proxy", "mock --stack-owner 0x" + "a" * 64 + ":1", "--stack-owner.*--face node")

# Clients: adapters that cannot work are refused before the matrix runs.
for name, argv, field in (
    ("none", [], "--adapter.*at least one"),
    ("bad-name", ["--adapter", "bad name"], "--adapter.*name"),
    ("non-ascii-name", ["--adapter", "clé=echo"], "--adapter.*name"),
    ("empty-command", ["--adapter", "x="], "--adapter.*empty"),
    ("missing-program", ["--adapter", "x=/nonexistent/adapter"], "--adapter.*no such file"),
    ("unknown-command", ["--adapter", "x=no-such-adapter-command-xyz"], "--adapter.*no such command"),
    ("directory-program", ["--adapter", "x=./adir"], "--adapter.*not a regular file"),
    ("not-executable", ["--adapter", "x=./not-executable"], "--adapter.*not executable"),
    ("unterminated", ["--adapter", 'x="unterminated'], "--adapter.*split"),
    ("unknown-builtin", ["--adapter", "nope"], "--adapter.*built-in"),
    ("twice", ["--adapter", "reference", "--adapter", "reference"], "--adapter.*twice"),
    ("scenario", ["--adapter", "reference", "--scenario", "CLIENT-999"], "--scenario"),
):
    needs = {"not-executable": ("not-executable",), "directory-program": ("adir",)}.get(name, ())
    row(f"clients-{name}", ["clients", *argv], field, *needs)

# Certify's required inputs and artefact names.
row("certify-nothing", "certify", "--results.*required")
row("certify-no-out", "certify --results ok.json", "--out.*required")
row("certify-no-key", "certify --results ok.json --out bundle", "--key.*required")
row(
    "certify-artefact-reserved",
    "certify --results ok.json --out bundle --key key.pem --artefact manifest.json",
    "--artefact.*reserved",
)
row(
    "certify-artefact-bad-name",
    ["certify", "--results", "ok.json", "--out", "bundle", "--key", "key.pem", "--artefact", "bad name.html"],
    "--artefact.*not allowed",
)

# Required arguments, bad dates, empty reasons, and combinations that make no sense.
row("baseline-no-action", "baseline", "ACTION")
row("vectors-no-action", "vectors", "ACTION")
row("baseline-create-no-expires", "baseline create ok.json --out b.json", "--expires")
row("baseline-create-no-out", "baseline create ok.json --expires 2030-01-01", "--out")
for name, value in (("month-13", "2030-13-01"), ("word", "soon"), ("empty", ""), ("us-style", "12/31/2030")):
    row(
        f"baseline-create-expires-{name}",
        ["baseline", "create", "ok.json", "--out", "b.json", "--expires", value],
        "--expires",
    )
row(
    "baseline-create-blank-reason",
    ["baseline", "create", "ok.json", "--out", "b.json", "--expires", "2030-01-01", "--reason", " "],
    "--reason",
)
row("diff-one-file", "diff ok.json", r"NEW\.json")
row("diff-no-files", "diff", r"OLD\.json")
row("replay-no-case", "replay", r"CASE\.json")
row("verify-no-bundle", "verify-report", "BUNDLE_DIR")
row("keygen-no-out", "keygen", "--out")
row("checks-json-and-markdown", "checks --json --format markdown", "--json")

# Every command refuses an option it does not have, and a stray positional argument.
LEAVES = {
    "vectors generate": "vectors generate",
    "vectors check": "vectors check",
    "run": "run",
    "fuzz": "fuzz",
    "replay": "replay ok.json",
    "checks": "checks",
    "keygen": "keygen --out k",
    "clients": "clients",
    "mock": "mock",
    "baseline create": "baseline create ok.json --out b.json --expires 2030-01-01",
    "diff": "diff ok.json ok.json",
    "certify": "certify",
    "verify-report": "verify-report bundle-reports",
    "load": "load",
}
for name, prefix in LEAVES.items():
    row(f"{name.replace(' ', '-')}-unknown-option", f"{prefix} --bogus", "--bogus")
    row(f"{name.replace(' ', '-')}-stray-argument", f"{prefix} stray", "stray")
row("unknown-command", "frobnicate", "frobnicate")

# Values that only the run, fuzz and replay commands validate (their owners' modules).
for name, value in (("empty", ""), ("blank", "   "), ("non-ascii", "clé"), ("newline", "a\nb")):
    row(f"run-api-key-{name}", ["run", "--dry-run", "--api-key", value], "--api-key", owner="runner")
    row(f"fuzz-api-key-{name}", ["fuzz", "--dry-run", "--api-key", value], "--api-key", owner="fuzz")
row("run-mock-fault-unknown", "run --mock-fault nope", "--mock-fault.*nope", owner="runner")
row("run-select-no-match", "run -m NOPE-999", "--select|-m", owner="runner")
row("run-select-bad-expression", ["run", "-m", "must and ("], "--select|-m", owner="runner")
row("run-node-address-garbage", "run --dry-run --node-address garbage", "--node-address", owner="runner")
for name, value in (("empty", ""), ("blank", "   "), ("non-ascii", "clé"), ("newline", "a\nb")):
    row(f"load-api-key-{name}", ["load", "--api-key", value], "--api-key")
row("fuzz-mock-fault-unknown", "fuzz --mock-fault nope --max-examples 1", "--mock-fault.*nope", owner="fuzz")
row(
    "fuzz-mock-fault-with-target",
    "fuzz --target http://127.0.0.1:{closed} --model m --mock-fault x",
    "--mock-fault",
    owner="fuzz",
)

PENDING_OTHERS: list[str] = [
    # runner.py (lead)
    "run-signer-key-empty-name",
    "run-signer-key-long-name",
    "run-signer-key-huge",
    "run-target-empty",
    "run-select-no-match",
    "run-node-address-garbage",
]
"""Row ids whose fix is in a module this test's author does not own (see the module docstring)."""

# --- running a row -----------------------------------------------------------------------------


class ReachedWork(Exception):
    """A row got past validation into real work: its bad input was not refused."""


def _tripwire(what: str) -> Callable[..., object]:
    def trip(*args: object, **kwargs: object) -> object:
        raise ReachedWork(f"the row reached {what}")

    return trip


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("the row blocked for 20 s (a FIFO read, a connect, a server?)")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def sweep_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import uvicorn

    import conformance.clients.runner
    import conformance.fuzz.campaign
    import conformance.fuzz.replay

    monkeypatch.chdir(tmp_path)
    for name in ("ATOMA_CONFORMANCE_DEBUG", "ATOMA_API_KEY", "ATOMASDK_BEARER_AUTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pytest, "main", _tripwire("pytest.main (the suite would run)"))
    monkeypatch.setattr(conformance.fuzz.campaign.Campaign, "run", _tripwire("a fuzz campaign"))
    monkeypatch.setattr(conformance.fuzz.replay, "replay", _tripwire("a replay"))
    monkeypatch.setattr(conformance.clients.runner, "run_matrix", _tripwire("the client matrix"))
    monkeypatch.setattr(uvicorn.Server, "run", _tripwire("the mock's server (it would serve)"))
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        yield tmp_path
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_row(r: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str], ports: dict[str, int]) -> None:
    for name in r.files:
        FILES[name](tmp_path / name)
    argv = [word.replace("{closed}", str(ports["closed"])).replace("{busy}", str(ports["busy"])) for word in r.argv]
    signal.alarm(20)
    try:
        code = main(argv)
    finally:
        signal.alarm(0)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    shown = f"argv={argv!r} exit={code} stderr={err!r}"
    assert "Traceback" not in err, shown
    assert "internal error" not in err, shown
    assert code == 2, shown
    assert len(lines) == 1 and err.count("\n") == 1, shown
    assert lines[0].startswith("atoma-conformance: error: "), shown
    assert re.search(r.field, lines[0]), f"{shown}: does not name {r.field!r}"
    assert out.strip() == "", f"{shown} stdout={out!r}"


def _row_id(r: Row) -> str:
    return f"PENDING-{r.owner}-{r.id}" if r.id in PENDING_OTHERS else r.id


@pytest.mark.parametrize("r", ROWS, ids=[_row_id(r) for r in ROWS])
def test_a_user_mistake_is_one_line_naming_the_field(
    r: Row, sweep_env: Path, capsys: pytest.CaptureFixture[str], closed_port: int, busy_port: int
) -> None:
    """Rows in PENDING_OTHERS run too, named PENDING-<owner>-…: they fail until their owner fixes them."""
    run_row(r, sweep_env, capsys, {"closed": closed_port, "busy": busy_port})


def test_the_table_covers_every_subcommand_with_enough_rows() -> None:
    assert len(ROWS) >= 200, len(ROWS)
    assert len({r.id for r in ROWS}) == len(ROWS)
    assert set(PENDING_OTHERS) <= {r.id for r in ROWS}, "a pending id that is not in the table"
    assert all(r.owner != "cli" for r in ROWS if r.id in PENDING_OTHERS), "a pending row is this author's to fix"
    leaves = {name for name, parser in subparsers(build_parser()) if not parser._subparsers}
    covered = {
        name
        for name in leaves
        if any(" ".join(r.argv).startswith(name + " ") or r.argv == tuple(name.split()) for r in ROWS)
    }
    assert covered == leaves, f"subcommands with no row: {sorted(leaves - covered)}"
    assert set(LEAVES) == leaves, "LEAVES (unknown-option rows) lists every subcommand"
    for name in leaves:
        assert sum(1 for r in ROWS if " ".join(r.argv).startswith(name)) >= 3, f"{name}: fewer than 3 rows"


# --- the last resort, and paths.py's own edges ---------------------------------------------------


def test_an_unexpected_exception_is_one_line_marked_as_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import conformance.checks.docs

    monkeypatch.delenv("ATOMA_CONFORMANCE_DEBUG", raising=False)
    monkeypatch.setenv("ATOMA_API_KEY", "sk-sentinel-0123")

    def boom(fmt: str = "text") -> str:
        raise RuntimeError("token sk-sentinel-0123 broke\nthe second line" + "x" * 500)

    monkeypatch.setattr(conformance.checks.docs, "render", boom)
    assert main(["checks"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("atoma-conformance: internal error: RuntimeError: token *** broke\\nthe second line")
    assert "sk-sentinel" not in err and "(500 characters" not in err and "characters)" in err
    assert err.rstrip().endswith("(a bug: please report it; ATOMA_CONFORMANCE_DEBUG=1 shows the traceback)")

    monkeypatch.setenv("ATOMA_CONFORMANCE_DEBUG", "1")
    assert main(["checks"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("atoma-conformance: internal error:")


def test_a_user_error_message_is_kept_on_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "two\nlines"
    assert main(["diff", str(missing), str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "two\\nlines" in err


def test_permission_problems_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root nothing is denied, so the OS's answer is simulated."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match=r"^--report-dir: .*not writable \(permission denied\)"):
        paths.writable_dir(tmp_path, "--report-dir")
    with pytest.raises(UserError, match=r"^--report-dir: .*cannot be created in .*permission denied"):
        paths.writable_dir(tmp_path / "new", "--report-dir", create=False)
    with pytest.raises(UserError, match=r"^--out: .*cannot be created in .*permission denied"):
        paths.output_file(tmp_path / "new.json", "--out")
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(UserError, match=r"^--out: .*not writable"):
        paths.output_file(file, "--out")


def test_a_directory_that_cannot_be_created_names_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(UserError, match=r"^--report-dir: .*cannot be created \(permission denied\)$"):
        paths.writable_dir(tmp_path / "new", "--report-dir")


def test_the_readers_accept_what_is_fine(tmp_path: Path) -> None:
    file = tmp_path / "ok.json"
    file.write_text('{"a": 1}')
    assert paths.read_json_file(file, "X") == {"a": 1}
    assert paths.read_regular_file(file, "X", max_bytes=8) == b'{"a": 1}'
    with pytest.raises(UserError, match=r"^X: .*8 bytes, more than the 7 bytes accepted"):
        paths.read_regular_file(file, "X", max_bytes=7)
    assert paths.existing_file(file, "X") == file
    assert paths.writable_dir(tmp_path / "a" / "b", "D") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert paths.writable_dir(tmp_path / "c", "D", create=False) == tmp_path / "c" and not (tmp_path / "c").exists()
    assert paths.output_file(tmp_path / "new.txt", "O") == tmp_path / "new.txt"
    assert stat.S_ISREG(os.stat(file).st_mode)

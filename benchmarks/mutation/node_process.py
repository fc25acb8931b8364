"""The mutated node's own interpreter: serve each configuration of the strict mock on loopback.

Run as a script with the scratch copy first on ``PYTHONPATH``, so that ``mock_node`` and
``conformance`` are the mutated copies while the suite that judges them (the parent) keeps the
originals. Prints one JSON line naming each configuration's URL, then serves until its stdin closes.

The lock-expiry checks wait by advancing the suite's clock instead of sleeping; across two processes
that clock is an 8-byte offset in a shared file (``SharedClock``), which the parent advances.

    python node_process.py CLOCK_FILE NODE_FACE_OWNERS_JSON [COVERAGE_JSON]

NODE_FACE_OWNERS_JSON maps a scheme's name to the Sui address of the stack owner the suite signs as
with that scheme; the parent derives it with the unmutated core, so a mutant of ``sui_address``
changes what the node derives, never what it is compared with.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

# (name, face, signer scheme) of every configuration the suite is run against. The first two are the
# embedded mock of tests/test_meta_faults.py; the third also signs with secp256k1 (the low-s rule). Every
# proxy face knows the API keys the suite presents, as the meta-test's does: a clean node must refuse a
# token nobody issued (LOCK-014, ERR-029), so a node that lets any token in cannot be a clean baseline.
# On the node face the scheme is the node's own signer's and the stack owner's, whose X-Signature the
# node verifies: the last two reach the node's ECDSA verification (R7.5's range and low-s rules, the
# curve point, the flag in the owner's R7.6 address) on both curves, which an Ed25519 owner never does.
CONFIGURATIONS: tuple[tuple[str, str, str], ...] = (
    ("proxy", "proxy", "ED25519"),
    ("node", "node", "ED25519"),
    ("proxy-secp256k1-keyed", "proxy", "SECP256K1"),
    ("node-secp256k1", "node", "SECP256K1"),
    ("node-secp256r1", "node", "SECP256R1"),
)
API_KEYS = ("meta-test-key-0001", "meta-test-key-0002")  # what the suite presents on the proxy face
NODE_FACE_STACK = 3  # the stack the suite (standing in for the proxy) owns on the node face


class SharedClock:
    """Monotonic time plus an offset that another process may advance (both ends map one file)."""

    def __init__(self, path: Path) -> None:
        with path.open("r+b") as handle:
            self._map = mmap.mmap(handle.fileno(), 8)

    def now(self) -> float:
        offset: float = struct.unpack_from("d", self._map)[0]
        return time.monotonic() + offset

    def advance(self, seconds: float) -> None:
        (offset,) = struct.unpack_from("d", self._map)
        struct.pack_into("d", self._map, 0, offset + seconds)


def _serve(clock_file: Path, owners_by_scheme: dict[str, str], *, graceful: bool) -> None:
    import mock_node
    from conformance.protocol import Scheme
    from mock_node.config import MockConfig
    from mock_node.testing import running_node

    if not Path(mock_node.__file__ or "").resolve().is_relative_to(Path.cwd().resolve()):
        raise SystemExit(f"mock_node was imported from {mock_node.__file__}, not from the scratch copy")

    clock = SharedClock(clock_file)
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for name, face, scheme in CONFIGURATIONS:
            owners = {NODE_FACE_STACK: owners_by_scheme[scheme]} if face == "node" else {}
            keys = API_KEYS if face == "proxy" else ()
            config = MockConfig(
                face=face,  # type: ignore[arg-type]
                clock=clock.now,
                stack_owners=owners,
                signer_scheme=Scheme[scheme],
                api_keys=keys,
            )
            urls[name] = stack.enter_context(running_node(config))
        sys.stdout.write(json.dumps(urls) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # the parent closes stdin when the suite is done
        if not graceful:  # nothing to keep: skip the servers' shutdown (a third of a mutant's time)
            os._exit(0)


def main(argv: list[str]) -> int:
    clock_file, owners = Path(argv[0]), json.loads(argv[1])
    coverage: Any = None
    if len(argv) > 2:
        import coverage as coverage_module

        root = Path.cwd()
        coverage = coverage_module.Coverage(data_file=None, source=[str(root / "mock_node"), str(root / "conformance")])
        coverage.start()
    try:
        _serve(clock_file, owners, graceful=coverage is not None)
    finally:
        if coverage is not None:
            coverage.stop()
            data = coverage.get_data()
            lines = {str(Path(f).relative_to(Path.cwd())): sorted(data.lines(f) or ()) for f in data.measured_files()}
            Path(argv[2]).write_text(json.dumps(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The mutated node's own interpreter: serve each configuration of the strict mock on loopback.

Run as a script with the scratch copy first on ``PYTHONPATH``, so that ``mock_node`` and
``conformance`` are the mutated copies while the suite that judges them (the parent) keeps the
originals. Prints one JSON line naming each configuration's URL, then serves until its stdin closes.

The lock-expiry checks wait by advancing the suite's clock instead of sleeping; across two processes
that clock is an 8-byte offset in a shared file (``SharedClock``), which the parent advances.

    python node_process.py CLOCK_FILE NODE_FACE_OWNER [COVERAGE_JSON]
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
# embedded mock of tests/test_meta_faults.py; the third also signs with secp256k1 (the low-s rule) and
# knows its API keys (the key comparison), which the embedded mock, accepting any token, never runs.
CONFIGURATIONS: tuple[tuple[str, str, str], ...] = (
    ("proxy", "proxy", "ED25519"),
    ("node", "node", "ED25519"),
    ("proxy-secp256k1-keyed", "proxy", "SECP256K1"),
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


def _serve(clock_file: Path, owner: str, *, graceful: bool) -> None:
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
            owners = {NODE_FACE_STACK: owner} if face == "node" else {}
            keys = API_KEYS if name.endswith("-keyed") else ()
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
    clock_file, owner = Path(argv[0]), argv[1]
    coverage: Any = None
    if len(argv) > 2:
        import coverage as coverage_module

        root = Path.cwd()
        coverage = coverage_module.Coverage(data_file=None, source=[str(root / "mock_node"), str(root / "conformance")])
        coverage.start()
    try:
        _serve(clock_file, owner, graceful=coverage is not None)
    finally:
        if coverage is not None:
            coverage.stop()
            data = coverage.get_data()
            lines = {str(Path(f).relative_to(Path.cwd())): sorted(data.lines(f) or ()) for f in data.measured_files()}
            Path(argv[2]).write_text(json.dumps(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The adapters that ship with the suite, and the environments they need, installed on first use.

``reference`` runs in this interpreter. The official SDKs run where their own dependencies can live:
the Python SDK pins ``pydantic<2.11`` and ``httpx<0.29``, so it gets a virtual env of its own; the
TypeScript SDK gets an ``npm ci`` from the lock file committed beside its adapter. Both land in a
cache directory, so the second run installs nothing. A missing ``node`` is a reason to skip that
column, said in the matrix; a failed install is an error there, never a silent skip.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .runner import ClientUnderTest

ADAPTERS_DIR = Path(__file__).with_name("adapters")
PY_SDK_REQUIREMENT = "atoma-sdk==0.1.3"
BUILTIN = ("reference", "atoma-sdk-py", "atoma-sdk-ts")


def builtin(name: str, cache_dir: Path, log: Callable[[str], None]) -> ClientUnderTest:
    if name == "reference":
        return ClientUnderTest(name, f"{shlex.quote(sys.executable)} -m conformance.clients.adapters.reference")
    if name == "atoma-sdk-py":
        return _python_sdk(cache_dir / "atoma-sdk-py", log)
    if name == "atoma-sdk-ts":
        return _typescript_sdk(cache_dir / "atoma-sdk-ts", log)
    raise ValueError(f"--adapter: {name!r} is not a built-in adapter ({', '.join(BUILTIN)}); use NAME=COMMAND")


def _run(argv: list[str], what: str) -> str | None:
    """Run an install step; the error (last stderr line) on failure, else None."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what} failed: {exc}"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no message"])[-1][:300]
        return f"{what} failed (exit {done.returncode}): {tail}"
    return None


def _python_sdk(venv: Path, log: Callable[[str], None]) -> ClientUnderTest:
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        log(f"installing {PY_SDK_REQUIREMENT} into {venv} (first run only) ...")
        error = _run([sys.executable, "-m", "venv", str(venv)], "creating the SDK's virtual env") or _run(
            [str(python), "-m", "pip", "install", "-q", PY_SDK_REQUIREMENT], f"pip install {PY_SDK_REQUIREMENT}"
        )
        if error:
            return ClientUnderTest("atoma-sdk-py", None, setup_error=error)
        marker.write_text(PY_SDK_REQUIREMENT + "\n", encoding="utf-8")
    command = f"{shlex.quote(str(python))} {shlex.quote(str(ADAPTERS_DIR / 'atoma_sdk_py.py'))}"
    return ClientUnderTest("atoma-sdk-py", command)


def _typescript_sdk(directory: Path, log: Callable[[str], None]) -> ClientUnderTest:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = "node" if node is None else "npm"
        return ClientUnderTest("atoma-sdk-ts", None, unavailable=f"{missing} is not on PATH (Node.js 18+ runs it)")
    source = ADAPTERS_DIR / "atoma_sdk_ts"
    files = ("package.json", "package-lock.json", "adapter.cjs")
    lock_text = (source / "package-lock.json").read_text(encoding="utf-8")
    marker = directory / ".installed"
    if not marker.exists() or marker.read_text(encoding="utf-8") != lock_text:
        log(f"installing the npm atoma-sdk into {directory} (npm ci, first run only) ...")
        directory.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(source / name, directory / name)
        error = _run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(directory)], "npm ci (atoma-sdk)")
        if error:
            return ClientUnderTest("atoma-sdk-ts", None, setup_error=error)
        marker.write_text(lock_text, encoding="utf-8")
    else:
        shutil.copyfile(source / "adapter.cjs", directory / "adapter.cjs")  # the adapter may have changed
    return ClientUnderTest("atoma-sdk-ts", f"{shlex.quote(node)} {shlex.quote(str(directory / 'adapter.cjs'))}")

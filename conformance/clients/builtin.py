"""The adapters that ship with the suite, and the environments they need, installed on first use.

``reference`` runs in this interpreter. The official SDKs run where their own dependencies can live:
the Python SDK pins ``pydantic<2.11`` and ``httpx<0.29``, so it gets a virtual env of its own; the
TypeScript SDK gets an ``npm ci`` from the lock file committed beside its adapter. Both land in a
cache directory, so the second run installs nothing. A missing ``node`` is a reason to skip that
column, said in the matrix; a failed install is an error there, never a silent skip.

The cache holds programs the suite then executes, so where it is and whose it is matter. It lives in
the user's cache directory (:func:`user_cache_dir`), never under the current directory, where anyone
who can write a repository a user runs the suite in could plant a ``bin/python``. And an environment
is used only if this tool made it (:data:`OWNER_MARKER`, written before anything is installed) and
nobody but its owner can change it (:func:`_trusted`); anything else is refused, not executed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from ..exits import UserError
from ..paths import shown
from ..textsafe import one_line
from .runner import ClientUnderTest

ADAPTERS_DIR = Path(__file__).with_name("adapters")
PY_SDK_REQUIREMENT = "atoma-sdk==0.1.3"
BUILTIN = ("reference", "atoma-sdk-py", "atoma-sdk-ts")
CACHE_FIELD = "--cache-dir"
# Written into every environment directory before anything is installed in it; its absence means
# the directory is not ours (or predates this rule), and nothing in it is executed.
OWNER_MARKER = ".atoma-conformance-env"
OWNER_TEXT = "atoma-conformance adapter environment, version 1\n"
# The suite's own variables: a package's install scripts (pip, npm) have no business with them.
_SECRET_PREFIXES = ("ATOMA",)


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where built-in adapters install by default: ``$XDG_CACHE_HOME/atoma-conformance``, or
    ``~/.cache/atoma-conformance`` (``%LOCALAPPDATA%`` on Windows).

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec says: it would put the cache, and the
    interpreters in it, under whatever directory the suite happens to run in.
    """
    env = os.environ if environ is None else environ
    base = env.get("LOCALAPPDATA" if os.name == "nt" else "XDG_CACHE_HOME", "")
    if base and Path(base).is_absolute():
        return Path(base) / "atoma-conformance"
    home = env.get("HOME") or env.get("USERPROFILE")
    if not home:
        try:
            home = str(Path.home())
        except RuntimeError:
            raise UserError(CACHE_FIELD, "there is no home directory to put the cache in; name one") from None
    if not Path(home).is_absolute():
        raise UserError(CACHE_FIELD, f"the home directory {shown(home)} is not absolute; name a cache directory")
    return Path(home) / ".cache" / "atoma-conformance"


def builtin(name: str, cache_dir: Path, log: Callable[[str], None]) -> ClientUnderTest:
    if name == "reference":
        return _reference()
    if name == "atoma-sdk-py":
        return _python_sdk(cache_dir, log)
    if name == "atoma-sdk-ts":
        return _typescript_sdk(cache_dir, log)
    raise ValueError(f"--adapter: {name!r} is not a built-in adapter ({', '.join(BUILTIN)}); use NAME=COMMAND")


def _reference() -> ClientUnderTest:
    """``-P`` keeps the current directory off the adapter's ``sys.path`` (a planted ``httpx.py`` there
    would otherwise be imported); PYTHONPATH, which the allow-listed environment drops, is set to
    where this very ``conformance`` package lives when the interpreter would not find it alone."""
    root = Path(__file__).resolve().parents[2]
    env = () if _in_site_packages(root) else (("PYTHONPATH", str(root)),)
    command = f"{shlex.quote(sys.executable)} -P -m conformance.clients.adapters.reference"
    return ClientUnderTest("reference", command, env=env)


def _in_site_packages(root: Path) -> bool:
    """Whether the interpreter finds ``root`` by itself (an installed wheel). A source checkout, an
    editable install or a PYTHONPATH run needs PYTHONPATH; a site-packages directory must not get it,
    since PYTHONPATH comes before the standard library on sys.path."""
    import site

    found = [*site.getsitepackages(), site.getusersitepackages()]
    return any(Path(p).resolve() == root for p in found if p)


def install_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an install step: pip and npm keep the user's proxy, index and certificate
    settings, but not the suite's own variables (the API key above all)."""
    source = os.environ if source is None else source
    return {k: v for k, v in source.items() if not k.upper().startswith(_SECRET_PREFIXES)}


def _run(argv: list[str], what: str) -> str | None:
    """Run an install step; the error (last stderr line) on failure, else None."""
    try:
        done = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, check=False, timeout=900, env=install_environment()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what} failed: {one_line(str(exc), 300)}"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"{what} failed (exit {done.returncode}): {one_line(tail, 300)}"
    return None


def _trusted(path: Path) -> None:
    """Refuse ``path`` unless it is a directory of the current user that nobody else can write to.

    On Windows, where ownership is an ACL, only the kind of file is checked.
    """
    try:
        info = path.lstat()
    except OSError as exc:
        raise UserError(CACHE_FIELD, f"{shown(path)}: cannot be used ({exc.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(CACHE_FIELD, f"{shown(path)} is not a directory (a link or a file); remove it")
    if os.name == "nt":
        return
    if info.st_uid != os.getuid():
        raise UserError(CACHE_FIELD, f"{shown(path)} belongs to another user (uid {info.st_uid}); not using it")
    if info.st_mode & stat.S_IWOTH:
        raise UserError(CACHE_FIELD, f"{shown(path)} is writable by every user; not executing anything in it")


def claim(directory: Path) -> None:
    """Make ``directory`` an environment of this tool's, or check that it already is one.

    A new directory gets the owner marker before anything else happens in it, so an install that is
    interrupted is finished by the next run; an existing one without the marker is refused: it is
    someone else's, and nothing in it may run.
    """
    cache = directory.parent
    try:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(CACHE_FIELD, f"{shown(cache)}: cannot be created ({exc.strerror})") from None
    _trusted(cache)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        _trusted(directory)
        marker = directory / OWNER_MARKER
        try:
            ours = not marker.is_symlink() and marker.read_text(encoding="utf-8") == OWNER_TEXT
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise UserError(
                CACHE_FIELD,
                f"{shown(directory)} was not created by atoma-conformance (no {OWNER_MARKER} marker); "
                "remove it or name another --cache-dir",
            ) from None
        return
    except OSError as exc:
        raise UserError(CACHE_FIELD, f"{shown(directory)}: cannot be created ({exc.strerror})") from None
    (directory / OWNER_MARKER).write_text(OWNER_TEXT, encoding="utf-8")


def _installed(marker: Path, expected: str) -> bool:
    try:
        return marker.read_text(encoding="utf-8") == expected
    except (OSError, UnicodeDecodeError):
        return False


def _python_sdk(cache_dir: Path, log: Callable[[str], None]) -> ClientUnderTest:
    venv = cache_dir / "atoma-sdk-py"
    claim(venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker, expected = venv / ".installed", PY_SDK_REQUIREMENT + "\n"
    if not _installed(marker, expected):
        log(f"installing {PY_SDK_REQUIREMENT} into {shown(venv)} (first run only) ...")
        error = _run([sys.executable, "-m", "venv", str(venv)], "creating the SDK's virtual env") or _run(
            [str(python), "-m", "pip", "install", "-q", PY_SDK_REQUIREMENT], f"pip install {PY_SDK_REQUIREMENT}"
        )
        if error:
            return ClientUnderTest("atoma-sdk-py", None, setup_error=error)
        marker.write_text(expected, encoding="utf-8")
    _trusted(python.parent)
    command = f"{shlex.quote(str(python))} {shlex.quote(str(ADAPTERS_DIR / 'atoma_sdk_py.py'))}"
    return ClientUnderTest("atoma-sdk-py", command)


def _typescript_sdk(cache_dir: Path, log: Callable[[str], None]) -> ClientUnderTest:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = "node" if node is None else "npm"
        return ClientUnderTest("atoma-sdk-ts", None, unavailable=f"{missing} is not on PATH (Node.js 18+ runs it)")
    directory = cache_dir / "atoma-sdk-ts"
    claim(directory)
    source = ADAPTERS_DIR / "atoma_sdk_ts"
    files = ("package.json", "package-lock.json", "adapter.cjs")
    lock_text = (source / "package-lock.json").read_text(encoding="utf-8")
    marker = directory / ".installed"
    if not _installed(marker, lock_text):
        log(f"installing the npm atoma-sdk into {shown(directory)} (npm ci, first run only) ...")
        for name in files:
            shutil.copyfile(source / name, directory / name)
        error = _run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(directory)], "npm ci (atoma-sdk)")
        if error:
            return ClientUnderTest("atoma-sdk-ts", None, setup_error=error)
        marker.write_text(lock_text, encoding="utf-8")
    else:
        shutil.copyfile(source / "adapter.cjs", directory / "adapter.cjs")  # the adapter may have changed
    return ClientUnderTest("atoma-sdk-ts", f"{shlex.quote(node)} {shlex.quote(str(directory / 'adapter.cjs'))}")

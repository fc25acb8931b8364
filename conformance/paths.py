"""Checking the files and directories a user names, before any work starts.

A command that reads a FIFO blocks forever, one that writes into a path whose parent is a file dies
with a traceback, and one that finds out after a ten-minute run that its report directory cannot be
created has wasted the run. So every path a user gives goes through one of these first, and a bad
one becomes a :class:`~conformance.exits.UserError` naming the option (``FIELD: reason``) that
``cli.main`` prints as one line with exit 2.

The checks are advisory for races (a file can change between the check and its use), which is why
:func:`read_regular_file` reads through the descriptor it checked, and writers still catch OSError.
Paths are shown with control characters escaped, so a name holding a newline cannot split the line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from .exits import UserError

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 64 * MiB


def shown(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: control characters escaped, long names cut."""
    from .textsafe import one_line

    return one_line(os.fspath(path), 160)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return (exc.strerror or type(exc).__name__).lower()


def _plain(path: str | os.PathLike[str], field: str) -> Path:
    """Refuse the strings no file system accepts, before the OS raises ValueError for them."""
    text = os.fspath(path)
    if not text:
        raise UserError(field, "is empty; name a path")
    if "\0" in text:
        raise UserError(field, f"{shown(text)}: a path cannot contain a NUL character")
    return Path(text)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _nearest_existing(path: Path) -> tuple[Path, os.stat_result]:
    """The deepest ancestor of ``path`` (itself included) that exists, with its stat."""
    probe = path.absolute()
    while True:
        try:
            return probe, probe.stat()
        except FileNotFoundError:
            if probe.parent == probe:  # pragma: no cover - the root always exists
                raise
            probe = probe.parent


def _stat_if_any(file: Path, field: str, *, follow: bool = True) -> os.stat_result | None:
    """The file's status (``os.lstat`` unless ``follow``), None when nothing is there; a path through a
    file, or one that cannot be looked at, is refused naming ``field``."""
    try:
        return file.stat() if follow else os.lstat(file)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise UserError(field, f"{shown(file)}: a part of the path is a file, not a directory") from None
        raise UserError(field, f"{shown(file)}: cannot be used ({_reason(exc)})") from None


def writable_dir(path: str | os.PathLike[str], field: str, *, create: bool = True) -> Path:
    """``path`` as a directory the user can write into; created with its parents when ``create``.

    With ``create=False`` nothing is created: the path must be a writable directory already, or be
    creatable (its nearest existing ancestor a writable directory). Use that to refuse a bad report
    directory before a long run without leaving an empty directory behind when something else fails.
    """
    directory = _plain(path, field)
    info = _stat_if_any(directory, field)
    if info is not None:
        if not stat.S_ISDIR(info.st_mode):
            raise UserError(field, f"{shown(directory)} exists and is {_kind(info.st_mode)}, not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UserError(field, f"{shown(directory)}: the directory is not writable (permission denied)")
        return directory
    if not create:
        try:
            ancestor, ancestor_info = _nearest_existing(directory)
        except OSError as exc:
            raise UserError(field, f"{shown(directory)}: cannot be created ({_reason(exc)})") from None
        if not stat.S_ISDIR(ancestor_info.st_mode):
            raise UserError(field, f"{shown(directory)}: cannot be created, {shown(ancestor)} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UserError(field, f"{shown(directory)}: cannot be created in {shown(ancestor)} (permission denied)")
        if any(len(os.fsencode(part)) > 255 for part in directory.parts):
            raise UserError(field, f"{shown(directory)}: cannot be created (the name is too long)")
        return directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            raise UserError(field, f"{shown(directory)}: cannot be created, a part of the path is a file") from None
        raise UserError(field, f"{shown(directory)}: cannot be created ({_reason(exc)})") from None
    return directory


def output_file(path: str | os.PathLike[str], field: str, *, overwrite: bool = True, hint: str = "") -> Path:
    """``path`` as a file that can be written: not a directory, not a FIFO or device, in an existing
    writable directory; an existing file is refused unless ``overwrite`` (then ``hint`` says how)."""
    file = _plain(path, field)
    info = _stat_if_any(file, field)
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise UserError(field, f"{shown(file)} is {_kind(info.st_mode)}; name a file to write")
        if not overwrite:
            raise UserError(field, f"{shown(file)} exists; {hint or 'not overwriting it'}")
        if not os.access(file, os.W_OK):
            raise UserError(field, f"{shown(file)}: the file is not writable (permission denied)")
        return file
    if len(os.fsencode(file.name)) > 255:
        raise UserError(field, f"{shown(file)}: cannot be created (the name is too long)")
    parent = file.absolute().parent
    try:
        parent_info = parent.stat()
    except FileNotFoundError:
        raise UserError(
            field, f"cannot write {shown(file)}: the directory {shown(file.parent)} does not exist"
        ) from None
    except OSError as exc:
        raise UserError(field, f"{shown(file)}: cannot be created ({_reason(exc)})") from None
    if not stat.S_ISDIR(parent_info.st_mode):  # pragma: no cover - stat of the file said ENOTDIR first
        raise UserError(field, f"{shown(file)}: {shown(file.parent)} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(field, f"{shown(file)}: cannot be created in {shown(file.parent)} (permission denied)")
    return file


def read_regular_file(path: str | os.PathLike[str], field: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; a directory, FIFO, device, missing or
    oversized file is refused without blocking on it or reading it whole."""
    file = _plain(path, field)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(field, f"{shown(file)}: no such file") from None
    except IsADirectoryError:
        raise UserError(field, f"{shown(file)} is a directory, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise UserError(field, f"{shown(file)}: no such file (a part of the path is a file)") from None
        if exc.errno == errno.ENXIO:  # a FIFO or socket with no writer, opened non-blocking
            raise UserError(field, f"{shown(file)} is not a regular file") from None
        raise UserError(field, f"{shown(file)}: cannot be read ({_reason(exc)})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which refuses a directory with its own error
        os.close(fd)
        raise UserError(field, f"{shown(file)} is {_kind(info.st_mode)}, not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise UserError(field, f"{shown(file)}: {info.st_size} bytes, more than the {_size(max_bytes)} accepted")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise UserError(field, f"{shown(file)}: cannot be read ({_reason(exc)})") from None
    if len(data) > max_bytes:  # it grew after the fstat
        raise UserError(field, f"{shown(file)}: more than the {_size(max_bytes)} accepted")
    return data


def existing_file(path: str | os.PathLike[str], field: str, max_bytes: int | None = None) -> Path:
    """``path`` as an existing regular file (of at most ``max_bytes``), checked without opening it:
    for files another layer reads later, so that it never blocks on a FIFO or reads a device."""
    file = _plain(path, field)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise UserError(field, f"{shown(file)}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise UserError(field, f"{shown(file)}: no such file (a part of the path is a file)") from None
        raise UserError(field, f"{shown(file)}: cannot be read ({_reason(exc)})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(field, f"{shown(file)} is {_kind(info.st_mode)}, not a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UserError(field, f"{shown(file)}: {info.st_size} bytes, more than the {_size(max_bytes)} accepted")
    if not os.access(file, os.R_OK):
        raise UserError(field, f"{shown(file)}: cannot be read (permission denied)")
    return file


def read_json_file(path: str | os.PathLike[str], field: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The JSON value of a UTF-8 file (see :func:`read_regular_file`); not UTF-8, not JSON or nested
    too deeply to parse is one line naming the line and column."""
    data = read_regular_file(path, field, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(field, f"{shown(path)}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(field, f"{shown(path)}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise UserError(field, f"{shown(path)}: not usable JSON (nested too deeply)") from None
    except ValueError as exc:  # a number of more digits than int() converts
        raise UserError(field, f"{shown(path)}: not usable JSON ({shown(str(exc))})") from None


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n} bytes"


def atomic_target(path: str | os.PathLike[str], field: str) -> Path:
    """``path`` as a destination :func:`write_atomic` accepts, checked without following a link.

    Exposed so that a long command can refuse a planted link before its work rather than after it.
    """
    file = _plain(path, field)
    info = _stat_if_any(file, field, follow=False)
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise UserError(
                field,
                f"{shown(file)} is a symbolic link; not writing through it (remove the link or name another file)",
            )
        if not stat.S_ISREG(info.st_mode):
            raise UserError(field, f"{shown(file)} is {_kind(info.st_mode)}; name a file to write")
    if len(os.fsencode(file.name)) > 255:
        raise UserError(field, f"{shown(file)}: cannot be created (the name is too long)")
    return file


def write_atomic(
    path: str | os.PathLike[str], data: bytes, field: str, *, mode: int = 0o666, exclusive: bool = False
) -> Path:
    """Write ``data`` to ``path`` all at once: a temporary file in the same directory, then a rename.

    Why: a report written in place is half a file when the run dies, and a file opened by name
    follows a symbolic link an attacker planted (``junit.xml -> ~/.ssh/authorized_keys``). A link at
    ``path`` is refused (one line naming ``field``), and the rename replaces a directory entry, never
    what a link points to, so a link planted after the check cannot redirect the write either.

    ``mode`` is the new file's permission bits before the umask (``0o600`` for a key file: it is then
    forced, whatever the umask). ``exclusive`` refuses to replace an existing file, atomically.
    """
    file = atomic_target(path, field)
    directory = file.parent
    for _ in range(100):
        temporary = directory / f".{file.name[:200]}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise UserError(
                    field, f"cannot write {shown(file)}: the directory {shown(directory)} does not exist"
                ) from None
            raise UserError(field, f"{shown(file)}: cannot be written ({_reason(exc)})") from None
    else:  # pragma: no cover
        raise UserError(field, f"{shown(file)}: cannot be written (no free temporary name)")
    try:
        try:
            if mode & 0o077 == 0:
                os.fchmod(fd, mode)  # a secret stays owner-only whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            _link_exclusive(temporary, file)
        else:
            os.replace(temporary, file)
    except FileExistsError:
        _discard(temporary)
        raise UserError(field, f"{shown(file)} exists; not overwriting it") from None
    except OSError as exc:
        _discard(temporary)
        raise UserError(field, f"{shown(file)}: cannot be written ({_reason(exc)})") from None
    except BaseException:
        _discard(temporary)
        raise
    return file


def _link_exclusive(temporary: Path, file: Path) -> None:
    """Give ``temporary`` the name ``file`` unless something (a file, a link) already has it."""
    try:
        os.link(temporary, file)  # atomic: fails if the name exists
    except FileExistsError:
        raise
    except OSError as exc:  # a file system without hard links: check, then rename (a narrow race)
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(file):
            raise FileExistsError(errno.EEXIST, "exists") from None
        os.replace(temporary, file)
        return
    os.unlink(temporary)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)

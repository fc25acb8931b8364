"""A status line on stderr for long work, so a ten-minute campaign is never silent.

    mode = choose_mode(sys.stderr, quiet=args.quiet, force=args.progress, long_running=duration >= 60)
    with Progress(sys.stderr, mode=mode) as progress:
        for ...:
            progress.update(f"fuzz: {n} examples, {r} requests")   # cheap: throttled inside
    # leaving the block erases a terminal's status line, so the summary starts on a clean line

Modes, and why:

- ``"tty"``: stderr is a terminal. One line rewritten in place with ``\\r`` (at most every 0.5 s),
  padded with spaces rather than erased with an escape sequence; dimmed with SGR only when colour is
  allowed (no ``NO_COLOR``, https://no-color.org, and ``TERM`` is not ``dumb``).
- ``"lines"``: stderr is a log or a pipe, and the work is long (or ``--progress`` asked for it).
  A plain line every ``interval_s`` (10 s by default): no ``\\r``, no escape codes, so CI logs stay
  readable and a log reader sees the work is alive.
- ``"off"``: ``--quiet``, or short work that is not on a terminal. This is what tests get by design:
  pytest captures stderr (not a terminal) and a test's campaign is short, so nothing is printed.

A broken stderr (a reader that went away) never fails the work: progress just stops.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Literal, TextIO

Mode = Literal["tty", "lines", "off"]
TTY_INTERVAL_S = 0.5
LINES_INTERVAL_S = 10.0
LONG_RUNNING_S = 60.0  # work expected to take at least this long shows progress in a log too


def is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # a closed or exotic stream
        return False


def colour_allowed(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, never with ``NO_COLOR`` set (to anything) or on a dumb terminal."""
    env = os.environ if environ is None else environ
    return is_tty(stream) and "NO_COLOR" not in env and env.get("TERM", "") != "dumb"


def choose_mode(stream: TextIO, *, quiet: bool = False, force: bool = False, long_running: bool = False) -> Mode:
    """``quiet`` wins; a terminal gets ``tty``; a log gets ``lines`` when forced or when the work is long."""
    if quiet:
        return "off"
    if is_tty(stream):
        return "tty"
    return "lines" if force or long_running else "off"


class Progress:
    """One status line, throttled: call :meth:`update` as often as you like."""

    def __init__(
        self,
        stream: TextIO,
        *,
        mode: Mode = "off",
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        prefix: str = "atoma-conformance: ",
    ) -> None:
        self.stream = stream
        self.mode: Mode = mode
        self.interval_s = (
            interval_s if interval_s is not None else (TTY_INTERVAL_S if mode == "tty" else LINES_INTERVAL_S)
        )
        self.clock = clock
        self.prefix = prefix
        self.colour = mode == "tty" and colour_allowed(stream, environ)
        self._last_at: float | None = None
        self._shown = 0  # characters of the status line on a terminal, to pad over and to erase
        self.lines_written = 0

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def update(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` if the interval has passed since the last one shown (or ``force``)."""
        if self.mode == "off":
            return
        now = self.clock()
        if not force and self._last_at is not None and now - self._last_at < self.interval_s:
            return
        self._last_at = now
        line = _printable(self.prefix + text)
        if self.mode == "tty":
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
            line = line[:width]
            padding = " " * max(0, self._shown - len(line))
            shown = f"\x1b[2m{line}\x1b[0m" if self.colour else line
            self._write(f"\r{shown}{padding}")
            self._shown = len(line)
        else:
            self._write(line + "\n")
        self.lines_written += 1

    def clear(self) -> None:
        """Erase a terminal's status line (a log keeps its lines)."""
        if self.mode == "tty" and self._shown:
            self._write("\r" + " " * self._shown + "\r")
            self._shown = 0

    def close(self) -> None:
        self.clear()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):  # the reader went away: the work goes on, silently
            self.mode = "off"


def _printable(text: str) -> str:
    """One line: a target's text must not move the cursor or inject escape sequences."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``: elapsed time a person reads at a glance."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"

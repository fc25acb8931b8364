"""Exit codes and the one exception that means "the user asked for something we cannot do".

The exit code is a contract every command keeps (README, "Exit codes")::

    0  OK          the verdict passed (every MUST check, every vector, FIXED, no MUST finding)
    1  FAILED      the verdict failed (a MUST check, a vector, STILL FAILING, a MUST finding)
    2  NOT_RUN     the command could not be carried out: bad usage, a bad file, an unusable target
    130 INTERRUPTED Ctrl-C

``UserError`` is how every layer says "not run": ``cli.main`` prints it as one line on stderr,
``atoma-conformance: error: <field>: <reason>``, and exits 2, never with a traceback. Its message is
built by us from sanitised parts; it never quotes a key, a token or a prompt.

    Exception
    ├── UserError                       exit 2, one line: every command's "could not be carried out"
    │                                   (usage, a bad file, a dead target, a case that cannot replay)
    ├── ProtocolError                   conformance.protocol: a value that breaks the wire format,
    │   └── …                           named by field (see conformance/protocol/errors.py)
    └── RunStopped, BudgetExceeded      a run's deadline or request budget: "not evaluated"

There is one user-error class on purpose: a subclass per command (there were seven) said nothing a
caller could act on differently, and every one of them was caught as ``UserError``.
"""

from __future__ import annotations

import enum
import textwrap


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    NOT_RUN = 2
    INTERRUPTED = 130


class UserError(Exception):
    """The command could not be carried out, for a reason the user can fix: one line, exit 2.

    Raise it with ``field`` (the option, argument or file member at fault, e.g. ``--target``) and
    ``reason``; or with a single preformatted message for compatibility with older call sites.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        text = f"{message}: {reason}" if reason is not None else message
        super().__init__(text)
        self.field = message if reason is not None else None
        self.reason = reason if reason is not None else message


NOT_RUN = "the command could not be carried out (bad usage, a bad file or directory); one line on stderr"


def describe(text: str, *, ok: str, failed: str | None, not_run: str = NOT_RUN) -> str:
    """A subcommand's --help description: what it does, then its exit codes, one per line.

    Every description ends with the codes because a CI author reads ``X --help`` to learn what a
    non-zero exit means, and the README is not on the build machine."""
    body = "\n\n".join(textwrap.fill(" ".join(p.split()), 100) for p in text.split("\n\n"))
    codes = [f"  0    {ok}"]
    if failed is not None:
        codes.append(f"  1    {failed}")
    codes += [f"  2    {not_run}", "  130  interrupted (Ctrl-C)"]
    return body + "\n\nExit codes:\n" + "\n".join(codes)

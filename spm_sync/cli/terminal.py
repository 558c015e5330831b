"""Where the command line's words go: results on stdout, diagnostics on stderr, for every
command alike, so `spm-sync run --json - | jq` and `spm-sync check | grep ✗` see only results.

A reader that stops early (`spm-sync run | head`) closes the pipe; that is not an error of
the command. The first write that meets the closed pipe points stdout at the null device, the
command finishes its work and exits with its own status, and Python's final flush has nothing
to complain about. `-q` silences results that say "all is well" (the summary tables, passed
checks); failures still reach stderr.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO, cast

import click
from rich.console import Console

LOG_WIDTH = 120
"""Width of rich output that is not a terminal (rich would assume 80 columns)."""


class _Verbosity:
    quiet = False


def set_quiet(quiet: bool) -> None:
    _Verbosity.quiet = quiet


def is_quiet() -> bool:
    return _Verbosity.quiet


def detach_stdout() -> None:
    """Point file descriptor 1 at the null device after its reader went away, so nothing
    written or flushed later fails (the Python documentation's SIGPIPE recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test runner's buffer): nothing will flush it at exit


class PipeSafeStdout(io.TextIOBase):
    """`sys.stdout` (looked up at each write, as test runners swap it) that stops writing,
    quietly, once its reader has closed the pipe."""

    def __init__(self) -> None:
        super().__init__()
        self._gone = False

    @property
    def _target(self) -> TextIO:
        return sys.stdout

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._target.write(text)
            except BrokenPipeError:
                self._went_away()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._target.flush()
            except BrokenPipeError:
                self._went_away()

    def _went_away(self) -> None:
        self._gone = True
        detach_stdout()

    def isatty(self) -> bool:
        return not self._gone and self._target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True


def pipe_safe_stdout() -> TextIO:
    return cast(TextIO, PipeSafeStdout())  # a TextIOBase is the text file these take


def results_console(*, stderr: bool = False) -> Console:
    """stdout for results; piped into a log, wide enough that tables keep every column;
    silent under -q. `stderr`: the same on stderr, for tables beside a result that stdout
    carries (`run --json -`)."""
    stream = sys.stderr if stderr else pipe_safe_stdout()
    width = None if stream.isatty() else LOG_WIDTH
    return Console(file=stream, width=width, quiet=is_quiet())


def diagnostics_console() -> Console:
    """stderr, for failures, warnings and progress; never silenced."""
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=LOG_WIDTH)


def say(line: str) -> None:
    """One result line on stdout (pipe-safe)."""
    click.echo(line, file=pipe_safe_stdout())


def warn(line: str) -> None:
    """One diagnostic line on stderr."""
    click.echo(line, err=True)

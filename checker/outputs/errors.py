"""Output errors: a file rseqcheck must write (a counterexample, --junit,
--emit-c, --markdown) or its standard output cannot be written (disk full,
permission denied, a read-only file system).  Each is one line,
`rseqcheck: error: ...`, and exit status 4 -- never a traceback, and
never 1, which says a verdict differs."""

from __future__ import annotations

import errno
import os
import sys

import click

EXIT_OUTPUT = 4


def error_line(msg: str) -> str:
    return f"rseqcheck: error: {msg}"


def report(msg: str) -> None:
    try:
        click.echo(error_line(msg), err=True)
    except OSError:  # stderr is gone too: the exit status alone says it
        pass


def fail(msg: str) -> None:
    report(msg)
    sys.exit(EXIT_OUTPUT)


def stdout_failed(e: BaseException) -> bool:
    """A failed write to standard output: an OSError raised by click.echo
    itself, not by some other call that has no file name either (EPIPE,
    `| head`, excepted: click ends that one quietly)."""
    if not isinstance(e, OSError) or e.filename is not None or e.errno in (None, errno.EPIPE):
        return False
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__") == "click.utils" \
        and tb.tb_frame.f_code.co_name == "echo"


def broken_pipe(e: BaseException) -> bool:
    """The reader of standard output has gone (`| head`)."""
    return isinstance(e, OSError) and e.errno == errno.EPIPE


class Group(click.Group):
    """The command group: a write to standard output that fails (`> FILE`
    on a full disk) ends the command as an output error.  A closed pipe
    (`| head`) is one too, without a message: the reader has what it
    wanted."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as e:
            if broken_pipe(e):
                _silence_stdout()
                sys.exit(EXIT_OUTPUT)
            if not stdout_failed(e):
                raise
            _silence_stdout()
            fail(f"cannot write the output: {e.strerror or e}")


def _silence_stdout() -> None:
    """What is still buffered for stdout would fail again when Python
    flushes it at exit ("Exception ignored ..."): send it to /dev/null."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        pass

"""What rseqcheck prints for people fits 72 columns, the width people paste
into an email; a table that cannot has a `--wide` form, chosen by default
only on a terminal wide enough for it."""

from __future__ import annotations

import shutil
import sys
import textwrap

WIDTH = 72


def wrap(text: str, indent: str = "", sub: str | None = None) -> list[str]:
    """`text` in lines of at most WIDTH columns; words (paths, rule names)
    are never broken, so a single word longer than a line stays whole."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  " if sub is None else sub,
                         break_on_hyphens=False, break_long_words=False) or [indent.rstrip()]


def wide(flag: bool | None, needed: int) -> bool:
    """--wide / --narrow as given; else wide only on a terminal at least
    `needed` columns wide (a pipe, a file or CI gets the narrow form)."""
    if flag is not None:
        return flag
    return sys.stdout.isatty() and shutil.get_terminal_size().columns >= needed

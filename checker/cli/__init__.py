"""The command line: `rseqcheck` and its sub-commands."""

from rseqcheck.checker.cli.main import main

__all__ = ["main"]

"""The command line: `rseqcheck` and its sub-commands."""

from rseqcheck.checker.cli.app import main

__all__ = ["main"]

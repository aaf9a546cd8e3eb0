"""Errors a user sees: always `file:line: message`, never a traceback."""

from __future__ import annotations


class SpecError(Exception):
    def __init__(self, file: str, line: int | None, message: str):
        super().__init__(message)
        self.file = file
        self.line = line
        self.message = message

    def __str__(self) -> str:
        if self.line:
            return _printable(f"{self.file}:{self.line}: {self.message}")
        return _printable(f"{self.file}: {self.message}")


def _printable(s: str) -> str:
    """One printable line: a control character or escape code that a spec's
    key put into a message is shown as \\xNN, not sent to the terminal."""
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in s)

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
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}: {self.message}"

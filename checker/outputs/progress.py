"""Progress of a run over many items (specs, combinations) on stderr: one
line rewritten in place on a terminal; elsewhere (CI logs, pipes) a plain
line every 10 s, so that a long run shows it is alive and a short one
prints nothing."""

from __future__ import annotations

import sys
import time

from rseqcheck.checker.outputs.columns import WIDTH

EVERY = 10.0  # seconds between lines when stderr is not a terminal


class Ticker:
    def __init__(self, what: str, total: int, unit: str = "specs"):
        self.what, self.total, self.unit = what, total, unit
        self.t0 = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        if self.tty:
            line = f"{self.what}: {done} of {self.total} {self.unit}, {now - self.t0:.1f} s"
            sys.stderr.write("\r\033[K" + (line + (f": {detail}" if detail else ""))[: WIDTH + 8])
        elif now - self.last >= EVERY and done < self.total:
            self.last = now
            sys.stderr.write(f"{self.what}: {done} of {self.total} {self.unit}, {now - self.t0:.0f} s\n")
        else:
            return
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

"""The hardening fuzzer of tests/test_fuzz.py at any length (#17 item 5):
spec mutants through `verify`, trace mutants through `show` and `replay`;
prints the counts (mutants tried, exit statuses, slowest run, defects) and
exits 1 if any defect was found.  A defect is a traceback or "internal
error", an undocumented exit status, or a run past its timeout.

    python benchmarks/fuzz.py 10000            # 10,000 spec mutants + 2,000 trace mutants, seed 2026
    python benchmarks/fuzz.py 500 --seed 7     # another sample
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_fuzz import Tally, _report, fuzz_specs, fuzz_traces  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="spec mutants (trace mutants: n / 5)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--emit-c", type=float, default=0.25,
                    help="fraction of spec mutants also put through `run --emit-c` and gcc -fsyntax-only")
    ap.add_argument("--keep", help="folder to keep the mutants that found defects in")
    a = ap.parse_args()
    os.chdir(ROOT)  # traces name their specs relative to the checkout
    tally = Tally()
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rseqcheck-fuzz-") as tmp:
        where = Path(a.keep) if a.keep else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        fuzz_specs(a.n, a.seed, where, tally, emit_c=a.emit_c)
        fuzz_traces(a.n // 5, a.seed, where, tally)
    print(_report(tally, time.monotonic() - t))
    return 1 if tally.defects else 0


if __name__ == "__main__":
    sys.exit(main())

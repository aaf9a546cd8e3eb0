"""The lasso search (checker/engines/liveness.py) on the largest bundled liveness
spec: the per-CPU counter of specs/liveness/percpu_counter_preempted_linux618.toml
with migration on as well (the same program, `migration = true`), and on
the spec itself.  One subprocess per run, so its peak RSS is its own.

    python benchmarks/liveness.py            # both, table on stdout
    python benchmarks/liveness.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = ROOT / "specs" / "liveness" / "percpu_counter_preempted_linux618.toml"

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from rseqcheck.checker.engines.liveness import check_goals
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec
spec = load_spec(sys.argv[1])
system = build_system(spec)
t, c = time.monotonic(), time.process_time()
r = check_goals(system, spec.depth)
cpu = time.process_time() - c
print(json.dumps(dict(verdict=r.verdict, goal=r.goal, loop=r.loop, steps=len(r.trace) - 1 if r.trace else None,
                      states=r.stats.states, transitions=r.stats.transitions, seconds=time.monotonic() - t, cpu=cpu,
                      max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def with_migration(tmp: Path) -> Path:
    text = SPEC.read_text().replace("preemption = true\n", "preemption = true\nmigration  = true\n", 1)
    assert "migration  = true" in text
    p = tmp / "percpu_counter_preempted_migration.toml"
    p.write_text(text)
    return p


def run(spec: Path) -> dict:
    t = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=str(ROOT)), str(spec)],
                            stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    row = json.loads(out)
    row["wall"] = time.monotonic() - t
    row["spec"] = spec.name
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = [run(SPEC), run(with_migration(Path(d)))]
    print(f"{'spec':<36} {'states':>9} {'transitions':>11} {'lasso':>6} {'cpu s':>6} {'MiB':>5}")
    for r in rows:
        lasso = f"{r['loop']}+{r['steps'] - r['loop']}" if r["steps"] is not None else "-"
        print(f"{r['spec'][:36]:<36} {r['states']:>9,} {r['transitions']:>11,} {lasso:>6} {r['cpu']:>6.2f}"
              f" {r['max_rss_mb']:>5.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

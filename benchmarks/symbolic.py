"""Benchmark the symbolic engines (checker/engines/symbolic.py) against explicit.

Three tables, each measurement in a fresh interpreter (as run.py does):

  cex     every violation spec: seconds to the shortest counterexample under
          explicit (full search), bmc and induction, and its length in each;
  ladder  the next-syscall ladder rungs (benchmarks/ladder.py): the deepest
          depth bmc refutes within a budget (default 60 s), beside the depth
          that covers every reachable state where the explicit engine can
          count it (at most 1 M states);
  proofs  every holds spec: induction with lemmas from the reachable states
          (k, lemmas, seconds), Spacer (checker/engines/chc.py) and plain
          k-induction, each within the budget.

    python benchmarks/symbolic.py cex proofs             # specs/
    python benchmarks/symbolic.py ladder --budget 60 --threads 1-3 --rounds 1-7
    python benchmarks/symbolic.py cex --json out.json specs/seed000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import ladder  # noqa: E402
from run import parse_set  # noqa: E402


def _timed(f, *a, **kw) -> tuple[Any, float]:
    t = time.perf_counter()
    r = f(*a, **kw)
    return r, time.perf_counter() - t


def _steps(r) -> int | None:
    return len(r.trace) - 1 if r.verdict == "violation" else None


def work(kind: str, path: str, budget: float) -> dict[str, Any]:
    """Child side: one spec, one table's measurements."""
    from rseqcheck.checker.engines.chc import spacer
    from rseqcheck.checker.engines.explicit import bfs
    from rseqcheck.checker.engines.lemmas import reachable
    from rseqcheck.checker.engines.symbolic import bmc, kinduction, strengthen
    from rseqcheck.model.build import build_system
    from rseqcheck.model.spec import load_spec

    spec = load_spec(path)
    system = build_system(spec)
    rec: dict[str, Any] = {"spec": path, "kind": kind, "vars": len(system.vars), "actions": len(system.actions)}
    if kind == "cex":
        e, es = _timed(bfs, system, spec.depth, por=False)
        b, bs = _timed(bmc, system, spec.depth, timeout=budget)
        i, is_ = _timed(kinduction, system, spec.depth, timeout=budget)
        rec.update(explicit=[e.verdict, _steps(e), es], bmc=[b.verdict, _steps(b), bs],
                   induction=[i.verdict, _steps(i), is_], prop=e.prop)
    elif kind == "ladder":
        reach, rs = _timed(reachable, system, 1_000_000, 120)
        rec.update(states=reach.n if reach else None, diameter=reach.diameter if reach else None)
        b, bs = _timed(bmc, system, spec.depth, timeout=budget * 2, budget=budget, coverage="none")
        rec.update(bmc_verdict=b.verdict, bmc_depth=b.bound if b.verdict == "holds" else None,
                   bmc_seconds=bs, reason=b.reason)
    elif kind == "proofs":
        t0 = time.perf_counter()
        reach = reachable(system, 1_000_000)
        rs = time.perf_counter() - t0
        if reach is not None:
            st = strengthen(system, reach)
            rec.update(states=reach.n, diameter=reach.diameter, reach_seconds=rs, proved=st.proved,
                       lemmas=len(st.lemmas), literals=sum(map(len, st.lemmas)), queries=st.queries,
                       strengthen_seconds=st.seconds, reason=st.reason)
        k, ks = _timed(kinduction, system, spec.depth, lemma_states=0, budget=budget, timeout=budget * 2)
        rec.update(plain_verdict=k.verdict, plain_exhausted=k.exhausted, plain_reason=k.reason, plain_seconds=ks)
        sp = spacer(system, budget)
        rec.update(spacer_verdict=sp.verdict, spacer_reason=sp.reason, spacer_seconds=sp.seconds)
    return rec


def run_one(kind: str, path: str, budget: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, path, "--budget", str(budget)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=budget * 6 + 300)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        return {"spec": path, "kind": kind, "error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    rec = json.loads(lines[-1])
    rec["wall_seconds"] = time.monotonic() - t0
    return rec


def spec_files(paths: list[str], expect: str) -> list[str]:
    from rseqcheck.model.spec import load_spec

    out = []
    for s in paths:
        p = Path(s)
        for f in sorted(p.rglob("*.toml")) if p.is_dir() else [p]:
            if load_spec(f).expect == expect:
                out.append(str(f.relative_to(ROOT) if f.is_absolute() else f))
    return out


def _cell(x: list) -> str:
    verdict, steps, secs = x
    return f"{steps if steps is not None else verdict:>5} {secs:>7.2f}"


def table_cex(recs: list[dict[str, Any]]) -> None:
    print("time to the shortest counterexample (seconds; steps = its length)")
    print(f"{'spec':<60} {'steps':>5} {'explicit':>7} {'steps':>5} {'bmc':>7} {'steps':>5} {'induct.':>7}")
    for r in recs:
        if "error" in r:
            print(f"{r['spec']:<60} error: {r['error']}")
            continue
        print(f"{r['spec']:<60} {_cell(r['explicit'])} {_cell(r['bmc'])} {_cell(r['induction'])}")


def table_ladder(recs: list[dict[str, Any]], budget: float) -> None:
    print(f"deepest depth bmc refutes within {budget:g} s (coverage none); diameter: the depth covering every reachable state")
    print(f"{'threads':>7} {'K':>2} {'vars':>4} {'actions':>7} {'states':>9} {'diameter':>8} {'bmc depth':>9} {'seconds':>7}")
    for r in recs:
        if "error" in r:
            print(f"{r['threads']:>7} {r['rounds']:>2} error: {r['error']}")
            continue
        states = f"{r['states']:,}" if r["states"] else ">1M"
        diam = r["diameter"] if r["diameter"] is not None else "-"
        depth = r["bmc_depth"] if r["bmc_depth"] is not None else r["bmc_verdict"]
        print(f"{r['threads']:>7} {r['rounds']:>2} {r['vars']:>4} {r['actions']:>7} {states:>9} {diam:>8} "
              f"{depth:>9} {r['bmc_seconds']:>7.1f}")


def table_proofs(recs: list[dict[str, Any]]) -> None:
    print("unbounded proofs: 1-induction with lemmas from the reachable states; plain k-induction within the budget")
    print(f"{'spec':<60} {'states':>7} {'diam.':>5} {'lemmas':>6} {'lits':>5} {'seconds':>7} {'spacer':>8}  plain k-induction")
    for r in recs:
        if "error" in r:
            print(f"{r['spec']:<60} error: {r['error']}")
            continue
        if "proved" in r:
            secs = r["reach_seconds"] + r["strengthen_seconds"]
            mid = (f"{r['states']:>7,} {r['diameter']:>5} {r['lemmas']:>6} {r['literals']:>5} {secs:>7.2f}"
                   if r["proved"] else f"{r['states']:>7,} {r['diameter']:>5} not proved: {r['reason']}")
        else:
            mid = f"{'-':>7} {'-':>5} {'-':>6} {'-':>5} {'-':>7}"
        plain = r["plain_reason"] if r["plain_exhausted"] else f"{r['plain_verdict']}: {r['plain_reason']}"
        sp = f"{r['spacer_seconds']:.1f}" if r["spacer_verdict"] == "holds" else "-"
        print(f"{r['spec']:<60} {mid} {sp:>8}  {plain} ({r['plain_seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the symbolic engines (see the module docstring).")
    ap.add_argument("tables", nargs="*", help="cex, ladder, proofs (default: all three), then spec files or folders")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per engine run (default %(default)s)")
    ap.add_argument("--threads", default="1-3", help="ladder thread counts (default %(default)s)")
    ap.add_argument("--rounds", default="1-7", help="ladder rounds K (default %(default)s)")
    ap.add_argument("--json", type=Path, help="also save the records here")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(work(args.worker[0], args.worker[1], args.budget)), flush=True)
        return 0
    kinds = [t for t in args.tables if t in ("cex", "ladder", "proofs")] or ["cex", "ladder", "proofs"]
    paths = [t for t in args.tables if t not in kinds] or ["specs"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    records: list[dict[str, Any]] = []
    for kind in kinds:
        if kind == "ladder":
            recs = []
            for t in parse_set(args.threads):
                for k in parse_set(args.rounds):
                    path = str((ladder.SPEC_DIR / f"{ladder.rung_name(t, k)}.toml").relative_to(ROOT))
                    recs.append(run_one(kind, path, args.budget) | {"threads": t, "rounds": k})
            table_ladder(recs, args.budget)
        else:
            files = spec_files(paths, "violation" if kind == "cex" else "holds")
            recs = [run_one(kind, f, args.budget) for f in files]
            (table_cex if kind == "cex" else table_proofs)(recs)
        print(flush=True)
        records += recs
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())

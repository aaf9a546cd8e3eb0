"""Run the next-syscall ladder (or any specs) through the explicit engine and
print one table row per rung.

Each rung runs in a fresh subprocess, so its peak RSS (from wait4's rusage)
is that rung's alone and no memory is carried between rungs.

    python benchmarks/run.py                     # the whole ladder, POR on
    python benchmarks/run.py --max-seconds 60    # skip rungs predicted to take longer
    python benchmarks/run.py --both --threads 1,2 --rounds 1-3 --json out.json
    python benchmarks/run.py specs/              # other specs, same table
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import ladder  # noqa: E402


def worker(path: str, por: bool, timeout: float | None, ref: str | None) -> None:
    """Child side: build and search one spec, print one JSON line."""
    import resource

    from model.build import build_system
    from model.spec import load_spec

    if ref:
        from compare import load_ref

        bfs = load_ref(ref).bfs
    else:
        from checker.explicit import bfs
    t0 = time.perf_counter()
    spec = load_spec(path)
    system = build_system(spec)
    build_s = time.perf_counter() - t0
    res = bfs(system, spec.depth, por=por, timeout=timeout)
    st = res.stats
    print(
        json.dumps(
            {
                "spec": path,
                "por": por,
                "verdict": res.verdict,
                "expected": spec.expect,
                "exhausted": res.exhausted,
                "reduced": res.reduced,
                "reason": res.reason,
                "states": st.states,
                "transitions": st.transitions,
                "depth": st.depth,
                "prop": res.prop,
                "trace_steps": len(res.trace) - 1 if res.trace else None,
                "seconds": st.seconds,
                "build_seconds": build_s,
                "vars": len(system.vars),
                "actions": len(system.actions),
                "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        ),
        flush=True,
    )


def run_one(path: str, por: bool, timeout: float | None, ref: str | None = None) -> dict[str, Any]:
    """Parent side: run `worker` in a fresh interpreter, collect its rusage."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", path, "--por" if por else "--no-por"]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    if ref:
        cmd += ["--ref", ref]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    killer = None
    if timeout:  # the engine stops itself at `timeout`; this catches a hang elsewhere
        killer = threading.Timer(timeout * 2 + 30, p.kill)
        killer.start()
    out = p.stdout.read() if p.stdout else ""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if killer:
        killer.cancel()
    wall = time.monotonic() - t0
    rec: dict[str, Any] = {"spec": path, "por": por, "wall_seconds": wall}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        rec.update(verdict="error", reason=f"worker exit status {p.returncode}")
    else:
        rec.update(json.loads(lines[-1]))
    rec["peak_rss_mib"] = ru.ru_maxrss / 1024  # Linux: KiB
    return rec


def parse_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out += range(int(lo), int(hi) + 1)
        else:
            out.append(int(part))
    return out


def predict(prev: list[float]) -> float | None:
    """Seconds the next rung of a column should take, from the last two rungs'
    growth (at least 2x: every round at least doubles the work)."""
    if not prev:
        return None
    growth = max(2.0, prev[-1] / prev[-2]) if len(prev) >= 2 and prev[-2] > 0 else 4.0
    return prev[-1] * growth


HEAD = f"{'threads':>7} {'K':>2} {'POR':>3} {'states':>11} {'transitions':>12} {'seconds':>8} {'states/s':>9} {'RSS MiB':>8}  verdict"


def row(threads: Any, k: Any, rec: dict[str, Any]) -> str:
    por = "on" if rec["por"] else "off"
    if rec.get("verdict") == "skipped":
        return f"{threads:>7} {k:>2} {por:>3} {'':>11} {'':>12} {'':>8} {'':>9} {'':>8}  skipped ({rec['reason']})"
    if "states" not in rec:
        return f"{threads:>7} {k:>2} {por:>3} {'':>11} {'':>12} {'':>8} {'':>9} {rec['peak_rss_mib']:>8.0f}  {rec['verdict']}: {rec.get('reason', '')}"
    secs = rec["seconds"]
    rate = rec["states"] / secs if secs > 0 else 0.0
    verdict = rec["verdict"]
    if verdict == "unknown":
        verdict += f" ({rec['reason']})"
    elif rec.get("expected") and verdict != rec["expected"]:
        verdict += f" (EXPECTED {rec['expected']})"
    return (
        f"{threads:>7} {k:>2} {por:>3} {rec['states']:>11,} {rec['transitions']:>12,} {secs:>8.2f} "
        f"{rate:>9,.0f} {rec['peak_rss_mib']:>8.0f}  {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the explicit engine on the next-syscall ladder.")
    ap.add_argument("specs", nargs="*", help="spec files or folders instead of the ladder")
    ap.add_argument("--threads", default="1-3", help="ladder thread counts, e.g. 1,2 or 1-3 (default %(default)s)")
    ap.add_argument("--rounds", default="1-7", help="ladder rounds K, e.g. 1-4 (default %(default)s)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--no-por", action="store_true", help="partial-order reduction off")
    g.add_argument("--both", action="store_true", help="run every rung with POR on and off")
    ap.add_argument("--max-seconds", type=float, help="skip rungs predicted to exceed this; stop a rung at it")
    ap.add_argument("--json", type=Path, help="also save the records here")
    ap.add_argument("--ref", metavar="REV", help="use the explicit engine of this git revision (before/after figures)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--por", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.por, args.timeout, args.ref)
        return 0

    stale = ladder.main(["--check"])
    if stale and not args.specs:
        return 2
    modes = [True, False] if args.both else [not args.no_por]
    # (threads, K, path) per row; columns are what the skip predictor follows.
    jobs: list[tuple[Any, Any, str]] = []
    if args.specs:
        for s in args.specs:
            p = Path(s)
            files = sorted(p.rglob("*.toml")) if p.is_dir() else [p]
            jobs += [("-", "-", str(f)) for f in files]
    else:
        for t in parse_set(args.threads):
            for k in parse_set(args.rounds):
                jobs.append((t, k, str((ladder.SPEC_DIR / f"{ladder.rung_name(t, k)}.toml").relative_to(ROOT))))

    eng = f"engine of {args.ref}" if args.ref else "engine of the working tree"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {eng}; seconds: the search itself (bfs, after compiling the model)")
    print(HEAD, flush=True)
    records: list[dict[str, Any]] = []
    disagree: list[str] = []
    history: dict[tuple[Any, bool], list[float]] = {}
    blocked: set[tuple[Any, bool]] = set()
    for t, k, path in jobs:
        for por in modes:
            col = (t, por) if t != "-" else (path, por)
            rec: dict[str, Any]
            guess = predict(history.get(col, []))
            if col in blocked:
                rec = {"spec": path, "por": por, "verdict": "skipped", "reason": "a smaller rung hit the budget"}
            elif args.max_seconds and guess is not None and guess > args.max_seconds:
                rec = {"spec": path, "por": por, "verdict": "skipped", "reason": f"predicted ~{guess:.0f} s"}
                blocked.add(col)
            else:
                rec = run_one(path, por, args.max_seconds, args.ref)
                if "seconds" in rec:
                    history.setdefault(col, []).append(rec["seconds"])
                if rec.get("verdict") in ("unknown", "error"):
                    blocked.add(col)
            rec.update(threads=t, rounds=k, engine=args.ref or "HEAD")
            records.append(rec)
            note = ""
            if not por and len(modes) == 2:  # POR soundness: both searches must agree
                on = records[-2]
                if "states" in on and "states" in rec and (on["verdict"], on.get("prop")) != (rec["verdict"], rec.get("prop")):
                    note = f"  POR DISAGREES: {on['verdict']} {on.get('prop') or ''} with reduction"
                    disagree.append(path)
            print(row(t, k, rec) + ("" if t != "-" else f"  {path}") + note, flush=True)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    bad = [r for r in records if r.get("verdict") not in ("skipped", "unknown") and r.get("expected") and r["verdict"] != r["expected"]]
    if disagree:
        print(f"POR on and off disagree on {len(disagree)} spec(s): " + ", ".join(disagree))
    return 1 if bad or disagree else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the next-syscall ladder (or the per-CPU counter ladder, or any specs)
through the explicit engine and print one table row per rung.

Each rung runs in a fresh subprocess, so its peak RSS (from wait4's rusage)
is that rung's alone and no memory is carried between rungs.

    python benchmarks/run.py                     # the whole ladder, POR on
    python benchmarks/run.py --max-seconds 60    # skip rungs predicted to take longer
    python benchmarks/run.py --both --threads 1,2 --rounds 1-3 --json out.json
    python benchmarks/run.py specs/              # other specs, same table
    python benchmarks/run.py --percpu --variants all --max-seconds 300
                                                 # the per-CPU counter ladder, with and
                                                 # without each reduction
    python benchmarks/run.py --bitstate 1G --max-seconds 300 benchmarks/specs/ladder_t2_k3.toml
                                                 # the full search (no POR) and the
                                                 # bitstate search, per spec
    python benchmarks/run.py --paired main --threads 3
                                                 # before (REV's model and engine)
                                                 # and after (cold, warm engine cache)
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
import percpu  # noqa: E402
import percpu_pml  # noqa: E402

# Search variants (--variants): name -> (partial-order reduction, dead register
# reduction, state-dependent independence: bfs(por_frozen=True), thread
# symmetry: bfs(symmetry=True)); "spin" runs SPIN on the rung's Promela
# model (benchmarks/percpu_pml.py) instead
VARIANTS: dict[str, tuple[bool, bool, bool, bool]] = {
    "all": (True, True, False, False),  # the default search
    "no-por": (False, True, False, False),
    "no-dead": (True, False, False, False),
    "none": (False, False, False, False),  # no reduction at all
    "frozen": (True, True, True, False),  # the default search with por_frozen
    "sym": (False, True, False, True),  # dead registers and thread symmetry (which replaces POR)
    "spin": (False, False, False, False),
    "spin-noreduce": (False, False, False, False),  # SPIN with -DNOREDUCE: its reduction off too
    "w2": (False, True, False, False),  # no-por on 2 worker processes (checker/engines/workers.py)
}
WORKERS = {"w2": 2}


def worker(path: str, por: bool, timeout: float | None, ref: str | None, dead: bool = True,
           frozen: bool = False, symmetry: bool = False, tree: str | None = None,
           bits: int | None = None, workers: int = 1) -> None:
    """Child side: build and search one spec, print one JSON line.  `dead`
    False: the dead register reduction is off (model/data.py:dead_after
    patched to find no dead register, as tests/test_data.py does).
    `tree`: import model/ and checker/ from this folder (another
    revision's files: --paired)."""
    import resource

    if tree:
        sys.path.insert(0, tree)

    from rseqcheck.model.build import build_system
    from rseqcheck.model.spec import load_spec

    if not dead:
        from rseqcheck.model import data

        data.dead_after = lambda b, seg, always: [set() for _ in seg.instrs]

    if ref:
        from compare import load_ref

        bfs = load_ref(ref).bfs
    else:
        from rseqcheck.checker.engines.explicit import bfs
    engine = sys.modules[bfs.__module__]
    made = [0.0]  # CPU seconds in compile_packed (bfs calls it before its search)
    if hasattr(engine, "compile_packed"):
        inner = engine.compile_packed

        def timed(system: Any) -> Any:
            c0 = time.process_time()
            try:
                return inner(system)
            finally:
                made[0] += time.process_time() - c0

        engine.compile_packed = timed
    t0 = time.perf_counter()
    c0 = time.process_time()
    spec = load_spec(path)
    system = build_system(spec)
    build_s = time.perf_counter() - t0
    build_cpu = time.process_time() - c0
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the search
    extra = {**({"por_frozen": True} if frozen else {}), **({"symmetry": True} if symmetry else {})}
    def cpu() -> float:  # this process and the worker processes it waited for
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    c1 = cpu()
    if bits:
        from rseqcheck.checker.engines.bitstate import bitstate

        res = bitstate(system, spec.depth, bits=bits, timeout=timeout)
    elif workers > 1:
        from rseqcheck.checker.engines.workers import bfs_workers

        res = bfs_workers(system, spec.depth, workers, por=por, timeout=timeout, **extra)
    else:
        res = bfs(system, spec.depth, por=por, timeout=timeout, **extra)
    bfs_cpu = cpu() - c1
    st = res.stats
    cache = sys.modules.get("rseqcheck.checker.engines.engine_cache")
    print(
        json.dumps(
            {
                "spec": path,
                "por": por,
                "dead": dead,
                "frozen": frozen,
                "symmetry": getattr(res, "symmetry", False),
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
                # CPU seconds: load + build_system; compile_packed (generating and
                # compiling the engine, or loading it); the rest of bfs
                "build_cpu": build_cpu,
                "compile_cpu": made[0],
                "search_cpu": bfs_cpu - made[0],
                "cache": dict(cache.STATS) if cache is not None else None,
                "vars": len(system.vars),
                "actions": len(system.actions),
                "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "base_maxrss_kib": base_kib,
                "bitstate": getattr(res, "bitstate", None),
                "workers": workers,
            }
        ),
        flush=True,
    )


def run_one(path: str, por: bool, timeout: float | None, ref: str | None = None, dead: bool = True,
            frozen: bool = False, symmetry: bool = False, tree: str | None = None,
            env: dict[str, str] | None = None, bits: int | None = None, workers: int = 1) -> dict[str, Any]:
    """Parent side: run `worker` in a fresh interpreter, collect its rusage
    (wait4's: its CPU includes the worker processes it waited for, its peak
    RSS is the largest of them)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", path, "--por" if por else "--no-por"]
    if tree:
        cmd += ["--tree", tree]
    if not dead:
        cmd.append("--no-dead")
    if frozen:
        cmd.append("--por-frozen")
    if symmetry:
        cmd.append("--symmetry")
    if bits:
        cmd += ["--bits", str(bits)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    if ref:
        cmd += ["--ref", ref]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, text=True, env=env)
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
    rec: dict[str, Any] = {"spec": path, "por": por, "wall_seconds": wall,
                           "cpu_seconds": ru.ru_utime + ru.ru_stime}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        rec.update(verdict="error", reason=f"worker exit status {p.returncode}")
    else:
        rec.update(json.loads(lines[-1]))
    rec["peak_rss_mib"] = ru.ru_maxrss / 1024  # Linux: KiB
    return rec


def run_spin(pml: Path, timeout: float | None, noreduce: bool = False) -> dict[str, Any]:
    """SPIN on one Promela rung, in a fresh folder: spin -a, gcc -O2
    -DSAFETY, pan (depth-first, SPIN's partial-order reduction on, hash
    table 2^24, depth-first stack of 2 M steps).  CPU s: the three children;
    seconds: pan's own elapsed time; RSS: pan's peak.  `noreduce`: gcc
    -DNOREDUCE, SPIN's partial-order reduction off."""
    import re
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="rseqcheck-spin-"))
    try:
        shutil.copy(pml, d / "m.pml")
        t0 = time.monotonic()
        cpu = 0.0
        gcc = ["gcc", "-O2", "-DSAFETY"] + (["-DNOREDUCE"] if noreduce else []) + ["-o", "pan", "pan.c"]
        for cmd in (["spin", "-a", "m.pml"], gcc):
            p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            cpu += ru.ru_utime + ru.ru_stime
            if os.waitstatus_to_exitcode(status) != 0:
                return {"verdict": "error", "reason": f"{cmd[0]} failed", "peak_rss_mib": 0.0}
        log = d / "pan.log"
        with log.open("w") as f:
            p = subprocess.Popen(["./pan", "-m2000000"], cwd=d, stdout=f, stderr=subprocess.STDOUT)
            killer = threading.Timer(timeout, p.kill) if timeout else None
            if killer:
                killer.start()
            _, status, ru = os.wait4(p.pid, 0)
            if killer:
                killer.cancel()
        pan_cpu = ru.ru_utime + ru.ru_stime
        cpu += pan_cpu
        text = log.read_text()
        rec: dict[str, Any] = {"spec": str(pml.relative_to(ROOT)), "wall_seconds": time.monotonic() - t0,
                               "cpu_seconds": cpu, "peak_rss_mib": ru.ru_maxrss / 1024, "expected": "holds",
                               "base_maxrss_kib": 0, "self_maxrss_kib": ru.ru_maxrss, "search_cpu": pan_cpu}
        m = re.search(r"(\d+) states, stored", text)
        if not m:
            rec.update(verdict="unknown", reason=f"pan stopped after {rec['wall_seconds']:.0f} s")
            return rec
        trans = re.search(r"([\d.e+]+) transitions", text)
        el = re.search(r"elapsed time ([\d.e+]+)", text)
        errors = int(re.search(r"errors: (\d+)", text).group(1))  # type: ignore[union-attr]
        rec.update(states=int(m.group(1)), transitions=int(float(trans.group(1))) if trans else 0,
                   seconds=float(el.group(1)) if el else rec["wall_seconds"],
                   verdict="violation" if errors else "holds", exhausted=not errors)
        if "max search depth too small" in text:
            rec.update(verdict="unknown", reason="pan -m too small")
        return rec
    finally:
        shutil.rmtree(d, ignore_errors=True)


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


PHEAD = (f"{'rung':<16} {'variant':<13} {'states':>11} {'transitions':>12} {'CPU s':>7} {'wall s':>7} "
         f"{'states/s':>9} {'us/st':>5} {'B/state':>7} {'RSS MiB':>7}  verdict")


def prow(name: str, variant: str, rec: dict[str, Any]) -> str:
    """A row of the per-CPU ladder's table.  CPU s and wall s: the whole
    child (interpreter, build, compile, search); states/s: states over the
    search's own seconds; us/st: CPU microseconds of the search (ours:
    bfs after compiling, its workers included; SPIN: pan) per state;
    B/state: the search's growth of the peak RSS (after building and
    compiling) per state (with workers: the coordinator's, not meaningful)."""
    head = f"{name:<16} {variant:<13}"
    if rec.get("verdict") == "skipped":
        return f"{head} {'':>11} {'':>12} {'':>7} {'':>7} {'':>9} {'':>5} {'':>7} {'':>7}  skipped ({rec['reason']})"
    if "states" not in rec:
        return (f"{head} {'':>11} {'':>12} {'':>7} {'':>7} {'':>9} {'':>5} {'':>7} {rec['peak_rss_mib']:>7.0f}  "
                f"{rec['verdict']}: {rec.get('reason', '')}")
    secs = rec["seconds"]
    rate = rec["states"] / secs if secs > 0 else 0.0
    bps = (rec["self_maxrss_kib"] - rec.get("base_maxrss_kib", 0)) * 1024 / max(rec["states"], 1)
    verdict = rec["verdict"]
    if verdict == "unknown":
        verdict += f" ({rec['reason']}; states so far)"
    elif rec.get("expected") and verdict != rec["expected"]:
        verdict += f" (EXPECTED {rec['expected']})"
    us = rec.get("search_cpu", 0.0) * 1e6 / max(rec["states"], 1)
    return (
        f"{head} {rec['states']:>11,} {rec['transitions']:>12,} {rec['cpu_seconds']:>7.1f} {rec['wall_seconds']:>7.1f} "
        f"{rate:>9,.0f} {us:>5.2f} {bps:>7.0f} {rec['peak_rss_mib']:>7.0f}  {verdict}"
    )


def main_bitstate(args: argparse.Namespace) -> int:
    """Per spec, the full search (no reduction: the bitstate search has
    none) and the bitstate search with a table of args.bitstate bits, in
    fresh interpreters one after the other."""
    from rseqcheck.checker.engines.bitstate import NOT_PROOF, table_bits

    bits = table_bits(args.bitstate)
    files: list[Path] = []
    for s in args.specs:
        p = Path(s)
        files += sorted(p.rglob("*.toml")) if p.is_dir() else [p]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; bitstate table {bits:,} bits "
          f"({bits >> 23} MiB), k=3; budget {args.max_seconds} s per search")
    print(PHEAD + "  (bitstate: hash factor, expected omissions)", flush=True)
    records: list[dict[str, Any]] = []
    for f in files:
        name = f.stem
        for variant, b in (("full", None), (f"bit {_size(bits)}", bits)):
            rec = run_one(str(f), False, args.max_seconds, bits=b)
            rec.update(variant=variant, table_bits=b)
            records.append(rec)
            c = rec.get("bitstate")
            if c and rec.get("verdict") == NOT_PROOF and rec.get("expected") in (None, "holds"):
                rec = dict(rec, expected=NOT_PROOF)  # the row says what it found, not a mismatch
            line = prow(name, variant, rec)
            if c:
                line += f" (hf {c['hash_factor']:,.1f}, {c['expected_omissions']:.2g})"
            print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


def _size(bits: int) -> str:
    for unit, n in (("G", 30), ("M", 20), ("K", 10)):
        if bits >= 1 << n and not bits % (1 << n):
            return f"{bits >> n}{unit}"
    return str(bits)


def main_percpu(args: argparse.Namespace) -> int:
    """The per-CPU counter ladder, each rung under each variant.  A rung is
    skipped when the previous rung of its column (same T and C, one
    increment fewer) or the rung with one thread fewer (same K and C) hit
    the budget, or when the growth along K or along T predicts more."""
    if percpu.main(["--check"]) or percpu_pml.main(["--check"]):
        return 2
    variants = [v.strip() for v in args.variants.split(",")]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"--variants: {v}: one of {', '.join(VARIANTS)}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, engine of the working tree; "
          f"budget {args.max_seconds or 'none'} s per rung")
    print(PHEAD, flush=True)
    records: list[dict[str, Any]] = []
    history: dict[tuple[int, int, str], list[float]] = {}
    secs: dict[tuple[int, int, int, str], float] = {}
    over: set[tuple[int, int, int, str]] = set()  # (T, K, C, variant) that hit the budget or were skipped
    verdicts: dict[tuple[int, int, int], set[tuple[str, Any]]] = {}
    disagree: list[str] = []
    cs, ts, ks = parse_set(args.cpus), parse_set(args.threads), parse_set(args.rounds)
    for c in cs:
        for t in ts:
            for k in ks:
                name = percpu.rung_name(t, k, c)
                path = str((percpu.SPEC_DIR / f"{name}.toml").relative_to(ROOT))
                for v in variants:
                    por, dead, frozen, symmetry = VARIANTS[v]
                    col = (t, c, v)
                    guess = predict(history.get(col, []))
                    # one thread more multiplies the time at least by what the last one did
                    a, b = secs.get((t - 1, k, c, v)), secs.get((t - 2, k, c, v))
                    if a is not None:
                        by_t = a * max(2.0, a / b if b else 4.0)
                        guess = by_t if guess is None else max(guess, by_t)
                    rec: dict[str, Any]
                    if (t, k - 1, c, v) in over or (t - 1, k, c, v) in over:
                        rec = {"verdict": "skipped", "reason": "a smaller rung hit the budget"}
                        over.add((t, k, c, v))
                    elif args.max_seconds and guess is not None and guess > args.max_seconds:
                        rec = {"verdict": "skipped", "reason": f"predicted ~{guess:.0f} s"}
                        over.add((t, k, c, v))
                    else:
                        if v.startswith("spin"):
                            rec = run_spin(percpu.SPEC_DIR / f"{name}.pml", args.max_seconds, v == "spin-noreduce")
                        else:
                            rec = run_one(path, por, args.max_seconds, dead=dead, frozen=frozen, symmetry=symmetry,
                                          workers=WORKERS.get(v, args.workers))
                        if "seconds" in rec:
                            history.setdefault(col, []).append(rec["seconds"])
                            secs[(t, k, c, v)] = max(rec["seconds"], 1e-3)
                        if rec.get("verdict") in ("unknown", "error"):
                            over.add((t, k, c, v))
                        else:
                            verdicts.setdefault((t, k, c), set()).add((rec["verdict"], rec.get("prop")))
                    rec.update(spec=rec.get("spec", path), threads=t, rounds=k, cpus=c, variant=v, por=por, dead=dead,
                               frozen=frozen)
                    records.append(rec)
                    note = ""
                    if len(verdicts.get((t, k, c), ())) > 1:
                        note = "  VARIANTS DISAGREE"
                        disagree.append(name)
                    print(prow(name, v, rec) + note, flush=True)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    bad = [r for r in records if r.get("verdict") not in ("skipped", "unknown") and r.get("expected") and r["verdict"] != r["expected"]]
    return 1 if bad or disagree else 0


CHEAD = (f"{'rung':<6} {'run':<6} {'actions':>7} {'states':>7} {'build':>5} {'compile':>7} "
         f"{'search':>6} {'CPU s':>5} {'RSS MiB':>7}  verdict")


def crow(name: str, run: str, rec: dict[str, Any]) -> str:
    """A row of --paired, in CPU seconds: build (load + build_system),
    compile (compile_packed: generate and compile the engine, or load it),
    search (the rest of bfs), CPU s (the whole child, interpreter start
    and imports included)."""
    head = f"{name:<6} {run:<6}"
    if "states" not in rec:
        return f"{head} {rec.get('verdict')}: {rec.get('reason', '')}"
    verdict = rec["verdict"] + ("" if rec.get("expected") in (None, rec["verdict"]) else f" (EXPECTED {rec['expected']})")
    return (f"{head} {rec['actions']:>7} {rec['states']:>7,} {rec['build_cpu']:>5.2f} {rec['compile_cpu']:>7.2f} "
            f"{rec['search_cpu']:>6.2f} {rec['cpu_seconds']:>5.2f} {rec['peak_rss_mib']:>7.0f}  {verdict}")


def main_paired(args: argparse.Namespace) -> int:
    """Before/after, paired: per rung, the model and engine of REV (from
    git), then the working tree's with an empty engine cache (generates,
    compiles and stores), then again (loads it).  States and verdicts must
    agree across the three."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="rseqcheck-paired-"))
    try:
        before = work / "tree"
        before.mkdir()
        tar = subprocess.run(["git", "archive", args.paired, "model", "checker"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=tar, check=True)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; before: {args.paired}, after: the working "
              "tree (cold: empty engine cache, warm: filled)")
        print(CHEAD, flush=True)
        records: list[dict[str, Any]] = []
        differ: list[str] = []
        for t in parse_set(args.threads):
            for k in parse_set(args.rounds):
                path = str((ladder.SPEC_DIR / f"{ladder.rung_name(t, k)}.toml").relative_to(ROOT))
                cache = work / f"cache-t{t}k{k}"
                env = {**os.environ, "RSEQCHECK_CACHE_DIR": str(cache)}
                env.pop("RSEQCHECK_NO_CACHE", None)
                runs = [("before", str(before)), ("cold", None), ("warm", None)]
                got = []
                for run, tree in runs:
                    rec = run_one(path, not args.no_por, args.max_seconds, tree=tree, env=env)
                    rec.update(threads=t, rounds=k, run=run, engine=args.paired if tree else "working tree")
                    records.append(rec)
                    got.append((rec.get("verdict"), rec.get("states"), rec.get("transitions")))
                    print(crow(f"t{t}_k{k}", run, rec), flush=True)
                if len(set(got)) > 1:
                    differ.append(path)
        if args.json:
            args.json.write_text(json.dumps(records, indent=1) + "\n")
        if differ:
            print("before and after disagree on: " + ", ".join(differ))
        return 1 if differ else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
    ap.add_argument("--percpu", action="store_true", help="the per-CPU counter ladder (benchmarks/percpu.py)")
    ap.add_argument("--cpus", default="1-2", help="per-CPU ladder CPU counts (default %(default)s)")
    ap.add_argument("--variants", default="all", help="per-CPU ladder: comma-separated search variants, of "
                    + ", ".join(VARIANTS) + " (default %(default)s)")
    ap.add_argument("--bitstate", type=lambda x: int(float(x[:-1]) * 2 ** {"K": 10, "M": 20, "G": 30}[x[-1]])
                    if x[-1] in "KMG" else int(x), metavar="BITS",
                    help="the given specs: the full search (no POR) and the bitstate search with this many bits")
    ap.add_argument("--paired", metavar="REV", help="ladder rungs with the model and engine of REV, then of the "
                    "working tree with an empty engine cache and again with it filled, one rung at a time")
    ap.add_argument("--workers", type=int, default=1,
                    help="search each rung with this many processes (verify --workers; the plain search only)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    ap.add_argument("--bits", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--no-dead", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--por-frozen", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--symmetry", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--por", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.por, args.timeout, args.ref, dead=not args.no_dead, frozen=args.por_frozen,
               symmetry=args.symmetry, tree=args.tree, bits=args.bits, workers=args.workers)
        return 0
    if args.bitstate:
        return main_bitstate(args)
    if args.paired:
        return main_paired(args)
    if args.percpu:
        if args.rounds == "1-7":
            args.rounds = "1-3"
        return main_percpu(args)

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
                rec = run_one(path, por, args.max_seconds, args.ref, workers=args.workers)
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

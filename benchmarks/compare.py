"""Check that the explicit engine gives the same results as an earlier
revision of it: for each spec, run `bfs` of both on the same IR system and
compare verdict, property, states, transitions, depth, exhaustion, the
fired actions and the counterexample trace.

    python benchmarks/compare.py --ref HEAD specs/ benchmarks/specs/ladder_t1_k3.toml
    python benchmarks/compare.py --ref 14cd308 --no-por --ladder 1-2x1-2

The reference's checker/engines/compile.py and checker/engines/explicit.py are taken from
git (`--ref`) and imported as a separate package, so the model is today's
for both.  Exit status 1 if anything differs.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import ladder  # noqa: E402


def load_ref(rev: str) -> Any:
    """The explicit engine of `rev`, importable beside today's."""
    tmp = Path(tempfile.mkdtemp(prefix="rseqcheck-ref-"))
    atexit.register(shutil.rmtree, tmp, True)
    pkg = tmp / "refengine"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    # the engine's own modules from `rev` (before or after they moved to
    # checker/engines/); everything else from the installed rseqcheck
    own = ("compile", "explicit", "symmetry", "engine_cache")
    for name in own:
        for where in (f"checker/engines/{name}.py", f"checker/{name}.py"):
            got = subprocess.run(["git", "show", f"{rev}:{where}"], cwd=ROOT, capture_output=True, text=True)
            if not got.returncode:
                break
        else:
            continue  # not in that revision
        src = got.stdout
        for mod in own:
            for old in (f"rseqcheck.checker.engines.{mod}", f"checker.{mod}"):
                src = src.replace(f"from {old} import", f"from refengine.{mod} import")
            for old in ("rseqcheck.checker.engines", "checker"):
                src = src.replace(f"from {old} import {mod}", f"from refengine import {mod}")
        src = re.sub(r"(?m)^(\\s*)from (model|checker)([. ])", r"\\1from rseqcheck.\\2\\3", src)
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("refengine.explicit")


def summary(res: Any) -> dict[str, Any]:
    st = res.stats
    return {
        "verdict": res.verdict,
        "prop": res.prop,
        "states": st.states,
        "transitions": st.transitions,
        "depth": st.depth,
        "exhausted": res.exhausted,
        "reduced": res.reduced,
        "shortest": res.shortest,
        "fired": sorted(res.fired),
        "trace": [(a, tuple(int(x) for x in s)) for a, s in res.trace],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", help="spec files or folders")
    ap.add_argument("--ref", default="HEAD", help="git revision of the reference engine (default %(default)s)")
    ap.add_argument("--ladder", help="ladder rungs THREADSxROUNDS, e.g. 1-2x1-3")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--no-por", action="store_true", help="only without partial-order reduction")
    g.add_argument("--por-only", action="store_true", help="only with partial-order reduction")
    ap.add_argument("--verdicts-only", action="store_true", help="compare verdict and property only")
    args = ap.parse_args(argv)

    from rseqcheck.checker.engines import explicit as new
    from rseqcheck.model.build import build_system
    from rseqcheck.model.spec import load_spec

    ref = load_ref(args.ref)
    paths: list[str] = []
    for s in args.specs:
        p = Path(s)
        paths += [str(x) for x in sorted(p.rglob("*.toml"))] if p.is_dir() else [s]
    if args.ladder:
        from run import parse_set

        ts, ks = args.ladder.split("x")
        for t in parse_set(ts):
            for k in parse_set(ks):
                paths.append(str(ladder.SPEC_DIR / f"{ladder.rung_name(t, k)}.toml"))
    modes = [False] if args.no_por else [True] if args.por_only else [True, False]
    bad = 0
    for path in paths:
        spec = load_spec(path)
        system = build_system(spec)
        for por in modes:
            t0 = time.perf_counter()
            a = summary(ref.bfs(system, spec.depth, por=por))
            t1 = time.perf_counter()
            b = summary(new.bfs(system, spec.depth, por=por))
            t2 = time.perf_counter()
            keys = ("verdict", "prop") if args.verdicts_only else tuple(a)
            diff = [k for k in keys if a[k] != b[k]]
            mark = "same" if not diff else "DIFF " + ", ".join(f"{k}: {a[k] if k != 'trace' else len(a[k])} -> {b[k] if k != 'trace' else len(b[k])}" for k in diff)
            bad += bool(diff)
            print(f"{path} por={'on ' if por else 'off'} {a['verdict']:9} {a['states']:>10,} states  "
                  f"ref {t1 - t0:7.2f} s  new {t2 - t1:7.2f} s  {mark}", flush=True)
    print(f"{bad} difference(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

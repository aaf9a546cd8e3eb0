"""Empirical soundness check of the partial-order reduction on random
systems: processes with a program counter and a few locals, some shared
globals, a violation that needs particular interleavings.

For each seed: the verdict and violated property with and without POR must
agree; when the property holds, the reduced search may not visit more states
and must fire the same actions (vacuity is judged from them); and each run
of the ignoring fix must pick exactly one state in each bottom strongly
connected component of the reduced graph that has no fully expanded state
(cross-checked against networkx).

    python benchmarks/por_fuzz.py 0 2000          # seeds 0..1999
    python benchmarks/por_fuzz.py 0 2000 --no-fix # shows the fix is needed
    python benchmarks/por_fuzz.py 0 2000 --frozen # the reduction with bfs(por_frozen=True)
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rseqcheck.checker.engines.explicit as E  # noqa: E402
from rseqcheck.model.ir import (  # noqa: E402
    Action,
    Add,
    And,
    Bool,
    Const,
    Enum,
    Eq,
    IntRange,
    Ite,
    Lt,
    Ne,
    Not,
    Property,
    Ref,
    System,
    Var,
)


def generate(seed: int, owners: bool = False) -> System:
    """A random system; `owners`: also a global `own` that processes take
    (own == 0 -> own := me), hand over (ite(own == me, other, own)) and
    test (own == me), and guards on other processes' pc (pc != k): the
    shapes bfs(por_frozen=True) reasons about."""
    r = random.Random(seed)
    glob = [Var(f"g{i}", IntRange(0, r.randint(1, 2))) for i in range(r.randint(0, 2))]
    bad = Var("bad", Bool())
    vars_ = [bad, *glob]
    nproc = r.randint(2, 3)
    own = Var("own", IntRange(0, nproc)) if owners else None
    if own is not None:
        vars_.append(own)
    pcs: list[Var] = []
    procs = []
    for p in range(nproc):
        npc = r.randint(2, 6)
        pc = Var(f"P{p}.pc", Enum(*[str(i) for i in range(npc)]), proc=f"P{p}")
        pcs.append(pc)
        loc = [Var(f"P{p}.x{i}", IntRange(0, r.randint(1, 3)), proc=f"P{p}") for i in range(r.randint(0, 2))]
        vars_ += [pc, *loc]
        procs.append((f"P{p}", pc, loc, npc))
    actions = []
    for me, (name, pc, loc, npc) in enumerate(procs, 1):
        for k in range(r.randint(2, 9)):
            src, dst = r.randrange(npc), r.randrange(npc)
            conj = [Eq(pc, src)]
            ups = [(pc, Const(dst))]
            if own is not None:
                kind = r.choice(["take", "give", "hold", "hold", "peek", "none"])
                if kind == "take":
                    conj.append(Eq(own, 0))
                    ups.append((own, Const(me)))
                elif kind == "give":
                    ups.append((own, Ite(Eq(own, me), Const(r.randint(0, nproc)), Ref(own))))
                elif kind == "hold":
                    conj.append(Eq(own, me))
                elif kind == "peek":
                    other = r.choice([q for q in pcs if q is not pc] or [pc])
                    conj.append(Ne(other, r.randrange(other.type.hi + 1)))
            pool = loc + (glob if r.random() < 0.3 else [])
            if pool and r.random() < 0.6:
                v = r.choice(pool)
                kind = r.choice(["lt", "eq", "ne"])
                conj.append(Lt(v, v.type.hi) if kind == "lt" else Eq(v, r.randint(0, v.type.hi)) if kind == "eq" else Ne(v, 0))
            if pool and r.random() < 0.6:
                v = r.choice(pool)
                if r.random() < 0.5:
                    ups.append((v, Const(r.randint(0, v.type.hi))))
                else:
                    ups.append((v, Ite(Lt(v, v.type.hi), Add(v, 1), Const(0))))
            if r.random() < 0.08:  # the violation, sometimes only when a global is set
                conj = [Eq(pc, src)] + ([Eq(r.choice(glob), 1)] if glob and r.random() < 0.5 else [])
                ups = [(bad, Const(1))]
            actions.append(Action(f"{name}.a{k}", And(*conj), tuple(dict(ups).items()), name, name))
    return System(vars_, {v: 0 for v in vars_}, actions, [Property("ok", Not(bad), "")], terminal=Ref(bad))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int, help="exclusive")
    ap.add_argument("--no-fix", action="store_true", help="disable the ignoring fix (expect disagreements)")
    ap.add_argument("--frozen", action="store_true", help="reduce with the state-dependent independence (por_frozen) "
                    "on systems that also have the shapes it reasons about (generate(owners=True))")
    args = ap.parse_args(argv)

    fix = E._Search.fix_ignoring
    counts = {"systems": 0, "reduced": 0, "violations": 0, "fix runs": 0, "states fixed": 0}

    def checked_fix(self: E._Search) -> dict:
        g = nx.DiGraph()
        full = set()
        for x in self.seen:
            out, is_full = self.reduced_succ(x)
            g.add_node(x)
            if is_full:
                full.add(x)
            g.add_edges_from((x, t) for _, t in out)
        c = nx.condensation(g)
        want = sorted(min(c.nodes[n]["members"]) for n in c.nodes
                      if c.out_degree(n) == 0 and not (c.nodes[n]["members"] & full))
        if args.no_fix:
            return {}
        before = set(self.forced)
        res = fix(self)
        got = sorted(self.forced - before)
        assert got == want, f"ignoring fix picked {got}, bottom components need {want}"
        counts["fix runs"] += 1
        counts["states fixed"] += len(got)
        return res

    E._Search.fix_ignoring = checked_fix  # type: ignore[method-assign]
    bad = 0
    for seed in range(args.first, args.last):
        system = generate(seed, owners=args.frozen)
        full = E.bfs(system, 1000, por=False)
        red = E.bfs(system, 1000, por=True, por_frozen=args.frozen)
        counts["systems"] += 1
        counts["reduced"] += red.reduced
        counts["violations"] += full.verdict == "violation"
        ok = (full.verdict, full.prop) == (red.verdict, red.prop)
        if full.verdict == "holds":
            ok = ok and red.stats.states <= full.stats.states and red.fired == full.fired
        if not ok:
            bad += 1
            print(f"seed {seed}: full {full.verdict} ({full.stats.states} states), "
                  f"reduced {red.verdict} ({red.stats.states} states)")
    print(f"{bad} disagreement(s); " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

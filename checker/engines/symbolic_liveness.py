"""Bounded lasso search with Z3 (loop-closing BMC) for the goals of
model/ir.py:Goal, on the unrolling of checker/engines/symbolic.py.

For k = 0, 1, 2, ... it asks for a path s_0 .. s_k from the initial state
and a loop position l (one Boolean per l) such that either l < k and
s_k = s_l (the run goes on from s_l forever through steps l .. k-1), or
l = k and no action is enabled at s_k (the run ends there), and the lasso
breaks the goal under the system's fairness, with the conditions of
checker/engines/liveness.py:lasso_violation:

* eventually: the target is false at s_0 .. s_k;
* recurrence: the target is false at s_l .. s_k, no step of the cycle is a
  release action, one is a trigger action (an ending run only without a
  trigger);
* fairness, per set F over the cycle's steps j in l .. k-1: weak: an
  action of F is taken, or at some s_j none of F is enabled; strong: an
  action of F is taken, or none of F is enabled at any s_j.

The first k with an answer gives a lasso with the fewest steps in all
(prefix plus cycle); the explicit engine's lasso has the shortest prefix
instead, so `--engine all` compares verdicts and checks that each lasso
replays and breaks the goal, not that their lengths agree.  "holds" here
means: no lasso of at most `max_depth` steps; `exhausted` when no path is
`max_depth` steps long.  `sometimes` asks for a path to a target state.
Nothing here knows what the variables mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import z3
from rseqcheck.checker.engines.explicit import SearchResult, Stats
from rseqcheck.checker.engines.symbolic import _Unrolling
from rseqcheck.model.ir import Goal, System

Progress = Callable[[Stats], None]


class _Lasso:
    """The unrolling, plus per step j Boolean definitions made once, so a
    query of length k only combines literals: the goal's target at s_j,
    a release / trigger step taken from s_j, per fairness set an action of
    it taken from s_j and one of it enabled at s_j, some action enabled."""

    def __init__(self, system: System, goal: Goal, encoding: str = "bv"):
        self.system, self.goal = system, goal
        self.u = _Unrolling(system, encoding, anchored=True, simple_path=False)
        self.enc = self.u.enc
        acts = system.actions
        self.trig = [i for i, a in enumerate(acts) if goal.matches(goal.trigger, a)]
        self.rel = [i for i, a in enumerate(acts) if goal.matches(goal.release, a)]
        self.state_defs: list[dict[str, z3.BoolRef]] = []  # per state j
        self.step_defs: list[dict[str, z3.BoolRef]] = []  # per step j -> j + 1

    def _def(self, name: str, f: z3.BoolRef) -> z3.BoolRef:
        b = z3.Bool(name)
        self.u.solver.add(b == f)
        return b

    def grow(self, k: int) -> None:
        u, system = self.u, self.system
        while len(u.states) <= k:
            u.extend()
        while len(self.state_defs) <= k:
            j = len(self.state_defs)
            env = dict(zip(system.vars, u.states[j], strict=True))
            memo: dict[int, z3.BoolRef] = {}
            term = self.enc.boolean(system.terminal, env, memo)
            guards = [self.enc.boolean(a.guard, env, memo) for a in system.actions]
            d = {"target": self._def(f"tgt@{j}", self.enc.boolean(self.goal.target, env, memo)),
                 "any": self._def(f"any@{j}", z3.And(z3.Not(term), z3.Or(guards) if guards else z3.BoolVal(False))),
                 "ok": self._def(f"ok@{j}", z3.And([self.enc.in_range(x, v.type.lo, v.type.hi)
                                                   for v, x in zip(system.vars, u.states[j], strict=True)]))}
            for n, f in enumerate(system.fairness):
                d[f"en{n}"] = self._def(f"en{n}@{j}", z3.And(z3.Not(term), z3.Or([guards[i] for i in f.actions])))
            self.state_defs.append(d)
        while len(self.step_defs) < k:
            j = len(self.step_defs)
            a = u.acts[j]

            def taken(ids, a=a) -> z3.BoolRef:
                return z3.Or([a[i] for i in ids]) if ids else z3.BoolVal(False)

            d = {"rel": self._def(f"rel@{j}", taken(self.rel)), "trig": self._def(f"trig@{j}", taken(self.trig)),
                 "noerr": z3.Not(u.errs[j])}
            for n, f in enumerate(system.fairness):
                d[f"tk{n}"] = self._def(f"tk{n}@{j}", taken(sorted(f.actions)))
            self.step_defs.append(d)

    def query(self, k: int) -> tuple[z3.BoolRef, list[z3.BoolRef]]:
        """The lasso condition for length k, and the loop Booleans."""
        goal, u, S, T = self.goal, self.u, self.state_defs, self.step_defs
        loops = [z3.Bool(f"loop@{k}#{i}") for i in range(k + 1)]
        parts: list[z3.BoolRef] = [z3.Or(loops), z3.AtMost(*loops, 1)]
        parts += [S[j]["ok"] for j in range(k + 1)] + [T[j]["noerr"] for j in range(k)]
        if goal.kind == "eventually":
            parts += [z3.Not(S[j]["target"]) for j in range(k + 1)]
        for l in range(k + 1):  # noqa: E741  (the loop position, as in the literature)
            c: list[z3.BoolRef] = []
            if l == k:  # the run ends at s_k
                c.append(z3.Not(S[k]["any"]))
                if goal.kind == "recurrence":
                    c += [z3.BoolVal(goal.trigger is None), z3.Not(S[k]["target"])]
            else:
                c += [self.enc.eq(x, y) for x, y in zip(u.states[k], u.states[l], strict=True)]
                cyc = range(l, k)
                if goal.kind == "recurrence":
                    c += [z3.Not(S[j]["target"]) for j in range(l, k + 1)]
                    c += [z3.Not(T[j]["rel"]) for j in cyc]
                    if goal.trigger is not None:
                        c.append(z3.Or([T[j]["trig"] for j in cyc]))
                for n, f in enumerate(self.system.fairness):
                    taken = z3.Or([T[j][f"tk{n}"] for j in cyc])
                    off = [z3.Not(S[j][f"en{n}"]) for j in cyc]
                    c.append(z3.Or(taken, z3.Or(off) if f.kind == "weak" else z3.And(off)))
            parts.append(z3.Implies(loops[l], z3.And(c)))
        return z3.And(parts), loops


def lasso_bmc(system: System, max_depth: int, timeout: float | None = None, progress: Progress | None = None,
              encoding: str = "bv") -> SearchResult:
    """Every goal of `system` in order, lengths 0..max_depth; the first
    violated goal with its shortest lasso."""
    t0 = time.monotonic()
    deadline = t0 + timeout if timeout else None
    st = Stats()
    exhausted = False
    try:
        for goal in system.goals:
            r = _one(system, goal, max_depth, deadline, timeout, progress, t0, encoding, st)
            if isinstance(r, SearchResult):
                return r
            exhausted = r
    except KeyboardInterrupt:
        return _unknown(st, t0, max_depth, "interrupted")
    st.seconds = time.monotonic() - t0
    why = "no lasso in the graph: every path is shorter" if exhausted else f"no lasso of at most {max_depth} steps"
    return SearchResult("holds", "bmc", st, st.depth if exhausted else max_depth, exhausted=exhausted, reason=why,
                        notes=["bounded lasso search (loop-closing BMC)"])


def _one(system: System, goal: Goal, max_depth: int, deadline: float | None, timeout: float | None,
         progress: Progress | None, t0: float, encoding: str, st: Stats) -> SearchResult | bool:
    """A violation of `goal`, or whether every path ends within max_depth."""
    las = _Lasso(system, goal, encoding)
    u = las.u
    for k in range(max_depth + 1):
        las.grow(k)
        st.depth = k
        if not u.set_timeout(deadline):
            return _unknown(st, t0, max_depth, f"timeout after {timeout:g} s")
        r = u.check()
        if r == z3.unsat:
            break  # no path is k steps long: every lasso was looked at
        if goal.kind == "sometimes":
            r = u.check(u.lit(las.state_defs[k]["target"]))
            if r == z3.sat:
                return False
        else:
            q, loops = las.query(k)
            r = u.check(u.lit(q))
            if r == z3.sat:
                m = u.solver.model()
                loop = next(i for i, b in enumerate(loops) if z3.is_true(m.eval(b, model_completion=True)))
                st.seconds = time.monotonic() - t0
                return SearchResult("violation", "bmc", st, max_depth, prop=goal.name, goal=goal.key,
                                    trace=u.trace(m, k), loop=loop, notes=["bounded lasso search (loop-closing BMC)"])
        if r == z3.unknown:
            return _unknown(st, t0, max_depth, f"Z3: {u.solver.reason_unknown()}")
        if progress:
            progress(Stats(0, 0, k, time.monotonic() - t0))
    else:
        if goal.kind == "sometimes":
            return SearchResult("unknown", "bmc", st, max_depth,
                                reason=f"{goal.key}: no state within depth {max_depth} satisfies it")
        return False
    if goal.kind == "sometimes":  # every path ends, none reaches it
        st.seconds = time.monotonic() - t0
        return SearchResult("violation", "bmc", st, max_depth, exhausted=True, prop=goal.name, goal=goal.key)
    return True


def _unknown(st: Stats, t0: float, bound: int, reason: str) -> SearchResult:
    st.seconds = time.monotonic() - t0
    return SearchResult("unknown", "bmc", st, bound, reason=reason)

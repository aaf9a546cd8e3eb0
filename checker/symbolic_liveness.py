"""Bounded lasso search with Z3 (loop-closing BMC) for the goals of
model/ir.py:Goal, on the unrolling of checker/symbolic.py.

For k = 0, 1, 2, ... it asks for a path s_0 .. s_k from the initial state
and a loop position l (one Boolean per l) such that either l < k and
s_k = s_l (the run goes on from s_l forever through steps l .. k-1), or
l = k and no action is enabled at s_k (the run ends there), and the lasso
breaks the goal under the system's fairness, with the conditions of
checker/liveness.py:lasso_violation:

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

from checker.explicit import SearchResult, Stats
from checker.symbolic import _Unrolling
from model.ir import Goal, System

Progress = Callable[[Stats], None]


class _Lasso:
    def __init__(self, system: System, encoding: str = "bv"):
        self.system = system
        self.u = _Unrolling(system, encoding, anchored=True, simple_path=False)
        self.enc = self.u.enc
        self.en_memo: dict[tuple[int, int], z3.BoolRef] = {}
        self.term_memo: dict[int, z3.BoolRef] = {}

    def env(self, j: int) -> dict:
        return dict(zip(self.system.vars, self.u.states[j], strict=True))

    def holds(self, e, j: int) -> z3.BoolRef:
        return self.enc.boolean(e, self.env(j), {})

    def enabled(self, ai: int, j: int) -> z3.BoolRef:
        key = (ai, j)
        if key not in self.en_memo:
            g = self.enc.boolean(self.system.actions[ai].guard, self.env(j), {})
            self.en_memo[key] = z3.And(z3.Not(self.terminal(j)), g)
        return self.en_memo[key]

    def terminal(self, j: int) -> z3.BoolRef:
        if j not in self.term_memo:
            self.term_memo[j] = self.enc.boolean(self.system.terminal, self.env(j), {})
        return self.term_memo[j]

    def some_enabled(self, acts, j: int) -> z3.BoolRef:
        return z3.Or([self.enabled(ai, j) for ai in acts]) if acts else z3.BoolVal(False)

    def taken(self, acts, j: int) -> z3.BoolRef:
        return z3.Or([self.u.acts[j][ai] for ai in acts]) if acts else z3.BoolVal(False)

    def query(self, goal: Goal, k: int) -> tuple[z3.BoolRef, list[z3.BoolRef]]:
        """The lasso condition for length k, and the loop Booleans."""
        system, u = self.system, self.u
        loops = [z3.Bool(f"loop@{goal.key}@{k}#{i}") for i in range(k + 1)]
        parts: list[z3.BoolRef] = [z3.Or(loops), z3.AtMost(*loops, 1)]
        parts += [self.enc.in_range(x, v.type.lo, v.type.hi) for j in range(k + 1)
                  for v, x in zip(system.vars, u.states[j], strict=True)]
        parts += [z3.Not(u.errs[j]) for j in range(k)]
        trig = [i for i, a in enumerate(system.actions) if goal.matches(goal.trigger, a)]
        rel = [i for i, a in enumerate(system.actions) if goal.matches(goal.release, a)]
        if goal.kind == "eventually":
            parts += [z3.Not(self.holds(goal.target, j)) for j in range(k + 1)]
        for l in range(k + 1):  # noqa: E741  (the loop position, as in the literature)
            c: list[z3.BoolRef] = []
            if l == k:  # the run ends at s_k
                c.append(z3.Or(self.terminal(k), z3.Not(self.some_enabled(range(len(system.actions)), k))))
                if goal.kind == "recurrence":
                    if goal.trigger is not None:
                        c.append(z3.BoolVal(False))
                    c.append(z3.Not(self.holds(goal.target, k)))
            else:
                c += [self.enc.eq(x, y) for x, y in zip(u.states[k], u.states[l], strict=True)]
                cyc = range(l, k)
                if goal.kind == "recurrence":
                    c += [z3.Not(self.holds(goal.target, j)) for j in range(l, k + 1)]
                    c += [z3.Not(self.taken(rel, j)) for j in cyc]
                    if goal.trigger is not None:
                        c.append(z3.Or([self.taken(trig, j) for j in cyc]))
                for f in system.fairness:
                    taken = z3.Or([self.taken(f.actions, j) for j in cyc])
                    off = [z3.Not(self.some_enabled(f.actions, j)) for j in cyc]
                    c.append(z3.Or(taken, z3.Or(off) if f.kind == "weak" else z3.And(off)))
            parts.append(z3.Implies(loops[l], z3.And(c)))
        return z3.And(parts), loops


def lasso_bmc(system: System, max_depth: int, timeout: float | None = None, progress: Progress | None = None,
              encoding: str = "bv") -> SearchResult:
    """Every goal of `system`, lengths 0..max_depth; the first violated
    goal (in order) with its shortest lasso."""
    t0 = time.monotonic()
    deadline = t0 + timeout if timeout else None
    las = _Lasso(system, encoding)
    u = las.u
    st = Stats()
    exhausted = False
    pending = list(system.goals)
    reached: set[str] = set()
    try:
        for k in range(max_depth + 1):
            while len(u.states) <= k:
                u.extend()
            st.depth = k
            if not u.set_timeout(deadline):
                return _unknown(st, t0, max_depth, f"timeout after {timeout:g} s")
            r = u.check()
            if r == z3.unsat:
                exhausted = True  # no path is k steps long: every lasso was looked at
                break
            for goal in list(pending):
                if goal.kind == "sometimes":
                    if u.check(u.lit(las.holds(goal.target, k))) == z3.sat:
                        reached.add(goal.key)
                        pending.remove(goal)
                    continue
                if not u.set_timeout(deadline):
                    return _unknown(st, t0, max_depth, f"timeout after {timeout:g} s")
                q, loops = las.query(goal, k)
                r = u.check(u.lit(q))
                if r == z3.unknown:
                    return _unknown(st, t0, max_depth, f"Z3: {u.solver.reason_unknown()}")
                if r == z3.sat:
                    m = u.solver.model()
                    loop = next(i for i, b in enumerate(loops) if z3.is_true(m.eval(b, model_completion=True)))
                    st.seconds = time.monotonic() - t0
                    return SearchResult("violation", "bmc", st, max_depth, prop=goal.name, goal=goal.key,
                                        trace=u.trace(m, k), loop=loop,
                                        notes=["bounded lasso search (loop-closing BMC)"])
            if progress:
                progress(Stats(0, 0, k, time.monotonic() - t0))
    except KeyboardInterrupt:
        return _unknown(st, t0, max_depth, "interrupted")
    st.seconds = time.monotonic() - t0
    for goal in pending:
        if goal.kind == "sometimes":
            if exhausted:
                return SearchResult("violation", "bmc", st, max_depth, exhausted=True, prop=goal.name, goal=goal.key)
            return SearchResult("unknown", "bmc", st, max_depth,
                                reason=f"{goal.key}: no state within depth {max_depth} satisfies it")
    why = "no lasso in the graph: every path is shorter" if exhausted else f"no lasso of at most {max_depth} steps"
    return SearchResult("holds", "bmc", st, st.depth if exhausted else max_depth, exhausted=exhausted, reason=why,
                        notes=["bounded lasso search (loop-closing BMC)"])


def _unknown(st: Stats, t0: float, bound: int, reason: str) -> SearchResult:
    st.seconds = time.monotonic() - t0
    return SearchResult("unknown", "bmc", st, bound, reason=reason)

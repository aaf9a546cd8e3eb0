"""Liveness and reachability goals (model/ir.py:Goal) on the explicit
reachable graph: a lasso search under fairness.

The whole reachable graph within the depth bound is built breadth-first,
without partial-order reduction (its ample sets keep safety, not
liveness: the cycle of a fair lasso may need the interleavings it drops).
A run is a maximal path: infinite, or ending in a state with no successor,
which then repeats forever (as TLC and SPIN treat a final state).

* sometimes P: a state satisfying P is reachable (the BFS finds one).
* eventually P: the region is the states reachable from the start through
  states where P is false; a violation is a state of it with no
  successor, or a fair strongly connected subgraph of it.
* recurrence (GF trigger -> GF release, or GF target): the region is the
  states where the target is false, its edges those of no release
  action; a violation is a fair strongly connected subgraph of it with a
  trigger edge (or, without a trigger, also a state of it with no
  successor).

A strongly connected subgraph is fair when (Emerson-Lei, as TLC and SPIN
check fairness on strongly connected components): for every weakly fair
set, one of its actions labels an edge inside it, or some state of it
enables none; for every strongly fair set, an edge inside it, or no state
of it enables one.  A component failing a weak set has no fair part; one
failing only strong sets loses the states enabling them and its remainder
is searched again.  A cycle through every state and edge of a fair
component is a fair run, so the check is exact for this fairness.

The lasso reported: the shortest prefix (BFS) to the nearest state of a
fair component, then a cycle that goes back to that state through, one
after the other, the nearest edge or state each obligation needs (the
trigger, each fair set).  `lasso_violation` checks a lasso from scratch;
the engine checks its own, and `replay` saved ones.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rseqcheck.checker.engines.compile import compile_packed, py_expr
from rseqcheck.checker.engines.explicit import SearchResult, Stats, _Stop, pop_component
from rseqcheck.model.ir import Expr, Goal, System

_CHUNK = 4096


@dataclass
class Graph:
    """The reachable graph within the bound, over packed states."""

    init: int
    succ: dict[int, list[tuple[int, int]]]  # expanded states: (action, target); [] when the run ends there
    depth: dict[int, int]  # BFS depth of every seen state
    parent: dict[int, tuple[int, int]]  # BFS tree: state -> (parent, action)
    exhausted: bool
    transitions: int = 0
    fired: set[int] = field(default_factory=set)


def _predicate(system: System, e: Expr, unpack: Callable[[int], tuple]) -> Callable[[int], bool]:
    idx = system.index()
    src = py_expr(e, lambda v: f"s[{idx[v]}]", True)  # only ints and s[i] reach the source
    f = eval(compile(f"lambda s: bool({src})", "<goal>", "eval"))  # noqa: S307
    return lambda x: f(unpack(x))


def explore(system: System, max_depth: int, timeout: float | None = None,
            progress: Callable[[Stats], None] | None = None, t0: float | None = None,
            max_states: int | None = None) -> tuple[Graph, Stats]:
    pk = compile_packed(system)
    t0 = time.monotonic() if t0 is None else t0
    deadline = t0 + timeout if timeout else None
    init = pk.pack(system.initial_state())
    g = Graph(init, {}, {init: 0}, {}, exhausted=False)
    frontier = [init]
    st = Stats()
    n = 0
    for d in range(max_depth + 1):
        nxt: list[int] = []
        for s in frontier:
            n += 1
            if not n % _CHUNK and deadline and time.monotonic() >= deadline:
                raise _Stop(f"timeout after {timeout:g} s")
            if pk.terminal(s) or pk.check(s) >= 0:
                g.succ[s] = []
                continue
            if d == max_depth:
                continue  # beyond the bound: not expanded
            out: list = []
            pk.succ(s, out)
            g.succ[s] = out
            g.transitions += len(out)
            for a, t in out:
                g.fired.add(a)
                if t not in g.depth:
                    g.depth[t] = d + 1
                    g.parent[t] = (s, a)
                    nxt.append(t)
                    if max_states and len(g.depth) > max_states:
                        raise _Stop(f"state limit {max_states} reached")
        st.depth = d
        if progress:
            progress(Stats(len(g.depth), g.transitions, d, time.monotonic() - t0))
        if not nxt:
            g.exhausted = True
            break
        frontier = nxt
    st.states, st.transitions = len(g.depth), g.transitions
    st.seconds = time.monotonic() - t0
    return g, st


def sccs(nodes: Iterable[int], adj: Callable[[int], list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        work = [(root, iter(adj(root)))]
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(adj(w))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    out.append(pop_component(stack, on, v))
    return out


class _Goal:
    """One goal against one graph: the region, its edges and the fairness
    bookkeeping (bit j of a mask is fairness set j)."""

    def __init__(self, system: System, g: Graph, goal: Goal, unpack: Callable[[int], tuple]):
        self.system, self.g, self.goal = system, g, goal
        acts = system.actions
        self.trig = [goal.matches(goal.trigger, a) for a in acts]
        self.rel = [goal.matches(goal.release, a) for a in acts]
        self.bits = [0] * len(acts)
        self.weak = self.strong = 0
        for j, f in enumerate(system.fairness):
            for i in f.actions:
                self.bits[i] |= 1 << j
            if f.kind == "strong":
                self.strong |= 1 << j
            else:
                self.weak |= 1 << j
        self.en: dict[int, int] = {}
        target = _predicate(system, goal.target, unpack)
        if goal.kind == "eventually":
            self.region = self._avoiding(target)
        else:
            self.region = {s for s in g.succ if not target(s)}

    def enabled(self, s: int) -> int:
        m = self.en.get(s)
        if m is None:
            m = 0
            for a, _ in self.g.succ[s]:
                m |= self.bits[a]
            self.en[s] = m
        return m

    def _avoiding(self, target: Callable[[int], bool]) -> set[int]:
        """Expanded states reachable from the start through states where
        the target is false (with their own BFS tree, for the prefix)."""
        g = self.g
        self.parent: dict[int, tuple[int, int]] = {}
        if g.init not in g.succ or target(g.init):
            return set()
        seen = {g.init}
        q = deque([g.init])
        while q:
            s = q.popleft()
            for a, t in g.succ[s]:
                if t not in seen and t in g.succ and not target(t):
                    seen.add(t)
                    self.parent[t] = (s, a)
                    q.append(t)
        return seen

    def edges(self, s: int, within: set[int]) -> list[tuple[int, int]]:
        return [(a, t) for a, t in self.g.succ[s] if t in within and not self.rel[a]]

    def fair_parts(self, states: set[int]) -> list[set[int]]:
        out: list[set[int]] = []
        need_trig = self.goal.trigger is not None
        for comp in sccs(sorted(states), lambda s: [t for _, t in self.edges(s, states)]):
            d = set(comp)
            inner = [(s, a, t) for s in comp for a, t in self.edges(s, d)]
            if not inner:
                continue  # a single state without a self-loop: no cycle
            taken = 0
            for _, a, _ in inner:
                taken |= self.bits[a]
            en_all, en_any = -1, 0
            for s in comp:
                en_all &= self.enabled(s)
                en_any |= self.enabled(s)
            if self.weak & en_all & ~taken:
                continue  # a weak set enabled throughout, never taken: no part of it is fair
            if need_trig and not any(self.trig[a] for _, a, _ in inner):
                continue
            bad = self.strong & en_any & ~taken
            if not bad:
                out.append(d)
                continue
            out += self.fair_parts({s for s in d if not self.enabled(s) & bad})
        return out

    def ends(self) -> list[int]:
        """States of the region where the run ends (no successor)."""
        if self.goal.trigger is not None:
            return []
        return [s for s in self.region if not self.g.succ[s]]

    def prefix(self, s: int) -> list[tuple[int, int]]:
        parent = self.parent if self.goal.kind == "eventually" else self.g.parent
        out = []
        while s != self.g.init:
            p, a = parent[s]
            out.append((a, s))
            s = p
        out.reverse()
        return out

    def depth_of(self, s: int) -> int:
        return len(self.prefix(s)) if self.goal.kind == "eventually" else self.g.depth[s]

    def cycle(self, d: set[int], e: int) -> list[tuple[int, int]]:
        """A cycle from e back to e inside d meeting every obligation: a
        trigger edge; per weak set an edge of it or a state disabling it;
        per strong set enabled in d an edge of it."""
        obligations: list[tuple[Callable[[int, int, int], bool], Callable[[int], bool]]] = []
        if self.goal.trigger is not None:
            obligations.append((lambda s, a, t: self.trig[a], lambda s: False))
        for j, _ in enumerate(self.system.fairness):
            bit = 1 << j
            if self.weak & bit:
                obligations.append((lambda s, a, t, bit=bit: bool(self.bits[a] & bit),
                                    lambda s, bit=bit: not self.enabled(s) & bit))
            elif any(self.enabled(s) & bit for s in d):
                obligations.append((lambda s, a, t, bit=bit: bool(self.bits[a] & bit), lambda s: False))
        path: list[tuple[int, int]] = []
        cur = e
        todo = [ob for ob in obligations if not ob[1](e)]
        while todo:
            steps = self._nearest(cur, d, todo)
            path += steps
            prev = cur
            for a, t in steps:
                todo = [ob for ob in todo if not (ob[0](prev, a, t) or ob[1](t))]
                prev = t
            cur = prev
        if cur != e or not path:
            path += self._path(cur, d, lambda s, a, t: t == e)
        return path

    def _nearest(self, src: int, d: set[int], todo: list) -> list[tuple[int, int]]:
        return self._path(src, d, lambda s, a, t: any(ed(s, a, t) or st(t) for ed, st in todo))

    def _path(self, src: int, d: set[int], done: Callable[[int, int, int], bool]) -> list[tuple[int, int]]:
        """The shortest path inside d from src whose last edge satisfies `done`."""
        parent: dict[int, tuple[int, int]] = {}
        q = deque([src])
        seen = {src}
        while q:
            s = q.popleft()
            for a, t in self.edges(s, d):
                if done(s, a, t):
                    out = [(a, t)]
                    while s != src:
                        p, b = parent[s]
                        out.append((b, s))
                        s = p
                    out.reverse()
                    return out
                if t not in seen:
                    seen.add(t)
                    parent[t] = (s, a)
                    q.append(t)
        raise AssertionError("no path inside a strongly connected part")  # cannot happen: d is strongly connected


def successors(system: System) -> Callable[[tuple], list[tuple[int, tuple]]]:
    """The successor function `lasso_violation` needs, on tuple states:
    none from a terminal state (killed, or a property broken)."""
    from rseqcheck.checker.engines.compile import compile_system

    comp = compile_system(system)

    def succ(s: tuple) -> list[tuple[int, tuple]]:
        out: list = []
        if not comp.terminal(s):
            comp.succ(s, out)
        return out

    return succ


def lasso_violation(system: System, goal: Goal, states: list[tuple], acts: list[int], loop: int,
                    succ: Callable[[tuple], list[tuple[int, tuple]]]) -> str | None:
    """Why the lasso states[0..n] (acts[i] leads to states[i + 1]), whose
    run goes on from states[loop] forever, is not a violation of `goal`
    under the system's fairness; None when it is one.  loop == n: the run
    ends in states[n] (which must have no successor)."""
    from rseqcheck.model.ir import evaluate

    def holds(e: Expr, s: tuple) -> bool:
        return bool(evaluate(e, dict(zip(system.vars, s))))

    n = len(states) - 1
    if not 0 <= loop <= n:
        return f"the loop index {loop} is outside the trace"
    if loop == n:
        if succ(states[n]):
            return "the run is said to end in its last state, but that state has a successor"
    elif states[n] != states[loop]:
        return f"the cycle does not close: the last state differs from state {loop}"
    cyc_states = states[loop:]
    cyc_acts = acts[loop:]
    if goal.kind == "eventually":
        hit = [i for i, s in enumerate(states) if holds(goal.target, s)]
        if hit:
            return f"state {hit[0]} satisfies the goal"
    elif goal.kind == "recurrence":
        hit = [loop + i for i, s in enumerate(cyc_states) if holds(goal.target, s)]
        if hit:
            return f"state {hit[0]} of the cycle satisfies the goal"
        if any(goal.matches(goal.release, system.actions[a]) for a in cyc_acts):
            return "the cycle takes a release step"
        if goal.trigger is not None and not any(goal.matches(goal.trigger, system.actions[a]) for a in cyc_acts):
            return "the cycle takes no trigger step"
    else:
        return f"a {goal.kind} goal has no lasso"
    if loop == n:
        return None  # no step is enabled: every fairness set is satisfied
    en = [{a for a, _ in succ(s)} for s in cyc_states[:-1]]
    for f in system.fairness:
        if f.actions & set(cyc_acts):
            continue
        on = [bool(f.actions & e) for e in en]
        if f.kind == "weak" and all(on):
            return f"unfair to {f.name}: enabled throughout the cycle, never taken"
        if f.kind == "strong" and any(on):
            return f"unfair to {f.name}: enabled in the cycle, never taken"
    return None


def check_goals(system: System, max_depth: int, timeout: float | None = None,
                progress: Callable[[Stats], None] | None = None, max_states: int | None = None) -> SearchResult:
    """Every goal of `system`, in order; the first violated one is
    reported, with its lasso (`loop`) or, for `sometimes`, no trace."""
    t0 = time.monotonic()
    try:
        g, st = explore(system, max_depth, timeout, progress, t0, max_states)
        pk = compile_packed(system)
        res = SearchResult("holds", "explicit", st, max_depth, exhausted=g.exhausted, fired=set(g.fired))
        res.notes = ["partial-order reduction off (liveness)"]
        for goal in system.goals:
            r = _check_goal(system, g, goal, pk.unpack, max_depth, st)
            if r is not None:
                r.fired = res.fired
                r.notes = res.notes
                r.stats.seconds = time.monotonic() - t0
                return r
            if goal.kind == "sometimes":
                res.notes.append(f"{goal.key}: reached")
        st.seconds = time.monotonic() - t0
        return res
    except _Stop as e:
        return SearchResult("unknown", "explicit", Stats(seconds=time.monotonic() - t0), max_depth, reason=str(e))
    except KeyboardInterrupt:
        return SearchResult("unknown", "explicit", Stats(seconds=time.monotonic() - t0), max_depth,
                            reason="interrupted")


def _check_goal(system: System, g: Graph, goal: Goal, unpack: Callable[[int], tuple], max_depth: int,
                st: Stats) -> SearchResult | None:
    if goal.kind == "sometimes":
        target = _predicate(system, goal.target, unpack)
        if any(target(s) for s in g.depth):
            return None
        if g.exhausted:
            return SearchResult("violation", "explicit", st, max_depth, exhausted=True, prop=goal.name,
                                goal=goal.key)
        return SearchResult("unknown", "explicit", st, max_depth,
                            reason=f"{goal.key}: no state within depth {max_depth} satisfies it")
    w = _Goal(system, g, goal, unpack)
    best: tuple[int, int, set[int] | None] | None = None  # (prefix length, state, fair part or None: an end)
    for s in w.ends():
        k = w.depth_of(s)
        if best is None or k < best[0]:
            best = (k, s, None)
    for d in w.fair_parts(w.region):
        s = min(d, key=w.depth_of)
        k = w.depth_of(s)
        if best is None or k < best[0]:
            best = (k, s, d)
    if best is None:
        return None
    _, e, part = best
    prefix = w.prefix(e)
    cycle = w.cycle(part, e) if part is not None else []
    steps = prefix + cycle
    trace = [(-1, unpack(g.init))] + [(a, unpack(t)) for a, t in steps]
    res = SearchResult("violation", "explicit", st, max_depth, exhausted=g.exhausted, prop=goal.name,
                       trace=trace, goal=goal.key, loop=len(prefix))

    why = lasso_violation(system, goal, [s for _, s in trace], [a for a, _ in trace[1:]], len(prefix),
                          successors(system))
    if why is not None:
        raise AssertionError(f"lasso search: its own lasso is no violation: {why}")
    return res

"""Explicit-state breadth-first search over a compiled IR system.

BFS gives a shortest counterexample.  Optional partial-order reduction
(ample sets computed from the IR's static read/write sets) explores one
process at a time while that process's enabled actions are independent of
every other process and invisible to the properties; the BFS proviso (an
ample set whose successors are all new) keeps it sound for invariants.
When the reduction pruned anything, a counterexample is cut down to the
causal cone of its violating step and replayed, so it stays minimal in
practice; `por=False` guarantees the shortest one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from checker.compile import compile_system
from model.ir import System, Var


@dataclass
class Stats:
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else float(self.states)


@dataclass
class SearchResult:
    verdict: str  # "holds" | "violation" | "unknown"
    engine: str
    stats: Stats
    bound: int
    exhausted: bool = False  # the whole reachable state space was explored
    prop: str | None = None  # violated property
    trace: list[tuple[int, tuple]] = field(default_factory=list)  # (action, state); first action -1
    reason: str = ""  # why unknown
    fired: set[int] = field(default_factory=set)  # actions that fired (coverage)
    reduced: bool = False  # partial-order reduction pruned some successors
    shortest: bool = True


Progress = Callable[[Stats], None]


def _por_tables(system: System) -> tuple[list[bool], list[int], list[str]]:
    """Static independence: which actions may form an ample set on their own."""
    procs = sorted({a.proc for a in system.actions})
    pid = {p: i for i, p in enumerate(procs)}
    reads: dict[str, set[Var]] = {p: set() for p in procs}
    writes: dict[str, set[Var]] = {p: set() for p in procs}
    for a in system.actions:
        reads[a.proc] |= a.reads()
        writes[a.proc] |= a.writes()
    visible: set[Var] = set(system.terminal.vars())
    for p in system.properties:
        visible |= p.holds.vars()
    safe = []
    for a in system.actions:
        r_other: set[Var] = set()
        w_other: set[Var] = set()
        for p in procs:
            if p != a.proc:
                r_other |= reads[p]
                w_other |= writes[p]
        isolated = not (reads[a.proc] & w_other)
        w = a.writes()
        safe.append(isolated and not (w & (r_other | w_other | visible)))
    return safe, [pid[a.proc] for a in system.actions], procs


def bfs(
    system: System,
    max_depth: int,
    por: bool = True,
    timeout: float | None = None,
    max_states: int | None = None,
    progress: Progress | None = None,
    progress_every: float = 1.0,
) -> SearchResult:
    comp = compile_system(system)
    succ, check, terminal = comp.succ, comp.check, comp.terminal
    safe, proc_of, _ = _por_tables(system)
    stats = Stats()
    t0 = time.monotonic()
    deadline = t0 + timeout if timeout else None
    next_report = t0 + progress_every

    init = system.initial_state()
    states: list[tuple] = [init]
    parent: list[int] = [-1]
    via: list[int] = [-1]
    seen: dict[tuple, int] = {init: 0}
    fired: set[int] = set()
    reduced = False
    stats.states = 1

    def finish(verdict: str, **kw) -> SearchResult:
        stats.seconds = time.monotonic() - t0
        return SearchResult(verdict, "explicit", stats, max_depth, fired=fired, reduced=reduced, **kw)

    def path_to(j: int) -> list[tuple[int, tuple]]:
        out = []
        while j >= 0:
            out.append((via[j], states[j]))
            j = parent[j]
        return out[::-1]

    bad = check(init)
    if bad >= 0:
        return finish("violation", prop=system.properties[bad].name, trace=path_to(0))

    frontier = [0]
    depth = 0
    try:
        while frontier and depth < max_depth:
            nxt: list[int] = []
            for i in frontier:
                s = states[i]
                if terminal(s):
                    continue
                out: list = []
                succ(s, out)
                if por and len(out) > 1:
                    out, pruned = _ample(out, safe, proc_of, seen)
                    reduced = reduced or pruned
                stats.transitions += len(out)
                for a, t in out:
                    fired.add(a)
                    if t in seen:
                        continue
                    j = len(states)
                    seen[t] = j
                    states.append(t)
                    parent.append(i)
                    via.append(a)
                    b = check(t)
                    if b >= 0:
                        stats.states = len(states)
                        stats.depth = depth + 1
                        trace = path_to(j)
                        shortest = not reduced
                        if reduced:
                            trace = causal_cone(system, trace, b)
                        return finish(
                            "violation", prop=system.properties[b].name, trace=trace, shortest=shortest
                        )
                    nxt.append(j)
                if progress or deadline or max_states:
                    now = time.monotonic()
                    if now >= next_report:
                        stats.states = len(states)
                        stats.depth = depth
                        stats.seconds = now - t0
                        if progress:
                            progress(stats)
                        next_report = now + progress_every
                    if deadline and now >= deadline:
                        stats.states = len(states)
                        stats.depth = depth
                        return finish("unknown", reason=f"timeout after {timeout:g} s")
                    if max_states and len(states) >= max_states:
                        stats.states = len(states)
                        stats.depth = depth
                        return finish("unknown", reason=f"state limit {max_states} reached")
            frontier = nxt
            depth += 1
    except KeyboardInterrupt:
        stats.states = len(states)
        stats.depth = depth
        return finish("unknown", reason="interrupted")
    stats.states = len(states)
    stats.depth = depth
    return finish("holds", exhausted=not frontier)


def _ample(out: list, safe: list[bool], proc_of: list[int], seen: dict) -> tuple[list, bool]:
    groups: dict[int, list] = {}
    for item in out:
        groups.setdefault(proc_of[item[0]], []).append(item)
    if len(groups) == 1:
        return out, False
    for p in sorted(groups):
        g = groups[p]
        if all(safe[a] for a, _ in g) and not any(t in seen for _, t in g):
            return g, True
    return out, False


def causal_cone(system: System, trace: list[tuple[int, tuple]], bad_prop: int) -> list[tuple[int, tuple]]:
    """Keep only the steps the violating step depends on (program order and
    shared variables), replay them, and return the shorter trace if it still
    violates `bad_prop`; otherwise the original."""
    acts = [a for a, _ in trace[1:]]
    if not acts:
        return trace
    info = [(system.actions[a].proc, system.actions[a].reads(), system.actions[a].writes()) for a in acts]
    keep = [False] * len(acts)
    keep[-1] = True
    need_procs = {info[-1][0]}
    need_r = set(info[-1][1])
    need_w = set(info[-1][2])
    for k in range(len(acts) - 2, -1, -1):
        p, r, w = info[k]
        if p in need_procs or (w & (need_r | need_w)) or (r & need_w):
            keep[k] = True
            need_procs.add(p)
            need_r |= r
            need_w |= w
    if all(keep):
        return trace
    seq = [a for a, k in zip(acts, keep) if k]
    replayed = replay(system, seq)
    if replayed is None:
        return trace
    comp = compile_system(system)
    if comp.check(replayed[-1][1]) != bad_prop:
        return trace
    return replayed


def replay(system: System, seq: list[int]) -> list[tuple[int, tuple]] | None:
    """Run the action indices in order from the initial state; None if a
    step is not enabled where it is taken."""
    comp = compile_system(system)
    s = system.initial_state()
    out = [(-1, s)]
    for a in seq:
        succs: list = []
        if comp.terminal(s):
            return None
        comp.succ(s, succs)
        nxt = [t for b, t in succs if b == a]
        if not nxt:
            return None
        s = nxt[0]
        out.append((a, s))
    return out

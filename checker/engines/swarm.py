"""Swarm search: many small, differently biased searches in parallel, for
state spaces too big to exhaust (Holzmann, Joshi and Groce, "Swarm
verification", ASE 2008; SPIN's swarm tool).

Each task is one bounded search with its own seed: a randomised
depth-first search (successor order shuffled at each state, or a fixed
random priority of actions, or forward, or reversed; its own depth limit
and state cap), or random walks from the initial state (uniform, or
sticking to the process that took the last step with some probability, so
that some walks switch context rarely and others often).  Tasks run on any
`concurrent.futures.Executor` -- a local process pool, or Dask's
`Client.get_executor()` -- and the first violation ends the swarm: the
tasks not started are cancelled (a local pool's busy workers are ended).

A task gets a factory of the system (a picklable callable returning a
`System`), not the system: the compiled successor functions cannot be
pickled, so each worker process builds and compiles once and keeps it.

A violation's trace is then shortened by `minimise`.  Nothing here knows
about rseq: the IR's actions, properties and `terminal` are all it reads.

What "no violation found" means: nothing.  The swarm saw some states --
each task counts its own distinct states, so the union lies between the
largest count and their sum -- and those are no proof.
"""

from __future__ import annotations

import math
import multiprocessing
import random
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from rseqcheck.checker.engines.compile import Packed, compile_packed
from rseqcheck.checker.parallel import _quiet_signals
from rseqcheck.model.ir import System

SystemFactory = Callable[[], System]

MODES = ("dfs", "walk")
ORDERS = ("shuffle", "fixed", "forward", "reverse")  # dfs: successor order
STICKS = (0.0, 0.5, 0.9)  # walks: probability of staying with the last step's process
_CLOCK = 1024  # steps between two looks at the clock
_ROOT = -1


@dataclass(frozen=True)
class Task:
    """One diversified search; everything a worker needs besides the factory."""

    index: int
    seed: int
    mode: str  # dfs | walk
    depth: int  # depth limit (at most the spec's bound)
    seconds: float  # its own budget
    max_states: int  # distinct states it keeps (dfs stops there; walks stop counting)
    order: str = "shuffle"  # dfs
    stick: float = 0.0  # walk

    def describe(self) -> str:
        how = self.order if self.mode == "dfs" else f"stick {self.stick:g}"
        return f"task {self.index} ({self.mode}, seed {self.seed}, depth {self.depth}, {how})"


@dataclass
class Report:
    """What one task did, and its violation if it found one."""

    task: Task
    states: int = 0  # distinct states it saw (at most task.max_states)
    steps: int = 0  # transitions taken
    deepest: int = 0
    walks: int = 0
    seconds: float = 0.0
    exhausted: bool = False  # dfs: nothing left below its depth limit and state cap
    prop: int = -1  # violated property (index into system.properties)
    actions: tuple[int, ...] = ()  # the violating path: actions, then
    states_path: tuple[int, ...] = ()  # its packed states, the initial one first


@dataclass
class SwarmResult:
    reports: list[Report]  # the tasks that finished, in the order they did
    planned: int  # tasks planned
    seconds: float
    found: Report | None = None
    interrupted: bool = False
    lost: int = 0  # tasks whose worker failed (died, raised)
    errors: list[str] = field(default_factory=list)

    @property
    def covered(self) -> tuple[int, int]:
        """(largest task's count, sum of counts): the distinct states the
        swarm saw lie between the two (tasks overlap)."""
        counts = [r.states for r in self.reports]
        return (max(counts, default=0), sum(counts))


# ----------------------------------------------------------------- workers

_CACHE: dict = {}  # per worker process: factory -> (system, packed)


def _compiled(factory: SystemFactory) -> tuple[System, Packed]:
    try:
        got = _CACHE.get(factory)
    except TypeError:  # an unhashable factory: built every time
        system = factory()
        return system, compile_packed(system)
    if got is None:
        system = factory()
        got = _CACHE[factory] = (system, compile_packed(system))
    return got


def run_task(factory: SystemFactory, task: Task) -> Report:
    """A worker's job: build (once per process) and search."""
    system, pk = _compiled(factory)
    if task.mode == "dfs":
        return random_dfs(system, pk, task)
    return random_walks(system, pk, task)


def _start(pk: Packed, system: System, task: Task) -> tuple[random.Random, Report, float, int]:
    """A search's seeded generator, report, start time and initial state
    (the report says so if that state violates already)."""
    rep = Report(task)
    init = pk.pack(system.initial_state())
    b = pk.check(init)
    if b >= 0:
        rep.prop, rep.states_path, rep.states = b, (init,), 1
    return random.Random(task.seed), rep, time.monotonic(), init


def random_dfs(system: System, pk: Packed, task: Task) -> Report:
    """Depth-first search from the initial state, successors in the
    task's order, states entered in a set (a state first met deep is not
    searched again from higher up: a bounded search, not a proof)."""
    rng, rep, t0, init = _start(pk, system, task)
    end = t0 + task.seconds
    if rep.prop >= 0:
        return rep
    prio = list(range(len(system.actions)))
    rng.shuffle(prio)
    check, terminal, nc, nt = pk.check, pk.terminal, pk.needs_check, pk.needs_term

    def ordered(s: int) -> list:
        out: list = []
        pk.succ(s, out)
        if task.order == "shuffle":
            rng.shuffle(out)
        elif task.order == "fixed":
            out.sort(key=lambda x: prio[x[0]])
        elif task.order == "reverse":
            out.reverse()
        return out

    seen = {init}
    states, acts, todo = [init], [], [ordered(init) if not terminal(init) else []]
    cut = False
    clock = 0
    while todo:
        lst = todo[-1]
        if not lst:
            todo.pop()
            states.pop()
            if acts:
                acts.pop()
            continue
        a, t = lst.pop()
        rep.steps += 1
        clock += 1
        if clock >= _CLOCK:
            clock = 0
            if time.monotonic() >= end:
                cut = True
                break
        if t in seen:
            continue
        if len(seen) >= task.max_states:
            cut = True
            break
        seen.add(t)
        if nc[a] and check(t) >= 0:
            rep.prop = check(t)
            rep.actions, rep.states_path = (*acts, a), (*states, t)
            break
        d = len(states)
        rep.deepest = max(rep.deepest, d)
        if nt[a] and terminal(t):
            continue
        if d >= task.depth:
            cut = True
            continue
        states.append(t)
        acts.append(a)
        todo.append(ordered(t))
    rep.states = len(seen)
    rep.exhausted = not cut and rep.prop < 0
    rep.seconds = time.monotonic() - t0
    return rep


def random_walks(system: System, pk: Packed, task: Task) -> Report:
    """Random walks from the initial state until the budget is spent: each
    step picks an enabled action that changes the state, uniformly, or
    (with probability `stick`) among those of the last step's process."""
    rng, rep, t0, init = _start(pk, system, task)
    end = t0 + task.seconds
    if rep.prop >= 0:
        return rep
    proc = [a.proc for a in system.actions]
    check, terminal, nc, nt = pk.check, pk.terminal, pk.needs_check, pk.needs_term
    seen = {init}
    cap = task.max_states
    clock = 0
    done = terminal(init)
    while not done:
        rep.walks += 1
        s, states, acts, last = init, [init], [], None
        while len(acts) < task.depth:
            out: list = []
            pk.succ(s, out)
            out = [x for x in out if x[1] != s]
            if not out:
                break
            if last is not None and task.stick and rng.random() < task.stick:
                mine = [x for x in out if proc[x[0]] == last]
                a, t = rng.choice(mine or out)
            else:
                a, t = rng.choice(out)
            rep.steps += 1
            if len(seen) < cap:
                seen.add(t)
            if nc[a] and check(t) >= 0:
                rep.prop = check(t)
                rep.actions, rep.states_path = (*acts, a), (*states, t)
                done = True
                break
            acts.append(a)
            states.append(t)
            s, last = t, proc[a]
            if nt[a] and terminal(t):
                break
            clock += 1
            if clock >= _CLOCK:
                clock = 0
                if time.monotonic() >= end:
                    done = True
                    break
        rep.deepest = max(rep.deepest, len(acts))
        if time.monotonic() >= end:
            done = True
    rep.states = len(seen)
    rep.seconds = time.monotonic() - t0
    return rep


# ------------------------------------------------------------- coordinator


def plan(seeds: int, depth: int, seconds: float, max_states: int, base_seed: int = 0) -> list[Task]:
    """`seeds` tasks, diversified: dfs and walks alternate; dfs cycles
    through the successor orders, walks through the stickiness; every
    other task gets a depth limit drawn log-uniformly between 16 and the
    bound, the others the bound itself."""
    rng = random.Random(base_seed)
    out = []
    for i in range(seeds):
        mode = MODES[i % 2]
        k = i // 2
        d = depth
        if k % 2 and depth > 16:
            d = int(math.exp(rng.uniform(math.log(16), math.log(depth))))
        out.append(Task(i, base_seed * 1_000_003 + i, mode, d, seconds, max_states,
                        order=ORDERS[k % len(ORDERS)], stick=STICKS[k % len(STICKS)]))
    return out


def local_executor(workers: int) -> ProcessPoolExecutor:
    """A pool of forked workers that leave Ctrl-C, SIGTERM and SIGHUP to
    this process, which ends them (`_end_local`: SIGKILL)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_quiet_signals)


def _end_local(pool: Executor) -> None:
    """Stop a local pool's busy workers at once (a Dask cluster's tasks end
    by their own budget)."""
    procs = getattr(pool, "_processes", None)
    if isinstance(pool, ProcessPoolExecutor) and procs:
        for p in list(procs.values()):
            if p.is_alive():
                p.kill()  # they ignore SIGTERM (checker/parallel.py:_quiet_signals)


Progress = Callable[[SwarmResult, int], None]  # (so far, tasks running or queued)


def swarm(factory: SystemFactory, tasks: list[Task], executor: Executor | None = None, workers: int = 1,
          progress: Progress | None = None, progress_every: float = 1.0) -> SwarmResult:
    """Run the tasks on `executor` (default: a local pool of `workers`
    processes, ended here) until one finds a violation, all are done, or
    Ctrl-C (KeyboardInterrupt; SIGTERM too, if the caller turns it into
    one).  A worker that fails costs its task only."""
    t0 = time.monotonic()
    own = executor is None
    pool = executor if executor is not None else local_executor(workers)
    res = SwarmResult([], len(tasks), 0.0)
    futures: dict[Future, Task] = {}
    try:
        for t in tasks:
            futures[pool.submit(run_task, factory, t)] = t
        pending = set(futures)
        next_report = t0 + progress_every
        while pending and res.found is None:
            done, pending = wait(pending, timeout=min(progress_every, 1.0), return_when=FIRST_COMPLETED)
            for f in done:
                try:
                    rep = f.result()
                except Exception as e:  # a worker died or the task raised: lose that task only
                    res.lost += 1
                    res.errors.append(f"{futures[f].describe()}: {type(e).__name__}: {e}"[:300])
                    continue
                res.reports.append(rep)
                if rep.prop >= 0 and res.found is None:
                    res.found = rep
            now = time.monotonic()
            if progress and now >= next_report and res.found is None:
                res.seconds = now - t0
                progress(res, len(pending))
                next_report = now + progress_every
    except KeyboardInterrupt:
        res.interrupted = True
    finally:
        for f in futures:
            f.cancel()
        if own:
            _end_local(pool)
            pool.shutdown(wait=True, cancel_futures=True)
    res.seconds = time.monotonic() - t0
    return res


# ---------------------------------------------------------------- minimise


@dataclass
class Minimised:
    prop: int
    actions: list[int]
    states: list[int]  # packed, the initial state first
    before: int  # steps of the swarm's trace
    shortest: bool  # proved: a search with nothing pruned found nothing shorter
    rounds: list[tuple[str, int, int]] = field(default_factory=list)  # (radius, states searched, steps after)
    stopped: str = ""  # why minimising stopped before a proof: timeout, interrupted
    dropped: int = -1  # steps after cutting loops and dropping steps, before the tubes


def minimise(system: System, prop: int, actions: list[int], states: list[int], seconds: float | None = None,
             max_states: int | None = None, radii: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, math.inf),
             pk: Packed | None = None, drop: float = 0.4) -> Minimised:
    """Shorten a violating path by breadth-first search around it.

    A full BFS bounded by the path's length L would give a shortest trace,
    but its cost is the state space up to depth L -- what the swarm was
    for.  So the search is first restricted to a tube around the path:
    from the initial state, BFS enters a state only if it is on the path
    or at most r steps away from the last path state on the way to it
    (each state keeps the number of off-path steps by which BFS first
    reached it).  Every path state stays in the tube, so BFS reaches the
    violation within L steps and returns a path no longer than the old
    one (any violation it meets first is shorter still).  Each shorter
    path makes a new tube; when one no longer shortens it, r grows, up to
    r = infinity, which is the full BFS bounded by L: when that round
    completes (or any round prunes nothing), the result is a shortest
    violation of the system -- what `bfs(por=False)` finds.  A time or
    state budget stops the rounds, keeping the best path so far.

    Before the tubes, for at most the fraction `drop` of the time, runs of
    steps are dropped from the path (`_drop_chunks`): a deep path from a
    random search wanders far from the short ones, and a tube around it
    shrinks it slowly."""
    pk = pk or compile_packed(system)
    t0 = time.monotonic()
    deadline = t0 + seconds if seconds else None
    best = Minimised(prop, list(actions), list(states), len(actions), False)
    _cut_loops(best)
    try:
        if drop:
            _drop_chunks(pk, best, t0 + drop * seconds if seconds else None)
        best.dropped = len(best.actions)
        for r in radii:
            while True:
                got = _tube_bfs(pk, best.states, r, len(best.actions), deadline, max_states)
                if got is None:
                    best.stopped = "timeout" if deadline and time.monotonic() >= deadline else "state limit"
                    return best
                (p, acts, sts), searched, pruned = got
                shorter = len(acts) < len(best.actions)
                best.rounds.append(("inf" if r == math.inf else f"{r:g}", searched, len(acts)))
                if shorter or p != best.prop:
                    best.prop, best.actions, best.states = p, acts, sts
                if not pruned:
                    best.shortest = True
                    return best
                if not shorter:
                    break
    except KeyboardInterrupt:
        best.stopped = "interrupted"
    return best


def _drop_chunks(pk: Packed, m: Minimised, deadline: float | None) -> None:
    """Delta debugging on the path's actions: remove a run of c steps
    (c = half the length, then a quarter, ... 1) and replay the rest,
    skipping an action not enabled where it comes; if the replay still
    reaches a violation (it stops at the first), keep the shorter path.
    Every kept path is a real one, replayed from the initial state.
    Passes repeat while one shortens the path."""
    before = len(m.actions) + 1
    while len(m.actions) < before:
        before = len(m.actions)
        acts = m.actions
        c = len(acts) // 2
        while c >= 1:
            i = 0
            while i < len(acts):
                if deadline and time.monotonic() >= deadline:
                    return
                got = _lenient(pk, m.states[0], acts[:i] + acts[i + c:])
                if got is not None and len(got[1]) < len(acts):
                    m.prop, acts, m.states = got
                    m.actions = acts
                else:
                    i += c
            c //= 2


def _lenient(pk: Packed, init: int, acts: list[int]) -> tuple[int, list[int], list[int]] | None:
    """Replay `acts` from `init`, skipping the actions not enabled:
    (property, actions taken, states) up to the first violation, or None."""
    s, taken, states = init, [], [init]
    nc, nt, check, terminal = pk.needs_check, pk.needs_term, pk.check, pk.terminal
    for a in acts:
        out: list = []
        pk.succ(s, out)
        t = next((t for b, t in out if b == a), None)
        if t is None or t == s:
            continue
        taken.append(a)
        states.append(t)
        s = t
        if nc[a]:
            b = check(t)
            if b >= 0:
                return b, taken, states
        if nt[a] and terminal(t):
            return None
    return None


def _cut_loops(m: Minimised) -> None:
    """A path that visits a state twice: drop the loop between."""
    last = {s: i for i, s in enumerate(m.states)}
    sts, acts, i = [m.states[0]], [], 0
    while i < len(m.states) - 1:
        j = last[m.states[i]]
        if j > i:
            i = j
            sts[-1] = m.states[i]
            continue
        acts.append(m.actions[i])
        i += 1
        sts.append(m.states[i])
    m.states, m.actions = sts, acts


def _tube_bfs(pk: Packed, path: list[int], radius: float, bound: int, deadline: float | None,
              max_states: int | None) -> tuple[tuple[int, list[int], list[int]], int, bool] | None:
    """BFS from path[0] within `bound` steps over the states on `path` or
    at most `radius` off-path steps from it: ((property, actions, states),
    states searched, whether any state was pruned), or None when out of
    time or states."""
    on = set(path)
    init = path[0]
    parent: dict[int, tuple[int, int]] = {init: (_ROOT, -1)}
    off = {init: 0}
    frontier = [init]
    check, terminal, nc, nt = pk.check, pk.terminal, pk.needs_check, pk.needs_term
    pruned = False
    clock = 0
    for _ in range(bound):
        nxt: list[int] = []
        for s in frontier:
            clock += 1
            if clock >= _CLOCK:
                clock = 0
                if deadline and time.monotonic() >= deadline:
                    return None
                if max_states and len(parent) > max_states:
                    return None
            out: list = []
            pk.succ(s, out)
            k0 = off[s] + 1
            for a, t in out:
                if t in parent:
                    continue
                k = 0 if t in on else k0
                if k > radius:
                    pruned = True
                    continue
                parent[t] = (s, a)
                off[t] = k
                if nc[a]:
                    b = check(t)
                    if b >= 0:
                        return _path(parent, t, b), len(parent), pruned
                if not (nt[a] and terminal(t)):
                    nxt.append(t)
        frontier = nxt
        if not frontier:
            break
    raise AssertionError("the path's own violation lies within the tube")  # path states are never pruned


def _path(parent: dict[int, tuple[int, int]], t: int, prop: int) -> tuple[int, list[int], list[int]]:
    sts, acts = [t], []
    while True:
        p, a = parent[t]
        if p == _ROOT:
            break
        acts.append(a)
        sts.append(p)
        t = p
    sts.reverse()
    acts.reverse()
    return prop, acts, sts


def trace_of(pk: Packed, actions: list[int], states: list[int]) -> list[tuple[int, tuple]]:
    """The (action, state) list the explicit engine's results use."""
    return [(-1, pk.unpack(states[0]))] + [(a, pk.unpack(s)) for a, s in zip(actions, states[1:])]


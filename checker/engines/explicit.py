"""Explicit-state breadth-first search over a compiled IR system.

BFS gives a shortest counterexample.  Optional partial-order reduction
(ample sets computed from the IR's static read/write sets) explores one
process at a time while that process's enabled actions are independent of
every other process and invisible to the properties: the ample set of a
state is the enabled actions of the first process (in name order) whose
enabled actions are all such, and it depends on the state alone.

The cycle proviso is checked on the finished reduced graph rather than per
step: every bottom strongly connected component must contain a fully
expanded state, else one of its states is expanded fully and the search goes
on (Valmari's condition for safety properties; a per-step "all successors
new" rule also holds but keeps almost every interleaving of threads that
loop, e.g. under preemption).  With it, every reachable violation and every
action that can fire is still found.  Depths in the reduced graph are not
the system's (one thread runs ahead), so a reduced search cut by the depth
bound is redone in full.

When the reduction pruned anything, a counterexample is cut down to the
causal cone of its violating step and replayed, so it stays minimal in
practice; `por=False` guarantees the shortest one.

States are searched in the packed form of `checker.compile` (one int per
state); `seen` maps each state to its parent, so a trace is rebuilt by
walking parents and asking the successor function which action led there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rseqcheck.checker.engines import symmetry as sym
from rseqcheck.checker.engines import visited
from rseqcheck.checker.engines.compile import Compiled, Packed, compile_packed, compile_system
from rseqcheck.model.ir import COMPARISONS, Action, Const, Expr, Op, Ref, System, Var


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
    goal: str | None = None  # a liveness goal's key (checker/engines/liveness.py): "rseq-cs-progress (T0)"
    loop: int | None = None  # a lasso: the run goes on from trace[loop] forever (== len - 1: it ends there)
    notes: list[str] = field(default_factory=list)  # what a liveness verdict assumed (reduction, fairness)
    symmetry: bool = False  # states were entered by orbit (symmetry reduction)
    bitstate: dict[str, float] | None = None  # bitstate search (checker/engines/bitstate.py): its coverage figures


Progress = Callable[[Stats], None]

_CHUNK = 4096  # states expanded between two looks at the clock
_MEMO_CAP = 1 << 20  # ample-set memo entries per block before it is emptied
_ROOT = -1  # parent of the initial state (packed states are >= 0)


def _por_tables(system: System, rw: list[tuple[set[Var], set[Var]]] | None = None, frozen: bool = False
                ) -> tuple[list[bool], list[int], list[str], list[bool]]:
    """Static independence: which actions may form an ample set on their own.
    `rw`: each action's (reads, writes), if already known.  `frozen`: leave
    out the condition on what the process reads (checked per state by
    `_Frozen`): an action is safe when no other process reads or writes
    what it writes and it writes nothing visible.  Also, per process,
    whether it reads nothing other processes write (then `_Frozen` has
    nothing to check)."""
    if rw is None:
        rw = [(a.reads(), a.writes()) for a in system.actions]
    procs = sorted({a.proc for a in system.actions})
    pid = {p: i for i, p in enumerate(procs)}
    reads: dict[str, set[Var]] = {p: set() for p in procs}
    writes: dict[str, set[Var]] = {p: set() for p in procs}
    for a, (r, w) in zip(system.actions, rw):
        reads[a.proc] |= r
        writes[a.proc] |= w
    visible: set[Var] = set(system.terminal.vars())
    for p in system.properties:
        visible |= p.holds.vars()
    # what the other processes read and write, per process
    r_all: dict[Var, int] = {}
    w_all: dict[Var, int] = {}
    for p in procs:
        for v in reads[p]:
            r_all[v] = r_all.get(v, 0) + 1
        for v in writes[p]:
            w_all[v] = w_all.get(v, 0) + 1
    r_other = {p: {v for v, c in r_all.items() if c > (v in reads[p])} for p in procs}
    w_other = {p: {v for v, c in w_all.items() if c > (v in writes[p])} for p in procs}
    isolated = {p: not (reads[p] & w_other[p]) for p in procs}
    safe = []
    for a, (_, w) in zip(system.actions, rw):
        safe.append((frozen or isolated[a.proc]) and not (w & (r_other[a.proc] | w_other[a.proc] | visible)))
    return safe, [pid[a.proc] for a in system.actions], procs, [isolated[p] for p in procs]


def _write_conds(system: System, rw: list[tuple[set[Var], set[Var]]], safe: list[bool]
                 ) -> dict[int, list[tuple[Var, frozenset[int] | None, frozenset[int] | None]]]:
    """For each action unsafe by what it writes (with `_Frozen`), the
    conditions under which one of its steps is still independent of the
    other processes and invisible, per variable v it writes that another
    process reads or writes, or that a property reads: (v, atoms, frozen).
    If v is its process's own and invisible, the step may change v when
    the others read v only through atoms v == k / v != k (`atoms`: those
    k) and the step changes the truth of none; otherwise (`atoms` None)
    the step must leave v as it is, and if others write v too, v must be
    out of their reach (`frozen`: the values from which they may change
    it; None if none does)."""
    visible: set[Var] = set(system.terminal.vars())
    for p in system.properties:
        visible |= p.holds.vars()
    writers: dict[Var, set[str]] = {}
    readers: dict[Var, set[str]] = {}
    for a, (r, w) in zip(system.actions, rw):
        for v in w:
            writers.setdefault(v, set()).add(a.proc)
        for v in r:
            readers.setdefault(v, set()).add(a.proc)
    memo: dict[tuple[str, Var], tuple[frozenset[int] | None, frozenset[int] | None]] = {}

    def info(p: str, v: Var) -> tuple[frozenset[int] | None, frozenset[int] | None]:
        if (p, v) not in memo:
            others = [a for a in system.actions if a.proc != p]
            ks: set[int] = set()
            own = writers[v] == {p} and v not in visible
            atoms = None
            if own and all(_atoms(e, v, ks) for a in others for e in [a.guard, *(x for _, x in a.updates)]):
                atoms = frozenset(ks)
            frozen = None
            if writers[v] - {p}:
                frozen = frozenset().union(*(changing_values(a, v) for a in others if v in dict(a.updates)))
            memo[(p, v)] = (atoms, frozen)
        return memo[(p, v)]

    out: dict[int, list[tuple[Var, frozenset[int] | None, frozenset[int] | None]]] = {}
    for i, (a, (_, w)) in enumerate(zip(system.actions, rw)):
        if safe[i]:
            continue
        conds = []
        for v in w:
            if v in visible or writers[v] - {a.proc} or readers.get(v, set()) - {a.proc}:
                conds.append((v, *info(a.proc, v)))
        out[i] = conds
    return out


_K, _V, _AND, _OR, _NOT, _ITE, _ADD, _SUB = range(8)
_CMP = {op: i + 8 for i, op in enumerate(COMPARISONS)}
_CMPF = [COMPARISONS[op] for op in COMPARISONS]


def _lower(e: Expr, idx: dict[Var, int]) -> tuple:
    """e as nested tuples (kind, ...) over variable indices, for `_pev`."""
    if isinstance(e, Const):
        return (_K, e.value)
    if isinstance(e, Ref):
        return (_V, idx[e.var])
    assert isinstance(e, Op)
    args = tuple(_lower(a, idx) for a in e.args)
    kind = {"and": _AND, "or": _OR, "not": _NOT, "ite": _ITE, "+": _ADD, "-": _SUB}.get(e.op) or _CMP[e.op]
    return (kind, *args)


def _pev(n: tuple, vals: tuple, unk: set[int]) -> int | None:
    """The value of a lowered expression where the variables of `unk` are
    unknown and the others at their value in `vals`, or None if it depends
    on an unknown one (and/or short-circuit on a known operand)."""
    k = n[0]
    if k == _V:
        return None if n[1] in unk else vals[n[1]]
    if k == _K:
        return n[1]
    if k == _AND or k == _OR:
        stop = k == _OR
        unknown = False
        for x in n[1:]:
            v = _pev(x, vals, unk)
            if v is None:
                unknown = True
            elif bool(v) == stop:
                return int(stop)
        return None if unknown else int(not stop)
    if k == _NOT:
        v = _pev(n[1], vals, unk)
        return None if v is None else int(not v)
    if k == _ITE:
        c = _pev(n[1], vals, unk)
        if c is not None:
            return _pev(n[2] if c else n[3], vals, unk)
        x, y = _pev(n[2], vals, unk), _pev(n[3], vals, unk)
        return x if x is not None and x == y else None
    x = _pev(n[1], vals, unk)
    if x is None:
        return None
    y = _pev(n[2], vals, unk)
    if y is None:
        return None
    if k == _ADD:
        return x + y
    if k == _SUB:
        return x - y
    return int(_CMPF[k - 8](x, y))


def _conjuncts(e: Expr) -> list[Expr]:
    return list(e.args) if isinstance(e, Op) and e.op == "and" else [e]


def _pinned(e: Expr, v: Var) -> int | None:
    """k if e (a conjunction) has a conjunct v == k."""
    for c in _conjuncts(e):
        if isinstance(c, Op) and c.op == "==":
            x, y = c.args
            if isinstance(x, Const):
                x, y = y, x
            if isinstance(x, Ref) and x.var is v and isinstance(y, Const):
                return y.value
    return None


def _atoms(e: Expr, v: Var, out: set[int]) -> bool:
    """Collect into `out` the constants k of the atoms v == k and v != k of
    e; False if e reads v in any other way."""
    if isinstance(e, Ref):
        return e.var is not v
    if not isinstance(e, Op):
        return True
    if e.op in ("==", "!="):
        x, y = e.args
        if isinstance(x, Const):
            x, y = y, x
        if isinstance(x, Ref) and x.var is v and isinstance(y, Const):
            out.add(y.value)
            return True
    return all(_atoms(a, v, out) for a in e.args)


def changing_values(action: Action, v: Var) -> frozenset[int]:
    """The values of v from which `action` may change v (a superset): v
    itself is no change; a guard conjunct v == k, or an update
    ite(v == k and ..., x, v), changes it only from k; an update to a
    constant k never changes it from k; otherwise any value of v's type."""
    domain = frozenset(range(v.type.lo, v.type.hi + 1))
    e = dict(action.updates).get(v)
    if e is None or (isinstance(e, Ref) and e.var is v):
        return frozenset()
    k = _pinned(action.guard, v)
    if k is not None:
        return frozenset({k})
    if isinstance(e, Op) and e.op == "ite" and isinstance(e.args[2], Ref) and e.args[2].var is v:
        k = _pinned(e.args[0], v)
        if k is not None:
            return frozenset({k})
    if isinstance(e, Const):
        return domain - {e.value}
    return domain


@dataclass
class _Frozen:
    """State-dependent independence (`bfs(por_frozen=True)`): process p may
    form an ample set at s, although other processes write variables it
    reads, when at s none of them can change those variables (each such
    variable's value is outside what `changing_values` allows the other
    processes), after fixing p's own variables and those to their values
    at s: then p's guards and updates read only variables no other process
    can change while p stands still.  Per process: its actions' guards and
    update expressions, the variables it reads that others write (with the
    values from which others may change them), and the mask of its reads."""

    code: list[list[tuple[tuple, list[tuple]]]]  # per pid: (guard, update expressions) per action, lowered
    shared: list[dict[int, frozenset[int]]]  # per pid: var index -> values others may change it from
    reads: list[list[int]]  # per pid: indices of the variables it reads
    masks: list[int]  # per pid: packed-state mask of those variables
    memo: list[dict[int, bool]]


def _frozen_tables(system: System, rw: list[tuple[set[Var], set[Var]]], procs: list[str], pk: Packed) -> _Frozen:
    idx = {v: i for i, v in enumerate(system.vars)}
    L = pk.layout
    pid = {p: i for i, p in enumerate(procs)}
    code: list[list[tuple[tuple, list[tuple]]]] = [[] for _ in procs]
    reads: list[set[Var]] = [set() for _ in procs]
    for a, (r, _) in zip(system.actions, rw):
        code[pid[a.proc]].append((_lower(a.guard, idx), [_lower(e, idx) for _, e in a.updates]))
        reads[pid[a.proc]] |= r
    shared: list[dict[int, frozenset[int]]] = []
    for p in procs:
        ch: dict[Var, frozenset[int]] = {}
        for a, (_, w) in zip(system.actions, rw):
            if a.proc == p:
                continue
            for v in w & reads[pid[p]]:
                ch[v] = ch.get(v, frozenset()) | changing_values(a, v)
        shared.append({idx[v]: vals for v, vals in ch.items()})
    masks = []
    for r in reads:
        m = 0
        for v in r:
            m |= L.mask[idx[v]] << L.shift[idx[v]]
        masks.append(m)
    return _Frozen(code, shared, [sorted(idx[v] for v in r) for r in reads], masks, [{} for _ in procs])


class _Stop(Exception):
    """The search ends early: timeout or state limit (message: the reason)."""


class _Search:
    """One run of `bfs`: the shared state of its loops."""

    TABLE = True  # the plain search may use a packed table for `seen` (not bitstate's)

    def __init__(self, system: System, max_depth: int, por: bool, timeout: float | None,
                 max_states: int | None, progress: Progress | None, progress_every: float,
                 por_frozen: bool = False, symmetry: bool = False):
        self.system = system
        self.max_depth = max_depth
        self.por = por
        self.por_frozen = por_frozen
        self.pk: Packed = compile_packed(system)
        self.timeout = timeout
        self.limit = max_states if max_states else sys.maxsize
        self.progress = progress
        self.progress_every = progress_every
        self.stats = Stats()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + timeout if timeout else None
        self.next_report = self.t0 + progress_every
        self.watch = bool(progress or self.deadline)
        self.F = bytearray(len(system.actions))  # actions that fired (reduced search)
        self.fired_at_violation: tuple[int, set[int]] | None = None
        self.reduced = False
        self.joined = False  # a reduced step reached a known state
        self.forced: set[int] = set()  # fully expanded by the ignoring fix
        self.amp: dict[int, int] = {}  # expanded states whose ample set is proper -> the process it is of
        self.terminals: set[int] = set()  # terminal states of the reduced search
        self.depth = 0
        self.max_level = 0
        self.seen: dict[int, int] = {}
        self.fz: _Frozen | None = None
        if por:
            self.safe, self.proc_of, procs, self.isolated = _por_tables(system, self.pk.rw, frozen=por_frozen)
            self.fz = _frozen_tables(system, self.pk.rw, procs, self.pk) if por_frozen else None
            self.cond: dict[int, list[tuple[int, int, int, frozenset[int] | None, frozenset[int] | None]]] = {}
            if por_frozen:
                L, idx = self.pk.layout, {v: i for i, v in enumerate(system.vars)}
                self.cond = {a: [(L.shift[idx[v]], L.mask[idx[v]], L.lo[idx[v]], ks, fr) for v, ks, fr in c]
                             for a, c in _write_conds(system, self.pk.rw, self.safe).items()}
            self.needs_check, self.needs_term = self.pk.needs_check, self.pk.needs_term
            self.pmemo: list[dict[int, tuple[list, bool]]] = [{} for _ in self.pk.blocks]
            self.bmask = [blk.mask for blk in self.pk.blocks]
            # each block is a run of one process's actions: blocks by process
            by: dict[int, list[int]] = {}
            for b, blk in enumerate(self.pk.blocks):
                by.setdefault(self.proc_of[blk.actions[0]], []).append(b)
            self.proc_blocks = sorted(by.items())
            self.proc_blocks_of = by
            if len(by) < 2 or not (any(self.safe) or self.cond):
                self.por = False  # no ample set can be smaller: the plain search is the same, faster
        self.symmetry = False
        self.key: Callable[[int], int] = int  # the key of a state in `seen`
        self.expand, self.expand_limited = self.pk.expand, self.pk.expand_limited
        if symmetry and (tables := sym.usable(system)) and self.pk.with_canon:
            # one state per orbit (checker/engines/symmetry.py), keyed by its least
            # image; without partial-order reduction, whose ample sets and
            # proviso are per state
            least = sym.compile_canon(tables, self.pk.layout)
            self.key = sym.compile_sorting(system, self.pk.layout, least) or least
            self.expand, self.expand_limited = self.pk.with_canon(self.key)
            self.por = False
            self.symmetry = True
        # the plain search keeps its states in a packed table (checker/engines/visited.py)
        self.tab = None
        self.handoff: int | None = None  # a level of this many states is left to the caller (`HandOff`)
        if self.TABLE and visited.COMPILED and not self.por and not self.symmetry:
            self.tab = visited.Table(self.pk.layout.bits)
            self.seen = self.tab  # type: ignore[assignment]  # len() and `in`
            self.term: set[int] = set()  # indices of terminal states: entered, never expanded
            self.expand_range, self.expand_range_limited = self.pk.with_table(self.tab, self.term)

    # ------------------------------------------------------------ results

    def finish(self, verdict: str, **kw) -> SearchResult:
        st = self.stats
        st.states = len(self.seen)
        st.seconds = time.monotonic() - self.t0
        fired = {i for i, f in enumerate(self.F) if f}
        if self.fired_at_violation is None:
            fired |= self.pk.fired()
        else:
            fired |= self.pk.fired(self.fired_at_violation[0]) | self.fired_at_violation[1]
        return SearchResult(verdict, "explicit", st, self.max_depth, fired=fired, reduced=self.reduced,
                            symmetry=self.symmetry, **kw)

    def violation(self, t: int, prop: int) -> SearchResult:
        self.stats.depth = self.depth + 1
        trace = self.path_to(t)
        shortest = not self.reduced
        if self.reduced:
            trace = causal_cone(self.system, trace, prop)
        return self.finish("violation", prop=self.system.properties[prop].name, trace=trace, shortest=shortest)

    def path_to(self, t: int) -> list[tuple[int, tuple]]:
        if self.tab is not None:
            return self.trace_of(table_chain(self.tab, self.tab.index(t)))
        chain = []
        while t != _ROOT:
            chain.append(t)
            t = self.seen[self.key(t)]
        chain.reverse()
        return self.trace_of(chain)

    def trace_of(self, chain: list[int]) -> list[tuple[int, tuple]]:
        """The trace through these states, each the successor of the one
        before it."""
        trace = [(-1, self.pk.unpack(chain[0]))]
        for p, c in zip(chain, chain[1:]):
            # the first successor of p that is c: the one that discovered it
            out: list = []
            self.pk.succ(p, out)
            a = next(a for a, t in out if t == c)
            trace.append((a, self.pk.unpack(c)))
        return trace

    def tick(self) -> None:
        """Progress report and timeout, between chunks of states."""
        now = time.monotonic()
        if now >= self.next_report:
            st = self.stats
            st.states, st.depth, st.seconds = len(self.seen), self.depth, now - self.t0
            if self.progress:
                self.progress(st)
            self.next_report = now + self.progress_every
        if self.deadline and now >= self.deadline:
            raise _Stop(f"timeout after {self.timeout:g} s")

    # ------------------------------------------------------------- search

    def level_start(self, depth: int) -> None:
        """The plain search enters the states of this depth from now on
        (a hook: checker/engines/bitstate.py keeps parents by level)."""

    def run(self) -> SearchResult:
        pk = self.pk
        init = pk.pack(self.system.initial_state())
        self.level_start(0)
        if self.tab is not None:
            self.tab.add(init, _ROOT)
        else:
            self.seen[self.key(init)] = _ROOT
        self.stats.states = 1
        bad = pk.check(init)
        if bad >= 0:
            return self.finish("violation", prop=self.system.properties[bad].name, trace=self.path_to(init))
        frontier: list[int] | range = [] if pk.terminal(init) else [init]
        if not frontier:
            self.terminals.add(init)
        nterm = len(frontier) ^ 1  # terminal states of the level: in the frontier, never expanded
        if self.tab is not None:
            # the frontier is a range of the table's entries
            frontier = range(0, len(frontier))
            if nterm:
                self.term.add(0)
        try:
            if not self.por:
                while (frontier or nterm) and self.depth < self.max_depth:
                    self.level_start(self.depth + 1)
                    frontier, nterm = self.level_table(frontier) if self.tab is not None \
                        else self.level_full(frontier)
                    self.depth += 1
                self.stats.depth = self.depth
                return self.finish("holds", exhausted=not (frontier or nterm))
            cut = self.search_reduced({0: (frontier, nterm)})
        except KeyboardInterrupt:
            self.stats.depth = self.depth
            return self.finish("unknown", reason="interrupted")
        except _Stop as e:
            self.stats.depth = self.depth
            return self.finish("unknown", reason=str(e))
        except _Found as f:
            return self.violation(f.state, f.prop)
        self.stats.depth = self.depth
        if cut and self.reduced:
            return self.unreduced()
        return self.finish("holds", exhausted=not cut)

    def unreduced(self) -> SearchResult:
        """The reduced search reached the depth bound.  Its depths are those
        of the reduced graph, where one thread runs ahead of the others, so
        "no violation within N steps" needs the full search."""
        spent = time.monotonic() - self.t0
        left = None
        if self.timeout:
            left = self.timeout - spent
            if left <= 0:
                return self.finish("unknown", reason=f"timeout after {self.timeout:g} s")
        res = _Search(self.system, self.max_depth, False, left, None if self.limit == sys.maxsize else self.limit,
                      self.progress, self.progress_every).run()
        res.stats.seconds += spent
        return res

    def search_reduced(self, pending: dict[int, tuple[list[int], int]]) -> bool:
        """BFS with ample sets, level by level from `pending` (depth ->
        states to expand, terminal states), then the ignoring fix until it
        finds nothing; True if the depth bound cut the search."""
        while True:
            while pending:
                d = min(pending)
                if d >= self.max_depth:
                    return True
                frontier, nterm = pending.pop(d)
                self.depth = d
                nxt, nt = self.level_por(frontier)
                if nxt or nt:
                    f, t = pending.get(d + 1, ([], 0))
                    pending[d + 1] = (f + nxt, t + nt)
                self.max_level = max(self.max_level, d + 1)
                self.depth = self.max_level
            if not (self.reduced and self.joined):
                return False
            pending = self.fix_ignoring()
            if not pending:
                return False

    def new_frontier(self) -> list[int]:
        """The next level's states (checker/engines/bitstate.py packs them)."""
        return []

    def level_full(self, frontier: list[int]) -> tuple[list[int], int]:
        nxt = self.new_frontier()
        tnxt: list[int] = []
        pk, seen, limit, st = self.pk, self.seen, self.limit, self.stats
        for i in range(0, len(frontier), _CHUNK):
            chunk = frontier[i : i + _CHUNK]
            before = st.transitions
            try:
                if limit == sys.maxsize:
                    st.transitions += self.expand(chunk, seen, nxt, tnxt)
                else:
                    k, n = self.expand_limited(chunk, seen, nxt, tnxt, limit)
                    st.transitions += n
                    if k < len(chunk) or len(seen) >= limit:
                        raise _Stop(f"state limit {limit} reached")
            except pk.Violation as v:
                self.violated(v, before)
            if self.watch:
                self.tick()
        return nxt, len(tnxt)

    def level_table(self, frontier: range) -> tuple[range, int]:
        """`level_full` over the table: the level is a range of its entries
        and so is the next one, what the table gains."""
        tab, term, limit, st = self.tab, self.term, self.limit, self.stats
        assert tab is not None
        if self.handoff is not None and len(frontier) >= self.handoff:
            raise HandOff(frontier)
        nterm, start = len(term), len(tab)  # what is entered from now on is the next level
        for lo in range(frontier.start, frontier.stop, _CHUNK):
            hi = min(lo + _CHUNK, frontier.stop)
            before = st.transitions
            try:
                if limit == sys.maxsize:
                    st.transitions += self.expand_range(lo, hi)
                else:
                    k, n = self.expand_range_limited(lo, hi, limit)
                    st.transitions += n
                    if k < hi - lo or len(tab) >= limit:
                        raise _Stop(f"state limit {limit} reached")
            except self.pk.Violation as v:
                self.violated(v, before)
            if self.watch:
                self.tick()
        return range(start, len(tab)), len(term) - nterm

    def violated(self, v, before: int) -> None:
        """Raise `_Found` for the violation `v` met while expanding a chunk:
        its state's transitions count as if it had been expanded whole; its
        actions fired up to the violating one."""
        out: list = []
        self.pk.succ(v.parent, out)
        at = next(j for j, (_, t) in enumerate(out) if t == v.state)
        self.stats.transitions = before + v.before + len(out)
        self.fired_at_violation = (v.parent, {a for a, _ in out[: at + 1]})
        raise _Found(v.state, v.prop) from None

    def entry(self, b: int, s: int) -> tuple[list[tuple[int, int]], bool]:
        """Block b's enabled actions at s as (action, xor mask), and whether
        all are safe; memoized by the block's key."""
        blk = self.pk.blocks[b]
        memo = self.pmemo[b]
        if len(memo) >= _MEMO_CAP:
            memo.clear()
        out: list = []
        blk.collect(s, out)
        items = [(a, s ^ t) for a, t in out]
        safe, cond = self.safe, self.cond
        e = memo[s & blk.mask] = (items, all(safe[a] or (a in cond and self.unseen(cond[a], s, t)) for a, t in out))
        return e

    @staticmethod
    def unseen(conds: list[tuple[int, int, int, frozenset[int] | None, frozenset[int] | None]], s: int, t: int) -> bool:
        """The step s -> t meets the conditions of `_write_conds`."""
        for sh, m, lo, ks, fr in conds:
            old, new = ((s >> sh) & m) + lo, ((t >> sh) & m) + lo
            if old != new:
                if ks is None or old in ks or new in ks:
                    return False
            elif fr is not None and old in fr:
                return False
        return True

    def choose(self, s: int) -> tuple[list[tuple[int, int]], int]:
        """The ample set of s, as (action, xor mask) in successor order, and
        the process it is of, or -1 if it is all of s's successors: the
        enabled actions of the first process (in name order) whose enabled
        actions are all safe, if another process has enabled actions too."""
        pmemo, masks, entry = self.pmemo, self.bmask, self.entry
        got: dict[int, tuple[list, bool]] = {}
        choice = -1
        enabled = 0  # processes with enabled actions
        for pid, bl in self.proc_blocks:
            has, ok = False, True
            for b in bl:
                e = pmemo[b].get(s & masks[b])
                if e is None:
                    e = entry(b, s)
                got[b] = e
                if e[0]:
                    has = True
                    ok = ok and e[1]
            if has:
                enabled += 1
                if choice < 0 and ok and (self.fz is None or self.isolated[pid] or self.still(pid, s)):
                    choice = pid
                if choice >= 0 and enabled > 1:
                    return [it for b in self.proc_blocks_of[choice] for it in got[b][0]], choice
        items = []
        for b in range(len(masks)):
            e = got[b]
            if e[0]:
                items += e[0]
        return items, -1

    def still(self, pid: int, s: int) -> bool:
        """No other process can change what process pid's actions read at s,
        while pid stands still (see _Frozen); memoized by pid's reads."""
        fz = self.fz
        assert fz is not None
        memo = fz.memo[pid]
        key = s & fz.masks[pid]
        got = memo.get(key)
        if got is not None:
            return got
        if len(memo) >= _MEMO_CAP:
            memo.clear()
        vals = self.pk.unpack(s)
        unk = {i for i, fr in fz.shared[pid].items() if vals[i] in fr}
        ok = True
        if unk:
            for guard, ups in fz.code[pid]:
                g = _pev(guard, vals, unk)
                if g is None or (g and any(_pev(e, vals, unk) is None for e in ups)):
                    ok = False
                    break
        memo[key] = ok
        return ok

    def level_por(self, frontier: list[int]) -> tuple[list[int], int]:
        nxt: list[int] = []
        nterm = 0
        seen, F, limit, choose, amp = self.seen, self.F, self.limit, self.choose, self.amp
        check, terminal = self.pk.check, self.pk.terminal
        needs_check, needs_term = self.needs_check, self.needs_term
        st = self.stats
        for k, s in enumerate(frontier, 1):
            items, pid = choose(s)
            if pid >= 0:
                self.reduced = True
                amp[s] = pid  # kept for the ignoring fix, which then need not choose again
            st.transitions += len(items)
            for a, x in items:
                F[a] = 1
                t = s ^ x
                if t in seen:
                    if pid >= 0:
                        self.joined = True  # a cycle of reduced steps is possible
                    continue
                seen[t] = s
                if needs_check[a]:
                    b = check(t)
                    if b >= 0:
                        raise _Found(t, b)
                if needs_term[a] and terminal(t):
                    nterm += 1
                    self.terminals.add(t)
                else:
                    nxt.append(t)
            if len(seen) >= limit:
                raise _Stop(f"state limit {limit} reached")
            if self.watch and not k % _CHUNK:
                self.tick()
        if self.watch:
            self.tick()
        return nxt, nterm

    def reduced_succ(self, s: int) -> tuple[list, bool]:
        """The successors the reduced search takes from s (it has been
        expanded) and whether they are all of them."""
        if s in self.terminals:
            return [], True
        pid = self.amp.get(s)
        if pid is None:
            out: list = []
            self.pk.succ(s, out)
            return out, True
        return [(a, s ^ x) for a, x in self.ample_of(pid, s)], False

    def ample_of(self, pid: int, s: int) -> list[tuple[int, int]]:
        """Process pid's enabled actions at s, as (action, xor mask)."""
        masks, pmemo, items = self.bmask, self.pmemo, []
        for b in self.proc_blocks_of[pid]:
            e = pmemo[b].get(s & masks[b])
            items += (e if e is not None else self.entry(b, s))[0]
        return items

    def fix_ignoring(self) -> dict[int, tuple[list[int], int]]:
        """The cycle proviso, as a check on the finished reduced graph: every
        bottom strongly connected component must hold a fully expanded state
        (Valmari's condition for safety properties), else the actions its
        states never take, of other threads, would be ignored.  Fully expands
        one state (the least) of each component lacking one; returns the new
        states to search from, by depth.  A component with a fully expanded
        (or terminal) state needs nothing, so only the states whose ample set
        is proper (`amp`) are searched: a component of those is bottom when
        no step leaves it, to another component or to any other state."""
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on_stack: set[int] = set()
        stack: list[int] = []
        leaves: set[int] = set()  # states with a step out of their component
        reps: list[int] = []
        amp = self.amp

        def visit(v: int) -> tuple[int, object]:
            if self.watch and not len(index) % _CHUNK:
                self.tick()
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            return v, iter([v ^ x for _, x in self.ample_of(amp[v], v)])

        for root in list(amp):
            if root in index:
                continue
            work = [visit(root)]
            while work:
                v, it = work[-1]
                for w in it:  # type: ignore[attr-defined]
                    if w not in amp:
                        leaves.add(v)  # to a fully expanded or terminal state
                        continue
                    if w not in index:
                        work.append(visit(w))
                        break
                    if w in on_stack:
                        low[v] = min(low[v], index[w])
                    else:
                        leaves.add(v)
                else:
                    work.pop()
                    if low[v] == index[v]:
                        members = pop_component(stack, on_stack, v)
                        if not any(m in leaves for m in members):
                            reps.append(min(members))
                    if work:  # back in the parent: v's component is done or is the parent's
                        u = work[-1][0]
                        if v in on_stack:
                            low[u] = min(low[u], low[v])
                        else:
                            leaves.add(u)
        pending: dict[int, tuple[list[int], int]] = {}
        seen, st = self.seen, self.stats
        for x in reps:
            taken, _ = self.reduced_succ(x)
            self.forced.add(x)
            del amp[x]
            out: list = []
            self.pk.succ(x, out)
            st.transitions += len(out) - len(taken)
            d = -1
            p = x
            while p != _ROOT:
                d += 1
                p = seen[p]
            for a, t in out:
                self.F[a] = 1
                if t in seen:
                    continue
                seen[t] = x
                if self.needs_check[a]:
                    b = self.pk.check(t)
                    if b >= 0:
                        self.depth = d
                        raise _Found(t, b)
                f, nt = pending.get(d + 1, ([], 0))
                if self.needs_term[a] and self.pk.terminal(t):
                    pending[d + 1] = (f, nt + 1)
                    self.terminals.add(t)
                else:
                    f.append(t)
                    pending[d + 1] = (f, nt)
        return pending


def table_chain(tab, i: int) -> list[int]:
    """The states from the root to entry i of a table, by parent links."""
    chain = []
    while i != _ROOT:
        chain.append(tab.get(i))
        i = tab.parent(i)
    chain.reverse()
    return chain


def pop_component(stack: list[int], on_stack: set[int], v: int) -> list[int]:
    """Tarjan's step at a root v: its strongly connected component, off
    the stack (v is the last member popped)."""
    members = []
    while True:
        w = stack.pop()
        on_stack.discard(w)
        members.append(w)
        if w == v:
            return members


class HandOff(Exception):
    """The plain search over a table reached a level of `_Search.handoff`
    states: `frontier`, the entries of that level (checker/engines/
    workers.py goes on from there)."""

    def __init__(self, frontier: range):
        super().__init__(len(frontier))
        self.frontier = frontier


class _Found(Exception):
    def __init__(self, state: int, prop: int):
        super().__init__(prop)
        self.state, self.prop = state, prop


def bfs(
    system: System,
    max_depth: int,
    por: bool = True,
    timeout: float | None = None,
    max_states: int | None = None,
    progress: Progress | None = None,
    progress_every: float = 1.0,
    por_frozen: bool = False,
    symmetry: bool = False,
) -> SearchResult:
    """Breadth-first search; `por`: partial-order reduction; `por_frozen`
    (with `por`): also let a process that reads variables other processes
    write form an ample set at states where they cannot change them
    (`_Frozen`); `symmetry`: one state per orbit of `system.symmetries`
    (checker/engines/symmetry.py; replaces `por`, which is then off)."""
    return _Search(system, max_depth, por, timeout, max_states, progress, progress_every, por_frozen,
                   symmetry).run()


def _ample(out: list, safe: list[bool], proc_of: list[int]) -> tuple[list, bool]:
    """The enabled actions of the first process (in name order) whose
    enabled actions are all safe, when another process has some too."""
    p0 = proc_of[out[0][0]]
    for a, _ in out:
        if proc_of[a] != p0:
            break
    else:
        return out, False
    groups: dict[int, list] = {}
    for item in out:
        groups.setdefault(proc_of[item[0]], []).append(item)
    for p in sorted(groups):
        g = groups[p]
        if all(safe[a] for a, _ in g):
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
    comp = compile_system(system)
    replayed = _replay(comp, system, seq)
    if replayed is None:
        return trace
    if comp.check(replayed[-1][1]) != bad_prop:
        return trace
    return replayed


def replay(system: System, seq: list[int]) -> list[tuple[int, tuple]] | None:
    """Run the action indices in order from the initial state; None if a
    step is not enabled where it is taken."""
    return _replay(compile_system(system), system, seq)


def _replay(comp: Compiled, system: System, seq: list[int]) -> list[tuple[int, tuple]] | None:
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


# ------------------------------------------------- distinct counterexamples


def interleaving(system: System, trace: list[tuple[int, tuple]]) -> tuple[str, ...]:
    """A trace's interleaving: the sequence of contexts (actors: T0, T0.h1,
    T0:kernel, env, ...) that take its steps.  Two traces whose steps differ
    only in what the same contexts do (say, which signal is sent) have the
    same interleaving."""
    return tuple(system.actions[a].actor for a, _ in trace[1:])


@dataclass
class Distinct:
    """Counterexamples with pairwise different interleavings, shortest
    first.  The first is `bfs`'s own (no reduction): `result` is that
    search, with its statistics."""

    result: SearchResult
    traces: list[tuple[str, list[tuple[int, tuple]]]] = field(default_factory=list)  # (property, trace)
    complete: bool = False  # every distinct interleaving within the bound is listed
    reason: str = ""  # why the enumeration stopped early: timeout, interrupted
    states: int = 0  # states within the bound that the enumeration looked at


def distinct_counterexamples(
    system: System,
    max_depth: int,
    n: int,
    timeout: float | None = None,
    max_states: int | None = None,
    progress: Progress | None = None,
    progress_every: float = 1.0,
) -> Distinct:
    """Up to `n` counterexamples whose interleavings (see `interleaving`)
    differ, shortest first, each ending at its first violating state.

    The first is what `bfs(por=False)` finds.  Then every state within the
    bound is explored (a violating or terminal state is not expanded), and
    for each state the lengths r of the walks that reach a violating state
    in exactly r steps are computed backwards.  For each length L (shortest
    first), a depth-first search over interleavings, not paths, follows the
    set of states each prefix of contexts can lead to, keeping only states
    from which a violation is exactly the remaining steps away: every branch
    ends in a counterexample, so each one found costs O(L) set steps, and no
    interleaving is produced twice.  Partial-order reduction is off: it
    would drop interleavings by design."""
    t0 = time.monotonic()
    first = bfs(system, max_depth, por=False, timeout=timeout, max_states=max_states, progress=progress,
                progress_every=progress_every)
    out = Distinct(first)
    if first.verdict != "violation":
        return out
    assert first.prop is not None
    out.traces.append((first.prop, first.trace))
    if len(first.trace) == 1:  # the initial state violates: no other trace ends there first
        out.complete = True
        return out
    if n <= 1:
        return out
    actor = [a.actor for a in system.actions]
    deadline = t0 + timeout if timeout else None
    clock = [0]

    def tick() -> None:
        clock[0] += 1
        if deadline and not clock[0] % 1024 and time.monotonic() >= deadline:
            raise _Stop(f"timeout after {timeout:g} s")

    pk = compile_packed(system)
    init = pk.pack(system.initial_state())
    try:
        succ, bad, depth = _within_bound(pk, init, max_depth, tick, progress, t0)
        out.states = len(depth)
        reach = _exact_reach(succ, bad, depth, max_depth, tick)
        known = {interleaving(system, first.trace)}
        lengths = [r for r in range(1, max_depth + 1) if reach.get(init, 0) >> r & 1]
        for length in lengths:
            for levels, sig in _interleavings(init, length, succ, reach, actor, tick):
                if sig in known:
                    continue
                known.add(sig)
                prop, trace = _trace_of(pk, levels, bad)
                out.traces.append((system.properties[prop].name, trace))
                if len(out.traces) >= n:
                    return out
        out.complete = True
    except _Stop as e:
        out.reason = str(e)
    except KeyboardInterrupt:
        out.reason = "interrupted"
    return out


def _within_bound(pk: Packed, init: int, max_depth: int, tick: Callable[[], None], progress: Progress | None,
                  t0: float) -> tuple[dict[int, list[tuple[int, int]]], dict[int, int], dict[int, int]]:
    """Every state within `max_depth` steps: successors of each expanded
    state (no self-loops: a step that changes nothing is no step), the
    violating states (property index) and each state's BFS depth."""
    succ: dict[int, list[tuple[int, int]]] = {}
    bad: dict[int, int] = {}
    depth = {init: 0}
    frontier = [init] if pk.check(init) < 0 and not pk.terminal(init) else []
    for d in range(max_depth):
        nxt: list[int] = []
        for s in frontier:
            tick()
            got: list = []
            pk.succ(s, got)
            succ[s] = lst = [(a, t) for a, t in got if t != s]
            for _, t in lst:
                if t in depth:
                    continue
                depth[t] = d + 1
                b = pk.check(t)
                if b >= 0:
                    bad[t] = b
                elif not pk.terminal(t):
                    nxt.append(t)
        if progress:
            progress(Stats(len(depth), sum(map(len, succ.values())), d + 1, time.monotonic() - t0))
        frontier = nxt
        if not frontier:
            break
    return succ, bad, depth


def _exact_reach(succ: dict[int, list[tuple[int, int]]], bad: dict[int, int], depth: dict[int, int],
                 max_depth: int, tick: Callable[[], None]) -> dict[int, int]:
    """reach[s] has bit r set when some walk of exactly r steps leads from s
    to a violating state (through none before it) and can still end within
    the bound (s's depth + r <= max_depth)."""
    preds: dict[int, list[int]] = {}
    for s, lst in succ.items():
        for _, t in lst:
            preds.setdefault(t, []).append(s)
    reach = dict.fromkeys(bad, 1)
    layer: set[int] = set(bad)
    for r in range(1, max_depth + 1):
        bit = 1 << r
        nl: set[int] = set()
        for t in layer:
            tick()
            for s in preds.get(t, ()):
                if depth[s] + r <= max_depth and not reach.get(s, 0) & bit:
                    reach[s] = reach.get(s, 0) | bit
                    nl.add(s)
        layer = nl
        if not layer:
            break
    return reach


def _interleavings(init: int, length: int, succ: dict[int, list[tuple[int, int]]], reach: dict[int, int],
                   actor: list[str], tick: Callable[[], None]):
    """Each interleaving of exactly `length` steps that ends at a violating
    state, as (levels, signature): levels[i] maps each state the first i
    contexts can lead to onto (its parent at level i - 1, the action)."""
    levels: list[dict[int, tuple[int, int]]] = [{init: (_ROOT, -1)}]
    sig: list[str] = []
    # an explicit stack of generators of (context, next level), one per level
    stack = [iter(_branches(levels[0], length - 1, succ, reach, actor))]
    while stack:
        tick()
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            levels.pop()
            if sig:
                sig.pop()
            continue
        ctx, level = step
        levels.append(level)
        sig.append(ctx)
        if len(sig) == length:
            yield levels, tuple(sig)
            levels.pop()
            sig.pop()
        else:
            stack.append(iter(_branches(level, length - len(sig) - 1, succ, reach, actor)))


def _branches(level: dict[int, tuple[int, int]], r: int, succ: dict[int, list[tuple[int, int]]],
              reach: dict[int, int], actor: list[str]) -> list[tuple[str, dict[int, tuple[int, int]]]]:
    """The next level per context: the successors, r steps away from a
    violation, that the states of `level` reach by one step of that
    context; contexts in the order their first action appears."""
    bit = 1 << r
    groups: dict[str, dict[int, tuple[int, int]]] = {}
    for s in level:
        for a, t in succ.get(s, ()):
            if reach.get(t, 0) & bit:
                g = groups.setdefault(actor[a], {})
                if t not in g:
                    g[t] = (s, a)
    return list(groups.items())


def _trace_of(pk: Packed, levels: list[dict[int, tuple[int, int]]], bad: dict[int, int]
              ) -> tuple[int, list[tuple[int, tuple]]]:
    """A concrete trace of the interleaving whose levels are given: back
    from the first violating state of the last level."""
    t = next(iter(levels[-1]))
    prop = bad[t]
    chain: list[tuple[int, int]] = []
    for level in reversed(levels):
        parent, a = level[t]
        chain.append((a, t))
        t = parent
    chain.reverse()
    return prop, [(a, pk.unpack(s)) for a, s in chain]

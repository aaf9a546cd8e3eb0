"""Symbolic engines over the IR: bounded model checking and k-induction (Z3).

The transition relation is built once over template variables (current
state, next state, action choice) and copied to each step with
`z3.substitute`, so each IR expression is translated a single time.  Per
step it says: the source state is not terminal, the chosen action's guard
holds, and every variable takes the value of the chosen action's update (an
if-chain over the action choice) or keeps its value (frame).

Next-state values are NOT constrained to their ranges: leaving a range is a
model error (explicit raises `ModelError`), so it is part of the bad
condition checked at each depth and reported the same way.

Depths are checked 0, 1, 2, ... on one incremental solver, each query under
an assumption literal; once depth k is proved safe, `good(s_k)` (properties
and ranges) is asserted for good, which is sound and prunes later queries.
So the first counterexample found is a shortest one.

Unbounded proofs: plain k-induction (loop-free paths), and `strengthen`,
which builds an inductive invariant from lemmas that the explicit engine's
reachable states suggest and Z3 alone proves (kinduction tries it first).

Like explicit, nothing here knows what the variables mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import z3
from rseqcheck.checker.engines.explicit import SearchResult, Stats
from rseqcheck.checker.engines.lemmas import Cube, Reach, reachable
from rseqcheck.model.ir import COMPARISONS, Const, Expr, ModelError, Op, Ref, System, Var, evaluate

Progress = Callable[[Stats], None]
Term = z3.ExprRef

ENCODINGS = ("bv", "int")
# kinduction enumerates at most this many reachable states to suggest lemmas.
LEMMA_STATES = 1_000_000


# ------------------------------------------------------------- static bounds


def _interval(e: Expr, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """Range of an expression's value, from its variables' ranges: sizes
    each bit-vector so that no intermediate result can wrap."""
    r = memo.get(id(e))
    if r is not None:
        return r
    if isinstance(e, Const):
        r = (e.value, e.value)
    elif isinstance(e, Ref):
        r = (e.var.type.lo, e.var.type.hi)
    else:
        assert isinstance(e, Op), e
        sub = [_interval(a, memo) for a in e.args]
        if e.op == "+":
            r = (sub[0][0] + sub[1][0], sub[0][1] + sub[1][1])
        elif e.op == "-":
            r = (sub[0][0] - sub[1][1], sub[0][1] - sub[1][0])
        elif e.op == "ite":
            r = (min(sub[1][0], sub[2][0]), max(sub[1][1], sub[2][1]))
        else:
            r = (0, 1)
    memo[id(e)] = r
    return r


def _swidth(lo: int, hi: int) -> int:
    """Fewest bits holding lo..hi in two's complement."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi < (1 << (w - 1))):
        w += 1
    return w


# --------------------------------------------------------------- translation


class _Encoder:
    """IR expressions to Z3 terms.  Numbers are Ints, or signed bit-vectors
    each as wide as its static range needs (sign-extended where operands
    meet), which keeps the bit-blasted state small.  A Boolean op yields a
    Z3 Bool, coerced to 0/1 where a number is needed, as `evaluate` does."""

    def __init__(self, system: System, encoding: str) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; choose from {ENCODINGS}")
        self.bv = encoding == "bv"
        self._iv: dict[int, tuple[int, int]] = {}

    def var(self, name: str, v: Var) -> Term:
        return z3.BitVec(name, _swidth(v.type.lo, v.type.hi)) if self.bv else z3.Int(name)

    def num(self, value: int, width: int = 0) -> Term:
        if not self.bv:
            return z3.IntVal(value)
        return z3.BitVecVal(value, max(width, _swidth(value, value)))

    def value(self, t: Term) -> int:
        if self.bv:
            assert isinstance(t, z3.BitVecNumRef), t
            return t.as_signed_long()
        assert isinstance(t, z3.IntNumRef), t
        return t.as_long()

    def widen(self, *ts: Term, width: int = 0) -> list[Term]:
        """Sign-extend bit-vectors to a common width (no-op for Ints)."""
        if not self.bv:
            return list(ts)
        w = max([width] + [t.size() for t in ts])
        return [z3.SignExt(w - t.size(), t) if t.size() < w else t for t in ts]

    def eq(self, x: Term, y: Term) -> Term:
        x, y = self.widen(x, y)
        return x == y

    def in_range(self, x: Term, lo: int, hi: int) -> Term:
        if self.bv:
            # Only what the width does not already exclude.
            x = self.widen(x, width=_swidth(lo, hi))[0]
            wl, wh = -(1 << (x.size() - 1)), (1 << (x.size() - 1)) - 1
            parts = []
            if lo > wl:
                parts.append(x >= self.num(lo, x.size()))
            if hi < wh:
                parts.append(x <= self.num(hi, x.size()))
            return z3.And(parts)
        return z3.And(x >= lo, x <= hi)

    def boolean(self, e: Expr, env: dict[Var, Term], memo: dict[int, Term]) -> Term:
        if isinstance(e, Const):
            return z3.BoolVal(e.value != 0)
        return self._as_bool(self.term(e, env, memo))

    def number(self, e: Expr, env: dict[Var, Term], memo: dict[int, Term]) -> Term:
        return self._as_num(self.term(e, env, memo))

    def _as_bool(self, t: Term) -> Term:
        if z3.is_bool(t):
            return t
        return t != (z3.BitVecVal(0, t.size()) if self.bv else 0)

    def _as_num(self, t: Term) -> Term:
        return z3.If(t, self.num(1, 2), self.num(0, 2)) if z3.is_bool(t) else t

    def term(self, e: Expr, env: dict[Var, Term], memo: dict[int, Term]) -> Term:
        # IR expressions are DAGs (eq=False dataclasses): memoise by identity.
        t = memo.get(id(e))
        if t is not None:
            return t
        if isinstance(e, Const):
            t = self.num(e.value)
        elif isinstance(e, Ref):
            t = env[e.var]
        else:
            assert isinstance(e, Op), e
            op, args = e.op, e.args
            if op == "not":
                t = z3.Not(self.boolean(args[0], env, memo))
            elif op == "and":
                t = z3.And([self.boolean(a, env, memo) for a in args])
            elif op == "or":
                t = z3.Or([self.boolean(a, env, memo) for a in args])
            elif op == "ite":
                c = self.boolean(args[0], env, memo)
                x, y = self.term(args[1], env, memo), self.term(args[2], env, memo)
                if not (z3.is_bool(x) and z3.is_bool(y)):
                    x, y = self.widen(self._as_num(x), self._as_num(y))
                t = z3.If(c, x, y)
            elif op in _ARITH:
                w = _swidth(*_interval(e, self._iv)) if self.bv else 0
                x, y = self.widen(self.number(args[0], env, memo), self.number(args[1], env, memo), width=w)
                t = _ARITH[op](x, y)
            elif op in COMPARISONS:
                x, y = self.widen(self.number(args[0], env, memo), self.number(args[1], env, memo))
                t = COMPARISONS[op](x, y)  # signed for bit-vectors, as z3py's operators are
            else:
                raise ModelError(f"unknown operator {op!r}")
        memo[id(e)] = t
        return t


_ARITH: dict[str, Callable[[Term, Term], Term]] = {"+": lambda x, y: x + y, "-": lambda x, y: x - y}


# ----------------------------------------------------------------- unrolling


class _Unrolling:
    """One solver holding an unrolled path s_0 .. s_k of the system, with
    act_j the action taken from s_j and err_j "that step left a range"."""

    def __init__(self, system: System, encoding: str, anchored: bool, simple_path: bool) -> None:
        self.system = system
        self.enc = enc = _Encoder(system, encoding)
        self.simple_path = simple_path
        # QF_FD runs bit-vector problems on Z3's incremental SAT solver,
        # several times faster here than the default SMT core.
        self.solver = z3.SolverFor("QF_FD") if enc.bv else z3.Solver()
        self._fresh = count()
        nv, na = len(system.vars), len(system.actions)

        cur = [enc.var(f"{v.name}@cur", v) for v in system.vars]
        nxt = [enc.var(f"{v.name}@nxt", v) for v in system.vars]
        act = _act_vars("act@cur", na)
        err = z3.Bool("err@cur")
        env = dict(zip(system.vars, cur, strict=True))
        memo: dict[int, Term] = {}
        parts: list[Term] = [z3.Not(enc.boolean(system.terminal, env, memo))]
        errs: list[Term] = []
        if na == 0:
            parts.append(z3.BoolVal(False))
        else:
            # One Boolean per action, exactly one true: twice as fast as a
            # bit-vector action number on the seed specs.
            parts += [z3.Or(act), z3.AtMost(*act, 1)]
            # The chosen action is enabled.
            for ai, a in enumerate(system.actions):
                g = enc.boolean(a.guard, env, memo)
                if not z3.is_true(z3.simplify(g)):
                    parts.append(z3.Implies(act[ai], g))
            # Each variable: the chosen action's update, else unchanged.  The
            # if-chain beat explanatory frame axioms (one implication per
            # update plus "unchanged or a writer fired") on the seed specs.
            writers: list[list[tuple[int, Term]]] = [[] for _ in range(nv)]
            idx = system.index()
            for ai, a in enumerate(system.actions):
                for v, e in a.updates:
                    writers[idx[v]].append((ai, enc.number(e, env, memo)))
            for i, v in enumerate(system.vars):
                if not writers[i]:
                    parts.append(nxt[i] == cur[i])
                    continue
                vals = enc.widen(cur[i], *(t for _, t in writers[i]))
                val = vals[0]
                for (ai, _), t in reversed(list(zip(writers[i], vals[1:], strict=True))):
                    val = z3.If(act[ai], t, val)
                if enc.bv and val.size() > nxt[i].size():
                    errs.append(z3.Not(enc.in_range(val, v.type.lo, v.type.hi)))
                    val = z3.Extract(nxt[i].size() - 1, 0, val)
                elif not enc.bv:
                    errs.append(z3.Not(enc.in_range(val, v.type.lo, v.type.hi)))
                parts.append(nxt[i] == val)
        parts.append(err == z3.Or(errs))
        self._trans = z3.And(parts)
        self._cur, self._nxt, self._act, self._err = cur, nxt, act, err
        # the properties, encoded once over `cur` and substituted per depth
        # (encoding them anew at every depth dominated long unrollings)
        self._props = z3.And([enc.boolean(p.holds, env, memo) for p in system.properties])

        self.states: list[list[Term]] = []
        self.acts: list[list[Term]] = []
        self.errs: list[Term] = []
        self._add_state()
        init = system.initial_state()
        init_f = z3.And([enc.eq(x, enc.num(val)) for x, val in zip(self.states[0], init, strict=True)])
        if anchored:
            self.init_lit: Term | None = None
            self.solver.add(init_f)
        else:
            self.init_lit = z3.Bool("init@0")
            self.solver.add(z3.Implies(self.init_lit, init_f))

    def _add_state(self) -> None:
        k = len(self.states)
        s = [self.enc.var(f"{v.name}@{k}", v) for v in self.system.vars]
        if self.simple_path and s:
            # Loop-free paths only: a shortest counterexample is one, and it
            # is what makes k-induction complete on a finite system.
            for prev in self.states:
                self.solver.add(z3.Or([a != b for a, b in zip(s, prev, strict=True)]))
        self.states.append(s)

    def extend(self) -> None:
        """Add one step: s_k -> s_{k+1}."""
        k = len(self.states) - 1
        self._add_state()
        a, e = _act_vars(f"act@{k}", len(self.system.actions)), z3.Bool(f"err@{k}")
        self.acts.append(a)
        self.errs.append(e)
        pairs = list(zip(self._cur, self.states[k], strict=True))
        pairs += list(zip(self._nxt, self.states[k + 1], strict=True))
        pairs += list(zip(self._act, a, strict=True)) + [(self._err, e)]
        self.solver.add(z3.substitute(self._trans, *pairs))

    def good(self, k: int) -> Term:
        """s_k satisfies every property, and no step to it left a range."""
        out = [z3.substitute(self._props, *zip(self._cur, self.states[k], strict=True))] if self._cur else [self._props]
        out += [
            self.enc.in_range(x, v.type.lo, v.type.hi) for v, x in zip(self.system.vars, self.states[k], strict=True)
        ]
        if k > 0:
            out.append(z3.Not(self.errs[k - 1]))
        return z3.And(out)

    def lit(self, f: Term) -> Term:
        """A fresh assumption literal implying `f`, so a query can be made
        without push/pop (which would throw away learned clauses)."""
        b = z3.Bool(f"q@{next(self._fresh)}")
        self.solver.add(z3.Implies(b, f))
        return b

    def check(self, *assumptions: Term | None) -> z3.CheckSatResult:
        return self.solver.check(*[a for a in assumptions if a is not None])

    def set_timeout(self, deadline: float | None) -> bool:
        """Give the next query the remaining time; False if none is left."""
        if deadline is None:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.solver.set("timeout", max(1, int(left * 1000)))
        return True

    def act_at(self, model: z3.ModelRef, j: int) -> int:
        for i, x in enumerate(self.acts[j]):
            if z3.is_true(model.eval(x, model_completion=True)):
                return i
        raise AssertionError(f"no action chosen at step {j}")

    def acts_in(self, model: z3.ModelRef, k: int) -> set[int]:
        return {self.act_at(model, j) for j in range(k)}

    def trace(self, model: z3.ModelRef, k: int) -> list[tuple[int, tuple]]:
        def state(j: int) -> tuple:
            return tuple(self.enc.value(model.eval(x, model_completion=True)) for x in self.states[j])

        return [(-1, state(0))] + [(self.act_at(model, j), state(j + 1)) for j in range(k)]


def _act_vars(name: str, n: int) -> list[Term]:
    return [z3.Bool(f"{name}#{i}") for i in range(n)]


def _coverage_goals(system: System, coverage: str) -> list[set[int]]:
    """Sets of actions of which `fired` must hold one each, if any fires."""
    if coverage == "all":
        return [{i} for i in range(len(system.actions))]
    if coverage == "triggers":
        tags = {p.trigger_tag for p in system.properties if p.trigger_tag}
        goals = [{i for i, a in enumerate(system.actions) if t in a.tags} for t in sorted(tags)]
        return [g for g in goals if g]
    if coverage == "none":
        return []
    raise ValueError(f"unknown coverage {coverage!r}: all, triggers or none")


def _first_violation(system: System, trace: list[tuple[int, tuple]]) -> str:
    """Name the first violated property of the last state, or raise the
    model error explicit raises when an update leaves its variable's range."""
    if len(trace) > 1:
        ai, prev = trace[-1][0], trace[-2][1]
        env = dict(zip(system.vars, prev, strict=True))
        a = system.actions[ai]
        for v, e in a.updates:
            x = evaluate(e, env)
            if not v.type.lo <= x <= v.type.hi:
                raise ModelError(
                    f"action {a.label!r} assigns {v.name} = {x}, outside its range {v.type.lo}..{v.type.hi}"
                )
    env = dict(zip(system.vars, trace[-1][1], strict=True))
    for p in system.properties:
        if not evaluate(p.holds, env):
            return p.name
    raise AssertionError("solver model violates no property: translation bug")


# -------------------------------------------------------------------- engines


def bmc(
    system: System,
    max_depth: int,
    timeout: float | None = None,
    progress: Progress | None = None,
    *,
    encoding: str = "bv",
    coverage: str = "triggers",
    budget: float | None = None,
) -> SearchResult:
    """Bounded model checking for depths 0..max_depth; the first violation
    found is a shortest one.  "holds" means up to `max_depth`; `exhausted`
    when, besides, no execution is `max_depth` steps long (so every
    reachable state was checked).  `stats.depth` is the last depth checked
    (`stats.states` stays 0: states are not enumerated).

    `fired` (actions enabled at some reachable state at depth < max_depth,
    as explicit computes it) costs queries, so `coverage` says how much of
    it to establish: "all"; "triggers" (default), at least one firing action
    per property `trigger_tag`, which is what vacuity needs; or "none".
    `encoding` is "bv" (default) or "int" (Z3 Ints: slower, kept as an
    independent cross-check of the bit-vector sizing).  `budget` (seconds)
    is a soft limit: once spent, "holds" up to the last depth checked, which
    becomes `bound` (`timeout` is the hard one: verdict "unknown")."""
    return _search(system, max_depth, "bmc", timeout, progress, encoding, coverage, budget)


def kinduction(
    system: System,
    max_k: int,
    timeout: float | None = None,
    progress: Progress | None = None,
    *,
    encoding: str = "bv",
    coverage: str = "triggers",
    lemma_states: int = LEMMA_STATES,
    budget: float | None = None,
) -> SearchResult:
    """k-induction over loop-free paths, k = 0, 1, ... max_k.  Base case as
    bmc (a violation found is a shortest one); the step case asks for k+1
    distinct states within their ranges, linked by k transitions, all good
    but the last (a property fails or an update leaves its range).  If that
    is unsat, or if no loop-free path of k steps leaves the initial state,
    the properties hold in every reachable state: verdict "holds",
    `exhausted`, and `reason` "proved by k-induction, k=K ...".  Otherwise
    "holds" up to max_k only, reason "induction did not close up to k=N".

    Plain k-induction's only strengthening is the variables' ranges, so its
    step case keeps failing on unreachable states (on a finite system the
    loop-free-path check closes it at the longest loop-free path, far
    beyond the BFS depth).  So first, when the system has at most
    `lemma_states` reachable states (0: never), they are enumerated and
    `strengthen` looks for an invariant they suggest and Z3 proves; if it
    finds one, the proof is 1-induction with those lemmas.

    `budget` (seconds) is a soft limit on each of the two parts: once spent
    in plain k-induction, it stops with "holds" up to the last depth whose
    base case was checked (`bound` is set to it) and reason "induction
    could not close at k=K".  `timeout` is the hard limit on the whole
    (verdict "unknown"), half of it at most for the lemmas.  `fired`
    covers depths < the k reached only."""
    t0 = time.monotonic()
    if lemma_states:
        # Leave time for plain induction; the budget bounds this part too.
        limits = [t for t in (None if timeout is None else timeout / 2, budget) if t is not None]
        part = min(limits) if limits else None
        reach = reachable(system, lemma_states, part)
        left = None if part is None else part - (time.monotonic() - t0)
        if reach is not None and (left is None or left > 0):
            st = strengthen(system, reach, left, encoding=encoding)
            if st.proved:
                return SearchResult(
                    "holds", "induction", Stats(depth=1, seconds=time.monotonic() - t0), max_k, exhausted=True,
                    reason=f"proved by k-induction, k=1, with {len(st.lemmas)} lemmas suggested by the "
                    f"{reach.n:,} reachable states",
                )
    left = None if timeout is None else max(timeout - (time.monotonic() - t0), 1e-3)
    res = _search(system, max_k, "induction", left, progress, encoding, coverage, budget)
    res.stats.seconds = time.monotonic() - t0
    if timeout is not None and res.reason.startswith("timeout after"):
        res.reason = f"timeout after {timeout:g} s"  # the user's limit, not what the lemmas left of it
    return res


def _search(
    system: System,
    bound: int,
    engine: str,
    timeout: float | None,
    progress: Progress | None,
    encoding: str,
    coverage: str,
    budget: float | None = None,
) -> SearchResult:
    t0 = time.monotonic()
    deadline = t0 + timeout if timeout else None
    soft = t0 + budget if budget else None
    if soft is not None and deadline is not None and soft >= deadline:
        soft = None
    stats = Stats()
    fired: set[int] = set()
    induction = engine == "induction"
    goals = _coverage_goals(system, coverage)

    def finish(verdict: str, bound: int = bound, **kw) -> SearchResult:
        stats.seconds = time.monotonic() - t0
        return SearchResult(verdict, engine, stats, bound, fired=fired, **kw)

    checked = -1  # the deepest depth whose base case is refuted
    failed = -1  # the deepest k whose step case is satisfiable

    def unknown(r: z3.CheckSatResult | None) -> SearchResult:
        why = un.solver.reason_unknown() if r is not None else "timeout"
        # A query is given the time left to the budget when there is one
        # (soft < deadline), and Z3 may stop a millisecond early.
        if soft is not None and (time.monotonic() >= soft or why in ("timeout", "canceled")):
            # The budget, not the hard limit: report what was checked.
            if checked < 0:
                return finish("unknown", reason=f"budget of {budget:g} s spent before depth 0")
            what = f"induction could not close at k={failed}" if induction else f"stopped at depth {checked + 1}"
            return finish("holds", bound=checked, reason=f"{what} within its {budget:g} s budget")
        if deadline is not None and (why in ("timeout", "canceled") or time.monotonic() >= deadline):
            return finish("unknown", reason=f"timeout after {timeout:g} s")
        if "interrupted" in why or why == "canceled":
            # Z3 catches Ctrl-C itself during a query and returns unknown.
            return finish("unknown", reason="interrupted")
        return finish("unknown", reason=f"solver gave up: {why}")

    un = _Unrolling(system, encoding, anchored=not induction, simple_path=induction)
    init = un.init_lit
    limit = soft if soft is not None else deadline
    try:
        for k in range(bound + 1):
            if k > 0:
                un.extend()
            stats.depth = k
            # Base case: a bad state at exactly depth k.
            bad = un.lit(z3.Not(un.good(k)))
            if not un.set_timeout(limit):
                return unknown(None)
            r = un.check(init, bad)
            if r == z3.sat:
                trace = un.trace(un.solver.model(), k)
                return finish("violation", prop=_first_violation(system, trace), trace=trace)
            if r != z3.sat and r != z3.unsat:
                return unknown(r)
            checked = k
            if induction:
                # Step case: k good states then a bad one, anywhere.
                if not un.set_timeout(limit):
                    return unknown(None)
                r = un.check(bad)
                if r == z3.unsat:
                    return finish("holds", exhausted=True, reason=f"proved by k-induction, k={k}")
                if r != z3.sat:
                    return unknown(r)
                failed = k
            un.solver.add(un.good(k))
            if induction and k > 0:
                # No loop-free path of length k from init: every reachable
                # state is at depth < k, all checked.  A query per depth
                # that bmc, with no loop-freedom to close, asks only at the
                # bound.
                if not un.set_timeout(limit):
                    return unknown(None)
                r = un.check(init)
                if r == z3.unsat:
                    return finish(
                        "holds",
                        exhausted=True,
                        reason=f"proved by k-induction, k={k} (no loop-free path of length {k})",
                    )
                if r != z3.sat:
                    return unknown(r)
            while k > 0 and (goals := [g for g in goals if not g & fired]):
                # Only the last step: the previous depth's query proved the
                # goals left unreachable before it.
                q = un.lit(z3.Or([un.acts[k - 1][i] for i in sorted(set().union(*goals))]))
                if not un.set_timeout(limit):
                    return unknown(None)
                r = un.check(init, q)
                if r == z3.unsat:
                    break
                if r != z3.sat:
                    return unknown(r)
                fired |= un.acts_in(un.solver.model(), k)
            if progress:
                stats.seconds = time.monotonic() - t0
                progress(stats)
    except KeyboardInterrupt:
        return finish("unknown", reason="interrupted")
    if induction:
        return finish("holds", reason=f"induction did not close up to k={bound}")
    if bound > 0 and un.set_timeout(limit) and un.check(init) == z3.unsat:
        return finish("holds", exhausted=True, reason=f"no execution is {bound} steps long")
    return finish("holds")


# ---------------------------------------------------- strengthened induction


@dataclass
class Strengthening:
    """What `strengthen` found: `proved` when the properties and the lemmas
    together are inductive (checked by Z3), else `reason` says why not."""

    proved: bool
    lemmas: list[Cube]  # each: no reachable state matches this cube
    ctis: int  # counterexamples to induction blocked
    queries: int
    seconds: float
    reason: str = ""


def strengthen(system: System, reach: Reach, timeout: float | None = None, *, encoding: str = "bv") -> Strengthening:
    """Look for an inductive invariant J = properties and lemmas, where each
    lemma says "not this cube" and is proposed by the reachable states
    `reach`: whenever Z3 finds a state s in J with a successor outside J
    (a counterexample to induction), s is unreachable (every reachable
    state satisfies J, and so do its successors), and `reach.block(s)`
    gives a cube holding s and no reachable state, whose negation joins J.
    J only shrinks, so each lemma needs its consecution checked once; the
    loop ends when the properties and every lemma are preserved by every
    step from J and no step from J leaves a range.  The result is then
    re-checked from scratch on a fresh solver: the proof rests on Z3 only,
    the reachable states merely suggest it.  This is IC3's inductive
    strengthening with a single frame and exact reachability as the oracle
    for generalisation."""
    t0 = time.monotonic()
    deadline = t0 + timeout if timeout else None
    un = _Unrolling(system, encoding, anchored=False, simple_path=False)
    un.extend()
    enc, s0 = un.enc, un.states[0]
    sol = un.solver
    ranges = [enc.in_range(x, v.type.lo, v.type.hi) for v, x in zip(system.vars, s0, strict=True)]
    sol.add(*ranges)
    env0 = dict(zip(system.vars, s0, strict=True))
    memo: dict[int, Term] = {}
    sol.add(*[enc.boolean(p.holds, env0, memo) for p in system.properties])
    lits: dict[tuple[int, int, int], Term] = {}

    def lit(k: int, i: int, x: int) -> Term:
        t = lits.get((k, i, x))
        if t is None:
            t = lits[(k, i, x)] = enc.eq(un.states[k][i], enc.num(x))
        return t

    bad = un.lit(z3.Not(un.good(1)))  # a property fails at s1, or the step left a range
    lemmas: list[Cube] = []
    todo: list[int] = []  # lemmas whose consecution is not yet checked
    out = Strengthening(False, lemmas, 0, 0, 0.0)

    def finish(proved: bool, reason: str = "") -> Strengthening:
        out.proved, out.reason, out.seconds = proved, reason, time.monotonic() - t0
        return out

    while True:
        if todo:
            j = todo[-1]
            assumptions = [lit(1, i, x) for i, x in lemmas[j]]
        else:
            j, assumptions = -1, [bad]
        if not un.set_timeout(deadline):
            return finish(False, f"timeout after {timeout:g} s")
        r = un.check(*assumptions)
        out.queries += 1
        if r == z3.unsat:
            if j < 0:
                break
            todo.pop()
            continue
        if r != z3.sat:
            why = sol.reason_unknown()
            return finish(False, f"timeout after {timeout:g} s" if deadline and time.monotonic() >= deadline
                          else f"solver gave up: {why}")
        m = sol.model()
        s = tuple(enc.value(m.eval(x, model_completion=True)) for x in s0)
        if s in reach.members:
            # A reachable state with a bad successor: explicit would have
            # reported it, so an engine is wrong.  No proof.
            return finish(False, f"reachable state {system.state_dict(s)} has a successor outside J: engines disagree")
        cube = reach.block(s)
        out.ctis += 1
        sol.add(z3.Or([z3.Not(lit(0, i, x)) for i, x in cube]))
        lemmas.append(cube)
        todo.append(len(lemmas) - 1)
    why = _check_invariant(system, lemmas, encoding, deadline)
    return finish(why is None, why or "")


def _check_invariant(system: System, lemmas: list[Cube], encoding: str, deadline: float | None) -> str | None:
    """Re-check on a fresh solver that J = properties and `lemmas` holds
    initially, holds after every step from J, and no step from J leaves a
    range; None if so, else what fails."""
    un = _Unrolling(system, encoding, anchored=False, simple_path=False)
    un.extend()
    enc = un.enc
    if not un.set_timeout(deadline):
        return "timeout before the re-check"

    def j_at(k: int) -> Term:
        st = un.states[k]
        env = dict(zip(system.vars, st, strict=True))
        memo: dict[int, Term] = {}
        parts = [enc.boolean(p.holds, env, memo) for p in system.properties]
        parts += [z3.Or([z3.Not(enc.eq(st[i], enc.num(x))) for i, x in c]) for c in lemmas]
        return z3.And(parts)

    init = dict(zip(system.vars, system.initial_state(), strict=True))
    if not all(evaluate(p.holds, init) for p in system.properties):
        return "a property fails in the initial state"
    for c in lemmas:
        if all(init[system.vars[i]] == x for i, x in c):
            return "a lemma excludes the initial state"
    s0 = un.states[0]
    un.solver.add(*[enc.in_range(x, v.type.lo, v.type.hi) for v, x in zip(system.vars, s0, strict=True)])
    un.solver.add(j_at(0))
    r = un.solver.check(un.lit(z3.Or(z3.Not(j_at(1)), z3.Not(un.good(1)))))
    if r == z3.unsat:
        return None
    if r == z3.sat:
        return "J is not inductive (re-check)"
    return f"re-check gave up: {un.solver.reason_unknown()}"

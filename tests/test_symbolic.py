"""The Z3 engines (bmc, k-induction) against the explicit engine: both read
the same IR, so any disagreement on a verdict or on the length of a shortest
counterexample is a bug in one of them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rseqcheck.checker.engines.explicit import SearchResult, bfs, replay
from rseqcheck.checker.engines.lemmas import Reach, reachable
from rseqcheck.checker.engines.symbolic import bmc, kinduction, strengthen
from rseqcheck.checker.replay import replay_file
from rseqcheck.checker.verify import check_spec, save_counterexample
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import (
    FALSE,
    Action,
    Add,
    And,
    Bool,
    Const,
    Enum,
    Eq,
    Expr,
    Ge,
    Gt,
    IntRange,
    Ite,
    Le,
    Lt,
    ModelError,
    Ne,
    Not,
    Or,
    Property,
    Ref,
    Sub,
    System,
    Var,
    assign,
    evaluate,
)
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").rglob("*.toml"))

# bmc unrolls a spec's holds case to this depth only (the full depths take
# seconds to minutes each; see checker/engines/symbolic.py's measurements).
SPEC_HOLDS_DEPTH = 8


def check_counterexample(system: System, res: SearchResult) -> None:
    """The trace is a real execution from the initial state whose last state
    violates `res.prop`."""
    assert res.verdict == "violation"
    assert res.trace[0] == (-1, system.initial_state())
    again = replay(system, [a for a, _ in res.trace[1:]])
    assert again is not None, "a step of the symbolic trace is not enabled"
    assert [s for _, s in again] == [s for _, s in res.trace]
    env = dict(zip(system.vars, res.trace[-1][1], strict=True))
    prop = next(p for p in system.properties if p.name == res.prop)
    assert not evaluate(prop.holds, env)
    for _, s in res.trace[:-1]:
        env = dict(zip(system.vars, s, strict=True))
        assert all(evaluate(p.holds, env) for p in system.properties), "not a shortest counterexample"


def agree(system: System, depth: int, encoding: str = "bv") -> SearchResult:
    exp = bfs(system, depth, por=False)
    sym = bmc(system, depth, encoding=encoding, coverage="all")
    assert sym.engine == "bmc"
    assert sym.verdict == exp.verdict
    if exp.verdict == "violation":
        assert len(sym.trace) == len(exp.trace)
        check_counterexample(system, sym)
    else:
        assert not sym.exhausted or exp.exhausted
        # Both engines' coverage: actions enabled at a state at depth < bound.
        assert sym.fired == exp.fired
    return sym


# ------------------------------------------------------------ hand-built systems


def counter(hi: int = 5, bad: int | None = 4) -> System:
    x = Var("x", IntRange(0, hi))
    inc = Action("x++", Lt(x, hi), assign((x, Add(x, 1))), "P", "P")
    holds = Ne(x, bad) if bad is not None else Le(x, hi)
    return System([x], {x: 0}, [inc], [Property("p", holds, "")])


@pytest.mark.parametrize("encoding", ["bv", "int"])
def test_counter_shortest_violation(encoding):
    s = counter()
    for depth in range(6):
        r = agree(s, depth, encoding)
        assert r.verdict == ("violation" if depth >= 4 else "holds")
    r = bmc(s, 10, encoding=encoding)
    assert [a for a, _ in r.trace] == [-1, 0, 0, 0, 0]
    assert [st for _, st in r.trace] == [(0,), (1,), (2,), (3,), (4,)]
    assert r.prop == "p"


def test_counter_ends_exhausted_and_induction_proves_it():
    s = counter(bad=None)
    r = agree(s, 10)
    assert r.exhausted and r.verdict == "holds"
    assert not bmc(s, 5).exhausted  # an execution of 5 steps exists
    k = kinduction(s, 10, lemma_states=0)
    assert (k.verdict, k.exhausted, k.engine) == ("holds", True, "induction")
    assert k.reason.startswith("proved by k-induction, k=")


def test_two_processes_interleave():
    a, b = Var("a", Bool(), proc="P"), Var("b", Bool(), proc="Q")
    acts = [
        Action("P flips a", Eq(a, 0), assign((a, 1)), "P", "P"),
        Action("Q flips b", Eq(b, 0), assign((b, 1)), "Q", "Q"),
        Action("P resets", Eq(a, 1), assign((a, 0)), "P", "P"),
    ]
    s = System([a, b], {a: 0, b: 0}, acts, [Property("not-both", Not(And(a, b)), "")])
    r = agree(s, 5)
    assert len(r.trace) == 3
    assert {x for x, _ in r.trace[1:]} == {0, 1}


def test_terminal_state_has_no_successor():
    x = Var("x", IntRange(0, 3))
    s = System(
        [x],
        {x: 0},
        [Action("x++", Lt(x, 3), assign((x, Add(x, 1))), "P", "P")],
        [Property("p", Ne(x, 3), "")],
        terminal=Eq(x, 2),
    )
    r = agree(s, 6)
    assert r.verdict == "holds" and r.exhausted
    assert "no execution" in r.reason
    k = kinduction(s, 6)
    assert (k.verdict, k.exhausted) == ("holds", True)
    # Without the terminal condition, x reaches 3.
    s.terminal = FALSE
    assert agree(s, 6).verdict == "violation"


def test_violation_in_initial_state():
    x = Var("x", IntRange(0, 1))
    s = System([x], {x: 1}, [], [Property("zero", Eq(x, 0), "")])
    r = agree(s, 3)
    assert r.trace == [(-1, (1,))] and r.prop == "zero"
    assert kinduction(s, 3).trace == [(-1, (1,))]


def test_first_violated_property_is_named():
    x = Var("x", IntRange(0, 2))
    s = System(
        [x],
        {x: 0},
        [Action("x++", Lt(x, 2), assign((x, Add(x, 1))), "P", "P")],
        [Property("small", Lt(x, 2), ""), Property("ne2", Ne(x, 2), "")],
    )
    assert bmc(s, 5).prop == "small"


def test_negative_ranges_enums_and_every_operator():
    # Signed bit-vectors of different widths meet in + - ite and comparisons.
    t = Var("t", IntRange(-3, 2))
    c = Var("c", Enum("RED", "GREEN", "BLUE"))
    f = Var("f", Bool())
    acts = [
        Action("down", And(Gt(t, -3), Or(Eq(c, 0), Ne(f, 0))), assign((t, Sub(t, 1)), (f, Not(f))), "P", "P"),
        Action("next colour", Le(c, 1), assign((c, Add(c, 1))), "Q", "Q"),
        Action("jump", And(Ge(Sub(t, c), -4), Not(f)), assign((t, Ite(Lt(t, 0), Add(t, 2), Const(-3)))), "P", "P"),
    ]
    props = [Property("not-both", Not(And(Eq(t, -3), Eq(c, 2), f)), "")]
    s = System([t, c, f], {t: 0, c: 0, f: 0}, acts, props)
    for enc in ("bv", "int"):
        r = agree(s, 12, enc)
    assert r.verdict == "violation"


def test_range_error_is_a_model_error_in_both_engines():
    x = Var("x", IntRange(0, 2))
    s = System(
        [x],
        {x: 0},
        [Action("x++ unchecked", Const(1), assign((x, Add(x, 1))), "P", "P")],
        [Property("p", Const(1), "")],
    )
    with pytest.raises(ModelError, match="outside its range"):
        bfs(s, 5, por=False)
    for enc in ("bv", "int"):
        with pytest.raises(ModelError, match=r"assigns x = 3, outside its range 0\.\.2"):
            bmc(s, 5, encoding=enc)
    assert bmc(s, 2).verdict == "holds"  # the bad step is beyond the bound


def test_no_actions_and_depth_zero():
    x = Var("x", IntRange(0, 1))
    s = System([x], {x: 0}, [], [Property("p", Eq(x, 0), "")])
    r = agree(s, 4)
    assert r.exhausted
    assert bmc(counter(), 0).verdict == "holds"


def test_kinduction_needs_k_above_one():
    # x cycles 0..3 in a range of 0..7; 4 -> 5 is a transition, but nothing
    # reaches 4, so 1-induction fails and 2-induction closes.
    x = Var("x", IntRange(0, 7))
    cyc = Action("x = (x+1) mod 4", Le(x, 3), assign((x, Ite(Eq(x, 3), 0, Add(x, 1)))), "P", "P")
    up = Action("x++ above 3", And(Gt(x, 3), Lt(x, 7)), assign((x, Add(x, 1))), "P", "P")
    s = System([x], {x: 0}, [cyc, up], [Property("p", Ne(x, 5), "")])
    r = kinduction(s, 10, lemma_states=0)
    assert (r.verdict, r.exhausted, r.reason) == ("holds", True, "proved by k-induction, k=2")


def test_kinduction_counts_a_range_error_as_bad():
    # The same with the wrap-around unguarded: from the unreachable x = 7 an
    # update leaves the range, and that step must be refuted too (k=3).
    x = Var("x", IntRange(0, 7))
    cyc = Action("x = (x+1) mod 4", Const(1), assign((x, Ite(Eq(x, 3), 0, Add(x, 1)))), "P", "P")
    s = System([x], {x: 0}, [cyc], [Property("p", Ne(x, 5), "")])
    r = kinduction(s, 10, lemma_states=0)
    assert (r.verdict, r.exhausted, r.reason) == ("holds", True, "proved by k-induction, k=3")


def chain_system() -> System:
    # Reachable: the cycle 0..5.  Unreachable: a chain 6..20 ending in a bad
    # state, so the step case stays satisfiable up to k=14.
    x = Var("x", IntRange(0, 20))
    cyc = Action("cycle", Lt(x, 6), assign((x, Ite(Eq(x, 5), 0, Add(x, 1)))), "P", "P")
    chain = Action("chain", And(Ge(x, 6), Lt(x, 20)), assign((x, Add(x, 1))), "P", "P")
    return System([x], {x: 0}, [cyc, chain], [Property("p", Ne(x, 20), "")])


def test_kinduction_may_not_close():
    # Plain k-induction: only the absence of a loop-free path of length 6
    # from the initial state proves it.
    s = chain_system()
    r = kinduction(s, 4, lemma_states=0)
    assert (r.verdict, r.exhausted) == ("holds", False)
    assert r.reason == "induction did not close up to k=4"
    r = kinduction(s, 10, lemma_states=0)
    assert (r.verdict, r.exhausted) == ("holds", True)
    assert r.reason == "proved by k-induction, k=6 (no loop-free path of length 6)"


def test_lemmas_from_reachable_states_close_induction_at_k1():
    # Each counterexample to induction is a chain state x = v, which the
    # reachable states 0..5 turn into the lemma "x != v": from 19 (the bad
    # state's predecessor) down to 6, the properties become 1-inductive.
    s = chain_system()
    reach = reachable(s, 100)
    assert reach is not None and (reach.n, reach.diameter) == (6, 5)
    st = strengthen(s, reach)
    assert st.proved, st.reason
    assert sorted(st.lemmas) == [((0, v),) for v in range(6, 20)]
    assert st.ctis == 14
    r = kinduction(s, 4)
    assert (r.verdict, r.exhausted, r.bound) == ("holds", True, 4)
    assert r.reason == "proved by k-induction, k=1, with 14 lemmas suggested by the 6 reachable states"


def test_strengthening_with_a_wrong_oracle_proves_nothing():
    # Were the explicit engine to miss reachable states (here 3..5), the
    # lemmas it suggests would exclude some: Z3 must then fail to close
    # the invariant (a lemma excludes a state it must keep), never prove.
    x = Var("x", IntRange(0, 7))
    s = System([x], {x: 0}, [Action("x++", Lt(x, 6), assign((x, Add(x, 1))), "P", "P")],
               [Property("p", Ne(x, 6), "")])
    assert bfs(s, 10, por=False).verdict == "violation"
    st = strengthen(s, Reach(s, [(0,), (1,), (2,)], 2))
    assert not st.proved
    assert "engines disagree" in st.reason


def test_reach_blocks_with_the_rarest_values():
    a, b, c = (Var(n, IntRange(0, 2)) for n in "abc")
    s = System([a, b, c], {a: 0, b: 0, c: 0}, [], [])
    reach = Reach(s, [(0, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1)], 1)
    assert reach.block((1, 0, 0)) == ((0, 1), (1, 0))  # no a=1 with b=0
    assert reach.block((2, 0, 0)) == ((0, 2),)
    assert reach.matches(((0, 0),)).bit_count() == 3
    with pytest.raises(AssertionError):
        reach.block((0, 1, 0))
    assert reachable(counter(), 100) is None  # a violation: nothing to prove


def test_budget_reports_the_depth_reached():
    s = chain_system()
    slow = kinduction(s, 10, lemma_states=0, budget=1e-9)
    assert slow.verdict == "unknown"  # not even depth 0 within the budget
    x = Var("x", IntRange(0, 63))
    big = System([x], {x: 0}, [Action("x++", Const(1), assign((x, Ite(Lt(x, 63), Add(x, 1), 0))), "P", "P")],
                 [Property("p", Ne(x, 64), "")])
    seen: list[int] = []
    r = bmc(big, 63, budget=0.3, progress=lambda st: seen.append(st.depth) or time.sleep(0.05))
    assert r.verdict == "holds" and not r.exhausted
    assert 0 <= r.bound < 63 and r.bound == seen[-1]
    assert r.reason == f"stopped at depth {r.bound + 1} within its 0.3 s budget"
    r = kinduction(chain_system(), 20, lemma_states=0, budget=0.3,
                   progress=lambda st: time.sleep(0.05))
    assert r.verdict == "holds" and not r.exhausted and r.bound < 6
    assert r.reason.startswith(f"induction could not close at k={r.bound}")


def test_kinduction_reports_violation_like_bmc():
    s = counter()
    r = kinduction(s, 10)
    assert r.verdict == "violation" and len(r.trace) == 5
    check_counterexample(s, r)


def test_timeout_gives_unknown():
    r = bmc(counter(60, bad=None), 60, timeout=1e-6)
    assert r.verdict == "unknown" and "timeout" in r.reason


def test_progress_and_argument_checks():
    seen: list[int] = []
    bmc(counter(bad=None), 4, progress=lambda st: seen.append(st.depth))
    assert seen == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="encoding"):
        bmc(counter(), 3, encoding="real")
    with pytest.raises(ValueError, match="coverage"):
        bmc(counter(), 3, coverage="some")


def test_coverage_modes():
    x = Var("x", IntRange(0, 3))
    acts = [
        Action("a", Eq(x, 0), assign((x, 1)), "P", "P", tags=frozenset({"t"})),
        Action("b", Eq(x, 1), assign((x, 2)), "P", "P", tags=frozenset({"t"})),
        Action("never", Eq(x, 3), assign((x, 0)), "P", "P", tags=frozenset({"u"})),
    ]
    s = System(
        [x], {x: 0}, acts, [Property("p", Const(1), "", trigger_tag="t"), Property("q", Const(1), "", trigger_tag="u")]
    )
    assert bmc(s, 4, coverage="all").fired == {0, 1}
    assert bmc(s, 4, coverage="triggers").fired & {0, 1}
    assert bmc(s, 4, coverage="none").fired == set()
    assert bmc(s, 1, coverage="all").fired == {0}


def test_and_or_as_values_are_0_or_1():
    # regression: checker/engines/compile.py once returned an operand, as Python does
    x, z, y = Var("x", Bool()), Var("z", IntRange(0, 3)), Var("y", IntRange(0, 3))
    s = System(
        [x, z, y],
        {x: 1, z: 2, y: 0},
        [Action("y = x and z", Eq(y, 0), assign((y, And(x, z))), "P", "P")],
        [Property("y-not-2", Ne(y, 2), "")],
    )
    assert evaluate(And(x, z), {x: 1, z: 2}) == 1
    assert bmc(s, 3).verdict == "holds"
    assert bfs(s, 3, por=False).verdict == "holds"
    assert bfs(s, 3, por=True).verdict == "holds"


# --------------------------------------------------------------------- the specs


@pytest.mark.parametrize("path", SPECS)
def test_spec_bmc_agrees_with_explicit(path, tmp_path):
    spec = load_spec(ROOT / path)
    system = build_system(spec)
    exp = bfs(system, spec.depth, por=False)
    if exp.verdict == "violation":
        # bmc from the spec's own bound, as `verify --engine bmc` runs it:
        # it must stop at the shortest length, and its saved trace must
        # replay against the semantics (checker/replay.py, as `rseqcheck
        # replay` does) and step by step in the explicit successor function.
        out = check_spec(str(ROOT / path), engine="bmc")
        sym = out.result
        assert sym is not None and sym.verdict == "violation", out.describe()
        assert len(sym.trace) == len(exp.trace)
        check_counterexample(system, sym)
        files = save_counterexample(out, tmp_path)
        report = replay_file(next(f for f in files if f.endswith(".json")), ROOT / path)
        assert report.ok, report.message
    else:
        depth = min(spec.depth, SPEC_HOLDS_DEPTH)
        agree(system, depth)


# Proofs that take over a minute each here (the per-CPU data specs: 190k to
# 310k reachable states, lemmas to match): run with -m slow.
SLOW_PROOFS = {"specs/librseq/percpu_counter.toml", "specs/librseq/percpu_memcpy_push.toml", "specs/librseq/percpu_list_push.toml",
               "specs/librseq/percpu_cmpxchg.toml"}
HOLDS_SPECS = [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PROOFS else p
               for p in SPECS if load_spec(ROOT / p).expect == "holds"]


@pytest.mark.parametrize("path", HOLDS_SPECS)
def test_spec_holds_unbounded_by_induction(path):
    # Every bundled "holds" spec is proved for every depth: 1-induction
    # with lemmas suggested by the explicit reachable states, checked by Z3.
    system = build_system(load_spec(ROOT / path))
    r = kinduction(system, 1)
    assert (r.verdict, r.exhausted) == ("holds", True), r.reason
    assert r.reason.startswith("proved by k-induction, k=1, with ")


def test_vyukov_without_flags_on_618_is_proved_unbounded():
    # The "done when": rseq protects the descriptor, no flags,
    # cleared on signal delivery.  Plain k-induction does not close (its
    # first counterexample to induction is unreachable, see below); the
    # lemmas do, and the invariant they make is re-checked from scratch.
    system = build_system(load_spec(ROOT / "specs/seed000/rseq_clear_linux618.toml"))
    reach = reachable(system, 100_000)
    assert reach is not None and (reach.n, reach.diameter) == (10828, 53)
    st = strengthen(system, reach)
    assert st.proved, st.reason
    assert 200 < len(st.lemmas) < 2000 and st.ctis == len(st.lemmas)
    plain = kinduction(system, 3, lemma_states=0)
    assert (plain.verdict, plain.exhausted, plain.reason) == ("holds", False, "induction did not close up to k=3")


# ------------------------------------------------------------ generated systems


@st.composite
def systems(draw: st.DrawFn) -> System:
    """Up to 4 small variables and 5 actions; guards and updates are random
    expressions over every operator, kept in range by a guard or an `ite`;
    properties are mostly "this combination of values is never reached", so
    that violations are found at various depths rather than at once."""
    vs: list[Var] = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["bool", "range", "range", "enum"]))
        if kind == "bool":
            t = Bool()
        elif kind == "enum":
            t = Enum(*(f"E{j}" for j in range(draw(st.integers(2, 4)))))
        else:
            lo = draw(st.integers(-2, 1))
            t = IntRange(lo, lo + draw(st.integers(1, 5)))
        vs.append(Var(f"v{i}", t, proc=draw(st.sampled_from(["P", "Q"]))))

    def val(v: Var) -> int:
        return draw(st.integers(v.type.lo, v.type.hi))

    # Choice 0 is what Hypothesis draws most: make it one that moves.
    def num(depth: int) -> Expr:
        choice = draw(st.integers(0, 7 if depth > 0 else 3))
        if choice == 0:
            return Add(Ref(draw(st.sampled_from(vs))), draw(st.integers(1, 2)))
        if choice == 1:
            return Sub(Ref(draw(st.sampled_from(vs))), draw(st.integers(1, 2)))
        if choice == 2:
            return Ref(draw(st.sampled_from(vs)))
        if choice == 3:
            return Const(draw(st.integers(-2, 3)))
        if choice == 4:
            return Add(num(depth - 1), num(depth - 1))
        if choice == 5:
            return Sub(num(depth - 1), num(depth - 1))
        if choice == 6:
            return Ite(cond(depth - 1), num(depth - 1), num(depth - 1))
        return cond(depth - 1)  # a comparison used as a 0/1 number

    def cond(depth: int) -> Expr:
        # and/or/not only over 0/1 operands: see test_and_or_as_values_are_0_or_1.
        choice = draw(st.integers(0, 5 if depth > 0 else 2))
        if choice == 0:
            v = draw(st.sampled_from(vs))
            op = draw(st.sampled_from([Ne, Eq, Lt, Le, Gt, Ge]))
            return op(v, val(v))
        if choice == 1:
            op = draw(st.sampled_from([Ne, Eq, Lt, Le, Gt, Ge]))
            return op(num(0), num(min(depth, 1)))
        if choice == 2:
            return Const(draw(st.integers(0, 1)))
        if choice == 3:
            return Not(cond(depth - 1))
        if choice == 4:
            return And(cond(depth - 1), cond(depth - 1))
        return Or(cond(depth - 1), cond(depth - 1))

    acts = []
    for v in vs:  # counters make deep state spaces
        if draw(st.integers(0, 2)):
            wrap = v if draw(st.integers(0, 2)) == 2 else v.type.lo
            tick = cond(0) if draw(st.booleans()) else Const(1)
            acts.append(
                Action(f"{v.name}++", tick, assign((v, Ite(Lt(v, v.type.hi), Add(v, 1), wrap))), v.proc or "P", "P")
            )
    for i in range(draw(st.integers(1, 4))):
        g = draw(st.integers(0, 3))
        guard = cond(g - 1) if g else Const(1)
        updates = []
        for v in draw(st.lists(st.sampled_from(vs), min_size=1, max_size=2, unique=True)):
            if draw(st.booleans()):
                e = draw(st.sampled_from([Add, Sub]))(v, draw(st.sampled_from([1, 1, 2])))
            else:
                e = num(draw(st.integers(0, 2)))
            in_range = And(Ge(e, v.type.lo), Le(e, v.type.hi))
            fit = draw(st.integers(0, 2))
            if fit == 0:
                e = Ite(in_range, e, v.type.lo)  # wraps around
            elif fit == 1:
                e = Ite(in_range, e, v)  # keeps the old value
            else:
                guard = And(guard, in_range)  # disabled where e leaves the range
            updates.append((v, e))
        acts.append(Action(f"a{i}", guard, assign(*updates), draw(st.sampled_from(["P", "Q"])), "P"))
    tv = draw(st.sampled_from(vs))
    terminal = draw(st.sampled_from([Eq, Ge, Le]))(tv, val(tv)) if draw(st.integers(0, 3)) == 3 else FALSE
    init = {v: val(v) for v in vs}
    # Targets for "never reached" properties: mostly states a random walk
    # reaches, so violations come at various depths.
    env = dict(init)
    for _ in range(draw(st.integers(0, 8))):
        enabled = [a for a in acts if evaluate(a.guard, env)]
        if not enabled or evaluate(terminal, env):
            break
        a = draw(st.sampled_from(enabled))
        env.update({v: evaluate(e, env) for v, e in a.updates})
    props = []
    for i in range(draw(st.integers(1, 2))):
        kind = draw(st.integers(0, 3))
        if kind == 3:
            props.append(Property(f"p{i}", cond(2), ""))
        else:
            target = draw(st.lists(st.sampled_from(vs), min_size=1, max_size=2, unique=True))
            goal = {v: env[v] if kind < 2 else val(v) for v in target}
            props.append(Property(f"p{i}", Not(And(*(Eq(v, x) for v, x in goal.items()))), ""))
    init = {v: val(v) for v in vs}
    # A violation in the initial state is tested above; here it would crowd
    # out the deeper ones.
    assume(all(evaluate(p.holds, init) for p in props))
    s = System(vs, init, acts, props, terminal=terminal)
    s.validate()
    return s


def random_agreement(system: System, depth: int, encoding: str) -> None:
    agree(system, depth, encoding)
    # k-induction: a proof must agree with an exhaustive explicit search,
    # a violation must be a shortest one.
    # Both with lemmas from the reachable states and plain.
    full = bfs(system, 200, por=False)
    assert full.exhausted or full.verdict == "violation"
    for lemma_states in (1000, 0):
        ind = kinduction(system, 12, encoding=encoding, lemma_states=lemma_states)
        if ind.verdict == "violation":
            assert full.verdict == "violation" and len(ind.trace) == len(full.trace)
            check_counterexample(system, ind)
        elif ind.exhausted:
            assert full.verdict == "holds"
        else:
            assert full.verdict == "holds" or len(full.trace) - 1 > 12


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems(), st.integers(0, 8), st.sampled_from(["bv", "bv", "int"]))
def test_random_systems_agree(system, depth, encoding):
    random_agreement(system, depth, encoding)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems(), st.integers(0, 12), st.sampled_from(["bv", "int"]))
def test_random_systems_agree_many(system, depth, encoding):
    random_agreement(system, depth, encoding)

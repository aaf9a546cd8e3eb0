"""The [outcomes] condition answered by bmc or induction.

A final state is one with no step: terminal (a kill) or no action enabled;
its outcome is what `checker.outcomes.projection_for` projects.  The
condition C becomes one invariant of the same system:

  forall C:  final -> C        a violation is a final state breaking C: No
  exists C:  not (final and C) a violation is a final state satisfying C: Ok

so a counterexample of either is a shortest run to the outcome that
decides.  No violation is an answer only when the engine covered every
reachable state (bmc: no execution is `bound` steps long; induction: a
proof); otherwise there is none ("unknown", exit 3).

`end == NAME` / `end != NAME` (exit, stuck, a signal) is translated to a
predicate; any other use of `end` (arithmetic on it) is not, and the
explicit enumeration answers instead.
"""

from __future__ import annotations

import time
from dataclasses import replace

from rseqcheck.checker.engines import symbolic
from rseqcheck.checker.engines.explicit import SearchResult
from rseqcheck.checker.outcomes import ENDS, Projection, outcome_spec, projection_for, projector, validate_condition
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import (
    FALSE,
    Add,
    And,
    Const,
    Eq,
    Expr,
    Ge,
    Gt,
    Ite,
    Le,
    Lt,
    Ne,
    Not,
    Or,
    Property,
    Ref,
    Sub,
    System,
)
from rseqcheck.model.program import AExpr
from rseqcheck.model.signals import SIGNUM
from rseqcheck.model.spec import Spec


class Unsupported(Exception):
    """The condition uses `end` other than as `end == NAME` / `end != NAME`."""


_CMP = {"==": Eq, "!=": Ne, "<": Lt, "<=": Le, ">": Gt, ">=": Ge}


class _Condition:
    """An [outcomes] condition as an IR predicate over a final state."""

    def __init__(self, system: System, proj: Projection):
        self.vars = {v.name: v for v in system.vars}
        self.proj = proj

    def halted(self) -> Expr:
        return Or(*[Ne(Ref(self.vars[n]), 0) for n, _ in self.proj.halts])

    def end_is(self, name: str) -> Expr:
        if name in ENDS:
            done = And(*[Eq(Ref(self.vars[n]), v) for n, v in self.proj.done])
            return And(Not(self.halted()), done if name == "exit" else Not(done))
        killed = self.vars[self.proj.halts[0][0]]  # (killed, "killed by") comes first
        names = killed.type.names or ()
        return Eq(Ref(killed), names.index(name)) if name in names else FALSE

    def boolean(self, e: AExpr) -> Expr:
        if e.op in ("==", "!="):
            a, b = e.args
            if b.op == "var" and b.args[0] == "end":
                a, b = b, a
            if a.op == "var" and a.args[0] == "end":
                if b.op != "var" or b.args[0] not in (*ENDS, *SIGNUM):
                    raise Unsupported
                p = self.end_is(b.args[0])
                return p if e.op == "==" else Not(p)
        if e.op in _CMP:
            return _CMP[e.op](self.number(e.args[0]), self.number(e.args[1]))
        if e.op == "&&":
            return And(self.boolean(e.args[0]), self.boolean(e.args[1]))
        if e.op == "||":
            return Or(self.boolean(e.args[0]), self.boolean(e.args[1]))
        if e.op == "!":
            return Not(self.boolean(e.args[0]))
        return Ne(self.number(e), 0)

    def number(self, e: AExpr) -> Expr:
        if e.op == "int":
            return Const(e.args[0])
        if e.op == "var":
            if e.args[0] not in self.vars or e.args[0] in ("end", *ENDS, *SIGNUM):
                raise Unsupported
            return Ref(self.vars[e.args[0]])
        if e.op == "+":
            return Add(self.number(e.args[0]), self.number(e.args[1]))
        if e.op == "-":
            return Sub(self.number(e.args[0]), self.number(e.args[1]))
        return Ite(self.boolean(e), 1, 0)


def final(system: System) -> Expr:
    """No step from here: terminal, or no action enabled."""
    return Or(system.terminal, And(*[Not(a.guard) for a in system.actions]))


def outcome_system(spec: Spec, system: System | None = None) -> tuple[System, Projection]:
    """The system whose final states are the outcomes (the monitor-free one
    `rseqcheck outcomes` explores) with the condition as its one property."""
    if system is None or len(system.meta["builder"].bad_names) != 1:
        system = build_system(outcome_spec(spec))
    proj = projection_for(system)
    validate_condition(spec, set(proj.observe))
    oc = spec.outcomes
    assert oc is not None
    c = _Condition(system, proj).boolean(oc.expr)
    f = final(system)
    holds = Or(Not(f), c) if oc.kind == "forall" else Not(And(f, c))
    return replace(system, properties=[Property("[outcomes]", holds, "the [outcomes] condition")]), proj


# Seconds the symbolic engine may spend on [outcomes] before the explicit
# enumeration answers instead (it does in seconds what bmc may take minutes
# to exhaust).
BUDGET = 5.0


def verify_outcomes_smt(
    spec: Spec, system: System | None, engine: str, bound: int, timeout: float | None = None,
    budget: float | None = BUDGET,
) -> tuple[bool | None, str]:
    """As `checker.outcomes.verify_outcomes`, by `engine` (bmc or induction)
    up to `bound` steps: (answer or None, one line).  When the engine
    gives no answer (the bound or its `budget` reached first, or a use of
    `end` it cannot translate), the explicit enumeration answers, and the
    line says why."""
    if spec.outcomes is None:
        return None, ""
    t0 = time.monotonic()
    try:
        held, msg, r = smt_answer(spec, system, engine, bound, timeout, budget)
    except Unsupported:
        return _explicit(spec, system, timeout, f"{engine} cannot translate this use of end")
    if held is not None or r.reason == "interrupted" or r.reason.startswith("timeout"):
        return held, msg
    left = None if timeout is None else max(timeout - (time.monotonic() - t0), 1e-3)
    why = f"{engine} decided nothing within {r.bound} steps" if r.verdict == "holds" else f"{engine}: {r.reason}"
    return _explicit(spec, system, left, why)


def smt_answer(
    spec: Spec, system: System | None, engine: str, bound: int, timeout: float | None = None,
    budget: float | None = BUDGET,
) -> tuple[bool | None, str, SearchResult]:
    """`engine`'s own answer to the [outcomes] condition (None: none), its
    line and the search; raises Unsupported for arithmetic on `end`."""
    osys, proj = outcome_system(spec, system)
    run = symbolic.bmc if engine == "bmc" else symbolic.kinduction
    r: SearchResult = run(osys, bound, timeout=timeout, coverage="none", budget=budget)
    return (*_answer(spec, engine, proj, osys, r), r)


def _explicit(spec: Spec, system: System | None, timeout: float | None, why: str) -> tuple[bool | None, str]:
    from rseqcheck.checker.outcomes import verify_outcomes

    held, msg = verify_outcomes(spec, system, timeout=timeout)
    return held, f"{msg} (by the full explicit enumeration: {why})"


def _answer(spec: Spec, engine: str, proj: Projection, osys: System, r: SearchResult) -> tuple[bool | None, str]:
    oc = spec.outcomes
    assert oc is not None
    head = f"[outcomes] {oc.kind} ({oc.text})"
    exp = " (expected: fails)" if oc.expect == "fails" else ""
    if r.verdict == "violation":
        o = projector(osys, proj)(r.trace[-1][1])
        steps = len(r.trace) - 1
        if oc.kind == "forall":
            return False, f"{head} fails: {engine} reaches the outcome [{o}] in {steps} steps{exp}"
        return True, f"{head} holds: {engine} reaches the outcome [{o}] in {steps} steps{exp}"
    if r.verdict == "holds" and r.exhausted:
        why = r.reason or f"no execution is {r.bound} steps long"
        what = "no final state breaks it" if oc.kind == "forall" else "no final state satisfies it"
        return oc.kind == "forall", f"{head} {'holds' if oc.kind == 'forall' else 'fails'}: {what} " \
            f"({engine}: {why}){exp}"
    return None, f"{head}: unknown, {engine}: {r.reason or f'nothing decided within {r.bound} steps'}"

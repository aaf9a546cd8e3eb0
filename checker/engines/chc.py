"""Unbounded proofs by Z3's Spacer (PDR/IC3 over constrained Horn clauses).

The IR becomes Horn clauses over one predicate Inv of the state variables:

    Inv(init)
    Inv(s) and T(s, s') and no update left its range -> Inv(s')
    Inv(s) and T(s, s') and an update left its range -> Bad
    Inv(s) and not property(s)                       -> Bad

and Spacer is asked whether Bad is derivable.  "unsat" (not derivable) is a
proof for every depth, with Inv's interpretation as the inductive
invariant; "sat" means a violation exists (found by the other engines with
its shortest trace).  T is checker.symbolic's transition relation (or, with
`split`, one clause per action).  Not wired into `verify`: on the bundled
specs it proves the small ones and times out on the larger ones, where
strengthened induction (checker.symbolic.strengthen) succeeds; see
benchmarks/README.md.  Like every engine, this reads only the IR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import z3
from rseqcheck.checker.engines.symbolic import _Encoder, _Unrolling
from rseqcheck.model.ir import System


@dataclass
class ChcResult:
    verdict: str  # "holds" (proved), "violation" (Bad derivable) or "unknown"
    seconds: float
    reason: str = ""
    invariant: str = ""  # Inv's interpretation when proved


def spacer(system: System, timeout: float | None = None, *, encoding: str = "bv", split: bool = False) -> ChcResult:
    """`split`: one clause per action, else (default: faster on the specs
    tried) one clause with checker.symbolic's transition relation, the
    action a one-hot choice."""
    if not split:
        return _spacer_one(system, timeout, encoding)
    t0 = time.monotonic()
    enc = _Encoder(system, encoding)
    cur = [enc.var(f"{v.name}", v) for v in system.vars]
    nxt = [enc.var(f"{v.name}'", v) for v in system.vars]
    fp, inv, bad = _fixedpoint(cur, timeout)
    fp.declare_var(*cur, *nxt)
    env = dict(zip(system.vars, cur, strict=True))
    memo: dict[int, z3.ExprRef] = {}
    ranges = [enc.in_range(x, v.type.lo, v.type.hi) for v, x in zip(system.vars, cur, strict=True)]
    width = {id(x): x.size() for x in cur} if enc.bv else {}

    def fit(x: z3.ExprRef, e: z3.ExprRef, v) -> tuple[z3.ExprRef, z3.ExprRef]:
        """(next value as the variable's sort, "the value is in range")."""
        ok = enc.in_range(e, v.type.lo, v.type.hi)
        if enc.bv and e.size() > width[id(x)]:
            e = z3.Extract(width[id(x)] - 1, 0, e)
        elif enc.bv and e.size() < width[id(x)]:
            e = z3.SignExt(width[id(x)] - e.size(), e)
        return e, ok

    init = [enc.num(val, width.get(id(x), 0)) for val, x in zip(system.initial_state(), cur, strict=True)]
    fp.rule(inv(*init))
    live = [z3.Not(enc.boolean(system.terminal, env, memo)), *ranges]
    idx = system.index()
    for a in system.actions:
        guard = enc.boolean(a.guard, env, memo)
        vals = list(cur)
        oks = []
        for v, e in a.updates:
            i = idx[v]
            vals[i], ok = fit(cur[i], enc.number(e, env, memo), v)
            oks.append(ok)
        body = [inv(*cur), *live, guard]
        fp.rule(inv(*nxt), [*body, *oks, *[n == x for n, x in zip(nxt, vals, strict=True)]])
        if oks:
            fp.rule(bad(), [*body, z3.Not(z3.And(oks))])
    for p in system.properties:
        fp.rule(bad(), [inv(*cur), *ranges, z3.Not(enc.boolean(p.holds, env, memo))])
    return _query(fp, bad, inv, t0, timeout)


def _fixedpoint(cur: list[z3.ExprRef], timeout: float | None) -> tuple[z3.Fixedpoint, z3.FuncDeclRef, z3.FuncDeclRef]:
    """A Spacer context with the relations Inv(state) and Bad()."""
    fp = z3.Fixedpoint()
    fp.set(engine="spacer")
    if timeout:
        fp.set(timeout=max(1, int(timeout * 1000)))
    inv = z3.Function("Inv", *[x.sort() for x in cur], z3.BoolSort())
    bad = z3.Function("Bad", z3.BoolSort())
    fp.register_relation(inv, bad)
    return fp, inv, bad


def _spacer_one(system: System, timeout: float | None, encoding: str) -> ChcResult:
    t0 = time.monotonic()
    un = _Unrolling(system, encoding, anchored=True, simple_path=False)
    enc, cur, nxt = un.enc, un._cur, un._nxt
    fp, inv, bad = _fixedpoint(cur, timeout)
    fp.declare_var(*cur, *nxt, *un._act, un._err)
    sizes = [x.size() if enc.bv else 0 for x in cur]
    fp.rule(inv(*[enc.num(val, w) for val, w in zip(system.initial_state(), sizes, strict=True)]))
    ranges = [enc.in_range(x, v.type.lo, v.type.hi) for v, x in zip(system.vars, cur, strict=True)]
    fp.rule(inv(*nxt), [inv(*cur), *ranges, un._trans, z3.Not(un._err)])
    fp.rule(bad(), [inv(*cur), *ranges, un._trans, un._err])
    env = dict(zip(system.vars, cur, strict=True))
    memo: dict[int, z3.ExprRef] = {}
    for p in system.properties:
        fp.rule(bad(), [inv(*cur), *ranges, z3.Not(enc.boolean(p.holds, env, memo))])
    return _query(fp, bad, inv, t0, timeout)


def _query(fp: z3.Fixedpoint, bad: z3.FuncDeclRef, inv: z3.FuncDeclRef, t0: float,
           timeout: float | None) -> ChcResult:
    try:
        r = fp.query(bad())
    except z3.Z3Exception as e:  # a timeout surfaces as "canceled"
        secs = time.monotonic() - t0
        why = f"timeout after {timeout:g} s" if timeout and secs >= timeout * 0.99 else f"spacer failed: {e}"
        return ChcResult("unknown", secs, reason=why)
    secs = time.monotonic() - t0
    if r == z3.unsat:
        return ChcResult("holds", secs, reason="proved by Spacer (PDR)",
                         invariant=str(fp.get_cover_delta(-1, inv)))
    if r == z3.sat:
        return ChcResult("violation", secs, reason="Spacer derives a bad state")
    why = fp.reason_unknown()
    if timeout and secs >= timeout * 0.99:
        why = f"timeout after {timeout:g} s"
    return ChcResult("unknown", secs, reason=why)

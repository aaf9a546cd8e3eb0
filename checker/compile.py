"""Compile an IR `System` into Python functions over int tuples.

Each action becomes a branch of one generated `succ(s, out)` function; guards
are factored into a decision tree on `var == const` tests so that, for
example, all instructions of one context are behind a single ip dispatch.
Nothing here knows what the variables mean.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from model.ir import Const, Expr, ModelError, Op, Ref, System, Var, conjuncts

_PYOP = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "+": "+", "-": "-"}


def py_expr(e: Expr, idx: dict[Var, int]) -> str:
    if isinstance(e, Const):
        return str(e.value)
    if isinstance(e, Ref):
        return f"v{idx[e.var]}"
    assert isinstance(e, Op), e
    a = [py_expr(x, idx) for x in e.args]
    if e.op == "not":
        return f"(not {a[0]})"
    if e.op == "and":
        return "(" + " and ".join(a) + ")"
    if e.op == "or":
        return "(" + " or ".join(a) + ")"
    if e.op == "ite":
        return f"({a[1]} if {a[0]} else {a[2]})"
    return f"({a[0]} {_PYOP[e.op]} {a[1]})"


def _eq_test(c: Expr) -> tuple[Var, int] | None:
    if isinstance(c, Op) and c.op == "==":
        x, y = c.args
        if isinstance(x, Ref) and isinstance(y, Const):
            return x.var, y.value
        if isinstance(y, Ref) and isinstance(x, Const):
            return y.var, x.value
    return None


def _bounds(e: Expr) -> tuple[int, int] | None:
    """A cheap static range of an expression, to skip needless range checks."""
    if isinstance(e, Const):
        return e.value, e.value
    if isinstance(e, Ref):
        return e.var.type.lo, e.var.type.hi
    if isinstance(e, Op):
        if e.op in ("not", "and", "or", "==", "!=", "<", "<=", ">", ">="):
            return 0, 1
        if e.op == "ite":
            a, b = _bounds(e.args[1]), _bounds(e.args[2])
            if a and b:
                return min(a[0], b[0]), max(a[1], b[1])
    return None


@dataclass
class Compiled:
    succ: Callable[[tuple, list], None]
    check: Callable[[tuple], int]  # index of the first violated property, or -1
    terminal: Callable[[tuple], bool]
    source: str


def compile_system(system: System) -> Compiled:
    idx = system.index()
    n = len(system.vars)
    lines = ["def succ(s, out):"]
    if n:
        lines.append("    " + ", ".join(f"v{i}" for i in range(n)) + (",) = s" if n == 1 else " = s"))
    if n == 1:
        lines[-1] = "    (v0,) = s"

    items = []
    for ai, a in enumerate(system.actions):
        items.append((conjuncts(a.guard), ai))

    def leaf(ai: int, rest: list[Expr], ind: str) -> None:
        a = system.actions[ai]
        body = ind
        if rest:
            lines.append(f"{ind}if {' and '.join(py_expr(c, idx) for c in rest)}:")
            body = ind + "    "
        new = {}
        for v, e in a.updates:
            name = f"n{idx[v]}"
            lines.append(f"{body}{name} = {py_expr(e, idx)}")
            b = _bounds(e)
            if b is None or b[0] < v.type.lo or b[1] > v.type.hi:
                lines.append(
                    f"{body}if not {v.type.lo} <= {name} <= {v.type.hi}: "
                    f"_range_error({ai}, {idx[v]}, {name})"
                )
            new[idx[v]] = name
        tup = ", ".join(new.get(i, f"v{i}") for i in range(n))
        if n == 1:
            tup += ","
        lines.append(f"{body}out.append(({ai}, ({tup})))")

    def tree(group: list[tuple[list[Expr], int]], ind: str) -> None:
        counts: Counter[Var] = Counter()
        for conj, _ in group:
            seen = set()
            for c in conj:
                t = _eq_test(c)
                if t and t[0] not in seen:
                    counts[t[0]] += 1
                    seen.add(t[0])
        best = None
        if counts:
            var, cnt = max(counts.items(), key=lambda kv: (kv[1], -idx[kv[0]]))
            if cnt >= 2:
                best = var
        if best is None:
            for conj, ai in group:
                leaf(ai, conj, ind)
            return
        by_val: dict[int, list] = {}
        others = []
        for conj, ai in group:
            hit = None
            for k, c in enumerate(conj):
                t = _eq_test(c)
                if t and t[0] is best:
                    hit = (k, t[1])
                    break
            if hit is None:
                others.append((conj, ai))
            else:
                k, val = hit
                by_val.setdefault(val, []).append((conj[:k] + conj[k + 1 :], ai))
        vname = f"v{idx[best]}"
        first = True
        for val in sorted(by_val):
            kw = "if" if first else "elif"
            first = False
            lines.append(f"{ind}{kw} {vname} == {val}:")
            tree(by_val[val], ind + "    ")
        tree(others, ind)

    tree(items, "    ")
    lines.append("    return None")

    lines.append("def check(s):")
    if n:
        lines.append("    (" + ", ".join(f"v{i}" for i in range(n)) + ",) = s")
    for pi, p in enumerate(system.properties):
        lines.append(f"    if not {py_expr(p.holds, idx)}: return {pi}")
    lines.append("    return -1")

    lines.append("def terminal(s):")
    if n:
        lines.append("    (" + ", ".join(f"v{i}" for i in range(n)) + ",) = s")
    lines.append(f"    return bool({py_expr(system.terminal, idx)})")

    src = "\n".join(lines) + "\n"

    def _range_error(ai: int, vi: int, value: int) -> None:
        v = system.vars[vi]
        raise ModelError(
            f"action {system.actions[ai].label!r} assigns {v.name} = {value}, "
            f"outside its range {v.type.lo}..{v.type.hi}"
        )

    ns: dict = {"_range_error": _range_error}
    exec(compile(src, "<rseqcheck-model>", "exec"), ns)
    return Compiled(ns["succ"], ns["check"], ns["terminal"], src)

"""Compile an IR `System` into Python functions.

Each action becomes a branch of one generated function; guards are factored
into a decision tree on `var == const` tests so that, for example, all
instructions of one context are behind a single ip dispatch.  Inside a
branch the tested values are known, so the rest of the guard and the
assignments are partially evaluated against them (a conjunct that is now
constant disappears, an action that cannot be enabled there is dropped).
Nothing here knows what the variables mean.

Two forms are generated from the same tree, so they list successors in the
same order:

* `Compiled.succ/check/terminal` work on states as tuples of ints (the
  public form: traces, replay, tests);
* `Compiled.packed()` works on states packed into one int, a bit field per
  variable holding `value - lo`.  A successor is then one or two int
  operations on the parent (`s + DELTA` when the old values are known from
  the tree), a state costs one int in memory, and hashing it is cheap.  Its
  `expand` runs a whole BFS level with the bookkeeping inlined; whether a
  successor can violate a property or be terminal is decided per action at
  compile time (an action that writes none of a property's variables cannot
  change its value).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rseqcheck.checker.engines import engine_cache
from rseqcheck.model.ir import Const, Expr, ModelError, Op, Ref, System, Var, conjuncts, evaluate

_PYOP = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "+": "+", "-": "-"}
_TMP = "\0new"  # proc of the stand-in variables for a successor's computed fields
_CHAIN = 6  # a dispatch on more values than this is split in halves (binary search)


def py_expr(e: Expr, idx: dict[Var, int] | Callable[[Var], str], boolean: bool = False) -> str:
    """Python source of `e`; `idx` maps a variable to its local (`v<i>`).
    `boolean`: only the truth of the result matters (a guard).  Elsewhere
    and/or are made to yield 0/1 as the IR says (Python's return an operand)."""
    name = idx if callable(idx) else (lambda v: f"v{idx[v]}")
    return _py(e, name, boolean)


def _py(e: Expr, name: Callable[[Var], str], boolean: bool = False) -> str:
    if isinstance(e, Const):
        return str(int(e.value))  # only integers and v<i> names reach the generated source
    if isinstance(e, Ref):
        return name(e.var)
    assert isinstance(e, Op), e
    if e.op in ("and", "or"):
        inner = "(" + f" {e.op} ".join(_py(x, name, True) for x in e.args) + ")"
        return inner if boolean else f"(1 if {inner} else 0)"
    if e.op == "not":
        return f"(not {_py(e.args[0], name, True)})"
    if e.op == "ite":
        c, x, y = e.args
        return f"({_py(x, name)} if {_py(c, name, True)} else {_py(y, name)})"
    a = [_py(x, name) for x in e.args]
    return f"({a[0]} {_PYOP[e.op]} {a[1]})"


def _eq_test(c: Expr) -> tuple[Var, int] | None:
    if isinstance(c, Op) and c.op == "==":
        x, y = c.args
        if isinstance(x, Ref) and isinstance(y, Const):
            return x.var, y.value
        if isinstance(y, Ref) and isinstance(x, Const):
            return y.var, x.value
    return None


def peval(e: Expr, known: dict[Var, int]) -> Expr:
    """Partially evaluate `e` with the variables of `known` fixed; the result
    is a `Const` when `e` no longer depends on anything else."""
    if isinstance(e, Const):
        return e
    if isinstance(e, Ref):
        return Const(known[e.var]) if e.var in known else e
    assert isinstance(e, Op), e
    if e.op in ("and", "or"):
        return _peval_andor(e, known)
    if e.op == "ite":
        c = peval(e.args[0], known)
        if isinstance(c, Const):
            return peval(e.args[1] if c.value else e.args[2], known)
        return Op("ite", (c, peval(e.args[1], known), peval(e.args[2], known)))
    args2 = tuple(peval(x, known) for x in e.args)
    if all(isinstance(x, Const) for x in args2):
        return Const(evaluate(Op(e.op, args2), {}))
    return Op(e.op, args2)


def _peval_andor(e: Op, known: dict[Var, int]) -> Expr:
    """and/or are 0/1-valued (model.ir.evaluate): a deciding constant
    operand decides the whole, a neutral one is dropped."""
    is_and = e.op == "and"
    args: list[Expr] = []
    for y in (peval(x, known) for x in e.args):
        if isinstance(y, Const):
            if is_and and not y.value:
                return Const(0)
            if not is_and and y.value:
                return Const(1)
            continue
        args.append(y)
    if not args:
        return Const(1 if is_and else 0)
    return Op(e.op, tuple(args))  # even with one operand: it still makes a 0/1 value


def _bounds(e: Expr, rng: dict[Var, tuple[int, int]] | None = None) -> tuple[int, int] | None:
    """A cheap static range of an expression, to skip needless range checks;
    `rng` narrows variables (facts of the guard that holds there)."""
    if isinstance(e, Const):
        return e.value, e.value
    if isinstance(e, Ref):
        if rng and e.var in rng:
            return rng[e.var]
        return e.var.type.lo, e.var.type.hi
    if isinstance(e, Op):
        if e.op in ("not", "==", "!=", "<", "<=", ">", ">="):
            return 0, 1
        if e.op in ("and", "or"):
            return 0, 1
        if e.op == "ite":
            a, b = _bounds(e.args[1], rng), _bounds(e.args[2], rng)
            if a and b:
                return min(a[0], b[0]), max(a[1], b[1])
        if e.op in ("+", "-"):
            a, b = _bounds(e.args[0], rng), _bounds(e.args[1], rng)
            if a and b:
                return (a[0] + b[0], a[1] + b[1]) if e.op == "+" else (a[0] - b[1], a[1] - b[0])
    return None


def _narrow(conds: list[Expr], known: dict[Var, int]) -> dict[Var, tuple[int, int]]:
    """Variable ranges implied by `known` and by simple conjuncts that hold."""
    rng: dict[Var, tuple[int, int]] = {v: (x, x) for v, x in known.items()}

    def meet(v: Var, lo: int, hi: int) -> None:
        a, b = rng.get(v, (v.type.lo, v.type.hi))
        rng[v] = (max(a, lo), min(b, hi))

    for c in conds:
        if isinstance(c, Ref):
            if c.var.type.is_bool:
                meet(c.var, 1, 1)
        elif isinstance(c, Op) and c.op == "not" and isinstance(c.args[0], Ref) and c.args[0].var.type.is_bool:
            meet(c.args[0].var, 0, 0)
        elif isinstance(c, Op) and c.op in ("==", "<", "<=", ">", ">=") and len(c.args) == 2:
            x, y = c.args
            op = c.op
            if isinstance(x, Const) and isinstance(y, Ref):
                x, y = y, x
                op = {"==": "==", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
            if isinstance(x, Ref) and isinstance(y, Const):
                k = y.value
                lo, hi = {"==": (k, k), "<": (None, k - 1), "<=": (None, k), ">": (k + 1, None), ">=": (k, None)}[op]
                meet(x.var, x.var.type.lo if lo is None else lo, x.var.type.hi if hi is None else hi)
    return rng


# ---------------------------------------------------------------- the tree


@dataclass
class _Switch:
    var: Var
    cases: list[tuple[int, _Node]]
    others: _Node


_Node = _Switch | list  # a list of leaves (action index, remaining conjuncts)


def _build_tree(group: list[tuple[list[Expr], int]], idx: dict[Var, int]) -> _Node:
    """Split on the variable that most actions of `group` test for equality
    (ties: the lowest variable index); actions with no such test follow."""
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
        return [(ai, conj) for conj, ai in group]
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
    cases = [(val, _build_tree(by_val[val], idx)) for val in sorted(by_val)]
    return _Switch(best, cases, _build_tree(others, idx))


# ----------------------------------------------------------- code emission


class _Emitter:
    """Walks the tree, tracking the values known on the current path.

    Subclasses say how a variable is read, how a switch tests it, and what a
    leaf (an enabled action) does."""

    def __init__(self, system: System):
        self.system = system
        self.idx = system.index()

    def node(self, n: _Node, ind: str, known: dict[Var, int], scope: set[Var]) -> list[str]:
        if isinstance(n, list):
            out: list[str] = []
            for ai, conj in n:
                out += self.leaf(ai, conj, ind, known, scope)
            return out
        bodies: list[tuple[int, list[str]]] = []
        for val, sub in n.cases:
            if not n.var.type.lo <= val <= n.var.type.hi:
                continue  # never true
            lines = self.node(sub, ind + "    ", {**known, n.var: val}, set(scope | {n.var}))
            if lines:
                bodies.append((val, lines))
        out = []
        if bodies:
            out += self.read(n.var, ind, scope)
            out += self._dispatch(n.var, bodies, ind)
        return out + self.node(n.others, ind, known, scope)

    def _dispatch(self, var: Var, bodies: list[tuple[int, list[str]]], ind: str, extra: str = "") -> list[str]:
        """if/elif over the values, or a binary search when there are many;
        `extra` re-indents bodies generated for a shallower nesting."""
        x = self.name(var)
        if len(bodies) <= _CHAIN:
            out = []
            for k, (val, lines) in enumerate(bodies):
                out.append(f"{ind}{'if' if k == 0 else 'elif'} {x} == {val}:")
                out += [extra + line for line in lines]
            return out
        mid = len(bodies) // 2
        deeper = ind + "    "
        return (
            [f"{ind}if {x} < {bodies[mid][0]}:"]
            + self._dispatch(var, bodies[:mid], deeper, extra + "    ")
            + [f"{ind}else:"]
            + self._dispatch(var, bodies[mid:], deeper, extra + "    ")
        )

    def guard(self, ai: int, conj: list[Expr], known: dict[Var, int]) -> list[Expr] | None:
        """The conjuncts still to test at a leaf, or None if it is dead."""
        rest = []
        for c in conj:
            c2 = peval(c, known)
            if isinstance(c2, Const):
                if not c2.value:
                    return None
                continue
            rest.append(c2)
        return rest

    # hooks
    def name(self, v: Var) -> str:
        raise NotImplementedError

    def read(self, v: Var, ind: str, scope: set[Var]) -> list[str]:
        return []

    def reads(self, e: Expr | list[Expr], ind: str, scope: set[Var]) -> list[str]:
        vs: set[Var] = set()
        for x in e if isinstance(e, list) else [e]:
            vs |= x.vars()
        out: list[str] = []
        for v in sorted(vs, key=self.idx.__getitem__):
            out += self.read(v, ind, scope)
        return out

    def leaf(self, ai: int, conj: list[Expr], ind: str, known: dict[Var, int], scope: set[Var]) -> list[str]:
        raise NotImplementedError


class _TupleEmitter(_Emitter):
    """succ(s, out) over tuple states: out.append((action, successor))."""

    def name(self, v: Var) -> str:
        return f"v{self.idx[v]}"

    def leaf(self, ai, conj, ind, known, scope):
        rest = self.guard(ai, conj, known)
        if rest is None:
            return []
        a = self.system.actions[ai]
        out = []
        body = ind
        if rest:
            out.append(f"{ind}if {' and '.join(py_expr(c, self.name, True) for c in rest)}:")
            body = ind + "    "
        n = len(self.system.vars)
        new = {}
        rng = _narrow(rest, known)
        for v, e in a.updates:
            i = self.idx[v]
            e2 = peval(e, known)
            out.append(f"{body}n{i} = {py_expr(e2, self.name)}")
            b = _bounds(e2, rng)
            if b is None or b[0] < v.type.lo or b[1] > v.type.hi:
                out.append(f"{body}if not {v.type.lo} <= n{i} <= {v.type.hi}: _range_error({ai}, {i}, n{i})")
            new[i] = f"n{i}"
        tup = ", ".join(new.get(i, f"v{i}") for i in range(n))
        if n == 1:
            tup += ","
        out.append(f"{body}out.append(({ai}, ({tup})))")
        return out


@dataclass
class Layout:
    """Bit fields of the packed form: variable i is `(s >> shift[i]) & mask[i]`,
    offset by its type's lo."""

    shift: list[int]
    mask: list[int]
    lo: list[int]
    hi: list[int]
    bits: int

    @classmethod
    def of(cls, system: System) -> Layout:
        shift, mask, lo, hi = [], [], [], []
        at = 0
        for v in system.vars:
            w = max(1, (v.type.hi - v.type.lo).bit_length())
            shift.append(at)
            mask.append((1 << w) - 1)
            lo.append(v.type.lo)
            hi.append(v.type.hi)
            at += w
        return cls(shift, mask, lo, hi, at)

    def pack(self, state: tuple) -> int:
        x = 0
        for i, val in enumerate(state):
            if not self.lo[i] <= val <= self.hi[i]:
                raise ModelError(f"value {val} of variable {i} outside {self.lo[i]}..{self.hi[i]}")
            x |= (val - self.lo[i]) << self.shift[i]
        return x

    def unpack(self, x: int) -> tuple:
        return tuple(((x >> sh) & m) + lo for sh, m, lo in zip(self.shift, self.mask, self.lo))


class _PackedEmitter(_Emitter):
    """succ(s, out) over packed states: out.append((action, successor))."""

    def __init__(self, system: System, layout: Layout):
        super().__init__(system)
        self.L = layout

    def name(self, v: Var) -> str:
        return f"v{self.idx[v]}"

    def read(self, v: Var, ind: str, scope: set[Var]) -> list[str]:
        if v in scope:
            return []
        scope.add(v)
        i = self.idx[v]
        sh, m, lo = self.L.shift[i], self.L.mask[i], self.L.lo[i]
        e = f"(s >> {sh}) & {m}" if sh else f"s & {m}"
        if lo:
            e = f"({e}) + {lo}"
        return [f"{ind}v{i} = {e}"]

    def leaf(self, ai, conj, ind, known, scope):
        rest = self.guard(ai, conj, known)
        if rest is None:
            return []
        a = self.system.actions[ai]
        out: list[str] = []
        body = ind
        if rest:  # reads before the `if` run unconditionally: later siblings reuse them
            out += self.reads(rest, ind, scope)
            out.append(f"{ind}if {' and '.join(py_expr(c, self.name, True) for c in rest)}:")
            body = ind + "    "
        scope = set(scope)
        known2 = dict(known)
        for c in rest:
            t = _eq_test(c)
            if t:
                known2[t[0]] = t[1]
        rng = _narrow(rest, known2)
        L = self.L
        full = (1 << L.bits) - 1
        keep = full
        setb = 0
        delta = 0
        general: list[tuple[Var, int]] = []
        # in update order, as the tuple form: the first bad value raises
        for v, e in a.updates:
            i = self.idx[v]
            e2 = peval(e, known2)
            if isinstance(e2, Const):
                c = e2.value
                if not v.type.lo <= c <= v.type.hi:
                    out.append(f"{body}_range_error({ai}, {i}, {c})")
                    return out
                if v in known2:
                    delta += (c - known2[v]) << L.shift[i]
                else:
                    keep &= ~(L.mask[i] << L.shift[i])
                    setb |= (c - L.lo[i]) << L.shift[i]
                continue
            general.append((v, i))
            out += self.reads(e2, body, scope)
            out.append(f"{body}x{i} = {py_expr(e2, self.name)}")
            b = _bounds(e2, rng)
            if b is None or b[0] < v.type.lo or b[1] > v.type.hi:
                out.append(f"{body}if not {v.type.lo} <= x{i} <= {v.type.hi}: _range_error({ai}, {i}, x{i})")
        # t = ((s & keep) | setb) + delta, then the computed fields
        t = "s" if keep == full else f"(s & {keep})"
        if setb:
            t = f"({t} | {setb})"
        if delta:
            t = f"({t} + {delta})" if delta > 0 else f"({t} - {-delta})"
        for v, i in general:
            sh = L.shift[i]
            if v in known2 or v in scope:
                old = str(known2[v]) if v in known2 else f"v{i}"
                t = f"({t} + ((x{i} - {old}) << {sh}))" if sh else f"({t} + (x{i} - {old}))"
            else:
                lo = L.lo[i]
                val = f"(x{i} - {lo})" if lo else f"x{i}"
                t = f"(({t} & {full & ~(L.mask[i] << sh)}) | ({val} << {sh}))"
        out.append(f"{body}out.append(({ai}, {t}))")
        return out


class _Violation(Exception):
    """A new state violates a property (raised from `Packed.expand`)."""

    def __init__(self, parent: int, state: int, prop: int, before: int):
        super().__init__(prop)
        # before: transitions counted in this call of expand before `parent`'s
        self.parent, self.state, self.prop, self.before = parent, state, prop, before


# ------------------------------------------------------------ blocks


def _leaf_order(n: _Node) -> list[int]:
    """Actions in the order the generated code lists their successors."""
    if isinstance(n, list):
        return [ai for ai, _ in n]
    out = []
    for _, sub in n.cases:
        out += _leaf_order(sub)
    return out + _leaf_order(n.others)


def _prune(n: _Node, keep: set[int]) -> _Node:
    if isinstance(n, list):
        return [leaf for leaf in n if leaf[0] in keep]
    cases = [(val, sub) for val, sub in ((v, _prune(s, keep)) for v, s in n.cases) if _leaf_order(sub)]
    others = _prune(n.others, keep)
    return _Switch(n.var, cases, others) if cases else others


def _blocks(system: System, tree: _Node) -> list[list[int]]:
    """The successor order cut into runs of one process's actions."""
    runs: list[list[int]] = []
    last = None
    for ai in _leaf_order(tree):
        p = system.actions[ai].proc
        if p != last:
            runs.append([])
            last = p
        runs[-1].append(ai)
    return runs


# --------------------------------------------------------------- products


@dataclass
class Packed:
    """The packed-state engine of a system.

    The successors of a state are listed in the order of the tuple form,
    cut into blocks (runs of one process's actions).  What a block adds to a
    state depends only on the block's variables, its `key`: so per key the
    block's successors are computed once and kept as XOR masks (successor =
    state ^ mask).  With threads that share little, a block's keys are about
    its thread's own states, few beside the product of all threads'.

    expand(frontier, seen, nxt, tnxt) expands the states of `frontier` in
    order: a new successor is entered in `seen` (value: its parent) and
    appended to `nxt`, or to `tnxt` if terminal; it returns the number of
    transitions.  A new state violating a property raises `Violation`.
    `expand_limited(frontier, seen, nxt, tnxt, limit)` also stops after the
    state at which `len(seen) >= limit` and returns (states expanded,
    transitions).  `fired(violating_state)` is the set of actions taken."""

    layout: Layout
    succ: Callable[[int, list], None]
    check: Callable[[int], int]
    terminal: Callable[[int], bool]
    expand: Callable[..., int]
    expand_limited: Callable[..., tuple[int, int]]
    pack: Callable[[tuple], int]
    unpack: Callable[[int], tuple]
    source: str
    blocks: list[_Block]
    rw: list[tuple[set[Var], set[Var]]]  # per action: variables read, written
    needs_check: list[bool]  # per action: writes a variable of a property
    needs_term: list[bool]  # per action: writes a variable of `terminal`
    F: bytearray  # actions fired in direct (unmemoized) blocks
    Violation: type = _Violation
    # expand and expand_limited keyed by an orbit representative (checker/engines/symmetry.py)
    with_canon: Callable[[Callable[[int], int]], tuple[Callable[..., int], Callable[..., tuple[int, int]]]] | None = None
    # expand and expand_limited with another visited-set test (`Visit`)
    with_visit: Callable[..., tuple[Callable[..., int], Callable[..., tuple[int, int]]]] | None = None
    # expand_range and expand_range_limited: the loops over a compiled visited table (`_native_loops`)
    with_table: Callable[..., tuple[Callable[..., int], Callable[..., tuple[int, int]]]] | None = None

    def fired(self, violating: int | None = None) -> set[int]:
        """Actions with a successor taken: every block entry's, except the
        entries made while expanding `violating`, whose successors after the
        violating one were never taken (the caller adds those before it)."""
        out = {a for a, f in enumerate(self.F) if f}
        for b in self.blocks:
            out |= b.fired
            for key, acts in b.acts.items():
                if violating is None or b.origin.get(key) != violating:
                    out.update(acts)
        return out


_MEMO_CAP = 1 << 20  # entries per block before its memo is emptied (a cache, then)


@dataclass
class _Block:
    index: int
    mask: int  # key = state & mask
    collect: Callable[[int, list], None]
    special: frozenset[int]  # actions whose successor needs check()/terminal()
    actions: tuple[int, ...]  # the run of the successor order it covers
    direct: bool  # its key is the whole changing state: computed each time, not memoized
    plain: dict[int, tuple[int, ...]] = field(default_factory=dict)  # key -> xor masks
    mixed: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # key -> (action, mask)
    acts: dict[int, tuple[int, ...]] = field(default_factory=dict)  # key -> actions of the entry
    origin: dict[int, int] = field(default_factory=dict)  # key -> state that made the entry
    fired: set[int] = field(default_factory=set)  # actions of entries dropped at the cap


def _memo_entry(blk: _Block, s: int) -> tuple | list:
    """Make the block's memo entry for s's key: its xor masks (a tuple,
    entered in `plain`) or, when an action of it needs check()/terminal(),
    its (action, mask) pairs (a list, entered in `mixed`)."""
    key = s & blk.mask
    if len(blk.acts) >= _MEMO_CAP:
        for acts in blk.acts.values():
            blk.fired.update(acts)
        blk.plain.clear()
        blk.mixed.clear()
        blk.acts.clear()
        blk.origin.clear()
    out: list = []
    blk.collect(s, out)
    blk.acts[key] = tuple(a for a, _ in out)
    blk.origin[key] = s
    if not any(a in blk.special for a, _ in out):
        masks = blk.plain[key] = tuple(s ^ t for _, t in out)
        return masks
    ent = blk.mixed[key] = [(a, s ^ t) for a, t in out]
    return ent


def _make_slow(blocks: list[_Block], check: Callable[[int], int], terminal: Callable[[int], bool],
               needs_check: list[bool], needs_term: list[bool], canon: Callable[[int], int] | None = None
               ) -> Callable:
    def slow(b: int, s: int, seen: dict, nxt: list, tnxt: list, before: int) -> tuple | int:
        """A block's key not in its plain memo: make the entry, and expand
        a mixed one here.  Returns the plain entry's masks, or the number of
        transitions it expanded itself."""
        blk = blocks[b]
        ent = blk.mixed.get(s & blk.mask)
        if ent is None:
            ent = _memo_entry(blk, s)
            if ent.__class__ is tuple:
                return ent
        for a, x in ent:
            t = s ^ x
            c = canon(t) if canon else t
            if c in seen:
                continue
            seen[c] = s
            if needs_check[a]:
                bad = check(t)
                if bad >= 0:
                    raise _Violation(s, t, bad, before)
            if needs_term[a] and terminal(t):
                tnxt.append(t)
            else:
                nxt.append(t)
        return len(ent)

    return slow


def _make_special(check: Callable[[int], int], terminal: Callable[[int], bool],
                  needs_check: list[bool], needs_term: list[bool]) -> Callable:
    def special(s: int, t: int, a: int, push: Callable, tnxt: list, before: int) -> None:
        """A new successor by an action that may break a property or stop."""
        if needs_check[a]:
            bad = check(t)
            if bad >= 0:
                raise _Violation(s, t, bad, before)
        if needs_term[a] and terminal(t):
            tnxt.append(t)
        else:
            push(t)

    return special


@dataclass(frozen=True)
class Visit:
    """How the expand loops test and enter a successor t of s in the
    visited set: `pre` lines, then `if <new>:` and the `enter` lines;
    `setup` lines run once per call, `params` are extra defaults bound
    from the namespace.  The plain one is a dict of parents."""

    new: str = "t not in seen"
    enter: tuple[str, ...] = ("seen[t] = s",)
    pre: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    params: tuple[str, ...] = ()


PLAIN = Visit()
CANON = Visit("c not in seen", ("seen[c] = s",), ("c = _canon(t)",), (), ("_canon",))  # keyed by canon(t)


def _expand_source(direct: list[bool], limited: bool, visit: Visit = PLAIN) -> list[str]:
    """The BFS level loop: per state and block, one memo lookup, or (direct
    blocks) the block's successors computed on the spot; `visit`: the
    visited-set test (CANON: `seen` keyed by a symmetry reduction's orbit
    representative; checker/engines/bitstate.py: a bit table)."""
    nblocks = len(direct)
    params = "".join(f", C{b}=collect{b}" if direct[b] else f", P{b}=P{b}, R{b}=R{b}" for b in range(nblocks))
    params += "".join(f", {p}={p}" for p in visit.params)
    name = "expand_limited" if limited else "expand"
    test = [f"            {x}" for x in visit.pre] + [f"            if {visit.new}:"] + \
        [f"                {x}" for x in visit.enter]
    out = [
        f"def {name}(frontier, seen, nxt, tnxt{', limit' if limited else ''}{params}, _slow=_slow,"
        f" _special=_special, F=F, SP=SP):",
        "    n = 0",
        "    push = nxt.append",
        *(f"    {x}" for x in visit.setup),
    ]
    if limited:
        out.append("    k = 0")
    out.append("    for s in frontier:")
    out.append("        n0 = n")
    for b in range(nblocks):
        if direct[b]:
            out += [
                "        out = []",
                f"        C{b}(s, out)",
                "        n += len(out)",
                "        for a, t in out:",
                "            F[a] = 1",
                *test,
                "                if SP[a]: _special(s, t, a, push, tnxt, n0)",
                "                else: push(t)",
            ]
            continue
        out += [
            f"        L = P{b}.get(s & R{b})",
            "        if L is None:",
            f"            L = _slow({b}, s, seen, nxt, tnxt, n0)",
            "            if L.__class__ is int:",
            "                n += L",
            "                L = ()",
            "        n += len(L)",
            "        for x in L:",
            "            t = s ^ x",
            *test,
            "                push(t)",
        ]
    if limited:
        out += ["        k += 1", "        if len(seen) >= limit: return k, n", "    return k, n"]
    else:
        out.append("    return n")
    return out


def _special_table(check: Callable[[int], int], terminal: Callable[[int], bool], needs_check: list[bool],
                   needs_term: list[bool], s: int, t: int, i: int, j: int, a: int, term: Any, before: int) -> None:
    """A successor t of entry i by an action that may break a property or
    stop: new (index j), or sent to the worker that owns it (j == -2;
    checker/engines/workers.py), which cannot tell it is new: checked
    here, and if terminal, `term.send(t, i)` marks it so there."""
    if needs_check[a]:
        bad = check(t)
        if bad >= 0:
            raise _Violation(s, t, bad, before)
    if needs_term[a] and terminal(t):
        if j >= 0:
            term.add(j)
        else:
            term.send(t, i)


def _native_loops(blocks: list[_Block], check: Callable[[int], int], terminal: Callable[[int], bool],
                  needs_check: list[bool], needs_term: list[bool], F: bytearray, bits: int, tab: Any, term: set
                  ) -> tuple[Callable[[int, int], int], Callable[[int, int, int], tuple[int, int]]]:
    """The level loop over a compiled visited table (checker/engines/
    visited.py): `Table.expand` walks the entries and the blocks' memos in
    C and calls back here for a block that is computed each time (direct),
    a key not in its memo, or an entry whose actions need check() or
    terminal() (mixed).  Returns expand_range(lo, hi) -> transitions and
    expand_range_limited(lo, hi, limit) -> (states expanded, transitions)."""
    from rseqcheck.checker.engines.visited import Memo

    memos = [None if blk.direct else Memo(bits) for blk in blocks]
    plan = tuple((blk.mask, memos[b]) for b, blk in enumerate(blocks))
    add, adds = tab.add, tab.add_xor
    sp = [c or t for c, t in zip(needs_check, needs_term)]
    special = partial(_special_table, check, terminal, needs_check, needs_term)

    def python(b: int, s: int, i: int, n0: int) -> int:
        blk = blocks[b]
        if blk.direct:
            out: list = []
            blk.collect(s, out)
            for a, t in out:
                F[a] = 1
                if sp[a]:
                    j = add(t, i)
                    if j != -1:
                        special(s, t, i, j, a, term, n0)
                else:
                    add(t, i)
            return len(out)
        key = s & blk.mask
        ent = blk.plain.get(key)
        if ent is None:
            ent = blk.mixed.get(key)
        if ent is None:
            if len(blk.acts) >= _MEMO_CAP:  # _memo_entry empties the block's memos: this one too
                memos[b].clear()
            ent = _memo_entry(blk, s)
        if ent.__class__ is tuple:
            memos[b].put(key, ent)
            adds(s, ent, i)
            return len(ent)
        memos[b].put(key, None)
        for a, x in ent:
            t = s ^ x
            j = add(t, i)
            if j != -1:
                special(s, t, i, j, a, term, n0)
        return len(ent)

    def expand_range(lo: int, hi: int) -> int:
        return tab.expand(lo, hi, plan, term, python, -1)[1]

    def expand_range_limited(lo: int, hi: int, limit: int) -> tuple[int, int]:
        return tab.expand(lo, hi, plan, term, python, limit)

    return expand_range, expand_range_limited


@dataclass
class Compiled:
    succ: Callable[[tuple, list], None]
    check: Callable[[tuple], int]  # index of the first violated property, or -1
    terminal: Callable[[tuple], bool]
    source: str
    system: System | None = field(default=None, repr=False)
    _packed: Packed | None = field(default=None, repr=False)

    def packed(self) -> Packed:
        """The packed-state engine (compiled on first use; its memos live
        as long as this object, so one search per `packed()` result)."""
        if self._packed is None:
            assert self.system is not None
            self._packed = compile_packed(self.system)
        return self._packed


def _tree(system: System) -> _Node:
    return _build_tree([(conjuncts(a.guard), ai) for ai, a in enumerate(system.actions)], system.index())


def _range_error_fn(system: System) -> Callable[[int, int, int], None]:
    def _range_error(ai: int, vi: int, value: int) -> None:
        v = system.vars[vi]
        raise ModelError(
            f"action {system.actions[ai].label!r} assigns {v.name} = {value}, "
            f"outside its range {v.type.lo}..{v.type.hi}"
        )

    return _range_error


def _state_funcs(system: System, idx: dict[Var, int], unpack: str) -> list[str]:
    """check(s) and terminal(s); `unpack` is the line binding v<i> from s."""
    lines = ["def check(s):"]
    if unpack:
        lines.append(unpack)
    for pi, p in enumerate(system.properties):
        lines.append(f"    if not {py_expr(p.holds, idx, True)}: return {pi}")
    lines.append("    return -1")
    lines.append("def terminal(s):")
    if unpack:
        lines.append(unpack)
    lines.append(f"    return bool({py_expr(system.terminal, idx, True)})")
    return lines


def compile_system(system: System) -> Compiled:
    idx = system.index()
    n = len(system.vars)
    tree = _tree(system)
    lines = ["def succ(s, out):"]
    unpack = ""
    if n:
        unpack = "    " + ", ".join(f"v{i}" for i in range(n)) + (",) = s" if n == 1 else " = s")
        if n == 1:
            unpack = "    (v0,) = s"
        lines.append(unpack)
    lines += _TupleEmitter(system).node(tree, "    ", {}, set())
    lines.append("    return None")
    lines += _state_funcs(system, idx, unpack)
    src = "\n".join(lines) + "\n"
    ns: dict = {"_range_error": _range_error_fn(system)}
    exec(compile(src, "<rseqcheck-model>", "exec"), ns)
    return Compiled(ns["succ"], ns["check"], ns["terminal"], src, system)


def compile_packed(system: System) -> Packed:
    """The packed-state engine alone (what the explicit search uses).  The
    generated code is kept on disk per system and engine version
    (checker/engines/engine_cache.py): a re-run loads it instead of generating and
    compiling it again."""
    L = Layout.of(system)
    rw = [(a.reads(), a.writes()) for a in system.actions]
    name = engine_cache.key(system, "packed")
    got = engine_cache.load(name) if name else None
    if got is not None:
        runs, src, main_code, tail_code = got
    else:
        runs, src, main_code, tail_code = _generate_packed(system, L, rw)
        if name:
            engine_cache.store(name, (runs, src, main_code, tail_code))
    return _assemble_packed(system, L, rw, runs, src, main_code, tail_code)


def _generate_packed(system: System, L: Layout, rw: list[tuple[set[Var], set[Var]]]
                     ) -> tuple[list[list[int]], str, Any, Any]:
    """The successor order cut into blocks, the whole source, and its two
    compiled parts: the functions, then the expand loops."""
    tree = _tree(system)
    idx = system.index()
    n = len(system.vars)
    em = _PackedEmitter(system, L)
    runs = _blocks(system, tree)
    # succ lists the blocks in order: the tree's order
    lines = ["def succ(s, out):"] + [f"    collect{b}(s, out)" for b in range(len(runs))] + ["    return None"]
    unpack = ""
    if n:
        parts = []
        for i in range(n):
            sh, m, lo = L.shift[i], L.mask[i], L.lo[i]
            e = f"(s >> {sh}) & {m}" if sh else f"s & {m}"
            parts.append(f"(({e}) + {lo})" if lo else f"({e})")
        unpack = "    " + ", ".join(f"v{i}" for i in range(n)) + " = " + ", ".join(parts)
    lines += _state_funcs(system, idx, unpack)
    lines.append("def unpack(s):")
    lines.append(unpack if n else "    pass")
    lines.append("    return (" + "".join(f"v{i}, " for i in range(n)) + ")")
    for b, run in enumerate(runs):
        lines.append(f"def collect{b}(s, out):")
        lines += em.node(_prune(tree, set(run)), "    ", {}, set())
        lines.append("    return None")
    main_code = compile("\n".join(lines) + "\n", "<rseqcheck-packed>", "exec")
    # the expand loops bind the memos, collectors and helpers as defaults: run last
    direct = _block_masks(system, L, runs, rw)[1]
    tail = _expand_source(direct, False) + _expand_source(direct, True)
    tail_code = compile("\n" * len(lines) + "\n".join(tail) + "\n", "<rseqcheck-packed>", "exec")
    return runs, "\n".join(lines + tail) + "\n", main_code, tail_code


def _block_masks(system: System, L: Layout, runs: list[list[int]],
                 rw: list[tuple[set[Var], set[Var]]]) -> tuple[list[int], list[bool]]:
    """Per block: the bits of its variables (its memo key), and whether
    that key is the whole changing state (then not memoized)."""
    idx = system.index()
    changing = 0  # bits of the variables some action writes
    for _, w in rw:
        for v in w:
            changing |= L.mask[idx[v]] << L.shift[idx[v]]
    masks: list[int] = []
    direct: list[bool] = []
    for run in runs:
        used: set[Var] = set()
        for ai in run:
            used |= rw[ai][0] | rw[ai][1]
        mask = 0
        for v in used:
            mask |= L.mask[idx[v]] << L.shift[idx[v]]
        masks.append(mask)
        # a key that is the whole changing state repeats only when the state does
        direct.append(mask & changing == changing)
    return masks, direct


def _assemble_packed(system: System, L: Layout, rw: list[tuple[set[Var], set[Var]]], runs: list[list[int]],
                     src: str, main_code: Any, tail_code: Any) -> Packed:
    ns: dict = {"_range_error": _range_error_fn(system)}
    exec(main_code, ns)

    prop_vars: set[Var] = set()
    for p in system.properties:
        prop_vars |= p.holds.vars()
    term_vars = system.terminal.vars()
    needs_check = [bool(w & prop_vars) for _, w in rw]
    needs_term = [bool(w & term_vars) for _, w in rw]
    masks, direct = _block_masks(system, L, runs, rw)
    blocks: list[_Block] = []
    for b, run in enumerate(runs):
        special = frozenset(ai for ai in run if needs_check[ai] or needs_term[ai])
        blocks.append(_Block(b, masks[b], ns[f"collect{b}"], special, tuple(run), direct[b]))
        ns[f"P{b}"] = blocks[-1].plain
        ns[f"R{b}"] = masks[b]
    ns["_slow"] = _make_slow(blocks, ns["check"], ns["terminal"], needs_check, needs_term)
    ns["_special"] = _make_special(ns["check"], ns["terminal"], needs_check, needs_term)
    ns["F"] = F = bytearray(len(system.actions))
    ns["SP"] = bytes(c or t for c, t in zip(needs_check, needs_term))
    exec(tail_code, ns)

    def with_visit(visit: Visit, env: dict, canon: Callable[[int], int] | None = None
                   ) -> tuple[Callable[..., int], Callable[..., tuple[int, int]]]:
        """expand and expand_limited with another visited-set test; `env`
        binds the names it uses; `canon`: the key of a state in `seen`
        (for the memo misses, which use `in` and item assignment)."""
        env = dict(ns, **env, _slow=_make_slow(blocks, ns["check"], ns["terminal"], needs_check, needs_term, canon))
        code = _expand_source(direct, False, visit) + _expand_source(direct, True, visit)
        exec(compile("\n".join(code) + "\n", "<rseqcheck-packed-visit>", "exec"), env)
        return env["expand"], env["expand_limited"]

    def with_canon(canon: Callable[[int], int]) -> tuple[Callable[..., int], Callable[..., tuple[int, int]]]:
        """expand and expand_limited with `seen` keyed by canon(state)."""
        return with_visit(CANON, {"_canon": canon}, canon)

    def with_table(tab: Any, term: set) -> tuple[Callable[[int, int], int], Callable[[int, int, int], tuple[int, int]]]:
        """The level loops over a compiled table `tab` (`_native_loops`)."""
        return _native_loops(blocks, ns["check"], ns["terminal"], needs_check, needs_term, F, L.bits, tab, term)

    return Packed(L, ns["succ"], ns["check"], ns["terminal"], ns["expand"], ns["expand_limited"], L.pack,
                  ns["unpack"], src, blocks, rw, needs_check, needs_term, F, with_canon=with_canon,
                  with_visit=with_visit, with_table=with_table)

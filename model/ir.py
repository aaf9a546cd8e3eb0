"""The intermediate representation every engine consumes.

A `System` is a transition system of guarded commands over bounded variables
(booleans, integer ranges, enumerations).  The kernel semantics in `model/` is
written once against this IR; `checker/` engines (explicit BFS, Z3) only read
it and know nothing about rseq, signals or syscalls.

Values are plain ints: a bool is 0/1, an enum is the index of its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class ModelError(Exception):
    """The model itself is wrong (e.g. an assignment leaves its range)."""


# --------------------------------------------------------------------- types


@dataclass(frozen=True)
class VarType:
    lo: int
    hi: int
    names: tuple[str, ...] | None = None  # enum value names, index = value
    is_bool: bool = False

    def fmt(self, value: int) -> str:
        if self.names is not None and 0 <= value < len(self.names):
            return self.names[value]
        return str(int(value))


def Bool() -> VarType:
    return VarType(0, 1, is_bool=True)


def IntRange(lo: int, hi: int) -> VarType:
    if hi < lo:
        raise ModelError(f"empty range {lo}..{hi}")
    return VarType(lo, hi)


def Enum(*names: str) -> VarType:
    return VarType(0, len(names) - 1, names=tuple(names))


@dataclass(frozen=True)
class Var:
    name: str
    type: VarType
    proc: str | None = None  # owning process (thread) or None for globals
    doc: str = ""

    def __repr__(self) -> str:
        return f"Var({self.name})"


# ---------------------------------------------------------------- expressions


class Expr:
    """Base of the tiny expression language; immutable trees."""

    __slots__ = ()

    def vars(self) -> set[Var]:
        out: set[Var] = set()
        _collect(self, out)
        return out


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: int


@dataclass(frozen=True, eq=False)
class Ref(Expr):
    var: Var


@dataclass(frozen=True, eq=False)
class Op(Expr):
    op: str  # one of OPS
    args: tuple[Expr, ...]


OPS = {"not", "and", "or", "==", "!=", "<", "<=", ">", ">=", "+", "-", "ite"}


def _collect(e: Expr, out: set[Var]) -> None:
    if isinstance(e, Ref):
        out.add(e.var)
    elif isinstance(e, Op):
        for a in e.args:
            _collect(a, out)


def lift(x: Expr | Var | int | bool) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, Var):
        return Ref(x)
    if isinstance(x, (bool, int)):
        return Const(int(x))
    raise TypeError(f"not an expression: {x!r}")


TRUE = Const(1)
FALSE = Const(0)

ExprLike = Expr | Var | int | bool


def Not(a: ExprLike) -> Expr:
    a = lift(a)
    if isinstance(a, Const):
        return Const(int(not a.value))
    return Op("not", (a,))


def And(*xs: ExprLike) -> Expr:
    args: list[Expr] = []
    for x in xs:
        e = lift(x)
        if isinstance(e, Const):
            if not e.value:
                return FALSE
            continue
        if isinstance(e, Op) and e.op == "and":
            args.extend(e.args)
        else:
            args.append(e)
    if not args:
        return TRUE
    if len(args) == 1:
        return args[0]
    return Op("and", tuple(args))


def Or(*xs: ExprLike) -> Expr:
    args: list[Expr] = []
    for x in xs:
        e = lift(x)
        if isinstance(e, Const):
            if e.value:
                return TRUE
            continue
        if isinstance(e, Op) and e.op == "or":
            args.extend(e.args)
        else:
            args.append(e)
    if not args:
        return FALSE
    if len(args) == 1:
        return args[0]
    return Op("or", tuple(args))


def _bin(op: str, a: ExprLike, b: ExprLike) -> Expr:
    return Op(op, (lift(a), lift(b)))


def Eq(a: ExprLike, b: ExprLike) -> Expr:
    return _bin("==", a, b)


def Ne(a: ExprLike, b: ExprLike) -> Expr:
    return _bin("!=", a, b)


def Lt(a: ExprLike, b: ExprLike) -> Expr:
    return _bin("<", a, b)


def Le(a: ExprLike, b: ExprLike) -> Expr:
    return _bin("<=", a, b)


def Gt(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(">", a, b)


def Ge(a: ExprLike, b: ExprLike) -> Expr:
    return _bin(">=", a, b)


def Add(a: ExprLike, b: ExprLike) -> Expr:
    return _bin("+", a, b)


def Sub(a: ExprLike, b: ExprLike) -> Expr:
    return _bin("-", a, b)


def Ite(c: ExprLike, a: ExprLike, b: ExprLike) -> Expr:
    c = lift(c)
    if isinstance(c, Const):
        return lift(a) if c.value else lift(b)
    return Op("ite", (c, lift(a), lift(b)))


def In(a: ExprLike, lo: int, hi: int) -> Expr:
    """lo <= a < hi (half-open, like the kernel's in_rseq_cs)."""
    if hi <= lo:
        return FALSE
    if hi == lo + 1:
        return Eq(a, lo)
    return And(Ge(a, lo), Lt(a, hi))


def evaluate(e: Expr, env: dict[Var, int]) -> int:
    """Reference interpreter (used by replay and tests, not by the engines)."""
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Ref):
        return env[e.var]
    assert isinstance(e, Op)
    op, a = e.op, e.args
    if op == "not":
        return int(not evaluate(a[0], env))
    if op == "and":
        return int(all(evaluate(x, env) for x in a))
    if op == "or":
        return int(any(evaluate(x, env) for x in a))
    if op == "ite":
        return evaluate(a[1], env) if evaluate(a[0], env) else evaluate(a[2], env)
    x, y = evaluate(a[0], env), evaluate(a[1], env)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    return int(COMPARISONS[op](x, y))


# Comparison operators of the IR; Python's operators, so they apply as well
# to Z3 terms (checker/engines/symbolic.py).
COMPARISONS = {
    "==": lambda x, y: x == y,
    "!=": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


# ------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Action:
    """A guarded command.  `label` reads like the kernel or the user
    instruction (it shows verbatim in traces); `kernel_fn` names the kernel
    function modelled, `rule` the rule choice that made this action exist."""

    label: str
    guard: Expr
    updates: tuple[tuple[Var, Expr], ...]
    proc: str  # process for partial-order reduction ("T0", ...)
    actor: str  # context shown in traces ("T0", "T0.h1", "kernel", "env")
    kernel_fn: str = ""
    rule: str = ""
    tags: frozenset[str] = frozenset()

    def reads(self) -> set[Var]:
        out = self.guard.vars()
        for _, e in self.updates:
            out |= e.vars()
        return out

    def writes(self) -> set[Var]:
        return {v for v, _ in self.updates}


@dataclass(frozen=True)
class Property:
    """An invariant: `holds` must be true in every reachable state.
    `trigger_tag` names the action tag whose firing makes the check
    non-vacuous; None means it is never vacuous."""

    name: str
    holds: Expr
    doc: str
    trigger_tag: str | None = None


@dataclass(frozen=True)
class Goal:
    """A property of whole runs (liveness) or of the reachable set, read
    by the engines without knowing what it means.  A run is a maximal
    path from the initial state: infinite, or ending in a state with no
    successor (a terminal state), which then repeats forever.

    kind "sometimes":   some reachable state satisfies `target` (EF).
    kind "eventually":  every fair run visits a state satisfying `target`
                        (AF); a violation is a fair run that never does.
    kind "recurrence":  every fair run that takes a `trigger` action
                        infinitely often (any run, if `trigger` is None)
                        visits `target` or takes a `release` action
                        infinitely often (GF trigger -> GF release); a
                        violation is a fair run that from some point on
                        stays out of `target` and takes no `release`
                        action, taking `trigger` actions forever.
    `trigger`/`release` name action tags, restricted to actions of
    process `proc` when it is given.  `detail` says which instance of a
    named property this is (the thread, for per-thread properties)."""

    name: str
    kind: str  # "sometimes" | "eventually" | "recurrence"
    doc: str
    target: Expr = FALSE
    trigger: str | None = None
    release: str | None = None
    proc: str | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.name} ({self.detail})" if self.detail else self.name

    def matches(self, tag: str | None, action: Action) -> bool:
        return tag is not None and tag in action.tags and (self.proc is None or action.proc == self.proc)


@dataclass(frozen=True)
class Fairness:
    """A fairness assumption on a set of actions (indices into
    System.actions).  weak: a run on which one of them stays enabled
    from some point on takes one of them infinitely often; strong: a run
    on which one of them is enabled infinitely often takes one of them
    infinitely often.  Only goals (liveness) read it."""

    name: str
    kind: str  # "weak" | "strong"
    actions: frozenset[int]


@dataclass
class System:
    vars: list[Var]
    init: dict[Var, int]
    actions: list[Action]
    properties: list[Property]
    terminal: Expr = field(default_factory=lambda: FALSE)  # no successors here
    meta: dict = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)  # liveness and reachability
    fairness: list[Fairness] = field(default_factory=list)
    # automorphisms (model/symmetry.py), per variable index: (index it moves
    # to, value renaming or None); engines may search one state per orbit
    symmetries: list[list[tuple[int, dict[int, int] | None]]] = field(default_factory=list)
    # the same group, when it permutes one set of members freely: per member
    # its variables and the value maps to the first member's, the variables
    # naming a member and each member's name (model/symmetry.py:thread_group)
    symmetry_group: tuple | None = None

    def validate(self) -> None:
        names = [v.name for v in self.vars]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ModelError(f"duplicate variables: {dup}")
        known = set(self.vars)
        for v in self.vars:
            if v not in self.init:
                raise ModelError(f"{v.name} has no initial value")
            x = self.init[v]
            if not v.type.lo <= x <= v.type.hi:
                raise ModelError(f"initial {v.name}={x} outside {v.type.lo}..{v.type.hi}")
        for a in self.actions:
            for v in a.reads() | a.writes():
                if v not in known:
                    raise ModelError(f"action {a.label!r} uses undeclared {v.name}")
        for p in self.properties:
            for v in p.holds.vars():
                if v not in known:
                    raise ModelError(f"property {p.name} uses undeclared {v.name}")
        for g in self.goals:
            for v in g.target.vars():
                if v not in known:
                    raise ModelError(f"goal {g.key} uses undeclared {v.name}")
        for f in self.fairness:
            if any(not 0 <= i < len(self.actions) for i in f.actions):
                raise ModelError(f"fairness {f.name} names an action that does not exist")

    def index(self) -> dict[Var, int]:
        return {v: i for i, v in enumerate(self.vars)}

    def initial_state(self) -> tuple[int, ...]:
        return tuple(self.init[v] for v in self.vars)

    def var(self, name: str) -> Var:
        for v in self.vars:
            if v.name == name:
                return v
        raise KeyError(name)

    def state_dict(self, state: Sequence[int]) -> dict[str, int]:
        return {v.name: int(x) for v, x in zip(self.vars, state)}


def conjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Op) and e.op == "and":
        return list(e.args)
    if isinstance(e, Const) and e.value:
        return []
    return [e]


def assign(*pairs: tuple[Var, ExprLike]) -> tuple[tuple[Var, Expr], ...]:
    seen: set[Var] = set()
    out = []
    for v, e in pairs:
        if v in seen:
            raise ModelError(f"{v.name} assigned twice in one action")
        seen.add(v)
        out.append((v, lift(e)))
    return tuple(out)


def merge_updates(*groups: Iterable[tuple[Var, ExprLike]]) -> tuple[tuple[Var, Expr], ...]:
    """Concatenate assignment groups; a later group overrides an earlier one."""
    d: dict[Var, Expr] = {}
    for g in groups:
        for v, e in g:
            d[v] = lift(e)
    return tuple(d.items())

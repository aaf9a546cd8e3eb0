"""Observable outcomes of a model, herd7-style: explore the whole reachable
state space (no partial-order reduction, no depth bound) and project every
final state onto how the run ended and the final values of chosen variables.

The exploration and the projection are generic: they read variables by the
names a `Projection` gives them.  `projection_for` is the small adapter that
knows which variables the spec builder creates (`killed`, `bad`, `T.k`, the
user variables of `store`/`assert`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rseqcheck.checker.engines.compile import compile_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import System
from rseqcheck.model.program import AExpr, expr_vars
from rseqcheck.model.signals import SIGNUM
from rseqcheck.model.spec import Spec


@dataclass(frozen=True, order=True)
class Outcome:
    """How a run ended ("exit", "killed by SIGSEGV", ...) and the final values
    of the observed variables, sorted by name."""

    end: str
    values: tuple[tuple[str, int], ...] = ()

    def __str__(self) -> str:
        vals = " ".join(f"{k}={v}" for k, v in self.values)
        return f"{self.end}; {vals}" if vals else self.end

    def value(self, name: str) -> int:
        return dict(self.values)[name]


@dataclass(frozen=True)
class Projection:
    """Which variables make an outcome.  Generic: names only.

    halts:   (enum variable, prefix): a non-zero value ends the run as
             "<prefix> <value name>" (e.g. ("killed", "killed by"))
    done:    (variable, value) pairs that all hold when the run ended normally
             ("exit"); a final state matching neither is "stuck"
    observe: the variables whose final values are reported
    """

    halts: tuple[tuple[str, str], ...]
    done: tuple[tuple[str, int], ...]
    observe: tuple[str, ...]


@dataclass
class OutcomeSet:
    counts: Counter[Outcome]  # outcome -> number of distinct final states
    states: int
    transitions: int
    seconds: float
    complete: bool = True  # False: a state limit or timeout stopped the search
    reason: str = ""
    observe: tuple[str, ...] = ()  # the variables of each outcome

    @property
    def allowed(self) -> set[Outcome]:
        return set(self.counts)


class Incomplete(Exception):
    """The state space is too large for the limits given."""


def final_outcomes(
    system: System, proj: Projection, max_states: int | None = 2_000_000, timeout: float | None = None
) -> OutcomeSet:
    """Full BFS; every state without successors (or terminal for the system)
    contributes its projected outcome once."""
    comp = compile_system(system)
    project = projector(system, proj)
    t0 = time.monotonic()
    init = system.initial_state()
    seen = {init}
    todo = deque([init])
    counts: Counter[Outcome] = Counter()
    transitions = 0
    out: list = []
    while todo:
        s = todo.popleft()
        if not comp.terminal(s):
            out.clear()
            comp.succ(s, out)
            transitions += len(out)
        else:
            out.clear()
        if not out:
            counts[project(s)] += 1
            continue
        for _, t in out:
            if t not in seen:
                seen.add(t)
                todo.append(t)
        if max_states is not None and len(seen) > max_states:
            return OutcomeSet(counts, len(seen), transitions, time.monotonic() - t0, False,
                              f"more than {max_states:,} states", proj.observe)
        if timeout is not None and len(seen) % 4096 == 0 and time.monotonic() - t0 > timeout:
            return OutcomeSet(counts, len(seen), transitions, time.monotonic() - t0, False,
                              f"timeout after {timeout:g} s", proj.observe)
    return OutcomeSet(counts, len(seen), transitions, time.monotonic() - t0, observe=proj.observe)


def projector(system: System, proj: Projection) -> Callable[[tuple], Outcome]:
    """The function from a (final) state of `system` to its outcome."""
    idx = {v.name: i for i, v in enumerate(system.vars)}
    halts = [(idx[n], prefix, system.vars[idx[n]].type) for n, prefix in proj.halts]
    done = [(idx[n], val) for n, val in proj.done]
    obs = [(n, idx[n]) for n in sorted(proj.observe)]

    def project(s: tuple) -> Outcome:
        end = None
        for i, prefix, typ in halts:
            if s[i]:
                end = f"{prefix} {typ.fmt(s[i])}"
                break
        if end is None:
            end = "exit" if all(s[i] == v for i, v in done) else "stuck"
        return Outcome(end, tuple((n, s[i]) for n, i in obs))

    return project


# ------------------------------------------------------------ the adapter


def outcome_spec(spec: Spec, rules: dict[str, str] | None = None) -> Spec:
    """The spec as outcomes see it: property monitors replace ordinary steps
    by a stop (e.g. a syscall inside an armed section), so only the
    monitor-free `no-unexpected-kill` is kept; `rules` overrides rules."""
    merged = dict(spec.rules)
    merged.update(rules or {})
    return dataclasses.replace(spec, properties=("no-unexpected-kill",), rules=merged)


def projection_for(system: System) -> Projection:
    """Variable names of a system built by model.build (the only code here
    that knows the builder's layout)."""
    from rseqcheck.model.builder import PHASES

    b = system.meta["builder"]
    halts = [(b.killed.name, "killed by")]
    if len(b.bad.type.names or ()) > 1:
        halts.append((b.bad.name, "violation of"))
    dead = PHASES.index("DEAD")
    slots = tuple(v.name for vs in b.slots.values() for v in vs)  # per-CPU arrays: NAME[N]
    return Projection(tuple(halts), tuple((t.k.name, dead) for t in b.threads), tuple(b.uvars) + slots)


def model_outcomes(spec: Spec, rules: dict[str, str] | None = None, **limits) -> OutcomeSet:
    from rseqcheck.model.build import build_system

    system = build_system(outcome_spec(spec, rules))
    proj = projection_for(system)
    validate_condition(spec, set(proj.observe))
    return final_outcomes(system, proj, **limits)


# ------------------------------------------------------- [outcomes] checks

ENDS = ("exit", "stuck")


def end_names() -> list[str]:
    """Names a condition may compare `end` with: exit, stuck, SIGx (killed by)."""
    return [*ENDS, *SIGNUM]


@dataclass
class CheckResult:
    kind: str  # "exists" | "forall"
    text: str
    ok: bool
    witnesses: list[Outcome] = field(default_factory=list)  # satisfying (exists) / violating (forall)

    def line(self) -> str:
        return f"{'Ok' if self.ok else 'No'}: {self.kind} {self.text}"


def _end_code(end: str) -> int:
    if end.startswith("killed by "):
        return 100 + SIGNUM[end.removeprefix("killed by ")]
    if end in ENDS:
        return ENDS.index(end)
    return 99  # "violation of P": matches no name


def eval_condition(e: AExpr, o: Outcome) -> int:
    """Value of an [outcomes] condition on one outcome.  `end` is the end of
    the run; `exit`, `stuck` and signal names are the ends it may equal."""
    if e.op == "int":
        return e.args[0]
    if e.op == "var":
        n = e.args[0]
        if n == "end":
            return _end_code(o.end)
        if n in ENDS:
            return ENDS.index(n)
        if n in SIGNUM:
            return 100 + SIGNUM[n]
        return o.value(n)
    if e.op == "!":
        return int(not eval_condition(e.args[0], o))
    if e.op == "&&":
        return int(bool(eval_condition(e.args[0], o)) and bool(eval_condition(e.args[1], o)))
    if e.op == "||":
        return int(bool(eval_condition(e.args[0], o)) or bool(eval_condition(e.args[1], o)))
    x, y = eval_condition(e.args[0], o), eval_condition(e.args[1], o)
    return {
        "==": lambda: int(x == y), "!=": lambda: int(x != y), "<": lambda: int(x < y),
        "<=": lambda: int(x <= y), ">": lambda: int(x > y), ">=": lambda: int(x >= y),
        "+": lambda: x + y, "-": lambda: x - y,
    }[e.op]()  # fmt: skip


def condition_names(e: AExpr) -> set[str]:
    return expr_vars(e)


def validate_condition(spec: Spec, uvars: set[str]) -> None:
    """Every name in the spec's [outcomes] condition is `end`, an end name or
    a user variable of the programs."""
    oc = spec.outcomes
    if oc is None:
        return
    reserved = {"end", *end_names()}
    for n in sorted(uvars & reserved):
        raise SpecError(spec.path, oc.line, f"user variable {n!r} clashes with a name of [outcomes] conditions")
    for n in sorted(condition_names(oc.expr) - reserved - uvars):
        known = ", ".join(sorted(uvars)) or "none"
        raise SpecError(spec.path, oc.line, f"[outcomes] {oc.kind}: unknown variable {n!r} "
                        f"(user variables: {known}; also end, exit, stuck, SIGx)")


def check_condition(spec: Spec, outcomes: set[Outcome]) -> CheckResult | None:
    oc = spec.outcomes
    if oc is None:
        return None
    sat = sorted(o for o in outcomes if eval_condition(oc.expr, o))
    if oc.kind == "exists":
        return CheckResult("exists", oc.text, bool(sat), sat)
    bad = sorted(o for o in outcomes if not eval_condition(oc.expr, o))
    return CheckResult("forall", oc.text, not bad, bad)


# ------------------------------------------------------------ for `verify`


def verify_outcomes(
    spec: Spec, system: System | None = None, max_states: int | None = 2_000_000, timeout: float | None = None
) -> tuple[bool | None, str]:
    """Whether the spec's [outcomes] condition holds in the model, and one
    line saying so: (True|False, msg); (None, msg) when the search was cut
    by `max_states`/`timeout`; (None, "") when the spec has no [outcomes].

    `system` is the spec's System as `verify` built it; it is reused when no
    property monitor can stop a step (only no-unexpected-kill is checked),
    otherwise the outcomes come from the monitor-free system, as
    `rseqcheck outcomes` computes them (a monitor would end a run early)."""
    if spec.outcomes is None:
        return None, ""
    if system is not None and len(system.meta["builder"].bad_names) == 1:
        proj = projection_for(system)
        validate_condition(spec, set(proj.observe))
        res = final_outcomes(system, proj, max_states=max_states, timeout=timeout)
    else:
        res = model_outcomes(spec, max_states=max_states, timeout=timeout)
    oc = spec.outcomes
    head = f"[outcomes] {oc.kind} ({oc.text})"
    exp = " (expected: fails)" if oc.expect == "fails" else ""
    if not res.complete:
        return None, f"{head}: unknown, {res.reason} ({len(res.counts)} outcomes found so far)"
    chk = check_condition(spec, res.allowed)
    assert chk is not None
    n = len(res.counts)
    if chk.ok:
        how = f"{len(chk.witnesses)} of {n} allowed outcomes satisfy it" if chk.kind == "exists" else \
            f"all {n} allowed outcomes satisfy it"
        return True, f"{head} holds: {how}{exp}"
    if chk.kind == "exists":
        return False, f"{head} fails: none of the {n} allowed outcomes satisfies it{exp}"
    shown = "; ".join(f"[{o}]" for o in chk.witnesses[:2])
    more = f" and {len(chk.witnesses) - 2} more" if len(chk.witnesses) > 2 else ""
    return False, f"{head} fails: the model allows {shown}{more}{exp}"

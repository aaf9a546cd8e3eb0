"""Warnings beside a verdict: what a "holds" does not cover.

A verdict can be right and still say little: a property whose trigger never
fired, signals listed but never sent, a handler that never runs, a label no
execution reaches, a rule override whose steps are never taken, a search
cut by its depth bound.  Each is a `Caveat`; `verify` prints them in every
format and `--strict` turns them into exit status 5.

Coverage comes from the actions the engine saw fire (`SearchResult.fired`):
complete for the explicit engine (partial-order reduction keeps every action
that can fire), up to the bound when the bound cut the search, and partial
for bmc and induction (they establish only the property triggers), so the
code and rule warnings come from the explicit engine only.  After a
violation the search stopped early: only the static warnings apply.

Like `checker.outcomes.projection_for`, this reads the builder's layout
(`system.meta["builder"]`: code segments, thread variables) by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rseqcheck.checker.engines.explicit import SearchResult
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import Action, Const, ModelError, Op, Ref, System
from rseqcheck.model.rules import ALIASES, RULES
from rseqcheck.model.spec import Spec

KINDS = ("vacuous", "no-signals", "never-runs", "unreached-label", "rule-unused", "bound")


@dataclass(frozen=True)
class Caveat:
    kind: str  # one of KINDS
    message: str
    line: int | None = None  # the spec line it is about

    def text(self) -> str:
        return f"warning[{self.kind}]: {self.message}"

    def record(self) -> dict:
        return {"kind": self.kind, "message": self.message, "line": self.line}


def caveats(spec: Spec, system: System, res: SearchResult, vacuous: list[str]) -> list[Caveat]:
    """Every warning for one checked spec, static ones first."""
    out = static_caveats(spec)
    if res.verdict == "unknown":
        return out
    out += [Caveat("vacuous", f"{p} is vacuous here: its trigger never occurred") for p in vacuous]
    if res.verdict == "holds" and not res.exhausted:
        out.append(Caveat("bound", bound_message(res)))
    if res.verdict == "holds" and res.engine == "explicit":
        within = "" if res.exhausted else f" within depth {res.bound}"
        out += code_caveats(spec, system, res.fired, within)
        out += rule_caveats(spec, system, res.fired, within)
    else:
        out += rule_caveats(spec, system, None)  # the static part only
    return out


def bound_message(res: SearchResult) -> str:
    if res.engine == "induction":
        return f"induction did not close: holds only for executions of at most {res.bound} steps"
    if res.engine == "bmc":
        return (f"bmc checked executions of at most {res.bound} steps and longer ones exist: holds only "
                f"up to there (raise [check] depth or --depth, or --engine induction)")
    return (f"the search stopped at depth {res.bound} with states left: holds only for executions "
            f"of at most {res.bound} steps (raise [check] depth or --depth)")


def static_caveats(spec: Spec) -> list[Caveat]:
    """What the spec text alone shows does nothing."""
    env = spec.env
    if env.signals and not env.max_signals:
        line = spec.lines.get(("environment", "signals"))
        return [Caveat("no-signals", f"signals = {list(env.signals)}{_at(line)} but max_signals = 0: the "
                       "environment sends no signal", line)]
    return []


_CTX = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.h([0-9]+))?")


def executed(system: System, fired: set[int]) -> set[int]:
    """The code indices (ips) of the user instructions some fired action
    executes: its guard pins its own context's ip (`T.ip<d> == pc`)."""
    ips = {v.name: v for v in system.vars if re.fullmatch(r".+\.ip[0-9]+", v.name)}
    out: set[int] = set()
    for a in fired:
        pc = _pinned_ip(system.actions[a], ips)
        if pc is not None:
            out.add(pc)
    return out


def _pinned_ip(a: Action, ips: dict) -> int | None:
    m = _CTX.fullmatch(a.actor)
    if not m:
        return None  # a kernel step (T0:kernel) or the environment
    var = ips.get(f"{m[1]}.ip{m[2] or 0}")
    conj = a.guard.args if isinstance(a.guard, Op) and a.guard.op == "and" else (a.guard,)
    for c in conj:
        if isinstance(c, Op) and c.op == "==":
            x, y = c.args
            if isinstance(x, Ref) and x.var is var and isinstance(y, Const):
                return y.value
    return None


def code_caveats(spec: Spec, system: System, fired: set[int], within: str = "") -> list[Caveat]:
    """A thread or handler whose code never runs, else its labels that no
    execution reaches (a label past the last instruction is not checked)."""
    b = system.meta["builder"]
    ran = executed(system, fired)
    out: list[Caveat] = []
    lines = {t.name: t.line for t in spec.threads}
    for seg in b.segments:
        pcs = range(seg.base, seg.base + len(seg.instrs))
        if not any(pc in ran for pc in pcs):
            if seg.kind == "handler":
                sig = seg.name.removeprefix("handler ")
                h = spec.handlers.get(sig)
                line = h.line if h else None
                out.append(Caveat("never-runs", f"[handler.{sig}]{_at(line)} never runs{within}: {sig} is "
                                  "never delivered to it", line))
            else:
                line = lines.get(seg.name)
                out.append(Caveat("never-runs", f"[thread.{seg.name}]{_at(line)} never runs{within}", line))
            continue
        missed = [(lab, seg.instrs[i].line) for lab, i in sorted(seg.labels.items(), key=lambda x: x[1])
                  if i < len(seg.instrs) and seg.base + i not in ran]
        if missed:
            where = seg.name.replace("handler ", "handler.")
            labs = ", ".join(f"{lab}{_at(line)}" for lab, line in missed)
            s = "s" if len(missed) > 1 else ""
            out.append(Caveat("unreached-label", f"{where}: label{s} never reached{within}: {labs}", missed[0][1]))
    return out


def _at(line: int | None) -> str:
    return f" (line {line})" if line else ""


def _signature(a: Action) -> tuple:
    # repr: expressions compare by identity, their repr by structure
    return (a.actor, a.label, a.kernel_fn, a.rule, repr(a.updates))


def rule_caveats(spec: Spec, system: System, fired: set[int] | None, within: str = "") -> list[Caveat]:
    """A rule the spec overrides that changes nothing (every choice builds
    the same model) or, given the actions that `fired`, whose steps never
    fire.  A rule's steps are the actions this system has and the system
    built with another choice of that rule lacks (same context, label,
    function and updates).  A choice that only removes steps or only
    changes guards adds none: nothing is said about it (no false alarm)."""
    out: list[Caveat] = []
    took = {_signature(system.actions[a]) for a in fired or ()}
    own = {_signature(a) for a in system.actions}
    whole = [(repr(a.guard), _signature(a)) for a in system.actions]
    for name, choice in spec.rules.items():
        added: set[tuple] = set()
        same = True  # every other choice builds this very model
        for other in RULES[name].choices:
            if other == choice:
                continue
            try:
                alt = build_system(replace(spec, rules={**spec.rules, name: other}))
            except (SpecError, ModelError):  # a choice this spec cannot be built with tells nothing
                same = False
                continue
            added |= own - {_signature(a) for a in alt.actions}
            same = same and [(repr(a.guard), _signature(a)) for a in alt.actions] == whole
        line = _rule_line(spec, name)
        if same:
            out.append(Caveat("rule-unused", f"rule {name} = {choice}{_at(line)} changes nothing here: every "
                              "choice of it builds the same model", line))
        elif fired is not None and added and not added & took:
            step = min(added)[1]
            out.append(Caveat("rule-unused", f"rule {name} = {choice}{_at(line)}: none of the steps it adds "
                              f"is ever taken{within} (e.g. '{step}')", line))
    return out


def _rule_line(spec: Spec, name: str) -> int | None:
    """The line of the override, written under its name or an alias."""
    for key, line in spec.lines.items():
        if len(key) == 2 and key[0] == "rules" and ALIASES.get(key[1], key[1]) == name:
            return line
    return None

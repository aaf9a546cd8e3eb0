"""Progress properties and fairness: what a liveness verdict means.

The engines see only `ir.Goal` and `ir.Fairness` (model/ir.py); this
module says what they are for a spec.

  rseq-cs-progress  per thread T: GF(T arms a section) -> GF(T commits one).
                    Arming is the user instruction `rseq_cs NAME`; a commit
                    is a user step of T from inside [start, post_commit)
                    that lands on post_commit (the step after which
                    kernel/rseq.c:rseq_ip_fixup no longer moves the ip to
                    abort_ip, since in_rseq_cs() is false there).
  syscall-progress  per thread T: no fair run keeps T in a syscall's entry
                    work or body (phases ENTRY, BODY, BLOCKED: between the
                    `syscall` instruction and syscall_exit_to_user_mode_work
                    in kernel/entry/common.c) forever; a kill ends the run.
  terminates        every fair run reaches a state where every thread is
                    DEAD (do_exit) or was never created, or the process
                    was killed.
  always/eventually/sometimes EXPR   over user variables ([check]).

Fairness ([fairness] in a spec; docs/spec-format.md):
  threads = "weak" (default): per thread, weak fairness of its user steps
    (its contexts T, T.h1, ...) and, separately, of its kernel steps
    (T:kernel): a thread that can go on forever does go on.  "strong":
    strong fairness of the same sets (a step enabled infinitely often is
    taken infinitely often: rules out, e.g., a timer that preempts the
    thread before every user instruction).  "none": no assumption.
  environment = false (default): signals, timer interrupts, migrations and
    task_work may stop happening at any point; true: weak fairness of each
    environment event (each action of actor `env`).
"""

from __future__ import annotations

from dataclasses import replace

from rseqcheck.model.builder import PHASES, TV, Builder, Case
from rseqcheck.model.data import to_ir
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import FALSE, And, Const, Eq, Expr, Fairness, Goal, Ne, Not, Or, Property, Var
from rseqcheck.model.program import expr_vars
from rseqcheck.model.properties import PROPERTIES
from rseqcheck.model.spec import FairnessSpec

SYSCALL_PHASES = ("ENTRY", "BODY", "BLOCKED")
ENTER_TAG = "cs-enter"
COMMIT_TAG = "cs-commit"


def tag_cases(b: Builder, t: TV, d: int, pc: int, op: str, arg0: object, cases: list[Case],
              common: dict[Var, Expr]) -> list[Case]:
    """rseq-cs-progress: tag the cases of the user instruction at `pc`
    that arm a section (ENTER_TAG) or commit one (COMMIT_TAG)."""
    if "rseq-cs-progress" not in b.checked:
        return cases
    out = []
    for c in cases:
        if b.killed in c.updates or b.bad in c.updates:
            out.append(c)
            continue
        extra: set[str] = set()
        if op == "rseq_cs" and arg0 != "0":
            extra.add(ENTER_TAG)
        ip = c.updates.get(t.ip[d], common.get(t.ip[d]))
        if isinstance(ip, Const) and any(cs.start <= pc < cs.post and ip.value == cs.post for cs in b.cs):
            extra.add(COMMIT_TAG)
        out.append(replace(c, tags=c.tags | extra) if extra else c)
    return out


def goals(b: Builder) -> tuple[list[Goal], list[Property]]:
    """The goals of the checked progress properties and user properties,
    and the invariants `always EXPR` adds."""
    out: list[Goal] = []
    invariants: list[Property] = []
    for name in b.spec.properties:  # in the order written: the first violated one is reported
        info = PROPERTIES.get(name)
        if info is not None and info.kind == "progress":
            out += _progress(b, name, info.doc)
        up = b.spec.user_props.get(name)
        if up is None:
            continue
        for v in _names(up.expr):
            if v.startswith(("tls.", "rseq.", "%r")) or "[%r" in v:
                raise SpecError(b.spec.path, up.line, f"{name!r}: {v} is per thread; a property reads global user "
                                "variables and per-CPU slots (ARRAY[N])")
        expr = to_ir(up.expr, b, b.threads[0], up.line)
        if up.kind == "always":
            invariants.append(Property(name, expr, f"Every reachable state satisfies {up.text}."))
        else:
            doc = (f"Every fair run reaches a state where {up.text}." if up.kind == "eventually"
                   else f"Some reachable state satisfies {up.text}.")
            out.append(Goal(name, up.kind, doc, expr))
    return out, invariants


def _names(e) -> set[str]:
    return expr_vars(e)


def _progress(b: Builder, name: str, doc: str) -> list[Goal]:
    killed = Ne(b.killed, 0)
    if name == "terminates":
        ended = [Or(Eq(t.k, PHASES.index("DEAD")), Eq(t.k, PHASES.index("NEW"))) for t in b.threads]
        return [Goal(name, "eventually", doc, Or(killed, And(*ended)))]
    if name == "syscall-progress":
        return [Goal(name, "recurrence", doc,
                     Or(killed, Not(Or(*[Eq(t.k, PHASES.index(p)) for p in SYSCALL_PHASES]))), proc=t.name,
                     detail=t.name) for t in b.threads]
    assert name == "rseq-cs-progress"
    return [Goal(name, "recurrence", doc, FALSE, trigger=ENTER_TAG, release=COMMIT_TAG, proc=t.name, detail=t.name)
            for t in b.threads]


def fairness(b: Builder) -> list[Fairness]:
    """The fairness sets of the spec's [fairness] (module docstring)."""
    f = b.spec.fairness
    out: list[Fairness] = []
    if f.threads != "none":
        for t in b.threads:
            user = frozenset(i for i, a in enumerate(b.actions) if a.proc == t.name and a.actor in _contexts(b, t))
            kern = frozenset(i for i, a in enumerate(b.actions) if a.proc == t.name and a.actor == b.kernel_actor(t))
            for what, acts in (("user steps", user), ("kernel steps", kern)):
                if acts:
                    out.append(Fairness(f"{t.name} {what}", f.threads, acts))
    if f.environment:
        for i, a in enumerate(b.actions):
            if a.actor == "env":
                out.append(Fairness(f"env: {a.label}", "weak", frozenset({i})))
    return out


def _contexts(b: Builder, t: TV) -> set[str]:
    return {b.ctx_name(t, d) for d in range(b.N + 1)}


def describe(f: FairnessSpec) -> str:
    """One line for a liveness verdict: what fair meant."""
    th = {"weak": "weak fairness of each thread's user steps and of its kernel steps",
          "strong": "strong fairness of each thread's user steps and of its kernel steps",
          "none": "no fairness of threads"}[f.threads]
    env = "each environment event weakly fair" if f.environment else "the environment may stop at any point"
    return f"{th}; {env}"

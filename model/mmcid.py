"""The per-mm concurrency id (mm_cid) and the area's rseq.mm_cid field
(6.3+, rule rseq.mm_cid).

Sources: 'sched: Introduce per-memory-map concurrency ID' (af7f588d8f73,
6.3): an id "temporarily (and uniquely) assigned while threads are
actively running within a memory map", within the possible CPUs, close to
0 when the mm has fewer threads or allowed CPUs than the machine has CPUs;
kernel/sched/sched.h:switch_mm_cid gives the next task its id at each
context switch (6.3: lowest free bit; 6.4-6.18: the id cached for the mm
on that CPU, reclaimed lazily; the 2025-2026 rework: the task's last id
if free, else the CPU's, else the lowest free, below min(allowed CPUs,
users)); rseq_update_cpu_node_id (legacy) and rseq_set_ids (R1/R2) copy
it into the area with the CPU ids; R1/R2 mark ids_changed when it differs
from the last one written (rseq_sched_set_task_mm_cid) and raise the work
at the switch-in (rseq_sched_switch_event comes after switch_mm_cid).

What the model keeps, for every kernel at once:
  T.cid          the id T got at its last switch-in; it counts only while
                 T is on a CPU (cpuN.curr)
  rseq.mm_cid    the area's field, written with the ids
At every switch-in (a schedule that keeps T on its CPU, a switch to
another thread, an idle CPU picking a thread) the id is any value below
K = min(cpus, threads of the spec) that no other running thread holds:
one action per value (a value another running thread holds falls back to
the lowest free one).  So two threads never run with the same id, and an
id changes only at a switch, which also raises rseq_preempt: a critical
section that read the old id aborts.  Fork children (another mm),
execve, ioctl_kvm_run and threads that start out waiting for a CPU are
refused.
"""

from __future__ import annotations

from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import And, Const, Eq, Expr, Ite, Ne, Not, Or, Var

SWITCH = "kernel/sched/sched.h:switch_mm_cid"


def limit(b) -> int:
    """K: ids are below min(CPUs, threads) (mm_cid's max_cids)."""
    return min(b.env.cpus, len(b.spec.threads))


def check(b, line: int) -> None:
    """What the model of mm_cid cannot express (spec errors at `line`)."""
    path = b.spec.path
    if b.rules["rseq.mm_cid"] != "present":
        raise SpecError(path, line, f"rseq.mm_cid: struct rseq has no mm_cid before 6.3 ({b.spec.preset}: "
                        "rule rseq.mm_cid = absent)")
    for _, ins in b.code:
        if ins.op in ("fork", "execve"):
            raise SpecError(path, ins.line, f"{ins.op} with rseq.mm_cid is not modelled (a new mm has ids of its own)")
        if ins.op == "syscall" and ins.args[0] == "ioctl_kvm_run":
            # its guest-entry path writes the ids while the task is switched out
            raise SpecError(path, ins.line, "ioctl_kvm_run with rseq.mm_cid is not modelled")
    starts = [t for t in b.spec.threads if t.name not in b.spawns]
    cpus = [t.cpu or 0 for t in starts]
    if len(set(cpus)) < len(cpus):
        raise SpecError(path, line, "rseq.mm_cid: threads that start on one CPU are not modelled "
                        "(give each thread running from the start a CPU of its own)")


def initial(b, t) -> int:
    """The id of a thread running from the start (in declaration order, as
    the first switch-ins would give them); -1 for a thread not created yet."""
    starts = [x.name for x in b.spec.threads if x.name not in b.spawns]
    return starts.index(t.name) if t.name in starts else -1


def _held(b, u, v: int, cid: Expr | None = None) -> Expr:
    return And(b.on_cpu(u), Eq(u.cid if cid is None else cid, v))


def _free(b, t, v: int, skip: tuple = ()) -> Expr:
    return And(*[Not(_held(b, u, v)) for u in b.threads if u is not t and u not in skip and u.cid is not None])


def _choice(b, t, v: int, skip: tuple = ()) -> Expr:
    """v if no other running thread holds it, else the lowest free id."""
    out: Expr = Const(0)
    for w in range(limit(b) - 1, -1, -1):
        out = Ite(_free(b, t, w, skip), Const(w), out)
    return Ite(_free(b, t, v, skip), Const(v), out)


def switch_in(b, t, v: int, when: Expr | None = None, skip: tuple = ()) -> dict[Var, Expr]:
    """T is switched in and gets id choice v (`when`: only if it holds):
    T.cid, and in R1/R2 ids_changed and the raised work when it differs."""
    if t.cid is None:
        return {}
    new = _choice(b, t, v, skip)
    ups: dict[Var, Expr] = {t.cid: new if when is None else Ite(when, new, t.cid)}
    changed = Ne(new, t.cid)
    if when is not None:
        changed = And(when, changed)
    if t.ids_changed is not None:
        ups[t.ids_changed] = Or(t.ids_changed, changed)
    if t.raised is not None:
        ups[t.raised] = Or(t.raised, changed)
    return ups


def choices(b) -> range:
    return range(limit(b)) if b.uses_cid else range(1)

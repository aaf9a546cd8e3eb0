"""The bodies of the syscalls about CPUs: getcpu, and sched_setaffinity
with the move it makes (model/cpus.py holds the placement they read and
change; the move raises rseq's preempt/migrate events, model/rseq.py)."""

from __future__ import annotations

from rseqcheck.model import cpus, rseq
from rseqcheck.model.builder import Case
from rseqcheck.model.ir import Const, Eq, Expr, Or, Var


def body_cases(b, t, d: int, ins):
    """The bodies of getcpu and sched_setaffinity."""
    if ins.op == "getcpu":
        # kernel/sys.c:getcpu: the CPU the body runs on (stale by the time
        # user code uses it, if the thread migrates on the way out)
        r = t.regs[ins.args[0]]
        return [Case(Const(1), {r: cpus.cpu_of(b, t)}, f"getcpu: {ins.args[0]} = the CPU it runs on", "kernel/sys.c:getcpu")]
    # kernel/sched/core.c:__set_cpus_allowed_ptr: a thread on another CPU is
    # moved by the stopper (a switch away and set_task_cpu -> rseq_migrate)
    # and waits to be picked there; on the target CPU already, nothing moves
    n = ins.args[0]
    fn = "kernel/sched/core.c:__set_cpus_allowed_ptr"
    here = Eq(t.cpu, n)
    mig = dict(rseq.event(b, t, d, "PREEMPT"))
    for v, e in rseq.event(b, t, d, "MIGRATE").items():
        mig[v] = Or(e, mig[v]) if v in mig else e
    away = {**mig, **cpus.release(b, t), t.cpu: Const(n)}
    if t.aff is not None:
        here_ups: dict[Var, Expr] = {t.aff: Const(n)}
        away[t.aff] = Const(n)
        return [Case(here, here_ups, f"sched_setaffinity({{{n}}}): already on CPU {n}", fn),
                Case(Const(1), away, f"sched_setaffinity({{{n}}}): moved to CPU {n} (rseq_migrate)", fn)]
    return [Case(here, {}, f"sched_setaffinity({{{n}}}): already on CPU {n}", fn),
            Case(Const(1), away, f"sched_setaffinity({{{n}}}): moved to CPU {n} (rseq_migrate)", fn)]

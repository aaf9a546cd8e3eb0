"""Which CPU each thread is on, and which thread each CPU runs.

Only specs that use CPU data (per-CPU arrays, rseq area fields, a thread's
`cpu`, rseq-cpu-id-accurate) get this state; the others keep the v0 model,
where every thread has a CPU of its own.

  T.cpu       the CPU T is on ([thread.T] cpu, default 0); a variable only
              when migration can change it
  cpuN.curr   the thread CPU N runs, or idle (only with two threads or more)

A thread takes steps (user or kernel) only while its CPU runs it: that is
what makes per-CPU data per-CPU.  CPU N changes thread only at a schedule
point of the thread it runs (kernel/sched/core.c:__schedule; the model's
schedule points are the exit loop's NEED_RESCHED, a sleeping syscall,
sched_yield and the stops, each already an rseq_preempt), or when that
thread ends (do_exit -> do_task_dead -> __schedule).  At a schedule point
the thread either keeps its CPU, or the CPU switches to another thread on
it, or the thread migrates: set_task_cpu moves it to another CPU
(rseq_migrate), where it waits to be picked, and its old CPU is idle until
__schedule picks one of the threads there.  Which runnable thread a CPU picks is left open, so
every scheduler policy is covered.
"""

from __future__ import annotations

from rseqcheck.model import mmcid
from rseqcheck.model.ir import Add, And, Const, Enum, Eq, Expr, Ite, Lt, Or, Ref, Sub, Var

SCHEDULE = "kernel/sched/core.c:__schedule"


def placement(b) -> dict[str, int]:
    return {t.name: (t.cpu or 0) for t in b.spec.threads}


def cpu_of(b, t) -> Expr:
    """The CPU T is on."""
    return Ref(t.cpu) if t.cpu is not None else Const(t.cpu0)


def make_curr(b) -> dict[int, Var]:
    """cpuN.curr for every CPU, each running at first the first thread placed
    on it that exists from the start."""
    names = [t.name for t in b.spec.threads]
    out: dict[int, Var] = {}
    where = placement(b)
    for c in range(b.env.cpus):
        first = next((n for n in names if where[n] == c and n not in b.spawns), None)
        out[c] = b.var(f"cpu{c}.curr", Enum("idle", *names), 0 if first is None else names.index(first) + 1)
    return out


def _me(b, t) -> int:
    return [x.name for x in b.spec.threads].index(t.name) + 1


def oncpu(b, t) -> Expr:
    """T is the thread its CPU runs."""
    me = _me(b, t)
    if t.cpu is None:
        return Eq(b.curr[t.cpu0], me)
    return Or(*[And(Eq(t.cpu, c), Eq(v, me)) for c, v in b.curr.items()])


def release(b, t) -> dict[Var, Expr]:
    """T gives its CPU up (the CPU is idle until __schedule picks a thread)."""
    if not b.curr:
        return {}
    me = _me(b, t)
    return {v: Ite(Eq(v, me), Const(0), v) for v in b.curr.values()}


def switch_to(b, t, u) -> dict[Var, Expr] | None:
    """__schedule on T's CPU picks U instead of T, if U is there and alive
    (otherwise T goes on: the same as not switching); None when U can never
    share T's CPU."""
    if t.cpu is None and u.cpu is None and t.cpu0 != u.cpu0:
        return None
    me, other = _me(b, t), _me(b, u)
    ups: dict[Var, Expr] = {}
    for c, v in b.curr.items():
        if t.cpu is None and c != t.cpu0:
            continue
        there = Eq(u.cpu, c) if u.cpu is not None else Const(int(u.cpu0 == c))
        ups[v] = Ite(And(Eq(v, me), b.alive(u), there), Const(other), v)
    return ups


def switch_cond(b, t, u) -> Expr:
    """switch_to(t, u) takes effect (T runs now, so its CPU is the one)."""
    me = _me(b, t)
    terms = []
    for c, v in b.curr.items():
        if t.cpu is None and c != t.cpu0:
            continue
        there = Eq(u.cpu, c) if u.cpu is not None else Const(int(u.cpu0 == c))
        terms.append(And(Eq(v, me), there))
    return And(b.alive(u), Or(*terms))


def allowed(b, t, cpu: Expr) -> Expr:
    """cpu is in T's affinity mask (T.affinity: -1 all CPUs, else the one
    CPU sched_setaffinity gave it)."""
    if t.aff is None:
        return Const(1)
    return Or(Eq(t.aff, -1), Eq(t.aff, cpu))


def only_if_allowed(b, t, k: int, moved: dict[Var, Expr], stay: dict[Var, Expr]) -> dict[Var, Expr]:
    """The migration k CPUs further where its target is in T's mask
    (kernel/sched/core.c: select_task_rq and the load balancer's
    can_migrate_task only pick CPUs in p->cpus_ptr), else `stay`: the
    same switch without the move."""
    n = b.env.cpus
    nxt = Add(t.cpu, k)
    ok = allowed(b, t, Ite(Lt(nxt, n), nxt, Sub(nxt, n)))
    out: dict[Var, Expr] = {}
    for v in set(moved) | set(stay):
        out[v] = Ite(ok, moved.get(v, Ref(v)), stay.get(v, Ref(v)))
    return out


def move(b, t, k: int) -> dict[Var, Expr]:
    """set_task_cpu: T goes k CPUs further (mod cpus) and leaves its CPU."""
    n = b.env.cpus
    nxt = Add(t.cpu, k)
    return {t.cpu: Ite(Lt(nxt, n), nxt, Sub(nxt, n)), **release(b, t)}


def add_actions(b, t) -> None:
    """An idle CPU runs one of its threads (__schedule picks next)."""
    if not b.curr:
        return
    me = _me(b, t)
    for c, v in b.curr.items():
        if t.cpu is None and c != t.cpu0:
            continue
        here = Const(1) if t.cpu is None else Eq(t.cpu, c)
        for k in mmcid.choices(b):
            why = f" (mm_cid {k} if free)" if b.uses_cid else ""
            b.add(t, b.kernel_actor(t), And(b.alive(t), here, Eq(v, 0)), {v: Const(me), **mmcid.switch_in(b, t, k)},
                  f"CPU {c} is idle: __schedule runs {t.name}{why}", SCHEDULE, anywhere=True)


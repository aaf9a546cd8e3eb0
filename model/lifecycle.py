"""Thread and process lifecycle: clone, fork, execve (kernel-semantics.md
2.15, 2.9.5, 2.17.1; seeds 003 and 004).

Sources, in our words:
  kernel/fork.c:copy_process -- dup_task_struct clears the child's
    SYSCALL_USER_DISPATCH work (SUD is never inherited, not even by a
    thread); user_disable_single_step(child); the child's pending set is
    empty and its blocked mask a copy; rseq_fork: a CLONE_VM child starts
    unregistered with an empty event mask, any other child keeps the
    registration, the event mask and (its memory being a copy) the area's
    rseq_cs.
  kernel/sched/core.c:wake_up_new_task -> rseq_migrate(child): the child's
    first return to user (ret_from_fork -> syscall_exit_to_user_mode) runs
    the notify-resume rseq handler on its ip.
  fs/exec.c:begin_new_exec -- clears the SUD work bit, de_thread ends the
    other threads, flush_signal_handlers resets caught signals to SIG_DFL
    (blocked and pending stay); bprm_execve -> rseq_execve: unregistered;
    start_thread: TF cleared.

In a spec:
  clone T [, raw]  thread T starts running its code: pthread_create (glibc's
                   start_thread registers T's rseq area when glibc registers
                   rseq at all) or the raw syscall (T runs unregistered).
  fork T           T is the child process; its code is what the program
                   does when fork returns 0.  Its memory is a copy, so it may
                   use tls.X variables only (copied from the parent); a kill
                   of T sets `killed` like any kill in the scenario.
  execve L         the new image starts at label L of the same code block;
                   its glibc registers rseq anew.
Each declared thread is created once: a second clone of it fails (-EAGAIN).
"""

from __future__ import annotations

from rseqcheck.model import cpus, data, registration, retval, rseq
from rseqcheck.model import signals as sigmod
from rseqcheck.model.builder import PHASES, SPECIAL_VARS, TV, A, Builder, Case, P
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import And, Const, Eq, Expr, Ite, Ne, Not, Var
from rseqcheck.model.program import Instr, Segment, expr_vars
from rseqcheck.model.registration import registered_tls

COPY_PROCESS = "kernel/fork.c:copy_process"
EXEC = "fs/exec.c:begin_new_exec"


def spawns(b: Builder) -> dict[str, tuple[str, Instr]]:
    """Child thread -> (parent thread, its clone/fork instruction); checks
    what the model cannot express."""
    path = b.spec.path
    names = {t.name for t in b.spec.threads}
    out: dict[str, tuple[str, Instr]] = {}
    for seg in b.segments:
        for i, ins in enumerate(seg.instrs):
            if ins.op not in ("clone", "fork"):
                continue
            if seg.kind != "thread":
                raise SpecError(path, ins.line, f"{ins.op} in a signal handler is not modelled: call it from thread code")
            child = ins.args[0]
            if child not in names:
                raise SpecError(path, ins.line, f"{ins.op} {child}: no [thread.{child}] in the spec")
            if child == seg.name:
                raise SpecError(path, ins.line, f"{ins.op} {child}: a thread cannot create itself")
            if child in out:
                raise SpecError(path, ins.line, f"{ins.op} {child}: {child} is already created at line {out[child][1].line}")
            if child == b.spec.threads[0].name:
                raise SpecError(path, ins.line, f"{ins.op} {child}: the first thread runs from the start")
            pc = seg.base + i
            if ins.op == "fork":
                for c in b.cs:
                    if c.seg is seg and c.start <= pc < c.post:
                        raise SpecError(path, ins.line, f"fork inside critical section {c.name}: the child would resume "
                                        "inside it, which the model (the child runs its own code) cannot show")
                child_seg = next(t.segment for t in b.spec.threads if t.name == child)
                for cins in child_seg.instrs:
                    used = [a for a in cins.args[:1] if isinstance(a, str)] if cins.op in ("store", "add", "beq", "bne") else []
                    if cins.op == "assert":
                        used = sorted(expr_vars(cins.expr))
                    for v in sorted(set(used) - set(SPECIAL_VARS)):
                        if not v.startswith("tls."):
                            raise SpecError(path, cins.line, f"{v}: a fork child has its own copy of memory; "
                                            "use tls.X variables in its code (copied at fork)")
            out[child] = (seg.name, ins)
    if any(ins.op == "execve" for _, ins in b.code):
        for sig, h in b.spec.handlers.items():
            if h.action == "handler" and sig in sigmod.DEFAULT_STOP:
                raise SpecError(path, h.line, f"{sig}: its default action after execve (stop) is not modelled")
    return out


def area_groups(b: Builder) -> dict[str, list[str]]:
    """rseq area name -> the threads that use it in turn ([thread.T]
    rseq_area, when two threads or more name it).  glibc keeps the rseq
    area in struct pthread, at the top of the thread's stack block; when a
    thread has exited (the kernel cleared its tid: CLONE_CHILD_CLEARTID),
    nptl/allocatestack.c:get_cached_stack hands its stack to the next
    pthread_create, resetting the cancellation state, the DTV and the
    static TLS but not the rseq area, and start_thread registers that area
    as it is (sysdeps/unix/sysv/linux/rseq-internal.h:
    rseq_register_current_thread).  So only one user of an area lives at a
    time: every user after the first is a pthread_create'd thread, created
    once the others have exited (body_cases: the clone waits, as a
    pthread_join before it would)."""
    users: dict[str, list] = {}
    for ts in b.spec.threads:
        if ts.area is not None:
            users.setdefault(ts.area, []).append(ts)
    out: dict[str, list[str]] = {}
    path = b.spec.path
    names = {t.name for t in b.spec.threads}
    for area, ts in users.items():
        if len(ts) < 2:
            continue
        if area in names:
            raise SpecError(path, ts[0].area_line, f"rseq_area {area}: the name of a thread; name the area otherwise")
        for i, x in enumerate(ts):
            made = b.spawns.get(x.name)
            if made is None and i > 0:
                raise SpecError(path, x.area_line, f"rseq_area {area}: {x.name} runs from the start, so it would "
                                f"share the area with {ts[0].name} at once; create it with clone")
            if made is not None and (made[1].op != "clone" or "raw" in made[1].args):
                raise SpecError(path, x.area_line, f"rseq_area {area}: {x.name} is made by "
                                f"{made[1].op}{' raw' if 'raw' in made[1].args else ''}; only a pthread_create "
                                "(clone T) reuses another thread's area")
        out[area] = [x.name for x in ts]
    return out


def area_free(b: Builder, child: TV) -> Expr:
    """No other user of the child's rseq area is alive (Const(1) when the
    child shares no area)."""
    ts = next(x for x in b.spec.threads if x.name == child.name)
    if ts.area not in b.areas:
        return Const(1)
    others = [u for u in b.threads if u.name in b.areas[ts.area] and u is not child]
    return And(*[Not(b.alive(u)) for u in others])


def body_cases(b: Builder, t: TV, seg: Segment, ins: Instr) -> list[Case]:
    """Outcomes of the body of clone/fork/execve, an instruction of block
    `seg` (ax and the exit phase are set by the caller)."""
    if ins.op == "execve":
        return [_execve(b, t, seg, ins)]
    child = next(c for c in b.threads if c.name == ins.args[0])
    ups: dict[Var, Expr] = {child.k: P("LOOP"), child.ax: A("OK")}  # ret_from_fork, fork returns 0
    do_rseq: Expr = Const(1)  # a pthread's glibc registers it (set below)
    for s, v in child.blk.items():
        ups[v] = t.blk[s]
    fork = ins.op == "fork"
    if fork:
        for pv, cv in ((t.reg, child.reg), (t.rseq_cs, child.rseq_cs), (t.raised, child.raised),
                       (t.selector, child.selector)):
            if pv is not None and cv is not None:
                ups[cv] = pv
        for name, v in t.ev.items():
            ups[child.ev[name]] = v
        for name, v in t.tls.items():
            ups[child.tls[name]] = v
    elif "raw" in ins.args and child.reg is not None:
        ups[child.reg] = Const(0)  # rseq_fork: CLONE_VM -> unregistered, and no glibc to register it
    elif child.reg is not None:
        # pthread_create: glibc registers the child iff the parent's glibc
        # area is registered (ATTR_FLAG_DO_RSEQ: its cpu_id >= 0; model/glibc.py).
        # With the tunable off glibc's area says REGISTRATION_FAILED: a
        # program's own registration is taken to be of its own area.
        do_rseq = Const(int(b.env.glibc_rseq))
        if t.reg is not None and b.env.glibc_rseq:
            do_rseq = And(Ne(t.reg, 0), registered_tls(b, t))
        if child.glibc_init is not None:
            # start_thread's rseq() comes first, under the child's filter
            ups[child.glibc_init] = do_rseq
            ups[child.reg] = Const(0)
        else:
            ups[child.reg] = Ite(do_rseq, Const(1), Const(0))
            for f, v in child.rs.items():
                failed = data.REGISTRATION_FAILED if f == "cpu_id" else 0
                ups[v] = Ite(do_rseq, Const(b.init[v]), Const(failed))
    if fork:
        # the child's memory is a copy: its area holds the parent's ids
        for f, v in t.rs.items():
            ups[child.rs[f]] = v
        if t.ids_changed is not None:
            # R1 (include/linux/rseq.h:rseq_fork, 6.19): the child's cached ids
            # are invalidated (ids.cpu_cid = ~0) and a registered child is
            # forced into the slow path (event.slowpath, TIF_NOTIFY_RESUME),
            # so its first return to user writes its own ids.
            ups[child.ids_changed] = Const(1)
            if child.raised is not None:
                ups[child.raised] = registration.registered(t)
    if child.aff is not None and t.aff is not None:
        # dup_task_struct copies the affinity mask, and wake_up_new_task ->
        # select_task_rq places the child on a CPU of it
        ups[child.aff] = t.aff
        if child.cpu is not None:
            ups[child.cpu] = Ite(Eq(t.aff, -1), child.cpu, t.aff)
    new_task = b.rules["rseq.new_task_migrate"] == "yes" or not fork  # glibc registers a new thread itself
    if child.notify is not None and b.rules["rseq.impl"] == "legacy" and new_task:
        ups[child.notify] = Const(1)  # wake_up_new_task -> rseq_migrate (a pthread: its rseq() too)
        if "MIGRATE" in child.ev:
            ups[child.ev["MIGRATE"]] = Const(1)
    if fork:
        what = f"fork: child process {child.name} (copy of memory, rseq registration and rseq_cs; SUD off)"
    elif "raw" in ins.args:
        what = f"clone(CLONE_VM|CLONE_THREAD): thread {child.name}, rseq unregistered (rseq_fork), SUD off"
    else:
        reg = "glibc registers its rseq area" if b.env.glibc_rseq else "rseq unregistered"
        if child.glibc_init is not None:
            reg = "its start_thread calls rseq() first if the parent's area is registered"
        what = f"pthread_create -> clone: thread {child.name}, {reg}, SUD off"
    fresh = Eq(child.k, PHASES.index("NEW"))
    free = area_free(b, child)
    fn = COPY_PROCESS + ", kernel/rseq.c:rseq_fork"
    if not (isinstance(free, Const) and free.value):
        # (a reused area is registered again only if glibc registers at all)
        ups.update({v: e if isinstance(do_rseq, Const) else Ite(do_rseq, e, ups.get(v, v))
                    for v, e in _reused_area(b, child).items()})
        what += f"; rseq area {b.spec_thread(child).area} as its last user left it"
        if child.rseq_cs is not None and b.env.glibc_rseq:
            clears = b.rules["rseq.register_clears_cs"] == "yes" or rseq_optimized(b)
            what += ", rseq() clears rseq_cs" if clears else ", rseq_cs kept"
            fn += ", kernel/rseq.c:sys_rseq"
    return [
        Case(And(fresh, free), ups, what, fn),
        Case(Not(fresh), retval.error(t, "EAGAIN"), f"{ins.op}: {child.name} exists already -> -EAGAIN (each declared thread is created once)",
             COPY_PROCESS),
    ]


def wait_actions(b: Builder, t: TV, d: int, body: Expr, ins: Instr) -> None:
    """A clone that waits for the area's other users to exit (area_free)
    sleeps as pthread_join does (futex_wait: a schedule, rseq_preempt); with
    CPUs in the state its CPU may run another thread meanwhile, which is
    what lets a previous user on the same CPU finish."""
    if ins.op != "clone" or not b.curr:
        return
    child = next(c for c in b.threads if c.name == ins.args[0])
    free = area_free(b, child)
    if isinstance(free, Const):
        return
    waiting = And(body, Eq(child.k, PHASES.index("NEW")), Not(free))
    for suffix, ev in [x for x in rseq.schedule(b, t, d) if "switches" in x[0] or "migrates" in x[0]]:
        b.add(t, b.kernel_actor(t), waiting, ev, f"clone {child.name} waits for the area's last user to exit{suffix}",
              "kernel/futex/waitwake.c:futex_wait_queue -> schedule")


def rseq_optimized(b: Builder) -> bool:
    return b.rules["rseq.impl"] != "legacy"


def _reused_area(b: Builder, child: TV) -> dict[Var, Expr]:
    """glibc's start_thread registers the reused area (sys_rseq): since
    fd881d0a085f (6.15, rule rseq.register_clears_cs) registration clears a
    non-zero rseq_cs, and R1/R2 write the area's initial contents (rseq_cs
    = 0, both CPU ids -1) and force an update (rseq_force_update); before,
    the old thread's rseq_cs stays, and the first notify-resume evaluates
    it (the child starts with NOTIFY_RESUME: wake_up_new_task and rseq()
    both set it)."""
    if not b.env.glibc_rseq:
        return {}  # no registration: the area is left as it is
    ups: dict[Var, Expr] = {}
    if child.rseq_cs is not None and (b.rules["rseq.register_clears_cs"] == "yes" or rseq_optimized(b)):
        ups[child.rseq_cs] = Const(0)
    if rseq_optimized(b):
        for v in child.rs.values():
            ups[v] = Const(data.UNINITIALIZED)
        if child.cid_field is not None:
            ups[child.cid_field] = Const(0)
        if child.ids_cpu is not None:
            ups[child.ids_cpu] = Const(data.UNINITIALIZED)
        if child.ids_changed is not None:
            ups[child.ids_changed] = Const(1)
        if child.raised is not None:
            ups[child.raised] = Const(1)
    return ups


def thread_ends(b: Builder, t: TV) -> dict[Var, Expr]:
    """The thread is gone (kernel/exit.c:do_exit): DEAD, and its
    variables back to their initial values, which costs no states;
    an rseq area another thread may reuse keeps what it holds
    (do_exit does not unregister rseq or touch the area), and its CPU
    is idle until __schedule picks another (model/cpus.py:release)."""
    return {**{v: Const(b.init[v]) for v in t.thread_vars() if v not in t.area_shared},
            t.k: Const(PHASES.index("DEAD")), **cpus.release(b, t)}


def _execve(b: Builder, t: TV, seg: Segment, ins: Instr) -> Case:
    target = b.label_addr(ins.args[0], seg, ins.line)
    keep = set(t.pend.values()) | set(t.blk.values()) | {t.k, t.ax, t.budget, t.nbudget}
    if t.aff is not None:
        keep |= {t.aff, t.cpu}  # the mask and the CPU outlive the image
    ups: dict[Var, Expr] = {v: Const(b.init[v]) for v in t.thread_vars() if v not in keep}
    ups[t.ip[0]] = Const(target)
    for u in b.threads:
        if u is t:
            continue
        # de_thread: every other thread ends; one not created yet stays so
        ups.update(thread_ends(b, u))
        ups.update({v: Const(b.init[v]) for v in u.area_shared})  # the new image's memory
        ups[u.k] = Ite(Eq(u.k, PHASES.index("NEW")), Const(PHASES.index("NEW")), Const(PHASES.index("DEAD")))
    for v in b.uvars.values():
        ups[v] = Const(b.init[v])  # the new image's memory
    assert b.exec_done is not None
    ups[b.exec_done] = Const(1)
    return Case(Const(1), ups, f"execve: new image at {ins.args[0]}: SUD off, rseq unregistered (its glibc "
                "registers anew), caught signals SIG_DFL, other threads gone",
                EXEC + ", kernel/rseq.c:rseq_execve")

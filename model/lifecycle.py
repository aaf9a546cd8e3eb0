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

from model import registration
from model.build import PHASES, SPECIAL_VARS, TV, A, Builder, Case, P
from model.errors import SpecError
from model.ir import Const, Eq, Expr, Ite, Var
from model.program import Instr, Segment, expr_vars

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
        from model import signals as sigmod

        for sig, h in b.spec.handlers.items():
            if h.action == "handler" and sig in sigmod.DEFAULT_STOP:
                raise SpecError(path, h.line, f"{sig}: its default action after execve (stop) is not modelled")
    return out


def body_cases(b: Builder, t: TV, seg: Segment, ins: Instr) -> list[Case]:
    """Outcomes of the body of clone/fork/execve, an instruction of block
    `seg` (ax and the exit phase are set by the caller)."""
    if ins.op == "execve":
        return [_execve(b, t, seg, ins)]
    child = next(c for c in b.threads if c.name == ins.args[0])
    ups: dict[Var, Expr] = {child.k: P("LOOP"), child.ax: A("OK")}  # ret_from_fork, fork returns 0
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
        what = f"pthread_create -> clone: thread {child.name}, {reg}, SUD off"
    fresh = Eq(child.k, PHASES.index("NEW"))
    return [
        Case(fresh, ups, what, COPY_PROCESS + ", kernel/rseq.c:rseq_fork"),
        Case(Const(1), {}, f"{ins.op}: {child.name} exists already -> -EAGAIN (each declared thread is created once)",
             COPY_PROCESS),
    ]


def _execve(b: Builder, t: TV, seg: Segment, ins: Instr) -> Case:
    target = b.label_addr(ins.args[0], seg, ins.line)
    keep = set(t.pend.values()) | set(t.blk.values()) | {t.k, t.ax, t.budget, t.nbudget}
    ups: dict[Var, Expr] = {v: Const(b.init[v]) for v in t.thread_vars() if v not in keep}
    ups[t.ip[0]] = Const(target)
    for u in b.threads:
        if u is t:
            continue
        # de_thread: every other thread ends; one not created yet stays so
        ups.update(b.thread_ends(u))
        ups[u.k] = Ite(Eq(u.k, PHASES.index("NEW")), Const(PHASES.index("NEW")), Const(PHASES.index("DEAD")))
    for v in b.uvars.values():
        ups[v] = Const(b.init[v])  # the new image's memory
    assert b.exec_done is not None
    ups[b.exec_done] = Const(1)
    return Case(Const(1), ups, f"execve: new image at {ins.args[0]}: SUD off, rseq unregistered (its glibc "
                "registers anew), caught signals SIG_DFL, other threads gone",
                EXEC + ", kernel/rseq.c:rseq_execve")

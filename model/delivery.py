"""Signal delivery on x86 and rt_sigreturn (kernel-semantics.md 2.7, 2.13).

arch/x86/kernel/signal.c:arch_do_signal_or_restart -> get_signal (dequeue,
default actions, stops) -> handle_signal:
  1. restart fixup by the current ax (-ERESTARTNOHAND / _RESTARTBLOCK ->
     -EINTR; -ERESTARTSYS -> -EINTR without SA_RESTART, else like
     -ERESTARTNOINTR: ax = orig_ax, ip -= 2);
  2. setup_rt_frame, whose first step is rseq_signal_deliver (SIGNAL event
     bit, then the rseq fixup on the possibly rewound ip);
  3. the frame: saves ip, ax and the mask (sigmask_to_save), ip = handler,
     ax = 0; signal_delivered blocks sa_mask and the signal unless SA_NODEFER.
Without a handler: a stop schedules the task out and, once continued, the
interrupted syscall is restarted (ax = orig_ax, ip -= 2).
rt_sigreturn (arch/x86/kernel/signal_64.c) restores ip and the mask and sets
orig_ax = -1, so no restart logic runs on its exit.  The frame holds the
user registers too (uc_mcontext; restore_sigcontext reloads them): the model
saves the data machine's registers that a handler writes (model/data.py).
"""

from __future__ import annotations

from dataclasses import replace

from rseqcheck.model import next_syscall, retval, rseq, singlestep
from rseqcheck.model import signals as sigmod
from rseqcheck.model.builder import TV, A, Builder, Case, P
from rseqcheck.model.ir import Add, And, Const, Eq, Expr, Ite, Not, Or, Sub, Var
from rseqcheck.model.syscalls import AX

HANDLE = "arch/x86/kernel/signal.c:handle_signal"
GET = "kernel/signal.c:get_signal"


def add_actions(b: Builder, t: TV) -> None:
    kact = b.kernel_actor(t)
    order = b.sigs
    for d in range(b.N + 1):
        base = And(b.alive(t), t.at_depth(d), t.at("LOOP"))
        if t.resched is not None:
            base = And(base, Not(t.resched))
        for i, s in enumerate(order):
            first = And(base, b.deliverable(t, s), *[Not(b.deliverable(t, o)) for o in order[:i]])
            act = b.sig_action(s)
            deq = {t.pend[s]: Const(0), **singlestep.report(t)}
            if t.nsig is not None:
                deq[t.nsig] = Const(0)  # get_signal ran the task_work first (clear_notify_signal)
            if t.ptrace_step and s == "SIGTRAP":
                # the tracer gets a signal-delivery-stop, resumes stepping, suppresses it
                for suffix, ev in rseq.schedule(b, t, d):
                    b.add(t, kact, first, {**deq, **ev},
                          f"get_signal: SIGTRAP -> ptrace signal-delivery-stop (schedule{suffix}); "
                          "the tracer steps on and suppresses it", "kernel/signal.c:get_signal -> ptrace_signal")
                continue
            if t.ptrace_step:
                # every signal of a traced thread stops it first (ptrace_signal)
                stop = rseq.schedule(b, t, d)[0][1]
                deq = {**deq, **stop}
            if act == "kill":
                b.add(t, kact, first, b.kill(s), f"get_signal: {s} has no handler -> default action kills the process", GET)
            elif act == "stop":
                for suffix, ev in rseq.schedule(b, t, d):
                    for c in _norestart_cases(b, t, d, s, suffix):
                        b.add(t, kact, And(first, c.guard), {**deq, **ev, **c.updates}, c.label, GET)
            elif act == "handler" and b.N > 0:  # with max_nesting = 0 no frame fits: never deliverable
                reset = b.sig_dfl(s)
                if reset is not None:
                    # the handler was reset: by execve (fs/exec.c:flush_signal_handlers)
                    # or, for SIGSEGV, by force_fatal_sig (kernel/signal.c)
                    dfl = b.kill(s) if s not in sigmod.DEFAULT_IGNORE else deq
                    b.add(t, kact, And(first, reset), dfl,
                          f"get_signal: {s} is SIG_DFL now -> "
                          + ("ignored" if s in sigmod.DEFAULT_IGNORE else "default action kills the process"), GET)
                    first = And(first, Not(reset))
                h = b.spec.handlers[s]
                cases = _restart_cases(b, t, d, "SA_RESTART" in h.flags)
                # without rseq in the spec, setup_rt_frame's rseq step does nothing
                nxt = P("SIGRSEQ") if t.rseq_cs is not None else P("SIGFRAME")
                ups = {**deq, t.ksig: Const(t.ksig.type.names.index(s)), t.k: nxt}
                for c in cases:
                    b.add(t, kact, And(first, c.guard), {**ups, **c.updates},
                          f"get_signal: dequeue {s}; handle_signal: {c.label}", HANDLE)
        if t.ksig is None:
            continue
        for s in order:
            if b.sig_action(s) != "handler" or d == b.N:
                continue
            ks = Eq(t.ksig, t.ksig.type.names.index(s))
            # -- rseq_signal_deliver (only when the spec uses rseq)
            if t.rseq_cs is not None:
                here = And(b.alive(t), t.at_depth(d), t.at("SIGRSEQ"), ks)
                ip: Expr = t.ip[d]
                rule = ""
                if b.rules["rseq.syscall_in_cs"] == "last-instruction":
                    # proposal: a rewound syscall is judged by its post-syscall ip
                    ip = Ite(Eq(t.ax, AX.index("ORIG")), Add(t.ip[d], 1), t.ip[d])
                    rule = "rseq.syscall_in_cs=last-instruction"
                if rseq.optimized(b):
                    # R1/V2: only after a user-mode interruption; R2 legacy mode: always
                    gate = Or(t.user_irq, rseq.legacy_mode(b, t))
                    cases = [c.when(gate) for c in rseq.eval_cases(b, t, d, ip, "rseq_signal_deliver")]
                    cases.append(Case(Const(1), {}, "rseq_signal_deliver: delivered at syscall exit (no user_irq), "
                                      "critical section not evaluated", "include/linux/rseq.h:rseq_signal_deliver"))
                else:
                    cases = rseq.fixup_cases(b, t, d, ip, "rseq_signal_deliver", signal=True)
                cases = rseq.catchable(b, t, cases, delivering=s)
                cases = [replace(c, rule=c.rule or rule) for c in cases]
                common: dict[Var, Expr] = {t.k: P("SIGFRAME")}
                if "SIGNAL" in t.ev:
                    common[t.ev["SIGNAL"]] = Const(1)
                if b.rules["rseq.impl"] == "r2" and t.raised is not None and t.ids_changed is not None:
                    # R2 legacy mode: __rseq_signal_deliver ends in rseq_force_update
                    # (ids_changed, sched_switch, the work raised), so the ids are
                    # rewritten before the handler runs, as before 6.19
                    force = rseq.legacy_mode(b, t)
                    common[t.ids_changed] = Or(t.ids_changed, force)
                    common[t.raised] = Or(t.raised, force)
                b.add_cases(t, kact, here, cases, common)
            # -- the frame
            h = b.spec.handlers[s]
            here = And(b.alive(t), t.at_depth(d), t.at("SIGFRAME"), ks)
            seg = b.handler_seg[s]
            ups: dict[Var, Expr] = {
                t.depth: Const(d + 1),
                t.ip[d + 1]: Const(seg.base),
                t.ax: A("NONE"),
                t.ksig: Const(0),
                t.k: P("LOOP"),
            }
            for x in b.sigs:
                ups[t.fblk[d + 1][x]] = t.blk[x]  # type: ignore[assignment]
                if x in h.mask or (x == s and "SA_NODEFER" not in h.flags):
                    ups[t.blk[x]] = Const(1)
            for r, v in t.fregs.get(d + 1, {}).items():
                ups[v] = t.regs[r]  # type: ignore[assignment]  # uc_mcontext keeps the registers a handler may change
            ups.update(rseq.event(b, t, d, "SIGNAL"))
            if "SIGNAL" in t.ev:
                del ups[t.ev["SIGNAL"]]  # set by the rseq step already
            ups.update(next_syscall.on_signal(b, t, d + 1))
            ups.update(singlestep.frame(t, d + 1))
            ups.update(retval.frame(t, d + 1))
            b.add(t, kact, here, ups,
                  f"setup_rt_frame: {s} frame, ip = handler; signal_delivered blocks "
                  + ("+".join(sorted(set(h.mask) | ({s} if "SA_NODEFER" not in h.flags else set()))) or "nothing"),
                  "arch/x86/kernel/signal.c:setup_rt_frame, kernel/signal.c:signal_delivered")


def _restart_cases(b: Builder, t: TV, d: int, sa_restart: bool) -> list[Case]:
    ax = t.ax
    rewind = {ax: A("ORIG"), t.ip[d]: Sub(t.ip[d], 1)}
    eintr = {ax: A("EINTR")}
    out = [
        Case(Or(Eq(ax, AX.index("ERESTART_RESTARTBLOCK")), Eq(ax, AX.index("ERESTARTNOHAND"))), eintr,
             "-ERESTARTNOHAND/_RESTARTBLOCK -> -EINTR"),
        Case(Eq(ax, AX.index("ERESTARTNOINTR")), rewind, "-ERESTARTNOINTR -> ax = orig_ax, ip -= 2 (restart)"),
    ]
    if sa_restart:
        out.append(Case(Eq(ax, AX.index("ERESTARTSYS")), rewind, "-ERESTARTSYS, SA_RESTART -> ax = orig_ax, ip -= 2 (restart)"))
    else:
        out.append(Case(Eq(ax, AX.index("ERESTARTSYS")), eintr, "-ERESTARTSYS, no SA_RESTART -> -EINTR"))
    restart = [AX.index(x) for x in ("ERESTART_RESTARTBLOCK", "ERESTARTNOHAND", "ERESTARTNOINTR", "ERESTARTSYS")]
    out.append(Case(And(*[Not(Eq(ax, r)) for r in restart]), {}, "no restart"))
    return out


def no_handler_restart(t: TV, d: int, why: str, fn: str = "") -> list[Case]:
    """arch_do_signal_or_restart when get_signal returns no signal to
    handle: every restart code rewinds (for _RESTARTBLOCK, ax becomes
    __NR_restart_syscall); `why` says what came first."""
    ax = t.ax
    codes = [AX.index(x) for x in ("ERESTART_RESTARTBLOCK", "ERESTARTNOHAND", "ERESTARTNOINTR", "ERESTARTSYS")]
    is_restart = Or(*[Eq(ax, c) for c in codes])
    return [
        Case(is_restart, {ax: A("ORIG"), t.ip[d]: Sub(t.ip[d], 1)}, f"{why}, no handler: restart, ip -= 2", fn),
        Case(Not(is_restart), {}, why, fn),
    ]


def _norestart_cases(b: Builder, t: TV, d: int, s: str, suffix: str) -> list[Case]:
    """A stop and continue, then the no-handler restart."""
    return no_handler_restart(t, d, f"get_signal: {s} stops the task (schedule{suffix}); continued")


def sigreturn(b: Builder, t: TV, d: int, body: Expr, exit_phase: Const) -> None:
    kact = b.kernel_actor(t)
    fn = "arch/x86/kernel/signal_64.c:rt_sigreturn"
    if d == 0:
        b.add(t, kact, body, b.kill(), "rt_sigreturn: no signal frame (bad frame) -> SIGSEGV", fn)
        return
    ups: dict[Var, Expr] = {t.depth: Const(d - 1), t.ip[d]: Const(0), t.ax: A("NONE"), t.k: exit_phase}
    for x in b.sigs:
        ups[t.blk[x]] = t.fblk[d][x]  # type: ignore[assignment]
        ups[t.fblk[d][x]] = Const(0)
    if d in t.dirty:
        ups[t.dirty[d]] = Const(0)
    if t.traced is not None:
        ups[t.traced] = Const(0)
    for r, v in t.fregs.get(d, {}).items():
        ups[t.regs[r]] = v  # type: ignore[assignment]  # restore_sigcontext
        ups[v] = Const(0)
    ups.update(next_syscall.on_sigreturn(b, t, d))
    ups.update(singlestep.sigreturn(t, d))
    ups.update(retval.sigreturn(t, d))
    b.add(t, kact, body, ups, "rt_sigreturn: restore ip and mask, orig_ax = -1", fn)

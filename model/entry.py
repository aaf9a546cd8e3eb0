"""The syscall path and the exit-to-user loop (generic entry, E1-E3; the E0
x86 code in arch/x86/entry/common.c runs the same steps in the same order).

Sources (kernel-semantics.md 2.2-2.6):
  arch/x86/entry/syscall_64.c:do_syscall_64
  kernel/entry/common.c:syscall_enter_from_user_mode_work, syscall_trace_enter
  kernel/entry/common.c:syscall_exit_to_user_mode_work (rseq_syscall first)
  kernel/entry/common.c:exit_to_user_mode_loop: per pass, NEED_RESCHED ->
    schedule(), SIGPENDING -> arch_do_signal_or_restart(), NOTIFY_RESUME ->
    resume_user_mode_work() -> rseq_handle_notify_resume().

The loop is modelled as "take the first pending work in the kernel's order,
do it, look again".  The kernel snapshots the work bits once per pass; the
only difference is a signal that becomes pending in the middle of a pass,
and the environment may send it a step later instead, so both orders stay
reachable.
"""

from __future__ import annotations

from dataclasses import replace

from rseqcheck.model import (
    cpu_syscalls,
    delivery,
    lifecycle,
    membarrier,
    next_syscall,
    registration,
    retval,
    rseq,
    singlestep,
    sud,
)
from rseqcheck.model.builder import PHASES, TV, A, Builder, Case, P
from rseqcheck.model.delivery import no_handler_restart
from rseqcheck.model.ir import And, Const, Eq, Expr, Not, Var
from rseqcheck.model.program import RSEQ_ERRORS, SYSCALL_OPS
from rseqcheck.model.syscalls import RESTART_CODE, SYSCALLS
from rseqcheck.model.user import contexts

ENTRY = "kernel/entry/common.c:syscall_enter_from_user_mode"
LOOP = "kernel/entry/common.c:exit_to_user_mode_loop"


def add_actions(b: Builder, t: TV) -> None:
    kact = b.kernel_actor(t)
    # exit work is a step of its own only when it can do something
    debug = b.rules["rseq.debug"] == "on" and t.rseq_cs is not None
    exit_phase = P("EXITWORK") if debug or b.stepping or t.ptrace_syscall else P("LOOP")
    for d, pc, ins in contexts(b, t):
        if ins.op not in SYSCALL_OPS:
            continue
        post = pc + 1
        here = And(b.alive(t), t.at_depth(d), Eq(t.ip[d], post))
        name = ins.args[0] if ins.op == "syscall" else ins.op
        # -- entry work in syscall_trace_enter's order: SUD (returns early),
        # ptrace entry stop, seccomp, then the proposals' hooks (the rseq
        # check and the next-syscall descriptor), which run last
        cases: list[Case] = sud.entry_cases(b, t, pc, ins, exit_phase)
        rest: list[Case] = seccomp_cases(b, t, ins, exit_phase)
        if b.rules["rseq.syscall_in_cs"] == "sigsegv-at-entry" and t.rseq_cs is not None:
            for c in b.cs:
                if c.start <= pc < c.post:
                    rest.append(Case(Eq(t.rseq_cs, c.id), b.kill(),
                                     f"syscall entry: {name} inside armed {c.name} -> SIGSEGV",
                                     "proposal: syscall entry work", "rseq.syscall_in_cs=sigsegv-at-entry"))
        proceed = next_syscall.entry_cases(b, t, d, ins)  # exhaustive when present
        rest += proceed or [Case(Const(1), {}, f"syscall entry: {name}", ENTRY)]
        if t.ptrace_syscall:
            # ptrace_report_syscall_entry: a syscall-entry-stop is a schedule-out
            stop = rseq.schedule(b, t, d)[0][1]
            rest = [c if b.killed in c.updates else
                    replace(c, updates={**stop, **c.updates}, label="ptrace syscall-entry-stop (schedule); " + c.label)
                    for c in rest]
        cases += rest
        entry_common: dict[Var, Expr] = {t.k: P("BODY")}
        b.add_cases(t, kact, And(here, t.at("ENTRY")), cases, entry_common)
        # -- body
        body = And(here, t.at("BODY"))
        if ins.op == "exit":
            b.add(t, kact, body, lifecycle.thread_ends(b, t), "exit: the thread ends", "kernel/exit.c:do_exit")
            continue
        if ins.op == "sigreturn":
            delivery.sigreturn(b, t, d, body, exit_phase)
            continue
        if ins.op in ("rseq_register", "rseq_unregister"):
            b.add_cases(t, kact, body, registration.body_cases(b, t, ins), {t.ax: A("OK"), t.k: exit_phase})
            continue
        if ins.op in ("sud_on", "sud_off"):
            seg, _ = b.code[pc]
            ups, label, fn = sud.prctl_body(b, t, ins, seg)
            b.add(t, kact, body, {t.ax: A("OK"), **ups, t.k: exit_phase}, label, fn)
            continue
        if ins.op in ("getcpu", "sched_setaffinity"):
            b.add_cases(t, kact, body, cpu_syscalls.body_cases(b, t, d, ins), {t.ax: A("OK"), t.k: exit_phase})
            continue
        if ins.op == "membarrier_rseq":
            for c in membarrier.body_cases(b, t):  # alternatives, not exclusive
                b.add_cases(t, kact, body, [c], {t.ax: A("OK"), t.k: exit_phase})
            continue
        if ins.op in ("clone", "fork", "execve"):
            b.add_cases(t, kact, body, lifecycle.body_cases(b, t, b.code[pc][0], ins), {t.ax: A("OK"), t.k: exit_phase})
            lifecycle.wait_actions(b, t, d, body, ins)
            continue
        cls = SYSCALLS[name]
        done_cases, done_reset = next_syscall.completion(b, t, ins)
        finish = {t.ax: A("OK"), t.k: exit_phase, **done_reset}
        done_cases = done_cases + [Case(Const(1), {}, f"{name} returns its result", "", tags=frozenset({"traced-complete"} if ins.tag == "traced" else set()))]
        if cls == "fast":
            b.add_cases(t, kact, body, done_cases, finish)
        elif cls == "kvm":
            _kvm_run(b, t, d, body, done_cases, finish)
        elif cls == "yield":
            b.add_cases(t, kact, body, _relabel(done_cases, " (no other task: no switch)"), finish)
            for suffix, ev in rseq.schedule(b, t, d):
                b.add_cases(t, kact, body, _relabel(done_cases, f" after switching out{suffix}"), {**finish, **ev})
        else:
            # The body may finish at once, or sleep (a schedule-out).  pause()
            # returns only when a signal is pending (kernel/signal.c:
            # sys_pause: sleep while !signal_pending, then -ERESTARTNOHAND)
            pause = cls == "nohand"
            code = RESTART_CODE[cls]
            if pause:
                if b.sigs or t.nsig is not None:
                    what = "a signal is pending" if t.nsig is None else "signal_pending() (a signal or TIF_NOTIFY_SIGNAL)"
                    b.add(t, kact, And(body, b.sig_pending(t)),
                          {t.ax: A("ERESTARTNOHAND"), t.k: exit_phase, **done_reset},
                          f"{name}: {what}, returns -ERESTARTNOHAND at once", "kernel/signal.c:sys_pause")
                    body = And(body, Not(b.sig_pending(t)))
            else:
                b.add_cases(t, kact, body, _relabel(done_cases, " without sleeping"), finish)
                if t.nsig is not None:
                    # an interruptible wait checks signal_pending() before it sleeps
                    b.add(t, kact, And(body, t.nsig), {t.ax: A(code), t.k: exit_phase, **done_reset},
                          f"{name}: TIF_NOTIFY_SIGNAL makes signal_pending() true: returns -{code} without sleeping",
                          "include/linux/sched/signal.h:signal_pending")
            if b.cpu_data:
                # the CPU runs another thread, or this one migrates, while it sleeps (model/cpus.py)
                for suffix, ev in rseq.schedule(b, t, d):
                    b.add(t, kact, body, {t.k: P("BLOCKED"), **ev}, f"{name} sleeps (schedule: rseq_preempt){suffix}",
                          "kernel/sched/core.c:prepare_task_switch")
            else:
                sleep = rseq.event(b, t, d, "PREEMPT")
                b.add(t, kact, body, {t.k: P("BLOCKED"), **sleep}, f"{name} sleeps (schedule: rseq_preempt)",
                      "kernel/sched/core.c:prepare_task_switch")
            blocked = And(here, t.at("BLOCKED"))
            for suffix, ev in _wakeups(b, t, d):
                if not pause:
                    b.add_cases(t, kact, blocked, _relabel(done_cases, f" after waking{suffix}"), {**finish, **ev})
                if b.sigs:
                    b.add(t, kact, And(blocked, b.any_deliverable(t)),
                          {t.ax: A(code), t.k: exit_phase, **done_reset, **ev},
                          f"{name} interrupted by a signal: returns -{code}{suffix}", "kernel/signal.c:signal_pending")
                if t.nsig is not None:
                    b.add(t, kact, And(blocked, t.nsig, Not(b.any_deliverable(t))),
                          {t.ax: A(code), t.k: exit_phase, **done_reset, **ev},
                          f"{name} woken by TIF_NOTIFY_SIGNAL (no signal): returns -{code}{suffix}",
                          "kernel/task_work.c:task_work_add -> set_notify_signal")
        # -- exit work (CONFIG_DEBUG_RSEQ only)
    if exit_phase.value == PHASES.index("EXITWORK"):
        for d in range(b.N + 1):
            base = And(b.alive(t), t.at_depth(d), t.at("EXITWORK"))
            cases = _exit_work(b, t, rseq.catchable(b, t, rseq.syscall_check_cases(b, t, d)),
                               singlestep.exit_report_cases(b, t))
            if t.ptrace_syscall:
                stop = rseq.schedule(b, t, d)[0][1]
                # the SUD early return (it clears on_dispatch) skips the exit stop too
                cases = [c if t.on_dispatch in c.updates else replace(c, updates={**stop, **c.updates}) for c in cases]
                cases.append(Case(Const(1), stop, "syscall exit work: ptrace syscall-exit-stop (schedule)",
                                  "kernel/entry/common.c:syscall_exit_work -> ptrace_report_syscall_exit"))
            if debug:
                cases.append(Case(Const(1), {}, "syscall exit work: rseq_syscall finds nothing wrong", "kernel/rseq.c:rseq_syscall", "rseq.debug=on"))
            else:
                cases.append(Case(Const(1), {}, "syscall exit work: nothing to report", "kernel/entry/common.c:syscall_exit_work"))
            b.add_cases(t, kact, base, cases, {t.k: P("LOOP")})
    _loop(b, t)


def _exit_work(b: Builder, t: TV, checks: list[Case], reports: list[Case]) -> list[Case]:
    """The rseq debug check, then syscall_exit_work's SUD early return or
    step report (syscall_exit_to_user_mode_work runs both): each a
    first-match list, so their product in order is one.  A check that
    kills ends it; one that only clears rseq_cs goes on to the report."""
    out: list[Case] = []
    for c in checks:
        if b.killed in c.updates:
            out.append(c)
            continue
        out += [replace(r, guard=And(c.guard, r.guard), updates={**c.updates, **r.updates},
                        label=f"{c.label}; {r.label}", fn=", ".join(f for f in (c.fn, r.fn) if f),
                        rule=c.rule or r.rule, tags=c.tags | r.tags)
                for r in reports]
        out.append(c)
    return out + reports


SECCOMP = "kernel/seccomp.c:__secure_computing"
SECCOMP_NAME = {"sigreturn": "rt_sigreturn", "exit": "exit", "rseq_register": "rseq", "rseq_unregister": "rseq",
                "sud_on": "prctl", "sud_off": "prctl", "clone": "clone", "fork": "clone", "execve": "execve",
                "membarrier_rseq": "membarrier", "getcpu": "getcpu", "sched_setaffinity": "sched_setaffinity"}


def seccomp_cases(b: Builder, t: TV, ins, exit_phase: Const) -> list[Case]:
    """Entry-work step after SUD and ptrace (syscall_trace_enter): the
    thread's filter.  errno: the body is skipped and the syscall fails;
    trap: SIGSYS (SYS_SECCOMP), forced like any kernel signal; kill:
    SECCOMP_RET_KILL_PROCESS."""
    name = ins.args[0] if ins.op == "syscall" else SECCOMP_NAME[ins.op]
    act = t.seccomp.get(name, "allow")
    if act == "allow":
        return []
    skip: dict[Var, Expr] = {t.k: exit_phase, t.ax: A("NONE")}
    if t.traced is not None:
        skip[t.traced] = Const(0)
    if act.startswith("errno"):
        # __seccomp_filter: syscall_set_return_value(-errno); the body is skipped
        errno = act.partition(":")[2] or "EPERM"
        skip.update(retval.error(t, errno) if t.ret is not None else {})
        if ins.op in ("rseq_register", "rseq_unregister") and t.rseq_ret is not None:
            skip[t.rseq_ret] = Const(RSEQ_ERRORS.index(errno))
            if "registration-succeeds" in b.checked:
                skip.update(b.flag_bad("registration-succeeds"))
        named = f" (-{errno})" if ":" in act else ""  # the plain label is the one committed traces replay
        return [Case(Const(1), skip, f"seccomp: {name} -> SECCOMP_RET_ERRNO{named}, body skipped",
                     "kernel/seccomp.c:__seccomp_filter", tags=frozenset({"rseq-call"} if name == "rseq" else set()))]
    if act == "kill":
        return [Case(Const(1), b.kill("SIGSYS"), f"seccomp: {name} -> SECCOMP_RET_KILL_PROCESS", SECCOMP)]
    if b.sig_action("SIGSYS") != "handler" or b.N == 0:
        return [Case(Const(1), b.kill("SIGSYS"), f"seccomp: {name} -> SECCOMP_RET_TRAP, SIGSYS has no handler: killed", SECCOMP)]
    return [
        Case(t.blk["SIGSYS"], b.kill("SIGSYS"), f"seccomp: {name} -> SECCOMP_RET_TRAP while SIGSYS is blocked: killed", SECCOMP),
        Case(Const(1), {**skip, t.pend["SIGSYS"]: Const(1)}, f"seccomp: {name} -> SECCOMP_RET_TRAP: SIGSYS, body skipped", SECCOMP),
    ]


def _kvm_run(b: Builder, t: TV, d: int, body: Expr, done: list[Case], finish: dict[Var, Expr]) -> None:
    """ioctl(KVM_RUN): the guest runs and exits back to the host, or the
    vCPU thread is switched out (or migrated) while in the guest and the
    guest-entry path (kernel/entry/kvm.c:xfer_to_guest_mode_work) handles
    NOTIFY_RESUME before re-entering it, by rule rseq.kvm_guest_entry."""
    kact = b.kernel_actor(t)
    b.add_cases(t, kact, body, _relabel(done, " (the guest ran, no switch)"), finish)
    rule = b.rules["rseq.kvm_guest_entry"]
    for suffix, ev in rseq.schedule(b, t, d):
        ups = {**finish, **ev}
        if rule != "exit" and t.notify is not None:
            ups[t.notify] = Const(0)
        if rule == "ids" and t.rs:
            ups.update(rseq.ids(b, t, cpu=ev.get(t.cpu) if t.cpu is not None else None,
                                cid=ev.get(t.cid) if t.cid is not None else None))
            if t.ids_changed is not None:
                ups[t.ids_changed] = Const(0)
        what = {"exit": "NOTIFY_RESUME left for the return to user",
                "clear": "guest entry clears NOTIFY_RESUME, rseq not run",
                "ids": "guest entry: rseq_handle_notify_resume(NULL, NULL) writes the ids"}[rule]
        b.add_cases(t, kact, body, [replace(c, label=f"{c.label} after switching out in the guest{suffix}; {what}",
                                            fn="kernel/entry/kvm.c:xfer_to_guest_mode_work",
                                            rule="rseq.kvm_guest_entry=" + rule) for c in done], ups)


def _relabel(cases: list[Case], suffix: str) -> list[Case]:
    return [replace(c, label=c.label + suffix) for c in cases]


def _wakeups(b: Builder, t: TV, d: int) -> list[tuple[str, dict[Var, Expr]]]:
    out: list[tuple[str, dict[Var, Expr]]] = [("", {})]
    if b.migrates and not b.cpu_data:  # with CPU data, it migrated when it went to sleep
        out.append((" on another CPU (rseq_migrate)", rseq.event(b, t, d, "MIGRATE")))
    return out


def _loop(b: Builder, t: TV) -> None:
    kact = b.kernel_actor(t)
    for d in range(b.N + 1):
        base = And(b.alive(t), t.at_depth(d), t.at("LOOP"))
        no_resched = Not(t.resched) if t.resched is not None else Const(1)
        if t.resched is not None:
            for suffix, ev in rseq.schedule(b, t, d):
                b.add(t, kact, And(base, t.resched), {t.resched: Const(0), **ev},
                      f"exit loop: NEED_RESCHED -> schedule(){suffix}", "kernel/sched/core.c:__schedule -> rseq_preempt")
        # signals: model/delivery.py adds the SIGPENDING step
        no_sig = Not(b.any_deliverable(t)) if b.sigs else Const(1)
        if t.nsig is not None:
            # TIF_NOTIFY_SIGNAL alone: get_signal clears it, runs the task_work
            # and finds no signal; the no-handler restart follows.  No rseq
            # step: rseq_signal_deliver runs only from handle_signal, and
            # nothing here sets an event bit or NOTIFY_RESUME.
            why = "arch_do_signal_or_restart: TIF_NOTIFY_SIGNAL, get_signal runs the task_work, no signal"
            fn = "arch/x86/kernel/signal.c:arch_do_signal_or_restart, kernel/signal.c:get_signal"
            b.add_cases(t, kact, And(base, no_resched, no_sig, t.nsig), no_handler_restart(t, d, why, fn),
                        {t.nsig: Const(0)})
            no_sig = And(no_sig, Not(t.nsig))
        if t.notify is not None:
            nr = And(base, no_resched, no_sig, t.notify)
            legacy_fixup = [] if rseq.optimized(b) else rseq.catchable(b, t, rseq.fixup_cases(b, t, d, t.ip[d], "notify-resume"))
            cases = legacy_fixup or [
                Case(Const(1), {}, "notify-resume: task_work", "include/linux/resume_user_mode.h:resume_user_mode_work")]
            b.add_cases(t, kact, nr, cases, {t.notify: Const(0)})
        no_nr = Not(t.notify) if t.notify is not None else Const(1)
        if t.raised is not None:
            # R1/R2: the rseq work runs after the loop, with interrupts off
            b.add_cases(t, kact, And(base, no_resched, no_sig, no_nr, t.raised), rseq.catchable(b, t, rseq.exit_fastpath(b, t, d)),
                        {t.raised: Const(0)})
            no_nr = And(no_nr, Not(t.raised))
        idle = And(base, no_resched, no_sig, no_nr)
        back: dict[Var, Expr] = {t.k: P("USER"), t.ax: A("NONE")}
        if t.user_irq is not None:
            back[t.user_irq] = Const(0)
        if t.traced is not None:
            back[t.traced] = Const(0)
        back.update(retval.back_to_user(t))
        b.add(t, kact, idle, back, "exit_to_user_mode: back to user", LOOP)


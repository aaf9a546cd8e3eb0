"""What happens to a thread asynchronously ([environment] of a spec).

  send      a thread-directed signal (tgkill); it becomes pending, and the
            thread takes it on its next return to user (kernel/signal.c:
            send_signal -> signal_wake_up kicks a running thread)
  preempt   a timer interrupt that sets TIF_NEED_RESCHED: from user mode the
            thread enters the exit loop (irqentry_exit_to_user_mode); during a
            syscall body the flag waits for the exit loop
  irq       any interrupt from user mode with work pending, e.g. the kick of
            a signal or a tick (irqentry_enter_from_user_mode, orig_ax = -1)
  notify    an unrelated TIF_NOTIFY_RESUME (task_work: mm_cid compaction,
            seen about every 100 ms on Linux 6.18, conformance probe 9)
  task_work task_work_add(TWA_SIGNAL), as io_uring queues completions
            (kernel/task_work.c:task_work_add -> set_notify_signal): sets
            TIF_NOTIFY_SIGNAL and wakes the task like a signal (5.8+, rule
            task_work.twa_signal; before, TWA_RESUME: TIF_NOTIFY_RESUME)
Budgets: `max_signals` is per thread, so threads stay independent.
"""

from __future__ import annotations

from rseqcheck.model.builder import PHASES, TV, Builder
from rseqcheck.model.ir import And, Const, Eq, Ge, Not, Or, Sub


def add_actions(b: Builder, t: TV) -> None:
    alive = b.alive(t)
    user = t.at("USER")
    # R1/R2: irqentry_enter_from_user_mode -> rseq_note_user_irq_entry
    irq = {t.user_irq: Const(1)} if t.user_irq is not None else {}
    if t.budget is not None:
        for s in b.env_sigs:
            b.add(t, "env", And(alive, Ge(t.budget, 1), Not(t.pend[s])),
                  {t.pend[s]: Const(1), t.budget: Sub(t.budget, 1)},
                  f"send {s} to {t.name}", "kernel/signal.c:send_signal", tags={"env"}, anywhere=True)
    if t.resched is not None:
        b.add(t, "env", And(user, Not(t.resched)), {t.resched: Const(1), t.k: Const(PHASES.index("LOOP")), **irq},
              f"timer interrupt preempts {t.name} in user mode", "kernel/entry/common.c:irqentry_exit_to_user_mode",
              tags={"env"})
        b.add(t, "env", And(Eq(t.k, PHASES.index("BODY")), Not(t.resched)), {t.resched: Const(1)},
              f"tick sets NEED_RESCHED during {t.name}'s syscall", "kernel/sched/core.c:scheduler_tick", tags={"env"})
    work = []
    if b.sigs:
        work.append(b.any_deliverable(t))
    if t.notify is not None:
        work.append(t.notify)
    if t.nsig is not None:
        work.append(t.nsig)
    if work:
        b.add(t, "env", And(user, Or(*work)), {t.k: Const(PHASES.index("LOOP")), **irq},
              f"interrupt: {t.name} enters the kernel from user mode with work pending",
              "kernel/entry/common.c:irqentry_enter_from_user_mode", tags={"env"})
    if b.env.notify_resume and t.notify is not None:
        b.add(t, "env", And(alive, Not(t.notify)), {t.notify: Const(1)},
              f"task_work sets TIF_NOTIFY_RESUME on {t.name}", "kernel/task_work.c:task_work_add", tags={"env"},
              anywhere=True)
    if t.nbudget is not None:
        # io_uring's task_work (max_notify_signals per thread)
        flag, how = (t.nsig, "TWA_SIGNAL: TIF_NOTIFY_SIGNAL") if t.nsig is not None else (t.notify, "TWA_RESUME: TIF_NOTIFY_RESUME")
        b.add(t, "env", And(alive, Ge(t.nbudget, 1), Not(flag)), {flag: Const(1), t.nbudget: Sub(t.nbudget, 1)},
              f"task_work_add({how}) on {t.name}", "kernel/task_work.c:task_work_add", tags={"env"}, anywhere=True)

"""membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) (5.10+; kernel-semantics.md
2.12): the rseq fence that per-CPU caches (tcmalloc, librseq) use to make
every other thread's in-progress critical section abort.

Source, in our words: kernel/sched/membarrier.c:membarrier_private_expedited
with the RSEQ flag IPIs every other CPU currently running a thread of the
caller's mm (not the caller's own CPU) and waits for them; the IPI handler
ipi_rseq calls rseq_preempt(current) on the target (R1: rseq_sched_switch_
event, raised only if the target was interrupted in user mode; R2 legacy
mode: always).  An IPI that lands in user mode is an interrupt from user:
the target goes through irqentry_exit_to_user_mode, i.e. the exit loop.

Model: `membarrier_rseq` assumes the process registered with
MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ (else -EPERM, not modelled).
A thread "runs on a CPU" when it exists and is not asleep in a syscall: a
thread that is runnable but off-CPU would have had the same rseq_preempt at
its switch-out, so over-approximating the targets changes no rseq outcome.
The rseq-cs-atomic monitor sees the IPI as an event inside the section.
"""

from __future__ import annotations

from rseqcheck.model import rseq
from rseqcheck.model.builder import PHASES, TV, Builder, Case
from rseqcheck.model.ir import And, Const, Expr, Ite, Not, Var
from rseqcheck.model.registration import registered

FN = "kernel/sched/membarrier.c:membarrier_private_expedited -> ipi_rseq"


def body_cases(b: Builder, t: TV) -> list[Case]:
    """Alternative outcomes of the body: the caller adds each case on its
    own (they are not exclusive)."""
    if b.rules["membarrier.rseq"] == "no":
        return [Case(Const(1), {}, "membarrier(PRIVATE_EXPEDITED_RSEQ): -EINVAL (no RSEQ command before 5.10)", FN)]
    others = [u for u in b.threads if u is not t]
    ups: dict[Var, Expr] = {}
    for u in others:
        ups.update(_ipi(b, u))
    out = [Case(Const(1), ups, "membarrier(PRIVATE_EXPEDITED_RSEQ): IPI to every other running thread, "
                "rseq_preempt on each", FN, tags=frozenset({"membarrier"}))]
    if rseq.optimized(b) or b.rules["rseq.event_mask_guard"] != "preempt":
        return out
    # rseq_need_restart reads the event mask, then clears it, with only
    # preemption disabled: an IPI between the two sets PREEMPT and the clear
    # wipes it, while the fixup decides on the mask it read.  The IPI is
    # modelled just before that fixup (the target's next step), its PREEMPT
    # bit lost; NOTIFY_RESUME it sets is still set.
    for u in others:
        for d in range(b.N + 1):
            win = _need_restart_window(b, u, d)
            if win is None:
                continue
            lost = {v: e for v, e in ups.items() if v is not u.ev["PREEMPT"]}
            lost.update(_ipi(b, u, lost=True))
            out.append(Case(win, lost, f"membarrier(PRIVATE_EXPEDITED_RSEQ): the IPI to {u.name} lands between "
                            "rseq_need_restart's read and clear of the event mask: PREEMPT lost", FN,
                            "rseq.event_mask_guard=preempt", frozenset({"membarrier"})))
    return out


def _need_restart_window(b: Builder, u: TV, d: int) -> Expr | None:
    """u's next step is the notify-resume fixup of context d with the ip
    inside an armed section, i.e. rseq_need_restart runs (model/entry.py:
    _loop takes NEED_RESCHED and signals first)."""
    if u.notify is None or u.rseq_cs is None or "PREEMPT" not in u.ev:
        return None
    parts = [b.alive(u), u.at("LOOP"), u.at_depth(d), u.notify, registered(u), rseq.inside_armed(b, u, d)]
    if u.resched is not None:
        parts.append(Not(u.resched))
    if b.sigs:
        parts.append(Not(b.any_deliverable(u)))
    return And(*parts)


def _ipi(b: Builder, u: TV, lost: bool = False) -> dict[Var, Expr]:
    running = And(b.alive(u), Not(u.at("BLOCKED")))
    user = u.at("USER")
    ups: dict[Var, Expr] = {}
    if u.user_irq is not None:
        ups[u.user_irq] = Ite(And(running, user), Const(1), u.user_irq)  # irqentry_enter_from_user_mode
    # rseq_preempt as of the target's depth (its event helpers are per frame)
    for d in range(b.N + 1):
        ev = rseq.event(b, u, d, "PREEMPT")
        if lost:
            ev.pop(u.ev["PREEMPT"])  # wiped by rseq_need_restart's clear
        if u.raised is not None and u.raised in ev:
            ev[u.raised] = Ite(user, Const(1), ev[u.raised])  # user_irq is set by this very IPI
        here = And(running, u.at_depth(d))
        for v, e in ev.items():
            ups[v] = Ite(here, e, ups.get(v, v))
    ups[u.k] = Ite(And(running, user), Const(PHASES.index("LOOP")), u.k)
    return ups

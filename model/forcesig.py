"""Forced signals: the kernel's own signals for a fault, a trap or a
single-step (kernel-semantics.md 2.7, "Forced signals").

kernel/signal.c:force_sig_info_to_task (force_sig_fault, force_sig): if the
signal is blocked or ignored, its handler is reset to SIG_DFL and a blocked
one is unblocked, then it is queued.  So the signal is never left pending
behind the mask:
  - without a tracer the default action follows: the process is killed
    (the model kills at the step that raises it, as `fault` always did);
  - a ptrace-stepped thread's SIGTRAP (arch/x86/kernel/traps.c:
    exc_debug_user -> send_sigtrap, and arch/x86/kernel/step.c:
    user_single_step_report at syscall exit) goes to the tracer first
    (get_signal -> ptrace_signal), which stops the task: the signal is
    unblocked and delivered to the tracer even inside a handler that masks
    it.  The SIG_DFL reset only matters once the tracer detaches, which the
    model does not show.
"""

from __future__ import annotations

from rseqcheck.model.builder import TV, Builder, Case
from rseqcheck.model.ir import And, Const, Expr, Var

FORCE = "kernel/signal.c:force_sig_info_to_task"


def to_tracer(t: TV, sig: str) -> bool:
    """The forced signal is reported to a tracer (which suppresses it)."""
    return t.ptrace_step and sig == "SIGTRAP"


def cases(b: Builder, t: TV, sig: str, guard: Expr, ups: dict[Var, Expr], label: str, fn: str,
          rule: str = "", tags: frozenset[str] = frozenset()) -> list[Case]:
    """The outcomes of a step that force_sig()s `sig`; `ups` makes it
    pending.  In order: ignored (SIG_DFL: killed), blocked (unblocked: the
    tracer gets it, or the process is killed), the ordinary case."""
    if to_tracer(t, sig):
        return [Case(And(guard, t.blk[sig]), {**ups, t.blk[sig]: Const(0)},
                     f"{label}  -- {sig} is blocked: force_sig unblocks it, the tracer gets it", FORCE, rule, tags),
                Case(guard, ups, label, fn, rule, tags)]
    if b.sig_action(sig) == "ignore":
        return [Case(guard, b.kill(sig), f"{label}  -- {sig} is ignored: force_sig resets it to SIG_DFL, killed",
                     FORCE, rule, tags)]
    return [Case(And(guard, t.blk[sig]), b.kill(sig), f"{label}  -- {sig} is blocked: force_sig kills",
                 FORCE, rule, tags),
            Case(guard, ups, label, fn, rule, tags)]

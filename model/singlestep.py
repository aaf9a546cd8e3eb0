"""Single-stepping around syscalls on x86 (kernel-semantics.md 2.16, seed 002).

Hardware (Intel SDM, [unverified] in the reference, confirmed by probe p08):
TF set at the start of an instruction raises #DB after it; `syscall` masks
TF (MSR_SYSCALL_MASK), so no #DB follows it; an instruction that sets TF
traps only after the next one.  The kernel:
  arch/x86/kernel/traps.c:exc_debug_user -> send_sigtrap (TRAP_TRACE)
  kernel/entry/common.c:syscall_exit_work -> report_single_step ->
    ptrace_report_syscall_exit(regs, step) -> user_single_step_report:
    a forced SIGTRAP at syscall exit, for ptrace stepping only (TIF_SINGLESTEP
    / SYSCALL_WORK_SYSCALL_EXIT_TRAP), skipped for a SUD-dispatched syscall
  arch/x86/kernel/signal.c:handle_signal: the frame saves TF, the handler
    runs with TF clear, rt_sigreturn restores it.
A ptrace-stepped thread (`ptrace = "singlestep"`) has every instruction of
every context stepped; each SIGTRAP, like every signal, becomes a ptrace
signal-delivery-stop (a schedule-out: rseq_preempt), and the tracer resumes
stepping and suppresses it.  Both SIGTRAPs are forced (force_sig_fault,
model/forcesig.py): a handler that masks SIGTRAP does not hide a step from
the tracer, and without a tracer a masked or ignored one kills.
"""

from __future__ import annotations

from rseqcheck.model import forcesig
from rseqcheck.model.builder import PHASES, TV, Builder, Case
from rseqcheck.model.ir import Const, Eq, Expr, Var

STEPPED = frozenset({"stepped"})  # the trigger of single-step-precise


def stepped(t: TV) -> Expr:
    if t.ptrace_step:
        return Const(1)
    return Eq(t.tf, 1) if t.tf is not None else Const(0)


def instr_cases(b: Builder, t: TV, ins_text: str, is_syscall: bool) -> tuple[list[Case], list[Case], dict[Var, Expr]]:
    """(violation cases, stepping cases, extra common updates) of a user
    instruction."""
    if not b.stepping:
        return [], [], {}
    bad: list[Case] = []
    if t.unrep is not None:
        bad.append(Case(Eq(t.unrep, 1), b.flag_bad("single-step-precise"),
                        f"{ins_text}  -- runs before the previous step was reported", tags=STEPPED))
    s = stepped(t)
    if is_syscall:
        # SYSCALL masks TF: no #DB; the step is reported at exit, or not at all
        common: dict[Var, Expr] = {t.unrep: s} if t.unrep is not None else {}
        return bad, [], common
    ups: dict[Var, Expr] = {t.k: Const(PHASES.index("LOOP")), t.pend["SIGTRAP"]: Const(1)}
    if t.user_irq is not None:
        ups[t.user_irq] = Const(1)  # #DB is an exception from user mode
    if t.unrep is not None:
        ups[t.unrep] = Const(1)
    # send_sigtrap -> force_sig_fault: never left pending behind the mask
    step = forcesig.cases(b, t, "SIGTRAP", s, ups, f"{ins_text}  ; #DB single-step trap -> SIGTRAP (exc_debug_user)",
                          "arch/x86/kernel/traps.c:exc_debug_user", "", frozenset({"stepped", "user"}))
    return bad, step, {}


def exit_report_cases(b: Builder, t: TV) -> list[Case]:
    """Syscall exit work after the rseq debug check: the SUD early return,
    then report_single_step."""
    if not b.stepping:
        return []
    out: list[Case] = []
    if t.on_dispatch is not None:
        out.append(Case(Eq(t.on_dispatch, 1), {t.on_dispatch: Const(0)},
                        "syscall exit work: dispatched by SUD -> return early (no step report)",
                        "kernel/entry/common.c:syscall_exit_work"))
    # user_single_step_report -> send_sigtrap -> force_sig_fault (model/forcesig.py)
    report: dict[Var, Expr] = {t.pend["SIGTRAP"]: Const(1)}
    if t.ptrace_step and b.rules["singlestep.exit_report"] == "yes":
        # tagged "stepped": the stepped syscall is reported here (its own
        # step carries no tag, so a syscall-only program looked vacuous)
        out += forcesig.cases(b, t, "SIGTRAP", Const(1), report,
                              "syscall exit work: report_single_step -> forced SIGTRAP (TRAP_BRKPT)",
                              "kernel/entry/common.c:report_single_step", "singlestep.exit_report=yes", STEPPED)
    elif t.tf is not None and b.rules["singlestep.user_tf_syscall"] == "report-at-exit":
        out += forcesig.cases(b, t, "SIGTRAP", Eq(t.tf, 1), report,
                              "syscall exit: TF set before and after -> SIGTRAP (proposal)",
                              "proposal: arch/x86/entry/syscall_64.c:do_syscall_64",
                              "singlestep.user_tf_syscall=report-at-exit", STEPPED)
    return out


def report(t: TV) -> dict[Var, Expr]:
    """The stepper saw the state: clear the monitor."""
    return {t.unrep: Const(0)} if t.unrep is not None else {}


def frame(t: TV, d_new: int) -> dict[Var, Expr]:
    if t.tf is None:
        return {}
    return {t.ftf[d_new]: t.tf, t.tf: Const(0)}  # type: ignore[dict-item]


def sigreturn(t: TV, d: int) -> dict[Var, Expr]:
    if t.tf is None:
        return {}
    return {t.tf: t.ftf[d], t.ftf[d]: Const(0)}  # type: ignore[dict-item]


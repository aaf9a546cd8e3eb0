"""The next-syscall descriptor of seed 000 (Vyukov, LKML 2021-09-28): a
per-task word the kernel reads at the next syscall ("trace / fault-inject the
next system call").  No kernel implements it; the rules next_syscall.consume
and next_syscall.on_signal say what the proposal under test does, at the
places a kernel implementation would hook (syscall entry work,
kernel/entry/common.c:syscall_trace_enter; signal frame setup,
arch/x86/kernel/signal.c:setup_rt_frame; arch/x86/kernel/signal_64.c:
rt_sigreturn).

Monitors: `desc_owner` is the context depth that armed the descriptor,
`desc_orphan` says that context has since returned (sigreturn), `traced`
that the syscall now in the kernel consumed a descriptor.
"""

from __future__ import annotations

from rseqcheck.model.builder import TV, Builder, Case
from rseqcheck.model.ir import And, Const, Eq, Expr, Ne, Not, Or, Var
from rseqcheck.model.program import Instr

ENTRY_FN = "proposal: syscall entry work (kernel/entry/common.c:syscall_trace_enter)"


def entry_cases(b: Builder, t: TV, d: int, ins: Instr) -> list[Case]:
    if t.desc is None:
        return []
    rule = "next_syscall.consume=" + b.rules["next_syscall.consume"]
    clear = b.rules["next_syscall.consume"] == "syscall-entry"
    take: dict[Var, Expr] = {t.traced: Const(1)}
    if clear:
        take[t.desc] = Const(0)
        take[t.owner] = Const(0)
        if t.orphan is not None:
            take[t.orphan] = Const(0)
    ok = And(Eq(t.owner, d), Not(t.orphan) if t.orphan is not None else Const(1))
    ok = ok if ins.tag == "traced" else Const(0)
    verb = "consumes" if clear else "reads"
    out = [Case(Eq(t.desc, 0), {t.traced: Const(0)}, "syscall entry: no next-syscall descriptor", ENTRY_FN)]
    if "next-syscall-atomic" in b.checked:
        why = "not the @traced syscall" if ins.tag != "traced" else "armed by another context"
        out.append(Case(Not(ok), {**take, **b.flag_bad("next-syscall-atomic")},
                        f"syscall entry: {ins.args[0] if ins.args else ins.op} {verb} the descriptor -- {why}",
                        ENTRY_FN, rule, frozenset({"consume"})))
    out.append(Case(Ne(t.desc, 0), take, f"syscall entry: {verb} the next-syscall descriptor", ENTRY_FN, rule, frozenset({"consume"})))
    return out


def completion(b: Builder, t: TV, ins: Instr) -> tuple[list[Case], dict[Var, Expr]]:
    """A syscall body finishing with its result: the @traced one must have
    consumed the descriptor (next-syscall-delivered)."""
    if t.traced is None:
        return [], {}
    reset = {t.traced: Const(0)}
    cases: list[Case] = []
    if ins.tag == "traced" and "next-syscall-delivered" in b.checked:
        cases.append(Case(Not(t.traced), {**reset, **b.flag_bad("next-syscall-delivered")},
                          f"{ins.args[0]} completes without the next-syscall descriptor",
                          tags=frozenset({"traced-complete"})))
    return cases, reset


def on_signal(b: Builder, t: TV, d_new: int) -> dict[Var, Expr]:
    """Frame setup for a handler at depth d_new."""
    if t.desc is None:
        return {}
    rule = b.rules["next_syscall.on_signal"]
    if rule == "keep":
        return {}
    out: dict[Var, Expr] = {t.desc: Const(0), t.owner: Const(0)}
    if t.orphan is not None:
        out[t.orphan] = Const(0)
    if rule == "save-restore":
        fd, fo, forph = t.fdesc[d_new]
        out[fd] = t.desc  # type: ignore[assignment]
        out[fo] = t.owner  # type: ignore[assignment]
        out[forph] = t.orphan if t.orphan is not None else Const(0)  # type: ignore[assignment]
    return out


def on_sigreturn(b: Builder, t: TV, d: int) -> dict[Var, Expr]:
    """rt_sigreturn from the handler at depth d."""
    if t.desc is None:
        return {}
    out: dict[Var, Expr] = {}
    if b.rules["next_syscall.on_signal"] == "save-restore":
        fd, fo, forph = t.fdesc[d]
        out = {t.desc: fd, t.owner: fo, fd: Const(0), fo: Const(0), forph: Const(0)}  # type: ignore[dict-item]
        if t.orphan is not None:
            out[t.orphan] = forph  # type: ignore[assignment]
        return out
    if t.orphan is not None:
        # the context that armed the descriptor is gone
        out[t.orphan] = Or(t.orphan, And(Ne(t.desc, 0), Eq(t.owner, d)))
    return out

"""Syscall User Dispatch (5.11+; kernel-semantics.md 2.17, seed 003).

Sources: kernel/entry/syscall_user_dispatch.c (set_syscall_user_dispatch /
task_set_syscall_user_dispatch for the prctl, syscall_user_dispatch for the
decision, trigger_sigsys), kernel/entry/common.c:syscall_trace_enter (SUD is
entry-work step 1: a dispatched syscall skips ptrace, seccomp, audit and the
body), arch/x86/entry/vdso/vma.c:arch_syscall_is_vdso_sigreturn (false for
64-bit).

The decision, at syscall entry, with ip = the address after the syscall:
  ip in [start, end)                    -> allowed
  rt_sigreturn and rule sud.sigreturn=exempt -> allowed
  no selector                           -> dispatch
  selector ALLOW                        -> allowed
  selector BLOCK                        -> dispatch
  any other byte                        -> SIGSYS kill (sud.bad_selector)
Dispatch: ax = orig_ax (syscall_rollback), force_sig_info(SIGSYS) -- a
blocked or handler-less SIGSYS kills the process -- and the body is skipped.
The selector is a byte of user memory (`sud_select`), per thread here.
Not modelled yet: fork/exec clearing the work bit, INCLUSIVE mode (6.17),
selector read faults, ptrace get/set of the configuration.
"""

from __future__ import annotations

from model.build import PHASES, TV, Builder, Case
from model.ir import And, Const, Eq, Expr, Not, Var
from model.program import Instr

DISPATCH = "kernel/entry/syscall_user_dispatch.c:syscall_user_dispatch"


def entry_cases(b: Builder, t: TV, pc: int, ins: Instr, exit_phase: Const) -> list[Case]:
    """Cases of entry-work step 1 that end the syscall here (dispatch,
    kill) or that let a syscall escape (for the sud-no-escape monitor)."""
    if t.sud is None:
        return []
    out: list[Case] = []
    post = pc + 1
    sel = t.selector
    allow, block = Eq(sel, 0), Eq(sel, 1)
    name = ins.args[0] if ins.op == "syscall" else ins.op
    exempt = ins.op == "sigreturn" and b.rules["sud.sigreturn"] == "exempt"
    for r, (lo, hi, has_sel) in enumerate(b.sud_regions, start=1):
        if lo <= post < hi:
            continue  # allowed by the region
        on = Eq(t.sud, r)
        where = f"ip {b.ip_label(post) if post < len(b.code) else '(end)'} outside the region"
        if exempt:
            if "sud-no-escape" in b.checked:
                blocked = block if has_sel else Const(1)
                out.append(Case(And(on, blocked), b.flag_bad("sud-no-escape"),
                                "syscall_user_dispatch: rt_sigreturn exempt, runs with the selector at BLOCK",
                                DISPATCH, "sud.sigreturn=exempt", frozenset({"sud-check"})))
            continue
        if has_sel:
            bad_byte = And(on, Not(allow), Not(block))
            if b.rules["sud.bad_selector"] == "kill-process":
                out.append(Case(bad_byte, b.kill("SIGSYS"),
                                "syscall_user_dispatch: selector is neither ALLOW nor BLOCK -> force_exit_sig(SIGSYS)",
                                DISPATCH, "sud.bad_selector=kill-process"))
            else:
                reset = {v: Const(b.init[v]) for v in t.thread_vars()}
                out.append(Case(bad_byte, {**reset, t.k: Const(PHASES.index("DEAD"))},
                                "syscall_user_dispatch: selector is neither ALLOW nor BLOCK -> do_exit(SIGSYS): the thread ends",
                                DISPATCH, "sud.bad_selector=kill-thread"))
        dispatch = And(on, block) if has_sel else on
        why = "selector BLOCK" if has_sel else "no selector"
        tags = frozenset({"sud-check"})
        if ins.op == "sigreturn" and "sud-sigreturn-not-redirected" in b.checked:
            out.append(Case(dispatch, b.flag_bad("sud-sigreturn-not-redirected"),
                            f"syscall_user_dispatch: rt_sigreturn {where}, {why} -> dispatched", DISPATCH, "", tags))
            continue
        if b.sig_action("SIGSYS") != "handler" or b.N == 0:
            out.append(Case(dispatch, b.kill("SIGSYS"),
                            f"syscall_user_dispatch: {name} {where}, {why} -> SIGSYS, no handler: killed",
                            DISPATCH, "", tags))
            continue
        out.append(Case(And(dispatch, t.blk["SIGSYS"]), b.kill("SIGSYS"),
                        f"syscall_user_dispatch: {name} {where}, {why} -> SIGSYS while SIGSYS is blocked: "
                        "force_sig_info resets it to SIG_DFL, killed", DISPATCH, "", tags))
        ups: dict[Var, Expr] = {t.pend["SIGSYS"]: Const(1), t.k: exit_phase, t.ax: Const(0)}
        if t.traced is not None:
            ups[t.traced] = Const(0)
        if t.on_dispatch is not None:
            ups[t.on_dispatch] = Const(1)
        out.append(Case(dispatch, ups,
                        f"syscall_user_dispatch: {name} {where}, {why} -> dispatch: ax = orig_ax, "
                        "SIGSYS queued, body skipped", DISPATCH, "", tags))
    return out


def prctl_body(b: Builder, t: TV, ins: Instr, seg) -> tuple[dict[Var, Expr], str]:
    """prctl(PR_SET_SYSCALL_USER_DISPATCH): set or clear the configuration
    (on_dispatch is reset too; it only matters to exit work we do not model)."""
    fn = "kernel/entry/syscall_user_dispatch.c:set_syscall_user_dispatch"
    if b.rules["sud.available"] == "no":
        return {}, "prctl(PR_SET_SYSCALL_USER_DISPATCH): -EINVAL (no SUD in this kernel)"
    if ins.op == "sud_off":
        return {t.sud: Const(0)}, "prctl(PR_SET_SYSCALL_USER_DISPATCH, OFF)"
    lo = b.label_addr(ins.args[0], seg, ins.line)
    hi = b.label_addr(ins.args[1], seg, ins.line)
    r = b.sud_regions.index((lo, hi, len(ins.args) == 2)) + 1
    return {t.sud: Const(r)}, f"prctl(PR_SET_SYSCALL_USER_DISPATCH, ON, {ins.args[0]}, {ins.args[1]})" + (
        "" if len(ins.args) == 2 else ", no selector") + f" [{fn}]"


def selector_value(t: TV, arg: str) -> int:
    names = t.selector.type.names
    if arg == "0":
        arg = "ALLOW"
    elif arg == "1":
        arg = "BLOCK"
    return names.index(arg)


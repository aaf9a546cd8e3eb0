"""Syscall User Dispatch (5.11+; kernel-semantics.md 2.17, seed 003).

Sources: kernel/entry/syscall_user_dispatch.c (set_syscall_user_dispatch /
task_set_syscall_user_dispatch for the prctl, syscall_user_dispatch for the
decision, trigger_sigsys), kernel/entry/common.c:syscall_trace_enter (SUD is
entry-work step 1: a dispatched syscall skips ptrace, seccomp, audit and the
body), arch/x86/entry/vdso/vma.c:arch_syscall_is_vdso_sigreturn (false for
64-bit).

The decision, at syscall entry, with ip = the address after the syscall:
  ip in [start, end) (exclusive mode), or
  ip outside it (inclusive mode, 6.17+) -> allowed
  rt_sigreturn and rule sud.sigreturn=exempt -> allowed
  no selector                           -> dispatch
  reading the selector faults           -> SIGSEGV kill (sud.bad_selector)
  selector ALLOW                        -> allowed
  selector BLOCK                        -> dispatch
  any other byte                        -> SIGSYS kill (sud.bad_selector)
Inclusive mode is stored inverted by task_set_syscall_user_dispatch (offset
+= len, len = -len) so that the one unsigned test `ip - offset < len` of
syscall_user_dispatch means "outside [start, end)"; we test that directly.
Dispatch: ax = orig_ax (syscall_rollback), force_sig_info(SIGSYS) -- a
blocked or handler-less SIGSYS kills the process -- and the body is skipped.
The selector is a byte of user memory (`sud_select`), per thread here.
The work bit is cleared in a clone child (kernel/fork.c:dup_task_struct) and
at exec (fs/exec.c:begin_new_exec): model/lifecycle.py.
Not modelled: ptrace get/set of the configuration (checkpoint/restore).
"""

from __future__ import annotations

from rseqcheck.model import lifecycle, retval
from rseqcheck.model.builder import TV, Builder, Case
from rseqcheck.model.ir import And, Const, Eq, Expr, Not, Var
from rseqcheck.model.program import Instr

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
    for r, (lo, hi, has_sel, inclusive) in enumerate(b.sud_regions, start=1):
        if (lo <= post < hi) != inclusive:
            continue  # allowed by the region
        on = Eq(t.sud, r)
        at = b.ip_label(post) if post < len(b.code) else "(end)"
        where = f"ip {at} inside the intercepted region" if inclusive else f"ip {at} outside the region"
        if exempt:
            if "sud-no-escape" in b.checked:
                blocked = block if has_sel else Const(1)
                out.append(Case(And(on, blocked), b.flag_bad("sud-no-escape"),
                                "syscall_user_dispatch: rt_sigreturn exempt, runs with the selector at BLOCK",
                                DISPATCH, "sud.sigreturn=exempt", frozenset({"sud-check"})))
            continue
        if has_sel:
            # the selector byte is read here, at each entry (__get_user); a
            # fault and a bad byte end the same way, with SIGSEGV and SIGSYS
            unmapped = Eq(sel, sel.type.names.index("unmapped")) if "unmapped" in sel.type.names else Const(0)
            for cond, sig, what in ((unmapped, "SIGSEGV", "reading the selector faults"),
                                    (And(Not(allow), Not(block)), "SIGSYS", "selector is neither ALLOW nor BLOCK")):
                if b.rules["sud.bad_selector"] == "kill-process":
                    out.append(Case(And(on, cond), b.kill(sig), f"syscall_user_dispatch: {what} -> force_exit_sig({sig})",
                                    DISPATCH, "sud.bad_selector=kill-process"))
                else:
                    out.append(Case(And(on, cond), lifecycle.thread_ends(b, t),
                                    f"syscall_user_dispatch: {what} -> do_exit({sig}): the thread ends",
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


def prctl_body(b: Builder, t: TV, ins: Instr, seg) -> tuple[dict[Var, Expr], str, str]:
    """prctl(PR_SET_SYSCALL_USER_DISPATCH): set or clear the configuration
    (on_dispatch is reset too; it only matters to exit work we do not model):
    (updates, label, the kernel function)."""
    if b.rules["sud.available"] == "no":
        return (*_prctl_body(b, t, ins, seg), "kernel/sys.c:prctl (no PR_SET_SYSCALL_USER_DISPATCH before 5.11: -EINVAL)")
    return (*_prctl_body(b, t, ins, seg), "kernel/entry/syscall_user_dispatch.c:set_syscall_user_dispatch")


def _prctl_body(b: Builder, t: TV, ins: Instr, seg) -> tuple[dict[Var, Expr], str]:
    if b.rules["sud.available"] == "no":
        return retval.error(t, "EINVAL"), "prctl(PR_SET_SYSCALL_USER_DISPATCH): -EINVAL (no SUD in this kernel)"
    if ins.op == "sud_off":
        if t.sud is None:  # no sud_on anywhere: SUD is never on, turning it off changes nothing
            return {}, "prctl(PR_SET_SYSCALL_USER_DISPATCH, OFF)"
        return {t.sud: Const(0)}, "prctl(PR_SET_SYSCALL_USER_DISPATCH, OFF)"
    inclusive = "inclusive" in ins.args
    mode = "INCLUSIVE_ON" if inclusive else "ON"
    if inclusive and b.rules["sud.inclusive"] == "no":
        return retval.error(t, "EINVAL"), f"prctl(PR_SET_SYSCALL_USER_DISPATCH, {mode}): -EINVAL (mode unknown before 6.17)"
    lo = b.label_addr(ins.args[0], seg, ins.line)
    hi = b.label_addr(ins.args[1], seg, ins.line)
    # An empty exclusive region [L, L) stands for offset 0, len 0 ("nothing
    # allowed"): the kernel refuses an empty region at a non-zero offset, so
    # that is how a program asks for it.  An empty intercepted region is
    # -EINVAL (task_set_syscall_user_dispatch: len 0 in inclusive mode).
    if inclusive and lo == hi:
        return retval.error(t, "EINVAL"), (
            f"prctl(PR_SET_SYSCALL_USER_DISPATCH, {mode}, {ins.args[0]}, {ins.args[1]}): -EINVAL (empty region)")
    r = b.sud_regions.index((lo, hi, "noselector" not in ins.args, inclusive)) + 1
    return {t.sud: Const(r)}, f"prctl(PR_SET_SYSCALL_USER_DISPATCH, {mode}, {ins.args[0]}, {ins.args[1]})" + (
        ", no selector" if "noselector" in ins.args else "")


def selector_value(t: TV, arg: str) -> int:
    names = t.selector.type.names
    if arg == "0":
        arg = "ALLOW"
    elif arg == "1":
        arg = "BLOCK"
    return names.index(arg)


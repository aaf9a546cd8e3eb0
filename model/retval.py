"""A syscall's result as user code sees it: `ret`, the running context's
%rax after its last syscall (`beq ret, EINVAL, L`).

The kernel writes the result into pt_regs->ax (syscall_set_return_value;
-errno for an error) and the exit to user hands it to the program.  The
model keeps the symbolic result in the saved `ax` (model/syscalls.py: OK,
EINTR, or an errno) and, only when a program reads `ret`, copies it into
`T.ret` on the way back to user (kernel/entry/common.c:
exit_to_user_mode_loop); otherwise an error result stays OK, as before, and
no state changes.  0 stands for any success (a pid is not tracked).
A signal frame saves the interrupted context's value (setup_rt_frame
writes regs->ax into uc_mcontext, after the restart fixup: -EINTR) and the
handler starts with ax = 0; rt_sigreturn restores it (restore_sigcontext).
A syscall the kernel skips without a result (SUD dispatch, SECCOMP_RET_TRAP:
the SIGSYS handler writes its own) leaves `ret` unchanged.
"""

from __future__ import annotations

from rseqcheck.model.builder import TV, A
from rseqcheck.model.ir import Const, Eq, Expr, Ite, Var
from rseqcheck.model.program import RET_VALUES
from rseqcheck.model.syscalls import AX


def error(t: TV, name: str) -> dict[Var, Expr]:
    """The syscall fails with -name: ax says so when a program reads it."""
    return {t.ax: A(name if t.ret is not None else "OK")}


def seen(t: TV) -> Expr:
    """`ret` after the kernel hands the saved ax back to the context."""
    assert t.ret is not None and t.ax is not None
    out: Expr = t.ret
    for name in ("OK",) + tuple(v for v in RET_VALUES[1:] if v in AX):
        val = "0" if name == "OK" else name
        out = Ite(Eq(t.ax, AX.index(name)), Const(RET_VALUES.index(val)), out)
    return out


def back_to_user(t: TV) -> dict[Var, Expr]:
    return {t.ret: seen(t)} if t.ret is not None else {}


def frame(t: TV, d_new: int) -> dict[Var, Expr]:
    """setup_rt_frame: uc_mcontext.ax = the result; the handler's ax = 0."""
    if t.ret is None:
        return {}
    return {t.fret[d_new]: seen(t), t.ret: Const(0)}


def sigreturn(t: TV, d: int) -> dict[Var, Expr]:
    if t.ret is None:
        return {}
    return {t.ret: t.fret[d], t.fret[d]: Const(0)}

"""Where a cited kernel function lived in the preset's kernel.

The model cites the generic entry code by its 5.11-6.16 location
(kernel/entry/common.c).  Before 5.9 x86 had its own entry code in
arch/x86/entry/common.c (kernel-semantics.md section 0, E0; e.g. 4.18's
exit_to_usermode_loop, syscall_slow_exit_work); 6.17 moved the syscall
half to kernel/entry/syscall-common.c ("entry: Split generic entry into
generic exception and syscall entry"), and 7.1 inlines
syscall_trace_enter / syscall_exit_work / report_single_step into
include/linux/entry-common.h ("entry: Inline syscall_exit_work() and
syscall_trace_enter()").  A trace read on a mailing list should name the
file and function of the kernel it is about."""

from __future__ import annotations

from rseqcheck.model.rules import ERA, PRESETS

_COMMON = "kernel/entry/common.c:"
_X86 = "arch/x86/entry/common.c:"

_TRACEHOOK = {  # before 5.18 ("ptrace: Remove tracehook_report_syscall_exit" ... series): the tracehook
    "-> ptrace_report_syscall_exit": "-> tracehook_report_syscall_exit",
}
_E0 = {  # 4.18-5.8: arch/x86/entry/common.c
    _COMMON + "syscall_exit_work -> report_single_step": _X86 + "syscall_slow_exit_work (step)",
    _COMMON + "exit_to_user_mode_loop": _X86 + "exit_to_usermode_loop",
    _COMMON + "syscall_trace_enter": _X86 + "syscall_trace_enter",
    _COMMON + "syscall_exit_work": _X86 + "syscall_slow_exit_work",
    _COMMON + "report_single_step": _X86 + "syscall_slow_exit_work",  # tracehook_report_syscall_exit(regs, step)
    _COMMON + "syscall_enter_from_user_mode": _X86 + "do_syscall_64",
    _COMMON + "irqentry_enter_from_user_mode": _X86 + "enter_from_user_mode",
    _COMMON + "irqentry_exit_to_user_mode": _X86 + "prepare_exit_to_usermode",
    "kernel/entry/kvm.c:xfer_to_guest_mode_work": "arch/x86/kvm/x86.c:vcpu_run",
}
_SPLIT = {  # 6.17-7.0: the syscall half in its own file
    _COMMON + "syscall_trace_enter": "kernel/entry/syscall-common.c:syscall_trace_enter",
    _COMMON + "syscall_exit_work": "kernel/entry/syscall-common.c:syscall_exit_work",
    _COMMON + "report_single_step": "kernel/entry/syscall-common.c:report_single_step",
    _COMMON + "syscall_enter_from_user_mode": "include/linux/entry-common.h:syscall_enter_from_user_mode",
}
_INLINE = {  # 7.1: inlined into the header
    **_SPLIT,
    _COMMON + "syscall_trace_enter": "include/linux/entry-common.h:syscall_trace_enter",
    _COMMON + "syscall_exit_work": "include/linux/entry-common.h:syscall_exit_work",
    _COMMON + "report_single_step": "include/linux/entry-common.h:report_single_step",
}


def moves(preset: str) -> dict[str, str]:
    """Citation -> where that kernel has it (empty: where the model says)."""
    if ERA.get(preset) == "E0":
        return {**_E0, **_TRACEHOOK}
    if ERA.get(preset) in ("E1", "E2"):
        return _TRACEHOOK
    if preset in PRESETS and PRESETS.index(preset) >= PRESETS.index("linux-6.18"):
        return _INLINE if preset == "linux-7.1" else _SPLIT
    return {}


def locate(fn: str, table: dict[str, str]) -> str:
    """`fn` (one or more "file:function" citations, maybe with "-> callee")
    with each citation the kernel moved replaced."""
    for old, new in table.items():
        if old in fn:
            fn = fn.replace(old, new)
    return fn

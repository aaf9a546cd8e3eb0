"""ABI rules with named choices, and presets that fix every rule as a kernel
version does.  A spec picks a preset and overrides the rules its proposal
changes.  `source` says which kernel function the rule models (or that the
rule is a proposal that no kernel implements)."""

from __future__ import annotations

from dataclasses import dataclass

PRESETS = (
    "linux-4.18",
    "linux-5.8",
    "linux-5.10",
    "linux-5.11",
    "linux-5.16",
    "linux-6.0",
    "linux-6.18",
    "linux-6.19",
    "linux-7.1",
)

# Era of each preset (kernel-semantics.md section 0): E0 4.18-5.8, E1 5.9-5.10,
# E2 5.11-5.19, E3 6.0-6.18.
ERA = {
    "linux-4.18": "E0",
    "linux-5.8": "E0",
    "linux-5.10": "E1",
    "linux-5.11": "E2",
    "linux-5.16": "E2",
    "linux-6.0": "E3",
    "linux-6.18": "E3",
    "linux-6.19": "R1",
    "linux-7.1": "R2",
}


@dataclass(frozen=True)
class Rule:
    name: str
    choices: tuple[str, ...]
    doc: str
    source: str
    defaults: dict[str, str]  # preset -> choice
    proposal: bool = False  # no released kernel has it; the default is the proposal's

    def default(self, preset: str) -> str:
        return self.defaults[preset]


def _all(choice: str) -> dict[str, str]:
    return {p: choice for p in PRESETS}


def _by_era(**era_choice: str) -> dict[str, str]:
    return {p: era_choice[ERA[p]] for p in PRESETS}


def _since(version: str, new: str, old: str) -> dict[str, str]:
    """`new` from preset `version` on, `old` before it."""
    i = PRESETS.index(version)
    return {p: (new if k >= i else old) for k, p in enumerate(PRESETS)}


RULES: dict[str, Rule] = {}


def _rule(r: Rule) -> None:
    RULES[r.name] = r


_rule(
    Rule(
        "rseq.impl",
        ("legacy", "r1", "r2"),
        "Which rseq implementation runs on return to user. legacy (4.18-6.18): event "
        "mask, NOTIFY_RESUME fixup on every pass, descriptor validated wherever the ip is. "
        "r1 (6.19-7.0 rewrite): no event mask; a critical section is evaluated only after "
        "a user-mode interrupt/exception (user_irq) on generic-IRQ-entry arches, at the exit "
        "fast path or at signal delivery; lenient checks. r2 (7.1): by registration length, "
        "32 = legacy mode (every switch raises the work, every signal delivery evaluates and "
        "forces an id rewrite; the exit path is still gated by user_irq), > 32 = V2 mode (as r1).",
        "kernel/rseq.c, include/linux/rseq.h, include/linux/rseq_entry.h "
        "(series 'rseq: Optimize exit to user space'; b9eac6a9d93c, 99428157dcf3 for 7.1)",
        _by_era(E0="legacy", E1="legacy", E2="legacy", E3="legacy", R1="r1", R2="r2"),
    )
)
_rule(
    Rule(
        "rseq.flags",
        ("honoured", "fatal", "ignored", "honoured-unchecked"),
        "RSEQ_CS_FLAG_NO_RESTART_ON_* in rseq_cs.flags or the area flags: honoured "
        "(an event whose bit is set does not abort; NO_RESTART_ON_SIGNAL without both "
        "others is -EINVAL) or fatal (any non-zero flag seen with the ip inside the "
        "critical section is -EINVAL, i.e. SIGSEGV, even with no event pending), or "
        "ignored (R1/R2 without the debug key: version and flags are never read; chosen on a "
        "legacy preset, every event aborts and no flag is fatal), or honoured-unchecked "
        "(a design choice no release shipped: honoured without the combination check, so "
        "NO_RESTART_ON_SIGNAL alone is accepted -- the hazard the check exists for: a "
        "preempted handler has rseq_cs cleared and rt_sigreturn resumes the section "
        "with nothing to abort it).",
        "kernel/rseq.c:rseq_need_restart (4.18-5.19: the combination check and its "
        "comment; flags deprecated in 6.0, 0190e4198e47, after Bui Quang Minh's report, "
        "LKML 2022-06-18 'rseq: x86: Fix rseq_cs get cleared when returning from signal "
        "handler'); include/linux/rseq_entry.h:rseq_update_user_cs (R1)",
        _by_era(E0="honoured", E1="honoured", E2="honoured", E3="fatal", R1="ignored", R2="ignored"),
    )
)
_rule(
    Rule(
        "rseq.debug",
        ("off", "on"),
        "CONFIG_DEBUG_RSEQ: at syscall exit, SIGSEGV if the post-syscall ip is inside "
        "the armed critical section or its descriptor is invalid.",
        "kernel/rseq.c:rseq_syscall, called first in syscall exit work",
        _all("off"),
    )
)
_rule(
    Rule(
        "rseq.syscall_in_cs",
        ("unchecked", "last-instruction", "sigsegv-at-entry"),
        "What the kernel does with a syscall inside a critical section. unchecked: "
        "nothing at entry; the restart rewind (ip -= 2) runs before the rseq fixup, so "
        "a restarting syscall that ends a critical section puts the ip back inside it. "
        "last-instruction (proposal, seed 000): a syscall that is the section's last "
        "instruction commits it; the fixup judges a rewound syscall by its post-syscall "
        "ip. sigsegv-at-entry (proposal, seed 001): syscall entry with the syscall "
        "instruction inside the armed section kills the task.",
        "arch/x86/kernel/signal.c:handle_signal (restart fixup before "
        "setup_rt_frame -> rseq_signal_deliver)",
        _all("unchecked"),
    )
)
_rule(
    Rule(
        "next_syscall.consume",
        ("syscall-entry", "never"),
        "The per-task next-syscall descriptor (seed 000): the kernel reads and clears "
        "it at the entry of every syscall (syscall-entry), or reads it without "
        "clearing it (never).",
        "proposal (LKML 2021-09-28, Vyukov); would live in syscall entry work, "
        "kernel/entry/common.c:syscall_trace_enter",
        _all("syscall-entry"),
        proposal=True,
    )
)
_rule(
    Rule(
        "next_syscall.on_signal",
        ("keep", "clear", "save-restore"),
        "What signal delivery does to the next-syscall descriptor: keep it, clear it, "
        "or save it in the signal frame and restore it at rt_sigreturn.",
        "proposal; would live in arch/x86/kernel/signal.c:setup_rt_frame and "
        "arch/x86/kernel/signal_64.c:rt_sigreturn",
        _all("keep"),
        proposal=True,
    )
)

_rule(
    Rule(
        "rseq.register_clears_cs",
        ("no", "yes"),
        "Registration clears a non-zero rseq_cs left in the area (reused TLS, a forked "
        "child re-registering); before the fix a stale invalid descriptor killed the "
        "thread right after a successful rseq().",
        "kernel/rseq.c:sys_rseq ('rseq: Fix segfault on registration when rseq_cs is "
        "non-zero', fd881d0a085f, 6.15; also 6.14.y, 6.1.146, 5.15.189, 5.10.240)",
        _since("linux-6.18", "yes", "no"),
    )
)
_rule(
    Rule(
        "rseq.len_check",
        ("32-only", "extensible"),
        "Registration length: exactly 32 (before 6.3), or 32, or at least the feature "
        "size with the struct's alignment (6.3+ extensible ABI: 33, 48, 64 are accepted, "
        "20 and 31 are not).",
        "kernel/rseq.c:sys_rseq ('rseq: Introduce extensible rseq ABI', ee3e3ac05c26)",
        _since("linux-6.18", "extensible", "32-only"),
    )
)
_rule(
    Rule(
        "singlestep.exit_report",
        ("yes", "no"),
        "A ptrace single-step over `syscall` is reported by a forced SIGTRAP at syscall "
        "exit (report_single_step: TIF_SINGLESTEP before 5.11, SYSCALL_WORK_SYSCALL_EXIT_TRAP "
        "since); 'no' is the 5.11-rc regression Kyle Huey reported, where the step was lost.",
        "kernel/entry/common.c:syscall_exit_work -> report_single_step; 'entry: Ensure trap "
        "after single-step on system call return' (6342adcaa683)",
        _all("yes"),
    )
)
_rule(
    Rule(
        "singlestep.user_tf_syscall",
        ("late", "report-at-exit"),
        "A TF the program set itself across `syscall`: SYSCALL masks TF, no exit report, the "
        "trap comes after the next instruction (late); or, as Lutomirski suggested in 2020, "
        "raise SIGTRAP at syscall exit when TF was set before and after (report-at-exit).",
        "arch/x86/entry/syscall_64.c:do_syscall_64 (SYSRET/IRET choice); LKML 2020-07-27 Lutomirski",
        _all("late"),
    )
)
_rule(
    Rule(
        "sud.available",
        ("no", "yes"),
        "Syscall User Dispatch exists (5.11+, generic entry): without it "
        "prctl(PR_SET_SYSCALL_USER_DISPATCH) fails with -EINVAL and nothing is dispatched.",
        "kernel/entry/syscall_user_dispatch.c:set_syscall_user_dispatch (5.11)",
        _by_era(E0="no", E1="no", E2="yes", E3="yes", R1="yes", R2="yes"),
    )
)
_rule(
    Rule(
        "sud.sigreturn",
        ("dispatched", "exempt"),
        "Whether rt_sigreturn outside the allowed region is dispatched like any "
        "syscall (x86-64: arch_syscall_is_vdso_sigreturn is false for 64-bit), or "
        "exempt (only the 32-bit vDSO trampolines are; the 2020 review asked why "
        "64-bit is not).",
        "kernel/entry/syscall_user_dispatch.c:syscall_user_dispatch, "
        "arch/x86/entry/vdso/vma.c:arch_syscall_is_vdso_sigreturn",
        _all("dispatched"),
    )
)
_rule(
    Rule(
        "sud.bad_selector",
        ("kill-thread", "kill-process"),
        "A selector byte other than ALLOW/BLOCK (or a selector read that faults): "
        "do_exit(SIGSYS) (SIGSEGV) ends only the calling thread (5.11-5.15), "
        "force_exit_sig(SIGSYS) (SIGSEGV) kills the process (5.16+).",
        "kernel/entry/syscall_user_dispatch.c:syscall_user_dispatch",
        {p: ("kill-thread" if p == "linux-5.11" else "kill-process") for p in PRESETS},
    )
)
_rule(
    Rule(
        "sud.inclusive",
        ("no", "yes"),
        "PR_SYS_DISPATCH_INCLUSIVE_ON (6.17+, a2fc422ed757): the region given to prctl is "
        "the intercepted one and syscalls outside it run; before 6.17 the mode is -EINVAL.",
        "kernel/entry/syscall_user_dispatch.c:task_set_syscall_user_dispatch",
        _since("linux-6.18", "yes", "no"),
    )
)
_rule(
    Rule(
        "membarrier.rseq",
        ("no", "yes"),
        "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) (5.10+): IPIs the other CPUs "
        "running the process's threads, and each target does rseq_preempt; before 5.10 "
        "the command is -EINVAL.",
        "kernel/sched/membarrier.c:membarrier_private_expedited, ipi_rseq",
        _since("linux-5.10", "yes", "no"),
    )
)
_rule(
    Rule(
        "task_work.twa_signal",
        ("no", "yes"),
        "Whether task_work_add can notify by a signal wake-up (TWA_SIGNAL, what io_uring "
        "uses): yes (5.8+): the task is woken as if a signal were pending (5.8-5.10 "
        "JOBCTL_TASK_WORK + TIF_SIGPENDING, 5.11+ TIF_NOTIFY_SIGNAL), a sleeping syscall "
        "returns -ERESTART*, get_signal runs the work, finds no signal and the syscall is "
        "restarted, with no rseq step; no (before 5.8): the work only sets "
        "TIF_NOTIFY_RESUME. Used by [environment] max_notify_signals.",
        "kernel/task_work.c:task_work_add ('task_work: teach task_work_add() to do "
        "signal_wake_up()', e91b48162332, 5.8); include/linux/sched/signal.h:signal_pending; "
        "kernel/entry/common.c:exit_to_user_mode_loop; "
        "arch/x86/kernel/signal.c:arch_do_signal_or_restart",
        _since("linux-5.8", "yes", "no"),
    )
)
_rule(
    Rule(
        "rseq.segv_while_delivering_segv",
        ("force_sig", "force_sigsegv"),
        "What an rseq failure raises while SIGSEGV itself is being delivered (the fixup in "
        "rseq_signal_deliver). force_sig (4.18-rc1): a plain force_sig(SIGSEGV), queued for the "
        "handler again, so a descriptor that keeps failing re-delivers SIGSEGV forever (a "
        "handler without SA_NODEFER runs once per delivery: the process never ends). "
        "force_sigsegv (4.18 and later): the handler is reset to SIG_DFL, the next delivery "
        "kills.",
        "kernel/rseq.c:__rseq_handle_notify_resume, kernel/signal.c:force_sigsegv ('rseq: "
        "Avoid infinite recursion when delivering SIGSEGV', 784e0300fe9f, 4.18-rc)",
        _all("force_sigsegv"),
    )
)
_rule(
    Rule(
        "rseq.event_mask_guard",
        ("preempt", "irq"),
        "Legacy rseq_need_restart reads the event mask and clears it in two steps. preempt "
        "(5.10-6.17): only preemption is disabled, so a membarrier RSEQ IPI (ipi_rseq -> "
        "rseq_preempt) landing between the read and the clear sets PREEMPT, which the clear "
        "wipes: the fixup decides on the old mask and the section commits after the fence. "
        "irq: 'rseq: Protect event mask against membarrier IPI' (6eb350a22331, 6.18; stable "
        "6.1.y and later) disables interrupts there when CONFIG_MEMBARRIER. No effect on "
        "R1/R2 (no event mask) or without membarrier.",
        "kernel/rseq.c:rseq_need_restart; include/linux/rseq.h:rseq_preempt (Fixes: "
        "2a36ab717e8f, the 5.10 MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ)",
        _since("linux-6.18", "irq", "preempt"),
    )
)
_rule(
    Rule(
        "rseq.unregister_cpu_id_start",
        ("0", "uninitialized"),
        "What rseq(RSEQ_FLAG_UNREGISTER) leaves in the area's cpu_id_start (cpu_id is always "
        "RSEQ_CPU_ID_UNINITIALIZED, -1). 0 (4.18-6.18, and 7.1 again with 'rseq: Set "
        "rseq::cpu_id_start to 0 on unregistration'); uninitialized: -1, the 6.19 rewrite "
        "(rseq_reset_ids passes RSEQ_CPU_ID_UNINITIALIZED for both fields).",
        "kernel/rseq.c:rseq_reset_rseq_cpu_node_id (legacy), rseq_reset_ids (6.19)",
        {p: ("uninitialized" if p == "linux-6.19" else "0") for p in PRESETS},
    )
)
_rule(
    Rule(
        "rseq.new_task_migrate",
        ("no", "yes"),
        "Whether wake_up_new_task treats placing a new task on its first CPU as a migration "
        "(rseq_migrate: NOTIFY_RESUME, so its first return to user writes the ids). no: before "
        "5.8, a fork child (which keeps its parent's registration and area contents) starts on "
        "another CPU with its parent's cpu_id until its first preemption; yes: 'sched: Fix "
        "unreliable rseq cpu_id for new tasks' (ce3614daabea, 5.8).",
        "kernel/sched/core.c:wake_up_new_task",
        _since("linux-5.8", "yes", "no"),
    )
)
_rule(
    Rule(
        "rseq.kvm_guest_entry",
        ("exit", "clear", "ids"),
        "What the KVM_RUN guest-entry path does with TIF_NOTIFY_RESUME set by a switch or a "
        "migration of the vCPU thread while it ran the guest. exit (before 5.9/5.10, derived): "
        "not handled there, so the return to user runs rseq's notify-resume; clear (5.10-5.14, "
        "after 72c3c0fe54a3 'x86/kvm: Use generic xfer to guest work function'): "
        "tracehook_notify_resume clears the flag and rseq never runs, so cpu_id stays stale; "
        "ids (5.15+, 8646e53633f3 'KVM: rseq: Update rseq when processing NOTIFY_RESUME on xfer "
        "to KVM guest'): rseq_handle_notify_resume(NULL, NULL) writes the ids, no fixup.",
        "kernel/entry/kvm.c:xfer_to_guest_mode_work",
        {p: ("exit" if p in ("linux-4.18", "linux-5.8") else "clear" if p in ("linux-5.10", "linux-5.11") else "ids")
         for p in PRESETS},
    )
)
_rule(
    Rule(
        "glibc.thread_rseq_failure",
        ("abort", "continue"),
        "What glibc does when a thread made by pthread_create fails to register its rseq "
        "area (a seccomp filter refusing rseq(), elastic/beats #30576). abort (glibc 2.35+): "
        "start_thread registers when the creating thread's area was registered "
        "(pthread_create sets ATTR_FLAG_DO_RSEQ iff its rseq_area.cpu_id >= 0) and any "
        "error is fatal: __libc_fatal('Fatal glibc error: rseq registration failed') -> "
        "abort() -> SIGABRT, the process ends; continue (no glibc release; what the initial "
        "thread's registration in __tls_init_tp does): the thread runs unregistered, cpu_id = "
        "RSEQ_CPU_ID_REGISTRATION_FAILED. A C library rule, not a kernel one: the same on "
        "every preset.",
        "glibc nptl/pthread_create.c:start_thread, sysdeps/unix/sysv/linux/rseq-internal.h:"
        "rseq_register_current_thread",
        _all("abort"),
    )
)

_rule(
    Rule(
        "rseq.mm_cid",
        ("absent", "present"),
        "struct rseq's mm_cid field: absent before 6.3 (the kernel accepted only rseq_len == 32 "
        "and wrote cpu_id_start and cpu_id; a program reading the field reads zeros: refused); "
        "present from 6.3 ('sched: Introduce per-memory-map concurrency ID', af7f588d8f73, and "
        "'rseq: Extend struct rseq with per-memory-map concurrency ID'): written with the ids, "
        "the concurrency id the scheduler gives the task when it switches it in (model/mmcid.py). "
        "The field lies inside the original 32 bytes, so glibc's 32-byte registration gets it "
        "too (rseq_update_cpu_node_id writes it unconditionally; unregistration writes 0).",
        "kernel/sched/sched.h:switch_mm_cid, kernel/rseq.c:rseq_update_cpu_node_id",
        _since("linux-6.18", "present", "absent"),
    )
)

# Older spellings kept so that every spec written against them stays valid.
ALIASES = {"next_syscall.clear": "next_syscall.consume"}


def resolve(preset: str, overrides: dict[str, str]) -> dict[str, str]:
    """The full rule assignment of a spec (names canonical)."""
    out = {name: r.default(preset) for name, r in RULES.items()}
    for k, v in overrides.items():
        out[ALIASES.get(k, k)] = v
    return out

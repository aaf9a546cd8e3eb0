"""The built-in properties, each with the thread it comes from.

An invariant ("always", the default kind) is checked through a monitor:
the action that would break it sets the global `bad` variable, and the
invariant is `bad != NAME`.  A progress property (kind "progress") is a
liveness goal over whole runs, under the spec's fairness (model/progress.py).  The
builder only adds a property's monitor cases when a spec checks it, so an
unchecked property costs nothing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PropInfo:
    name: str
    doc: str
    seed: str
    trigger: str | None  # action tag that makes the check non-vacuous
    kind: str = "always"  # "always" (an invariant) | "progress" (a liveness goal, model/progress.py)


PROPERTIES: dict[str, PropInfo] = {
    p.name: p
    for p in (
        PropInfo(
            "next-syscall-atomic",
            "Every syscall that consumes a next-syscall descriptor is the @traced syscall "
            "of the context (thread or handler frame) that armed it.",
            "seed 000 (Vyukov, 'rseq with syscall as the last instruction')",
            "consume",
        ),
        PropInfo(
            "next-syscall-delivered",
            "Every @traced syscall that completes ran with the descriptor.",
            "seed 000",
            "traced-complete",
        ),
        PropInfo(
            "rseq-cpu-id-accurate",
            "Every user instruction of a thread registered with its TLS area runs with "
            "rseq.cpu_id equal to the CPU it runs on (the kernel rewrites the ids before "
            "every return to user after a migration; the first return after registration "
            "writes them).",
            "issue 'what rseq is for'; Documentation/userspace-api/rseq.rst (cpu_id)",
            "cpu-id-read",
        ),
        PropInfo(
            "rseq-cs-atomic",
            "A critical section that commits (its post-commit ip reached from inside) "
            "saw no preemption, migration or signal delivery since its rseq_cs store, "
            "while it ran or while handlers ran over it, whatever rseq_cs holds by then "
            "(events its descriptor opts out of by NO_RESTART_ON_* flags excepted); "
            "otherwise it was aborted.",
            "seed 001; Documentation/userspace-api/rseq.rst; kernel/rseq.c:rseq_need_restart "
            "(the NO_RESTART_ON_SIGNAL combination check)",
            "commit",
        ),
        PropInfo(
            "no-syscall-in-rseq-cs",
            "No syscall returns with its post-syscall ip inside the armed critical "
            "section (what CONFIG_DEBUG_RSEQ's rseq_syscall() checks).",
            "seed 001 (Desnoyers/Zijlstra 2018)",
            "syscall-armed",
        ),
        PropInfo(
            "sud-no-escape",
            "With Syscall User Dispatch on and the selector at BLOCK (or no selector), "
            "no syscall whose post-syscall ip is outside the allowed region reaches "
            "its body.",
            "seed 003 (Krisman Bertazi / Gleixner 2020)",
            "sud-check",
        ),
        PropInfo(
            "sud-sigreturn-not-redirected",
            "A SIGSYS handler's rt_sigreturn is never itself dispatched.",
            "seed 003 (Gleixner: 'Why isn't rt_sigreturn() exempt?')",
            "sud-check",
        ),
        PropInfo(
            "rseq-registered-while-used",
            "A thread arms a critical section (rseq_cs store) or commits one only while "
            "it has an rseq registration; otherwise nothing protects it.",
            "seed 004 (Desnoyers / Nagy 2018: 'libB unregisters rseq, libA uses rseq -> bug')",
            "rseq-use",
        ),
        PropInfo(
            "rseq-refcount-no-overflow",
            "No `add` wraps a variable around its range (the 2018 TLS refcount: 'what "
            "prevents calling rseq_register_current_thread more than 4G times?').",
            "seed 004 (Nagy 2018)",
            "add",
        ),
        PropInfo(
            "registration-succeeds",
            "Every rseq() register or unregister call a program makes returns 0.",
            "seed 004; kernel/rseq.c:sys_rseq error codes",
            "rseq-call",
        ),
        PropInfo(
            "single-step-precise",
            "While a context is single-stepped (ptrace or its own TF), every user "
            "instruction it executes, `syscall` included, is reported (SIGTRAP or a "
            "tracer stop) before the next one runs.",
            "seed 002 (Lutomirski 2020: 'we'll actually execute one more user instruction "
            "before sending the signal')",
            "stepped",
        ),
        PropInfo(
            "no-unexpected-kill",
            "The process is never killed by a signal (SIGSEGV from rseq, a default action).",
            "seeds 000, 001",
            None,
        ),
        PropInfo(
            "rseq-cs-progress",
            "A thread that keeps arming a critical section (rseq_cs NAME) commits one "
            "infinitely often: no fair run aborts its sections forever.",
            "issue 12; the NO_RESTART_ON_* flags' purpose (debuggers single-stepping a "
            "section, 0190e4198e47 deprecating them in 6.0)",
            "cs-enter",
            "progress",
        ),
        PropInfo(
            "syscall-progress",
            "A syscall a thread issues eventually leaves its entry work and body (it "
            "returns, is interrupted, or the process dies): no fair run keeps a thread "
            "inside one forever.",
            "issue 12",
            "syscall",
            "progress",
        ),
        PropInfo(
            "terminates",
            "Every fair run ends with every thread exited (or the process killed: check "
            "no-unexpected-kill beside it for a clean exit).",
            "issue 12",
            None,
            "progress",
        ),
        PropInfo(
            "assert",
            "Every `assert EXPR` in a program holds when it executes (always checked "
            "when a program has an assert).",
            "the spec's own invariant",
            "assert",
        ),
    )
}

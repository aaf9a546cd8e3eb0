"""What the model's names mean, in words, for a trace that must read
without the repository: the program with its line numbers, where each
code address is in it, and a one-line meaning for each variable a trace
shows (kernel-semantics.md section 1 has the longer story)."""

from __future__ import annotations

import re

from rseqcheck.model.builder import Builder

PHASE_WORDS = {
    "USER": "running user code",
    "ENTRY": "syscall entry work",
    "BODY": "in the syscall's body",
    "BLOCKED": "asleep in the syscall",
    "EXITWORK": "syscall exit work",
    "LOOP": "in the exit-to-user-mode loop (signals, rseq, reschedule)",
    "SIGRSEQ": "delivering a signal: rseq_signal_deliver",
    "SIGFRAME": "delivering a signal: building its frame",
    "DEAD": "exited",
    "NEW": "not created yet",
}

AX_WORDS = {
    "NONE": "no syscall in flight",
    "OK": "the syscall completed",
    "ORIG": "the syscall number again: it will be restarted",
}

# (pattern over the part after "T.", meaning with {t} the thread, {x} the
# first group)
_THREAD_VARS: tuple[tuple[str, str], ...] = (
    (r"k", "where {t} is: user mode or a kernel step"),
    (r"depth", "how many signal frames {t} has on its stack ({t}.h1 is the first handler)"),
    (r"ip0", "where {t} is in its code (L<n>: line n of the program)"),
    (r"ip(\d+)", "where {t}'s handler frame {x} ({t}.h{x}) is in its code"),
    (r"ax", "{t}'s syscall result as the restart logic sees it (-ERESTART*: to be restarted)"),
    (r"pend\.(\w+)", "{x} is pending for {t}"),
    (r"blk\.(\w+)", "{x} is blocked in {t}'s signal mask"),
    (r"f(\d+)\.blk\.\w+", "the signal mask saved in {t}'s frame {x}, restored by rt_sigreturn"),
    (r"f(\d+)\.%r\d+", "a register saved in {t}'s frame {x}, restored by rt_sigreturn"),
    (r"f(\d+)\.(desc|desc_owner|desc_orphan)", "the next-syscall descriptor saved in {t}'s frame {x}"),
    (r"f(\d+)\.tf", "TF saved in {t}'s frame {x}"),
    (r"f(\d+)\.ret", "the interrupted context's syscall result saved in {t}'s frame {x} (uc_mcontext.ax)"),
    (r"budget", "signals the environment may still send to {t}"),
    (r"tw_budget", "task_work notifications the environment may still send to {t}"),
    (r"resched", "TIF_NEED_RESCHED: {t} is to be switched out on its way to user"),
    (r"notify", "TIF_NOTIFY_RESUME: resume work (legacy rseq) before {t} returns to user"),
    (r"notify_signal", "TIF_NOTIFY_SIGNAL: task_work that wakes {t} like a signal"),
    (r"ksig", "the signal {t}'s kernel side is delivering"),
    (r"rseq_cs", "the rseq_cs pointer in {t}'s rseq area: 0 or a critical section's descriptor"),
    (r"ev\.(\w+)", "the legacy rseq event bit {x} of {t} (t->rseq_event_mask)"),
    (r"dirty(\d+)", "an event hit the critical section of {t}'s context {x} (the rseq-cs-atomic check)"),
    (r"rseq", "{t}'s rseq registration: which area, or 0"),
    (r"rseq\.(\w+)", "the {x} field of {t}'s rseq area, as user space reads it"),
    (r"rseq_ret", "what {t}'s last rseq() returned"),
    (r"ret", "what {t}'s running context's last syscall returned (%rax): 0 or an errno"),
    (r"glibc_start", "{t} is in glibc's start_thread, about to register its rseq area"),
    (r"rseq_ids", "the ids the kernel last wrote to {t}'s rseq area (read-only check)"),
    (r"ids_changed", "{t}'s CPU or mm_cid changed since the ids were last written (6.19+)"),
    (r"rseq_work", "rseq work raised for {t}'s return to user (6.19+: sched_switch, TIF_RSEQ)"),
    (r"user_irq", "{t} entered the kernel by an interrupt from user mode (6.19+)"),
    (r"cpu", "the CPU {t} is on"),
    (r"desc", "{t}'s next-syscall descriptor (seed 000): the syscall it is armed for, or 0"),
    (r"desc_owner", "which of {t}'s contexts armed the next-syscall descriptor"),
    (r"desc_orphan", "the context that armed the descriptor has returned (monitor)"),
    (r"traced", "the @traced syscall consumed the descriptor (monitor)"),
    (r"sud", "{t}'s syscall user dispatch: off or on"),
    (r"selector", "{t}'s SUD selector byte: ALLOW or BLOCK"),
    (r"on_dispatch", "a dispatched syscall's SIGSYS is being handled (monitor)"),
    (r"tf", "the trap flag in {t}'s flags register (single-stepping)"),
    (r"unreported", "a single step of {t} not yet reported to the tracer"),
    (r"mm_cid", "the mm_cid {t} got at its last switch-in (held while {t} is on a CPU)"),
    (r"affinity", "{t}'s CPU affinity: -1 all CPUs, else the one sched_setaffinity allowed"),
    (r"(%r\d+)", "{t}'s register {x}"),
    (r"tls\.(\w+)", "{t}'s copy of the thread-local variable tls.{x}"),
    (r"(\w+)", "{t}'s thread-local variable {x}"),
)

_GLOBAL_VARS: tuple[tuple[str, str], ...] = (
    (r"bad", "the property found broken (the trace ends there)"),
    (r"killed", "the signal that killed the process, or NONE"),
    (r"SIGSEGV\.dfl", "SIGSEGV's handler was reset to SIG_DFL (force_sigsegv)"),
    (r"cpu(\d+)\.curr", "the thread CPU {x} runs"),
    (r"execve_done", "execve has replaced the program"),
    (r"(\w+)\.unmapped", "the library {x} was unloaded (dlclose)"),
    (r"(\w+)\.rseq_cs", "the rseq_cs pointer in rseq area {x}, which its threads use in turn"),
    (r"(\w+)\.rseq\.(\w+)", "the {y} field of rseq area {x}, as user space reads it"),
    (r"(\w+)\[(\w+)\]", "slot {y} of the per-CPU array {x}"),
)


def describe(name: str, threads: set[str]) -> str | None:
    """The meaning of variable `name` (None: a user variable, said so)."""
    head, _, rest = name.partition(".")
    if head in threads and rest:
        for pat, text in _THREAD_VARS:
            m = re.fullmatch(pat, rest)
            if m:
                return text.format(t=head, x=m.group(1) if m.groups() else "")
        return None
    for pat, text in _GLOBAL_VARS:
        m = re.fullmatch(pat, name)
        if m:
            g = m.groups()
            return text.format(x=g[0] if g else "", y=g[1] if len(g) > 1 else "")
    return f"the user variable {name}"


def program(b: Builder) -> list[dict]:
    """Each code block (threads, then handlers) with its spec lines, then
    each rseq_cs descriptor: a trace read on a mailing list must say what
    a critical section is and which flags it has."""
    flags = {t.name: t.rseq_flags for t in b.spec.threads}
    out = []
    for seg in b.segments:
        heads = ["".join(f"{lab}: " for lab in ins.labels) for ins in seg.instrs]
        w = max(map(len, heads), default=0)  # labels in a column of their own: the instructions line up
        lines = [[ins.line, f"{h:<{w}}{ins.text}"] for h, ins in zip(heads, seg.instrs)]
        if seg.kind != "handler" and flags.get(seg.name):
            t = next(t for t in b.spec.threads if t.name == seg.name)
            lines.insert(0, [t.line, f"(its rseq area's flags: {' | '.join(flags[seg.name])})"])
        out.append({"name": seg.name if seg.kind == "handler" else f"thread {seg.name}", "lines": lines})
    at: dict[str, int] = {}  # label -> its line (a descriptor's labels are in one block)
    for seg in b.segments:
        for lab, i in seg.labels.items():
            if i < len(seg.instrs):
                at.setdefault(lab, seg.instrs[i].line)
    for c in b.spec.cs.values():
        out.append({"name": f"rseq_cs {c.name}", "lines": [[c.line, _descriptor(c, at)]]})
    return out


def _descriptor(c, at: dict[str, int]) -> str:
    """`section from begin (L22) up to end (L24), abort at abort (L26);
    flags ...`: the section and where each of its labels is."""

    def lab(x: str) -> str:
        return f"{x} (L{at[x]})" if x in at else x

    text = f"section from {lab(c.start)} up to {lab(c.post_commit)}, abort at {lab(c.abort)}"
    if c.flags:
        text += f"; flags {' | '.join(c.flags)}"
    if c.version:
        text += f"; version {c.version}"
    if not c.signature_ok:
        text += "; the word before abort is not the signature"
    return text


def addresses(b: Builder) -> dict[str, int]:
    """Each code address as traces show it (`T0+2`, a label) -> its line."""
    return {b.ip_label(ip): ins.line for ip, (_, ins) in enumerate(b.code) if ins.line}


def thread_names(b: Builder) -> set[str]:
    return {t.name for t in b.threads}

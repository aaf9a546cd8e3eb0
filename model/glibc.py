"""glibc's registration of a new thread's rseq area (glibc 2.35+; seed 004,
kernel-semantics.md 1.13), in our words:

  nptl/pthread_create.c:__pthread_create_2_1 sets ATTR_FLAG_DO_RSEQ on the
    new thread iff the creating thread's rseq_area.cpu_id >= 0 (its area is
    registered), blocks every signal and clones;
  nptl/pthread_create.c:start_thread (in the child, before the thread
    function and before the signal mask is restored) calls
    sysdeps/unix/sysv/linux/rseq-internal.h:rseq_register_current_thread:
    rseq(&self->rseq_area, 32, 0, RSEQ_SIG); on any error it writes
    cpu_id = RSEQ_CPU_ID_REGISTRATION_FAILED and returns false, and with
    DO_RSEQ set start_thread calls __libc_fatal("Fatal glibc error: rseq
    registration failed") -> abort(): SIGABRT, the process ends.  No errno
    is tolerated.  (The initial thread, sysdeps/nptl/dl-tls_init_tp.c:
    __tls_init_tp, tolerates every error: __rseq_size = 0, and its threads
    then never get DO_RSEQ.)

The only error a fresh thread's registration can meet in the model is the
thread's seccomp filter (the child's [thread.T] seccomp: filters are
inherited at clone), so the step exists only for a pthread whose filter
refuses rseq(); every other pthread is registered when its code starts, as
before.  Rule glibc.thread_rseq_failure: abort (glibc) or continue.
"""

from __future__ import annotations

from rseqcheck.model import data
from rseqcheck.model.builder import TV, Builder
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import And, Const, Eq, Expr, Var

START = "glibc nptl/pthread_create.c:start_thread"


def may_fail(b: Builder) -> set[str]:
    """The threads made by pthread_create (clone without raw) whose filter
    refuses rseq()."""
    out: set[str] = set()
    for t in b.spec.threads:
        spawn = b.spawns.get(t.name)
        if spawn is None or spawn[1].op != "clone" or "raw" in spawn[1].args:
            continue
        act = t.seccomp.get("rseq", "allow")
        if act != "allow" and t.area is not None:
            raise SpecError(b.spec.path, t.area_line, f"{t.name}: a seccomp filter refusing rseq() with a shared "
                            "rseq_area is not modelled")
        if act == "trap":
            raise SpecError(b.spec.path, spawn[1].line, f"clone {t.name}: its seccomp filter traps rseq() (SIGSYS) "
                            "inside glibc's start_thread, with every signal blocked: not modelled")
        if act != "allow":
            out.add(t.name)
    return out


def add_actions(b: Builder, t: TV) -> None:
    if t.glibc_init is None:
        return
    act = t.seccomp["rseq"]
    guard = And(b.alive(t), t.at("USER"), t.at_depth(0), Eq(t.glibc_init, 1))
    call = "glibc start_thread: rseq(&self->rseq_area, 32, 0, RSEQ_SIG)"
    if act == "kill":
        b.add(t, b.ctx_name(t, 0), guard, b.kill("SIGSYS"), f"{call} -> seccomp: SECCOMP_RET_KILL_PROCESS",
              "kernel/seccomp.c:__seccomp_filter")
        return
    errno = act.partition(":")[2] or "EPERM"
    rule = b.rules["glibc.thread_rseq_failure"]
    if rule == "abort":
        b.add(t, b.ctx_name(t, 0), guard, b.kill("SIGABRT"),
              f"{call} -> seccomp: -{errno}; __libc_fatal(\"Fatal glibc error: rseq registration failed\") "
              "-> abort(): SIGABRT, the process ends", START, "glibc.thread_rseq_failure=abort")
        return
    ups: dict[Var, Expr] = {t.glibc_init: Const(0)}
    if t.rs:
        ups[t.rs["cpu_id"]] = Const(data.REGISTRATION_FAILED)
        ups[t.rs["cpu_id_start"]] = Const(0)
    b.add(t, b.ctx_name(t, 0), guard, ups,
          f"{call} -> seccomp: -{errno}; the thread runs unregistered (cpu_id = REGISTRATION_FAILED)",
          START, "glibc.thread_rseq_failure=continue")

"""The syscalls a spec may name and how their bodies behave in the model.

Only what matters to the protocol is kept: whether the body can sleep
(a schedule-out, so `rseq_preempt` fires, kernel/sched/core.c:
prepare_task_switch), and which restart code it returns when a signal
interrupts the sleep (kernel-semantics.md 2.4):
  fast      never sleeps (getpid ...)
  yield     may switch to another task (sched_yield)
  sys       sleeps; -ERESTARTSYS when interrupted (read, write on a pipe)
  nointr    sleeps; -ERESTARTNOINTR, always restarted (e.g. fork with a signal pending)
  nohand    sleeps until a signal is pending; -ERESTARTNOHAND, restarted only
            if no handler runs (pause)
  block     sleeps; -ERESTART_RESTARTBLOCK, via restart_syscall (nanosleep)
  kvm       ioctl(KVM_RUN): the guest runs inside the body; the vCPU thread
            may be switched out or migrated there, and the guest-entry path
            handles TIF_NOTIFY_RESUME by rule (model/entry.py:_kvm_run)
  sigreturn rt_sigreturn (arch/x86/kernel/signal_64.c)
  exit      ends the thread
"""

from __future__ import annotations

SYSCALLS: dict[str, str] = {
    "getpid": "fast",
    "getppid": "fast",
    "gettid": "fast",
    "getcpu": "fast",
    "close": "fast",
    "membarrier": "fast",
    "sched_yield": "yield",
    "read": "sys",
    "write": "sys",
    "futex": "sys",
    "accept": "sys",
    "wait4": "sys",
    "fork": "nointr",
    "pause": "nohand",
    "nanosleep": "block",
    "clock_nanosleep": "block",
    "poll": "block",
    "ioctl_kvm_run": "kvm",
}

# Restart code returned by a sleeping body that a signal interrupts.
RESTART_CODE = {
    "sys": "ERESTARTSYS",
    "nointr": "ERESTARTNOINTR",
    "nohand": "ERESTARTNOHAND",
    "block": "ERESTART_RESTARTBLOCK",
}

# Values of the saved `ax` the model distinguishes.  NONE: not a syscall
# result (user mode, or after frame setup wrote 0).  ORIG: ax = orig_ax after
# a restart rewind.
# The error values after ORIG are used only when a program reads `ret`
# (model/retval.py); otherwise an error result is OK, as it always was.
AX = ("NONE", "OK", "EINTR", "ERESTARTSYS", "ERESTARTNOINTR", "ERESTARTNOHAND", "ERESTART_RESTARTBLOCK", "ORIG",
      "EINVAL", "EPERM", "EBUSY", "EFAULT", "ENOSYS", "EACCES", "EAGAIN")


def syscall_class(name: str) -> str:
    return SYSCALLS[name]

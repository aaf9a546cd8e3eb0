"""Signals: numbers, default actions, dequeue order (x86-64 numbering).

Sources: include/uapi/asm-generic/signal.h (numbers), kernel/signal.c
(sig_kernel_* default actions, next_signal: synchronous signals first, then
the lowest number).  The delivery transitions live in model/delivery.py."""

from __future__ import annotations

SIGNUM = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6,
    "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12,
    "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17,
    "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22,
    "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27,
    "SIGWINCH": 28, "SIGIO": 29, "SIGPWR": 30, "SIGSYS": 31,
}  # fmt: skip

# kernel/signal.c SYNCHRONOUS_MASK
SYNCHRONOUS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGTRAP", "SIGFPE", "SIGSYS"}
# Default action "ignore" (sig_kernel_ignore) and "stop" (sig_kernel_stop).
DEFAULT_IGNORE = {"SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"}
DEFAULT_STOP = {"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU"}


def dequeue_order(sigs: list[str] | tuple[str, ...]) -> list[str]:
    """kernel/signal.c:next_signal: synchronous first, then lowest number."""
    return sorted(sigs, key=lambda s: (s not in SYNCHRONOUS, SIGNUM[s]))

"""Forced signals (model/forcesig.py): kernel/signal.c:force_sig_info_to_task
unblocks a blocked signal and resets a blocked or ignored one to SIG_DFL, so a
kernel-raised signal (#DB's SIGTRAP, a fault, the syscall-exit step report)
is never left pending behind the mask.  Each expectation is derived by hand
from that function and from arch/x86/kernel/traps.c:exc_debug_user (send_sigtrap),
kernel/entry/common.c:report_single_step."""

from __future__ import annotations

from rseqcheck.checker.engines.explicit import bfs

from tests.util import Space, one_thread, system_of


def spec(code: str, handlers: str, *, ptrace: bool = False, props: str = '"no-unexpected-kill"') -> str:
    return one_thread(code, env='signals = ["SIGUSR1"]\nmax_signals = 1', thread='ptrace = "singlestep"' if ptrace else "",
                      extra=handlers, props=props)


MASKED = '''
[handler.SIGUSR1]
mask = ["SIGTRAP"]
code = """
        {body}
        sigreturn
"""
'''


def test_ptrace_step_in_masked_handler_reaches_the_tracer(tmp_path):
    text = spec("        nop\n        exit", MASKED.format(body="syscall getppid\n        nop"), ptrace=True,
                props='"single-step-precise", "no-unexpected-kill"')
    sp = Space(system_of(tmp_path, text))
    # the step unblocks SIGTRAP; the tracer's stop then dequeues it
    # (the syscall's report comes first in the handler and unblocks SIGTRAP)
    assert sp.fired("syscall exit work: report_single_step -> forced SIGTRAP (TRAP_BRKPT)  -- SIGTRAP is "
                    "blocked: force_sig unblocks it, the tracer gets it")
    # no state has a SIGTRAP pending behind the mask
    assert not sp.any(**{"T0.pend.SIGTRAP": "1", "T0.blk.SIGTRAP": "1"})
    assert not sp.any(bad="single-step-precise") and not sp.any(killed="SIGTRAP")
    # the handler's sigreturn restores the mask saved in the frame (SIGTRAP unblocked)
    assert not sp.any(**{"T0.k": "DEAD", "T0.blk.SIGTRAP": "1"})


def test_user_tf_in_masked_handler_kills(tmp_path):
    h = MASKED.format(body="set_tf\n        nop")
    sp = Space(system_of(tmp_path, spec("        nop\n        exit", h)))
    assert sp.fired("nop  ; #DB single-step trap -> SIGTRAP (exc_debug_user)  -- SIGTRAP is blocked: force_sig kills")
    assert sp.any(killed="SIGTRAP")
    s = system_of(tmp_path, spec("        nop\n        exit", h))
    r = bfs(s, 80, por=False)
    # send SIGUSR1, enter, dequeue, frame, back to user, set_tf, the trapping nop
    assert r.verdict == "violation" and len(r.trace) - 1 == 7
    assert s.actions[r.trace[-1][0]].label.endswith("SIGTRAP is blocked: force_sig kills")


def test_ignored_sigtrap_and_fault_kill(tmp_path):
    ign = '[handler.SIGTRAP]\naction = "ignore"\n'
    tf = Space(system_of(tmp_path, spec("        set_tf\n        nop\n        nop\n        exit", ign)))
    assert tf.fired("nop  ; #DB single-step trap -> SIGTRAP (exc_debug_user)  -- SIGTRAP is ignored: force_sig resets it to SIG_DFL, killed")
    assert tf.any(killed="SIGTRAP") and not tf.any(**{"T0.k": "DEAD", "killed": "NONE"})
    seg = '[handler.SIGSEGV]\naction = "ignore"\n'
    f = Space(system_of(tmp_path, spec("        fault SIGSEGV\n        exit", seg)))
    assert f.fired("fault SIGSEGV  -- SIGSEGV is ignored: force_sig resets it to SIG_DFL, killed")
    assert not f.any(**{"T0.pend.SIGSEGV": "1"})

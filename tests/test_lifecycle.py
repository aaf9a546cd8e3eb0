"""clone, fork and execve (model/lifecycle.py): each test's expectation is
derived by hand from kernel-semantics.md 2.15 / 2.9.5 / 2.17.1 and the kernel
functions named there (kernel/fork.c:copy_process, kernel/rseq.c:rseq_fork,
rseq_execve, fs/exec.c:begin_new_exec)."""

from __future__ import annotations

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.errors import SpecError

from tests.util import Space, one_thread, system_of


def spec(t0: str, t1: str = "", *, preset: str = "linux-6.18", env: str = "", extra: str = "",
         props: str = '"no-unexpected-kill"') -> str:
    second = f'[thread.T1]\ncode = """\n{t1}\n"""\n' if t1 else ""
    return one_thread(t0, env=env, thread=second, extra=extra, props=props, depth=200, preset=preset)


CS = '''
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
'''
ARM = """
retry:  rseq_cs    cs1
begin:  nop
end:    exit
abort:  jmp        retry
"""
SIGSYS_ALLOW = '''
[handler.SIGSYS]
code = """
        store      tls.emulated, 1
        sud_select ALLOW
        sigreturn
"""
'''


def space(tmp_path, text: str) -> Space:
    return Space(system_of(tmp_path, text))


def test_created_thread_does_nothing_before_its_clone(tmp_path):
    # Until clone, T1 does not exist: no signal reaches it and it runs nothing.
    sp = space(tmp_path, spec("        nop\n        clone T1\n        exit", "        syscall getpid\n        exit",
                              env='signals = ["SIGUSR1"]\nmax_signals = 1'))
    assert sp.any(T0__ip0="T0+1", T1__k="NEW")
    assert not sp.any(T1__k="NEW", T1__pend__SIGUSR1=1)
    assert not sp.any(T0__ip0="T0", T1__k="USER")
    assert sp.any(T1__k="USER", T1__ip0="T1+0")  # after clone: its code from the start


@pytest.mark.parametrize("how, want", [("clone T1, raw", "violation"), ("clone T1", "holds")])
def test_raw_clone_child_is_unregistered(tmp_path, how, want):
    # rseq_fork: a CLONE_VM child starts with t->rseq = NULL; pthread_create's
    # start_thread then registers it (glibc 2.35+), the raw syscall does not.
    s = system_of(tmp_path, spec(f"        {how}\n        exit", ARM, extra=CS, props='"rseq-registered-while-used"'))
    r = bfs(s, 100, por=False)
    assert r.verdict == want
    if want == "violation":
        # clone (user), entry, body, notify-resume, back to user, T1's rseq_cs
        assert len(r.trace) - 1 == 6


def test_clone_child_does_not_get_pending_signals(tmp_path):
    # copy_process: the child's pending set starts empty, whatever the parent's.
    src = spec("""
        clone      T1
        exit
""", """
        exit
""", env='signals = ["SIGUSR1"]\nmax_signals = 1', extra='''
[handler.SIGUSR1]
code = """
        sigreturn
"""
''')
    sp = space(tmp_path, src)
    assert sp.any(T0__k="BODY", T0__pend__SIGUSR1=1, T1__k="NEW")  # the parent has it pending at clone
    clone = [a for a in sp.system.actions if a.label.startswith("pthread_create -> clone: thread T1")]
    assert len(clone) == 1
    assert "T1.pend.SIGUSR1" not in {v.name for v in clone[0].writes()}  # stays empty (its initial value)
    assert sp.any(T1__pend__SIGUSR1=1)  # the child can be sent its own


def test_sud_is_not_inherited_by_a_thread(tmp_path):
    # The parent arms SUD with BLOCK; its thread runs its syscall undispatched.
    src = spec("""
        sud_on     none, none
        sud_select ALLOW
        clone      T1
        exit
none:   nop
""", """
        sud_select BLOCK
        syscall    getppid
        exit
""", extra=SIGSYS_ALLOW)
    sp = space(tmp_path, src)
    assert sp.fired("getppid returns its result")
    assert not sp.fired("syscall_user_dispatch: getppid")
    assert sp.any(T0__sud="[none,none)", T1__k="USER")
    assert not sp.any(T1__sud="[none,none)")


def test_fork_child_keeps_registration_and_rseq_cs(tmp_path):
    # rseq_fork without CLONE_VM copies the registration: the child's own
    # rseq() registration of the same area is -EBUSY (sys_rseq: identical
    # registration).  The child's copy of rseq_cs is the parent's.
    src = spec("""
        rseq_register
        fork       T1
        exit
""", """
        rseq_register
        exit
""", env="glibc_rseq = false", props='"registration-succeeds"')
    s = system_of(tmp_path, src)
    r = bfs(s, 100, por=False)
    assert (r.verdict, r.prop) == ("violation", "registration-succeeds")
    sp = Space(s)
    assert sp.fired("rseq(tls/32/RSEQ_SIG): already registered -> -EBUSY")
    # with a raw thread instead, the child registers fine
    r2 = bfs(system_of(tmp_path, src.replace("fork       T1", "clone      T1, raw"), "u.toml"), 100, por=False)
    assert r2.verdict == "holds"


def test_fork_child_copies_tls_and_stale_rseq_cs_is_cleared_lazily(tmp_path):
    # The parent leaves rseq_cs armed (lazy clear) and forks; the child's copy
    # points at the parent's descriptor, its ip is outside: the notify-resume
    # from wake_up_new_task's rseq_migrate clears it (legacy rseq_ip_fixup).
    src = spec("""
        store      tls.x, 3
retry:  rseq_cs    cs1
begin:  nop
end:    fork       T1
        exit
abort:  jmp        retry
""", """
        bne        tls.x, 3, bad
        exit
bad:    assert     0 == 1
""", extra=CS, props='"no-unexpected-kill"')
    sp = space(tmp_path, src)
    assert sp.any(T1__k="LOOP", T1__rseq_cs="cs1", T1__tls__x=3)
    assert not sp.any(T1__k="USER", T1__rseq_cs="cs1")
    assert not sp.any(bad="assert")


def test_fork_inside_a_critical_section_is_refused(tmp_path):
    src = spec("""
retry:  rseq_cs    cs1
begin:  fork       T1
end:    exit
abort:  jmp        retry
""", "        exit", extra=CS)
    with pytest.raises(SpecError, match="fork inside critical section cs1"):
        system_of(tmp_path, src)


def test_fork_child_must_use_tls_variables(tmp_path):
    src = spec("        fork T1\n        exit", "        store x, 1\n        exit")
    with pytest.raises(SpecError, match="x: a fork child has its own copy of memory"):
        system_of(tmp_path, src)


@pytest.mark.parametrize("bad, msg", [
    ("        clone T9\n        exit", "no \\[thread.T9\\]"),
    ("        clone T0\n        exit", "cannot create itself"),
    ("        clone T1\n        clone T1\n        exit", "already created at line"),
    ("        clone T1, fast\n        exit", "clone takes THREAD"),
    ("        execve\n        exit", "execve takes LABEL"),
])
def test_lifecycle_spec_errors(tmp_path, bad, msg):
    with pytest.raises(SpecError, match=msg):
        system_of(tmp_path, spec(bad, "        exit"))


def test_execve_clears_sud_and_registration(tmp_path):
    # begin_new_exec: SUD work cleared; rseq_execve: unregistered, so the new
    # image (without glibc registration) can register: 0, not -EBUSY.
    src = spec("""
        rseq_register
        sud_on     none, none
        sud_select ALLOW
        execve     img
none:   exit
img:    sud_select BLOCK
        syscall    getpid
        rseq_register
        exit
""", env="glibc_rseq = false", extra=SIGSYS_ALLOW, props='"no-unexpected-kill", "registration-succeeds"')
    sp = space(tmp_path, src)
    assert sp.fired("execve: new image at img")
    assert sp.fired("getpid returns its result")
    assert not sp.fired("syscall_user_dispatch: getpid")
    assert not sp.any(bad="registration-succeeds")
    assert sp.any(T0__ip0="img", T0__sud="OFF", T0__rseq="none", execve_done=1)


def test_execve_resets_handlers_and_ends_other_threads(tmp_path):
    # flush_signal_handlers: a SIGUSR1 caught before exec kills after it;
    # de_thread: T1 is gone.
    src = spec("""
        clone      T1
        execve     img
        exit
img:    nop
        exit
""", """
loop:   nop
        jmp        loop
""", env='signals = ["SIGUSR1"]\nmax_signals = 1', extra='''
[handler.SIGUSR1]
code = """
        sigreturn
"""
''')
    sp = space(tmp_path, src)
    assert sp.any(T0__ip0="img", T1__k="DEAD")
    assert not sp.any(execve_done=1, T1__k="USER")
    assert sp.fired("get_signal: SIGUSR1 is SIG_DFL now -> default action kills the process")
    assert sp.any(killed="SIGUSR1")
    # before exec the handler runs
    assert sp.any(T0__depth=1, execve_done=0)


# ------------------------------------------------------------ dlclose of a descriptor

DLCLOSE = """
retry:  rseq_cs    cs1
begin:  store      x, 1
end:    dlclose    cs1
        syscall    {sc}
        exit
abort:  jmp        retry
"""


@pytest.mark.parametrize("preset, sc, env, want", [
    # legacy: a preemption (timer) after dlclose runs the fixup, which reads the descriptor first
    ("linux-6.18", "getpid", "preemption = true", "violation"),
    # legacy: a sleep is a schedule-out too: NOTIFY_RESUME on the syscall's way out
    ("linux-6.18", "read", "", "violation"),
    # R1: the timer interrupt from user sets user_irq: the exit fast path evaluates rseq_cs
    ("linux-6.19", "getpid", "preemption = true", "violation"),
    # R1: a sleep in a syscall raises nothing (no user_irq): the stale pointer is never read
    ("linux-6.19", "read", "", "holds"),
])
def test_dlclose_with_rseq_cs_armed(tmp_path, preset, sc, env, want):
    s = system_of(tmp_path, spec(DLCLOSE.format(sc=sc), preset=preset, env=env, extra=CS))
    r = bfs(s, 100, por=False)
    assert r.verdict == want
    if want == "violation":
        assert r.prop == "no-unexpected-kill"
        assert "was unmapped (dlclose): reading it faults -> SIGSEGV" in s.actions[r.trace[-1][0]].label


def test_dlclose_of_an_unknown_descriptor_is_an_error(tmp_path):
    with pytest.raises(SpecError, match=r"dlclose nope: no \[rseq_cs.nope\]"):
        system_of(tmp_path, spec("        dlclose nope\n        exit"))


# ------------------------------------------------------------ the SIGSEGV of an rseq failure

BAD_SIG = """
retry:  rseq_cs    cs1
begin:  nop
end:    syscall    read             ; sleeps: PREEMPT + NOTIFY_RESUME, ip outside
        exit
abort:  jmp        retry
"""
BAD_CS = CS + 'signature = "other"\n'


@pytest.mark.parametrize("flags, runs", [("", 1), ('"SA_NODEFER"', 0)])
def test_rseq_failure_sigsegv_handler_runs_once_then_dies(tmp_path, flags, runs):
    # Probe p05-segv on 6.18: the fixup at read's exit finds the bad
    # signature (legacy validates wherever the ip is) -> force_sig(SIGSEGV);
    # delivering it, rseq_signal_deliver fails again -> force_fatal_sig, yet
    # the frame is built: the handler runs once (SIGSEGV blocked in it) and
    # the task dies when sigreturn unblocks the pending SIGSEGV.  With
    # SA_NODEFER nothing blocks it: killed before the handler's first step.
    handler = f'''
[handler.SIGSEGV]
flags = [{flags}]
code = """
        add        tls.runs, 1
        sigreturn
"""
[variables]
"tls.runs" = [0, 3]
'''
    sp = space(tmp_path, spec(BAD_SIG, extra=BAD_CS + handler))
    assert sp.fired("force_sig(SIGSEGV), for the handler")
    assert sp.fired("force_fatal_sig(SIGSEGV): SIG_DFL and pending, this frame is still built")
    assert sp.any(T0__tls__runs=runs)
    assert not sp.any(T0__tls__runs=runs + 1)
    assert sp.any(killed="SIGSEGV", T0__tls__runs=runs)
    assert not sp.any(T0__tls__runs=1, T0__k="DEAD")  # a handler run never leads to a normal exit
    assert sp.fired("get_signal: SIGSEGV is SIG_DFL now -> default action kills the process")
    # (a read that returns without sleeping raises no rseq event: that run exits normally)


def test_rseq_failure_without_sigsegv_handler_kills_at_once(tmp_path):
    sp = space(tmp_path, spec(BAD_SIG, extra=BAD_CS))
    assert sp.fired("notify-resume: signature before abort differs from the registered one -> SIGSEGV")
    assert not sp.fired("force_sig(SIGSEGV)")


# ------------------------------------------------------------ faults in user mode

FAULT_CS = """
retry:  rseq_cs    cs1
begin:  nop
        fault      {sig}
        nop
end:    exit
abort:  store      aborted, 1
        exit
"""
H = '''
[handler.{sig}]
code = """
        store      h, 1
        sigreturn
"""
'''


@pytest.mark.parametrize("preset", ["linux-6.18", "linux-6.19"])
@pytest.mark.parametrize("sig", ["SIGSEGV", "SIGILL", "SIGTRAP"])
def test_fault_inside_a_section_delivers_with_abort_ip(tmp_path, preset, sig):
    # Probe p11 / kernel-semantics 2.12 (exceptions): the fault's signal is
    # delivered on the exception's way out; rseq_signal_deliver aborts first
    # (R1: user_irq is set by the exception entry), so the frame holds
    # abort_ip and the handler returns to the abort path, never into the
    # section: every run ends with aborted = 1, h = 1.
    sp = space(tmp_path, spec(FAULT_CS.format(sig=sig), preset=preset, extra=CS + H.format(sig=sig)))
    assert sp.any(T0__depth=1, T0__ip0="abort")
    assert not sp.any(T0__depth=1, T0__ip0="T0+2")
    assert not sp.any(T0__depth=1, T0__ip0="T0+3")
    ends = sp.where(T0__k="DEAD")
    assert ends and all(s["aborted"] == "1" and s["h"] == "1" for s in ends)


def test_fault_resumes_at_the_instruction_trap_after_it(tmp_path):
    # Outside a section: a fault's frame holds the faulting ip (the handler's
    # return re-executes it), int3's the next one.
    code = "        fault {sig}\n        exit"
    fault = space(tmp_path, spec(code.format(sig="SIGILL"), extra=H.format(sig="SIGILL")))
    assert fault.any(T0__depth=1, T0__ip0="T0+0") and not fault.any(T0__depth=1, T0__ip0="T0+1")
    assert not fault.any(T0__k="DEAD")  # the handler returns to ud2: it never gets past
    trap = space(tmp_path, spec(code.format(sig="SIGTRAP"), extra=H.format(sig="SIGTRAP")))
    assert trap.any(T0__depth=1, T0__ip0="T0+1") and trap.any(T0__k="DEAD")


def test_fault_without_handler_or_blocked_kills(tmp_path):
    sp = space(tmp_path, spec("        fault SIGSEGV\n        exit"))
    assert sp.any(killed="SIGSEGV")
    assert sp.fired("get_signal: SIGSEGV has no handler -> default action kills the process")
    # in the SIGSEGV handler (SIGSEGV blocked) a second fault is forced: SIG_DFL, killed
    nested = space(tmp_path, spec("        fault SIGSEGV\n        exit",
                                  extra=H.format(sig="SIGSEGV").replace("store      h, 1", "fault      SIGSEGV")))
    assert nested.fired("fault      SIGSEGV  -- SIGSEGV is blocked: force_sig kills")
    assert nested.any(killed="SIGSEGV")

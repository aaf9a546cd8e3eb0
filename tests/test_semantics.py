"""One small scenario per kernel rule, each verdict derived by hand from the
kernel code (kernel-semantics.md sections named in each test) and, where a
conformance probe exists, from what Linux 6.18 did (shared/conformance)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.ir import ModelError

from tests.util import CS1, USR1, Space, spec_text, system_of

SA_RESTART = USR1.format(flags='"SA_RESTART"')
NO_FLAGS = USR1.format(flags="")

# A section whose last instruction is a syscall (Vyukov's shape).
LAST = """
retry:  rseq_cs cs1
begin:  nop
        syscall {sc}
end:    exit
abort:  exit
"""


def space(tmp_path, code, **kw) -> Space:
    return Space(system_of(tmp_path, spec_text(code, **kw)))


# ------------------------------------------------------------- signals + rseq


def test_signal_in_cs_aborts_before_the_frame(tmp_path):
    # 2.9.3 / 2.18.2, probe p01: the frame saves abort_ip, never an ip inside.
    sp = space(tmp_path, LAST.format(sc="getpid"), env='signals = ["SIGUSR1"]\nmax_signals = 1', handlers=NO_FLAGS, cs=CS1)
    assert sp.any(T0__depth=1, T0__ip0="abort")
    assert not sp.any(T0__depth=1, T0__ip0="begin")
    assert not sp.any(T0__depth=1, T0__rseq_cs="cs1")  # cleared by the abort


def test_restartsys_with_sa_restart_aborts_instead_of_restarting(tmp_path):
    # 2.18.3, probe p03b: ip -= 2 puts the ip back on the syscall, inside the
    # section, before rseq_signal_deliver; the frame holds abort_ip.
    sp = space(tmp_path, LAST.format(sc="read"), env='signals = ["SIGUSR1"]\nmax_signals = 1', handlers=SA_RESTART, cs=CS1)
    assert sp.fired("-ERESTARTSYS, SA_RESTART -> ax = orig_ax, ip -= 2")
    assert sp.any(T0__depth=1, T0__ip0="abort", T0__ax="NONE")
    # the rewound ip never survives into a frame
    assert not sp.any(T0__depth=1, T0__ip0="T0+2")


def test_restartsys_without_sa_restart_returns_eintr_outside(tmp_path):
    # probe p03c: -EINTR, ip stays at post_commit (outside), no abort.
    sp = space(tmp_path, LAST.format(sc="read"), env='signals = ["SIGUSR1"]\nmax_signals = 1', handlers=NO_FLAGS, cs=CS1)
    assert sp.fired("-ERESTARTSYS, no SA_RESTART -> -EINTR")
    assert sp.any(T0__depth=1, T0__ip0="end")
    # a signal can still hit before the syscall (ip inside) and abort
    assert sp.any(T0__depth=1, T0__ip0="abort")
    assert not sp.fired("ip -= 2")


def test_restartblock_with_handler_is_eintr(tmp_path):
    # probe p03f: nanosleep's -ERESTART_RESTARTBLOCK with a handler -> -EINTR.
    sp = space(tmp_path, LAST.format(sc="nanosleep"), env='signals = ["SIGUSR1"]\nmax_signals = 1', handlers=SA_RESTART, cs=CS1)
    assert sp.fired("-ERESTARTNOHAND/_RESTARTBLOCK -> -EINTR")
    assert not sp.fired("ip -= 2")


@pytest.mark.parametrize("sc", ["read", "nanosleep"])
def test_stop_and_continue_rewinds_then_notify_resume_aborts(tmp_path, sc):
    # probes p03d, p03g: no handler, the rewind happens in
    # arch_do_signal_or_restart; the stop scheduled the task out, so
    # NOTIFY_RESUME is pending and the fixup aborts the section.
    sp = space(tmp_path, LAST.format(sc=sc), env='signals = ["SIGSTOP"]\nmax_signals = 1', cs=CS1)
    assert sp.fired("SIGSTOP stops the task (schedule); continued, no handler: restart, ip -= 2")
    assert sp.fired("notify-resume: ip inside cs1, event pending -> abort")
    assert sp.any(T0__k="USER", T0__ip0="abort", T0__ax="NONE")


def test_signal_after_commit_does_not_abort(tmp_path):
    # 2.18.3 first bullet, probe p03a: post-syscall ip = post_commit is outside;
    # the kernel only clears rseq_cs lazily.
    sp = space(tmp_path, LAST.format(sc="getpid"), env='signals = ["SIGUSR1"]\nmax_signals = 1', handlers=NO_FLAGS, cs=CS1)
    assert sp.any(T0__depth=1, T0__ip0="end", T0__rseq_cs="0")
    assert sp.fired("rseq_signal_deliver: ip outside cs1 -> clear rseq_cs")


# ------------------------------------------------------------ event mask


STALE = """
        {before}
retry:  rseq_cs cs1
begin:  nop
        nop
end:    exit
abort:  exit
"""


def test_stale_preempt_bit_aborts_on_unrelated_notify_resume(tmp_path):
    # 2.18.8, probe p09 "stale": a sleep outside any section leaves the
    # PREEMPT bit set (cleared only by an in-section fixup); a later
    # task_work notify-resume inside the section aborts with no new event.
    sp = space(tmp_path, STALE.format(before="syscall read"), env="notify_resume = true", cs=CS1)
    assert sp.any(T0__k="USER", T0__ip0="abort")
    assert sp.any(T0__ip0="begin", T0__ev__PREEMPT=1, T0__rseq_cs="cs1")


def test_no_event_no_abort_on_notify_resume(tmp_path):
    # probe p09 "fresh": without any event bit, a notify-resume inside the
    # section does not abort (rseq_need_restart returns 0).
    sp = space(tmp_path, STALE.format(before="syscall getpid"), env="notify_resume = true", cs=CS1)
    assert sp.fired("notify-resume: ip inside cs1, no event -> continue")
    assert not sp.any(T0__k="USER", T0__ip0="abort")


def test_preempt_outside_clears_rseq_cs_but_keeps_the_event(tmp_path):
    # 2.9.2 step 2: lazy clear; the mask is not cleared.
    code = """
        rseq_cs cs1
        nop
begin:  nop
end:    exit
abort:  exit
"""
    sp = space(tmp_path, code, env="preemption = true", cs=CS1)
    assert sp.any(T0__ip0="T0+1", T0__rseq_cs="0", T0__ev__PREEMPT=1, T0__k="USER")


# ------------------------------------------------------------ flags by era


FLAGGED = """
retry:  rseq_cs cs1
begin:  nop
        nop
end:    exit
abort:  jmp retry
"""


def cs_flags(*flags: str) -> str:
    return CS1 + "flags = [" + ", ".join(f'"{f}"' for f in flags) + "]\n"


def test_flags_honoured_on_418_preemption_does_not_abort(tmp_path):
    sp = space(tmp_path, FLAGGED, preset="linux-4.18", env="preemption = true", cs=cs_flags("NO_RESTART_ON_PREEMPT"))
    assert sp.fired("ip inside cs1, no event (masked by flags) -> continue")
    assert not sp.any(T0__k="USER", T0__ip0="abort")
    assert not sp.any(killed="SIGSEGV")


def test_flags_fatal_on_618_even_without_event(tmp_path):
    # 2.9.2 step 3 (E3), probe p02: flags are checked before the mask.
    sp = space(tmp_path, FLAGGED, env="notify_resume = true", cs=cs_flags("NO_RESTART_ON_PREEMPT"))
    assert sp.any(killed="SIGSEGV")
    assert not sp.any(T0__k="USER", T0__ip0="abort")


def test_no_restart_on_signal_alone_is_einval_on_418(tmp_path):
    # rseq_need_restart (<= 5.19): SIGNAL without both others -> -EINVAL.
    sp = space(tmp_path, FLAGGED, preset="linux-4.18", env="preemption = true", cs=cs_flags("NO_RESTART_ON_SIGNAL"))
    assert sp.any(killed="SIGSEGV")


def test_area_flags_with_ip_outside_are_harmless_on_618(tmp_path):
    # probe p02f: area flags only matter with the ip inside the section.
    code = """
        rseq_cs cs1
        nop
        exit
begin:  nop
end:    exit
abort:  exit
"""
    sp = space(tmp_path, code, env="preemption = true", cs=CS1, thread_extra='rseq_flags = ["NO_RESTART_ON_PREEMPT"]')
    assert not sp.any(killed="SIGSEGV")
    assert sp.fired("notify-resume: ip outside cs1 -> clear rseq_cs")


@pytest.mark.parametrize(
    "field, why",
    [('signature = "other"', "signature before abort differs from the registered one"),
     ("version = 1", "descriptor cs1 invalid (version != 0)")],
)
def test_invalid_descriptor_kills_even_outside(tmp_path, field, why):
    # 2.9.2 step 1, probe p05: validated wherever the ip is.
    code = """
        rseq_cs cs1
        nop
        exit
begin:  nop
end:    exit
abort:  exit
"""
    sp = space(tmp_path, code, env="preemption = true", cs=CS1 + field + "\n")
    assert sp.fired(why)
    assert sp.any(killed="SIGSEGV")


# ------------------------------------------------------------ debug checks


def test_debug_syscall_as_last_instruction_passes(tmp_path):
    # 2.9.4: rseq_syscall sees the post-syscall ip = post_commit, outside.
    sp = space(tmp_path, LAST.format(sc="getpid"), rules={"rseq.debug": "on"}, cs=CS1)
    assert not sp.any(killed="SIGSEGV")
    assert sp.fired("rseq_syscall finds nothing wrong")


def test_debug_syscall_in_the_middle_kills(tmp_path):
    code = """
        rseq_cs cs1
begin:  syscall getpid
        nop
end:    exit
abort:  exit
"""
    sp = space(tmp_path, code, rules={"rseq.debug": "on"}, cs=CS1)
    assert sp.any(killed="SIGSEGV")
    assert sp.fired("rseq_syscall: post-syscall ip inside cs1 -> SIGSEGV")


# ------------------------------------------------------------ plain signals


def test_handler_blocks_its_own_signal(tmp_path):
    # signal_delivered blocks the signal unless SA_NODEFER: no nesting of
    # SIGUSR1 over itself.
    sp = space(tmp_path, "nop\nnop\nexit", env='signals = ["SIGUSR1"]\nmax_signals = 2', handlers=NO_FLAGS)
    assert sp.any(T0__depth=1)
    assert not sp.any(T0__depth=2)


def test_sa_nodefer_allows_nesting_up_to_the_bound(tmp_path):
    sp = space(tmp_path, "nop\nnop\nexit", env='signals = ["SIGUSR1"]\nmax_signals = 3\nmax_nesting = 2',
               handlers=USR1.format(flags='"SA_NODEFER"'))
    assert sp.any(T0__depth=2)
    assert max(int(s["T0.depth"]) for s in sp.where()) == 2


def test_sa_mask_blocks_other_signal_in_handler(tmp_path):
    handlers = '''
[handler.SIGUSR1]
mask = ["SIGUSR2"]
code = """
        nop
        sigreturn
"""
[handler.SIGUSR2]
code = """
        nop
        sigreturn
"""
'''
    sp = space(tmp_path, "nop\nexit", env='signals = ["SIGUSR1", "SIGUSR2"]\nmax_signals = 2', handlers=handlers)
    # SIGUSR2 may nest over SIGUSR1's handler only if it was delivered first
    assert sp.any(T0__depth=2, T0__ip1="SIGUSR2+0")
    assert not sp.any(T0__depth=2, T0__ip1="SIGUSR1+0", T0__ip2="SIGUSR2+0")
    assert not sp.any(T0__depth=2, T0__ip1="SIGUSR1+1", T0__ip2="SIGUSR2+0")


def test_default_action_kills_and_default_ignore_drops(tmp_path):
    sp = space(tmp_path, "nop\nexit", env='signals = ["SIGUSR2", "SIGCHLD"]\nmax_signals = 1')
    assert sp.any(killed="SIGUSR2")
    assert not sp.fired("SIGCHLD")


def test_sigreturn_without_a_frame_is_sigsegv(tmp_path):
    sp = space(tmp_path, "sigreturn")
    assert sp.any(killed="SIGSEGV")


# ------------------------------------------------------------ next-syscall rules


ARMED = """
        set_desc TRACE
        syscall  getpid @traced
        exit
"""


def verdict(tmp_path, code, **kw):
    system = system_of(tmp_path, spec_text(code, **kw))
    r = bfs(system, 200, por=False)
    return r.verdict, r.prop


def test_consume_at_entry_single_thread_holds(tmp_path):
    assert verdict(tmp_path, ARMED, props=("next-syscall-atomic", "next-syscall-delivered")) == ("holds", None)


def test_consume_never_leaks_to_the_next_syscall(tmp_path):
    # the descriptor is never cleared: `exit` (a syscall) reads it too.
    assert verdict(tmp_path, ARMED, rules={"next_syscall.consume": "never"}, props=("next-syscall-atomic",)) == (
        "violation", "next-syscall-atomic")


def test_clear_on_signal_keeps_handlers_clean_but_loses_delivery(tmp_path):
    env = 'signals = ["SIGUSR1"]\nmax_signals = 1'
    kw = dict(env=env, handlers=NO_FLAGS, rules={"next_syscall.on_signal": "clear"})
    assert verdict(tmp_path, ARMED, props=("next-syscall-atomic",), **kw) == ("holds", None)
    assert verdict(tmp_path, ARMED, props=("next-syscall-delivered",), **kw) == ("violation", "next-syscall-delivered")


def test_keep_on_signal_lets_the_handler_consume(tmp_path):
    env = 'signals = ["SIGUSR1"]\nmax_signals = 1'
    assert verdict(tmp_path, ARMED, env=env, handlers=NO_FLAGS, props=("next-syscall-atomic",)) == (
        "violation", "next-syscall-atomic")


def test_assert_instruction_is_checked(tmp_path):
    assert verdict(tmp_path, "store x, 2\nassert x == 2\nexit") == ("holds", None)
    assert verdict(tmp_path, "store x, 2\nassert x < 2\nexit") == ("violation", "assert")


# ------------------------------------------------------------ the monitors can fail


def test_rseq_cs_atomic_monitor_catches_a_kernel_that_never_aborts(tmp_path):
    # Mutation: drop every abort from the model; the property must break.
    code = """
retry:  rseq_cs cs1
begin:  nop
        store y, 1
end:    exit
abort:  jmp retry
"""
    system = system_of(tmp_path, spec_text(code, env="preemption = true", cs=CS1, props=("rseq-cs-atomic",)))
    assert bfs(system, 100, por=False).verdict == "holds"
    # the broken kernel consumes the event but neither moves the ip nor
    # clears rseq_cs (nor, of course, does the monitor see an abort)
    keep = {system.var("T0.k"), system.var("T0.notify"), system.var("T0.ev.PREEMPT")}
    system.actions = [
        replace(a, updates=tuple((v, e) for v, e in a.updates if v in keep))
        if "-> abort" in a.label else a
        for a in system.actions
    ]
    r = bfs(system, 100, por=False)
    assert (r.verdict, r.prop) == ("violation", "rseq-cs-atomic")


def test_range_overflow_is_a_model_error():
    from rseqcheck.model.ir import Action, Add, Const, IntRange, Property, System, Var

    x = Var("x", IntRange(0, 2))
    sys_ = System([x], {x: 0}, [Action("inc", Const(1), ((x, Add(x, 1)),), "P", "P")], [Property("p", Const(1), "")])
    with pytest.raises(ModelError, match=r"assigns x = 3, outside its range 0..2"):
        bfs(sys_, 10)


# ------------------------------------------------------------ syscall user dispatch

SIGSYS_ALLOW = '''
[handler.SIGSYS]
code = """
        sud_select ALLOW
        sigreturn
"""
'''


def test_sud_region_is_tested_with_the_post_syscall_ip(tmp_path):
    # 2.17.2 step 1, probe p07c: [A+1, ...) allows the syscall at A,
    # [A, A+1) (the instruction itself) does not.
    code = """
        sud_on     {lo}, {hi}
        sud_select BLOCK
sc:     syscall    getpid
after:  nop
        sud_select ALLOW
        exit
"""
    allowed = space(tmp_path, code.format(lo="after", hi="after2").replace("        exit", "after2: exit"), handlers=SIGSYS_ALLOW)
    assert not allowed.fired("syscall_user_dispatch: getpid")
    assert allowed.fired("getpid returns its result")
    exact = space(tmp_path, code.format(lo="sc", hi="after"), handlers=SIGSYS_ALLOW)
    assert exact.fired("syscall_user_dispatch: getpid ip after outside the region, selector BLOCK -> dispatch")
    assert not exact.fired("getpid returns its result")


def test_sud_unavailable_before_511(tmp_path):
    code = """
        sud_on     none, none
        sud_select BLOCK
        syscall    getpid
none:   exit
"""
    sp = space(tmp_path, code, preset="linux-5.10", handlers=SIGSYS_ALLOW)
    assert sp.fired("-EINVAL (no SUD in this kernel)")
    assert not sp.fired("syscall_user_dispatch")
    assert not sp.any(killed="SIGSYS")


def test_dispatched_syscall_does_not_consume_the_descriptor(tmp_path):
    # SUD is entry-work step 1 and returns early: nothing after it (here,
    # the proposed next-syscall hook) sees a dispatched syscall.
    code = """
        sud_on     none, none
        set_desc   TRACE
        sud_select BLOCK
        syscall    getpid @traced
none:   exit
"""
    sp = space(tmp_path, code, handlers=SIGSYS_ALLOW, props=("next-syscall-atomic",))
    assert sp.any(T0__depth=1, T0__desc="TRACE")
    # ...so the handler's rt_sigreturn, allowed by ALLOW, consumes it
    assert sp.any(bad="next-syscall-atomic")


def test_sigsys_for_a_dispatched_syscall_inside_a_cs_aborts_it(tmp_path):
    # 2.18.5: SIGSYS is delivered at syscall exit with the post-syscall ip;
    # E3 rseq_signal_deliver aborts when that ip is inside the section, not
    # when the syscall was its last instruction.
    code = """
        sud_on     none, none
        sud_select BLOCK
retry:  rseq_cs    cs1
begin:  syscall    getpid
        syscall    getppid
end:    sud_select ALLOW
none:   exit
abort:  sud_select ALLOW
        exit
"""
    sp = space(tmp_path, code, handlers=SIGSYS_ALLOW, cs=CS1)
    assert sp.fired("rseq_signal_deliver: ip inside cs1, event pending -> abort to abort")
    assert sp.any(T0__depth=1, T0__ip0="abort")
    assert not sp.any(T0__depth=1, T0__ip0="T0+4")  # after getpid, inside: always aborted


def test_sud_inclusive_region_intercepts_by_post_syscall_ip(tmp_path):
    # 2.17.1/2.17.2: INCLUSIVE_ON (6.17+) stores the region inverted, so the
    # same test on the post-syscall ip now means "dispatch inside".  The
    # syscall at sc ends at `after`: [after, after2) intercepts it, [sc, after)
    # does not; the syscall at late ends outside both and always runs.
    code = """
        sud_on     {lo}, {hi}, inclusive
        sud_select BLOCK
sc:     syscall    getpid
after:  nop
after2: nop
late:   syscall    getppid
        sud_select ALLOW
        exit
"""
    hit = space(tmp_path, code.format(lo="after", hi="after2"), handlers=SIGSYS_ALLOW)
    assert hit.fired("syscall_user_dispatch: getpid ip after inside the intercepted region, selector BLOCK -> dispatch")
    assert not hit.fired("getpid returns its result")
    assert not hit.fired("syscall_user_dispatch: getppid")
    assert hit.fired("getppid returns its result")
    miss = space(tmp_path, code.format(lo="sc", hi="after"), handlers=SIGSYS_ALLOW)
    assert not miss.fired("syscall_user_dispatch: ")
    assert miss.fired("getpid returns its result")
    # an empty intercepted region is -EINVAL (len 0 in inclusive mode)
    empty = space(tmp_path, code.format(lo="after", hi="after"), handlers=SIGSYS_ALLOW)
    assert empty.fired("INCLUSIVE_ON, after, after): -EINVAL (empty region)")
    assert not empty.fired("syscall_user_dispatch: ")
    # before 6.17 the mode does not exist: -EINVAL, nothing dispatched
    old = space(tmp_path, code.format(lo="after", hi="after2"), preset="linux-6.0", handlers=SIGSYS_ALLOW)
    assert old.fired("prctl(PR_SET_SYSCALL_USER_DISPATCH, INCLUSIVE_ON): -EINVAL")
    assert not old.fired("syscall_user_dispatch: ")


@pytest.mark.parametrize("preset, killed, dead", [("linux-5.11", "NONE", True), ("linux-5.16", "SIGSEGV", False)])
def test_sud_selector_read_fault_kills(tmp_path, preset, killed, dead):
    # 2.17.2 step 3: a faulting selector read is do_exit(SIGSEGV) on 5.11-5.15
    # (this thread only), force_exit_sig(SIGSEGV) (the process) on 5.16+.  The
    # region is tested first: the syscall ending inside it reads no selector.
    code = """
        sud_on     ok, ok2
        sud_select unmapped
        syscall    getppid
ok:     syscall    getpid
ok2:    exit
"""
    sp = space(tmp_path, code, preset=preset, handlers=SIGSYS_ALLOW)
    assert sp.fired("syscall_user_dispatch: reading the selector faults")
    assert sp.any(killed=killed)
    assert sp.any(T0__k="DEAD") == dead
    assert sp.fired("getppid returns its result")
    assert not sp.fired("getpid returns its result")
    assert not sp.fired("syscall_user_dispatch: selector is neither")


# ------------------------------------------------------------ rseq() registration


@pytest.mark.parametrize(
    "glibc, call, preset, want",
    [
        # probe p06 G (glibc registered tls/32/RSEQ_SIG)
        (True, "rseq_register tls, 32, RSEQ_SIG", "linux-6.18", "EBUSY"),
        (True, "rseq_register tls, 32, other", "linux-6.18", "EPERM"),
        (True, "rseq_register tls, 64, RSEQ_SIG", "linux-6.18", "EINVAL"),
        (True, "rseq_register lib, 32, RSEQ_SIG", "linux-6.18", "EINVAL"),
        (True, "rseq_unregister tls, 32, other", "linux-6.18", "EPERM"),
        (True, "rseq_unregister tls, 64, RSEQ_SIG", "linux-6.18", "EINVAL"),
        (True, "rseq_unregister lib, 32, RSEQ_SIG", "linux-6.18", "EINVAL"),
        (True, "rseq_unregister tls, 32, RSEQ_SIG", "linux-6.18", "0"),
        # probe p06 T (glibc.pthread.rseq=0)
        (False, "rseq_unregister tls, 32, RSEQ_SIG", "linux-6.18", "EINVAL"),
        (False, "rseq_register tls, 31, RSEQ_SIG", "linux-6.18", "EINVAL"),
        (False, "rseq_register tls, 64, RSEQ_SIG", "linux-6.18", "0"),  # 6.3+ extensible
        (False, "rseq_register tls, 64, RSEQ_SIG", "linux-6.0", "EINVAL"),  # before 6.3: 32 only
        # any length from 32 up (offsetof(struct rseq, end) <= 32): this 6.18 took 33, 40, 48, 63
        (False, "rseq_register tls, 33, RSEQ_SIG", "linux-6.18", "0"),
        (False, "rseq_register tls, 48, RSEQ_SIG", "linux-6.18", "0"),
        (False, "rseq_register tls, 48, RSEQ_SIG", "linux-7.1", "0"),
        (False, "rseq_register tls, 48, RSEQ_SIG", "linux-6.0", "EINVAL"),
        (False, "rseq_register tls, 32, RSEQ_SIG", "linux-4.18", "0"),
        # p06 T: a kernel address fails access_ok; an unmapped user page faults
        # where 6.15+ reads rseq_cs (R1/R2: writes the initial contents)
        (False, "rseq_register kernel, 32, RSEQ_SIG", "linux-6.18", "EFAULT"),
        (False, "rseq_register kernel, 32, RSEQ_SIG", "linux-4.18", "EFAULT"),
        (False, "rseq_register kernel, 31, RSEQ_SIG", "linux-6.18", "EINVAL"),  # length first
        (True, "rseq_register kernel, 32, RSEQ_SIG", "linux-6.18", "EINVAL"),  # registration checks first
        (False, "rseq_register unmapped, 32, RSEQ_SIG", "linux-6.18", "EFAULT"),
        (False, "rseq_register unmapped, 32, RSEQ_SIG", "linux-6.19", "EFAULT"),
        (False, "rseq_register unmapped, 32, RSEQ_SIG", "linux-6.0", "0"),  # ...and then SIGSEGV
    ],
)
def test_rseq_syscall_return_codes(tmp_path, glibc, call, preset, want):
    sp = space(tmp_path, f"{call}\nexit", preset=preset, env=f"glibc_rseq = {str(glibc).lower()}")
    rets = {s["T0.rseq_ret"] for s in sp.where(T0__k="LOOP")}
    assert rets == {want}


def test_unmapped_area_accepted_before_615_then_sigsegv(tmp_path):
    # Before "rseq: Fix segfault on registration when rseq_cs is non-zero"
    # sys_rseq touches no area memory: it registers and sets NOTIFY_RESUME,
    # and the handler's first access on the way out faults -> SIGSEGV.
    sp = space(tmp_path, "rseq_register unmapped, 32, RSEQ_SIG\nexit", preset="linux-6.0", env="glibc_rseq = false")
    assert sp.fired("rseq(unmapped/32/RSEQ_SIG): registered")
    assert sp.fired("notify-resume: the registered area is not mapped: reading it faults -> SIGSEGV")
    assert sp.any(killed="SIGSEGV")
    assert not sp.any(T0__k="USER", T0__rseq="unmapped/32/RSEQ_SIG")


def test_unregister_leaves_rseq_cs_and_events_alone(tmp_path):
    # 2.11 unregister step 6: only t->rseq/len/sig are cleared.
    code = """
        syscall read                ; sleeps: PREEMPT bit, kept (rseq_cs is NULL)
        rseq_cs cs1
        rseq_unregister
        syscall read                ; sleeps again: the fixup is skipped
        exit
begin:  nop
end:    nop
abort:  exit
"""
    sp = space(tmp_path, code, cs=CS1)
    assert sp.any(T0__rseq="none", T0__rseq_cs="cs1", T0__ev__PREEMPT=1)
    assert sp.fired("notify-resume: t->rseq == NULL (not registered), nothing to do")


# ------------------------------------------------------------ single-step

SIGTRAP_H = '''
[handler.SIGTRAP]
code = """
        nop
        sigreturn
"""
'''


def test_tf_set_by_popf_traps_after_the_next_instruction(tmp_path):
    # SDM: TF at the *start* of an instruction traps after it; set_tf itself
    # runs with TF clear.
    sp = space(tmp_path, "set_tf\nnop\nclear_tf\nexit", handlers=SIGTRAP_H)
    assert sp.any(T0__k="LOOP", T0__ip0="T0+2", T0__pend__SIGTRAP=1)  # after the nop
    assert not sp.any(T0__k="LOOP", T0__ip0="T0+1", T0__pend__SIGTRAP=1)  # not after set_tf


def test_handler_runs_with_tf_clear_and_sigreturn_restores_it(tmp_path):
    # 2.7 step 4 / 2.13, probe p08B2: the frame saves TF.
    sp = space(tmp_path, "set_tf\nnop\nclear_tf\nexit", handlers=SIGTRAP_H)
    assert sp.any(T0__depth=1, T0__tf=0, T0__f1__tf=1)
    assert not sp.any(T0__depth=1, T0__tf=1)
    assert sp.fired("rt_sigreturn: restore ip and mask")


def test_user_tf_syscall_has_no_exit_report(tmp_path):
    # 2.16 B.2: no TIF_SINGLESTEP, no report_single_step.
    sp = space(tmp_path, "set_tf\nsyscall getppid\nnop\nclear_tf\nexit", handlers=SIGTRAP_H)
    assert not sp.fired("report_single_step")
    assert sp.any(T0__k="USER", T0__ip0="T0+2", T0__tf=1, T0__pend__SIGTRAP=0, T0__depth=0)


def test_ptrace_stop_is_a_schedule_out_for_rseq(tmp_path):
    # 2.7 step 1: a ptrace stop in get_signal calls rseq_preempt.
    code = "rseq_cs cs1\nbegin: nop\nnop\nend: exit\nabort: exit"
    sp = space(tmp_path, code, cs=CS1, thread_extra='ptrace = "singlestep"')
    assert sp.fired("notify-resume: ip inside cs1, event pending -> abort to abort")


# ------------------------------------------------------------ R1 / R2 (6.19, 7.1)


def test_r1_preemption_in_user_mode_aborts_through_the_fast_path(tmp_path):
    # 2.18.1 R1: user_irq set, the switch raises, the fast path aborts.
    sp = space(tmp_path, FLAGGED, preset="linux-6.19", env="preemption = true", cs=CS1)
    assert sp.fired("rseq exit fast path: ip inside cs1 -> abort to abort")
    assert sp.any(T0__k="USER", T0__ip0="abort")


def test_r1_has_no_stale_event_aborts(tmp_path):
    # 2.18.8 is legacy-only: R1 keeps no event mask.
    sp = space(tmp_path, STALE.format(before="syscall read"), preset="linux-6.19", env="notify_resume = true", cs=CS1)
    assert not sp.any(T0__k="USER", T0__ip0="abort")


def test_r1_ignores_flags_and_version_outside(tmp_path):
    # 2.10.3: flags never read; a bad version is not checked at all
    # (non-debug), inside or outside.
    sp = space(tmp_path, FLAGGED, preset="linux-6.19", env="preemption = true",
               cs=cs_flags("NO_RESTART_ON_PREEMPT") + "version = 1\n")
    assert not sp.any(killed="SIGSEGV")
    assert sp.any(T0__k="USER", T0__ip0="abort")


def test_r1_signal_at_syscall_exit_is_not_evaluated(tmp_path):
    # 2.10.4: no user_irq on the syscall path.
    sp = space(tmp_path, LAST.format(sc="read"), preset="linux-6.19",
               env='signals = ["SIGUSR1"]\nmax_signals = 1', handlers=SA_RESTART, cs=CS1)
    assert sp.fired("rseq_signal_deliver: delivered at syscall exit (no user_irq)")
    assert sp.any(T0__depth=1, T0__ip0="T0+2")  # the rewound syscall, inside, kept for the restart


def test_max_nesting_zero_with_a_handler_never_delivers(tmp_path):
    # the bound: no frame fits, so the handled signal stays pending
    sp = space(tmp_path, "nop\nexit", env='signals = ["SIGUSR1"]\nmax_signals = 1\nmax_nesting = 0', handlers=NO_FLAGS)
    assert sp.any(T0__k="DEAD")
    assert not sp.fired("setup_rt_frame")


def test_sud_select_without_sud_on_is_a_plain_store(tmp_path):
    sp = space(tmp_path, "sud_select BLOCK\nsyscall getpid\nexit")
    assert not sp.fired("syscall_user_dispatch")
    assert sp.any(T0__selector="BLOCK", T0__k="USER")


# ------------------------------------------------------------ entry-work order


def test_sud_runs_before_seccomp(tmp_path):
    # syscall_trace_enter: a SUD-dispatched syscall never reaches seccomp.
    code = """
        sud_on     none, none
        sud_select BLOCK
        syscall    getpid
none:   exit
"""
    sp = space(tmp_path, code, handlers=SIGSYS_ALLOW, thread_extra='seccomp = { getpid = "kill" }')
    assert sp.fired("syscall_user_dispatch: getpid")
    assert not sp.any(killed="SIGSYS")


def test_seccomp_trap_raises_sigsys_and_skips_the_body(tmp_path):
    sp = space(tmp_path, "syscall getpid\nexit", handlers=SIGSYS_ALLOW, thread_extra='seccomp = { getpid = "trap" }')
    assert sp.fired("seccomp: getpid -> SECCOMP_RET_TRAP: SIGSYS, body skipped")
    assert not sp.fired("getpid returns its result")
    assert sp.any(T0__depth=1)


def test_ptrace_syscall_stops_are_schedule_outs(tmp_path):
    code = "rseq_cs cs1\nbegin: syscall getpid\nnop\nend: exit\nabort: exit"
    sp = space(tmp_path, code, cs=CS1, thread_extra='ptrace = "syscall"')
    assert sp.fired("ptrace syscall-entry-stop (schedule)")
    assert sp.fired("notify-resume: ip inside cs1, event pending -> abort to abort")


# ------------------------------------------------- citations per kernel


@pytest.mark.parametrize(
    "preset, loop, exit_work",
    [
        ("linux-4.18", "arch/x86/entry/common.c:exit_to_usermode_loop", "arch/x86/entry/common.c:syscall_slow_exit_work"),
        ("linux-5.8", "arch/x86/entry/common.c:exit_to_usermode_loop", "arch/x86/entry/common.c:syscall_slow_exit_work"),
        ("linux-6.0", "kernel/entry/common.c:exit_to_user_mode_loop", "kernel/entry/common.c:syscall_exit_work"),
        ("linux-6.18", "kernel/entry/common.c:exit_to_user_mode_loop", "kernel/entry/syscall-common.c:syscall_exit_work"),
        ("linux-7.1", "kernel/entry/common.c:exit_to_user_mode_loop", "include/linux/entry-common.h:syscall_exit_work"),
    ],
)
def test_citations_name_the_presets_kernel(tmp_path, preset, loop, exit_work):
    """model/sources.py: x86 had its own entry code before 5.9; 6.17 split
    the syscall half out of kernel/entry/common.c; 7.1 inlined it."""
    text = spec_text("syscall getpid\nexit", preset=preset, thread_extra='ptrace = "syscall"')
    fns = {a.kernel_fn for a in system_of(tmp_path, text).actions}
    assert any(f.startswith(loop) for f in fns), sorted(fns)
    assert any(f.startswith(exit_work) for f in fns), sorted(fns)
    assert not any(f.startswith("kernel/entry/common.c:syscall") for f in fns if preset != "linux-6.0")

"""membarrier(PRIVATE_EXPEDITED_RSEQ) (model/membarrier.py); expectations
derived from kernel/sched/membarrier.c (ipi_rseq -> rseq_preempt) and
kernel-semantics.md 2.12 / 2.10."""

from __future__ import annotations

from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.ir import evaluate

from tests.util import Space, system_of


def spec(preset: str, t1: str, props: str = '"rseq-cs-atomic"') -> str:
    return f'''[spec]
title = "t"
preset = "{preset}"
[thread.T0]
code = """
        clone      T1
        membarrier_rseq
        exit
"""
[thread.T1]
code = """
{t1}
"""
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
[check]
properties = [{props}]
depth = 100
'''


USER_CS = """
retry:  rseq_cs    cs1
begin:  nop
        nop
end:    exit
abort:  jmp        retry
"""
SYSCALL_CS = """
retry:  rseq_cs    cs1
begin:  nop
        syscall    getpid
        nop
end:    exit
abort:  jmp        retry
"""
SLEEPER = """
        syscall    read
begin:  nop
end:    exit
abort:  exit
"""


def test_ipi_in_user_mode_aborts_the_section_legacy_and_r1(tmp_path):
    # The IPI interrupts T1 in user mode: exit loop, rseq_preempt -> abort.
    for preset in ("linux-6.18", "linux-6.19"):
        s = system_of(tmp_path, spec(preset, USER_CS), f"{preset}.toml")
        sp = Space(s)
        assert bfs(s, 100, por=False).verdict == "holds"
        assert sp.fired("membarrier(PRIVATE_EXPEDITED_RSEQ): IPI to every other running thread")
        assert any("abort to abort" in lab for lab in sp.labels)


def test_ipi_during_a_syscall_in_the_section(tmp_path):
    # Legacy: rseq_preempt sets NOTIFY_RESUME, the syscall's exit runs the
    # fixup on the post-syscall ip (inside): abort.  R1: the target entered by
    # a syscall (no user_irq), nothing is raised and the section commits.
    legacy = bfs(system_of(tmp_path, spec("linux-6.18", SYSCALL_CS)), 100, por=False)
    assert legacy.verdict == "holds"
    r1 = bfs(system_of(tmp_path, spec("linux-6.19", SYSCALL_CS), "r1.toml"), 100, por=False)
    assert (r1.verdict, r1.prop) == ("violation", "rseq-cs-atomic")
    # clone 3 + back 1, T1: arm, nop, syscall 3; T0: back 1, membarrier 3; T1 back, nop (commit)
    assert len(r1.trace) - 1 == 15


def test_no_rseq_command_before_510(tmp_path):
    sp = Space(system_of(tmp_path, spec("linux-5.8", USER_CS)))
    assert sp.fired("membarrier(PRIVATE_EXPEDITED_RSEQ): -EINVAL (no RSEQ command before 5.10)")
    assert not sp.fired("membarrier(PRIVATE_EXPEDITED_RSEQ): IPI")


def test_sleeping_target_is_not_interrupted(tmp_path):
    # A thread asleep in read() is not on a CPU: no IPI; it stays BLOCKED,
    # and only its own wake-up moves it on.
    sp = Space(system_of(tmp_path, spec("linux-6.18", SLEEPER, props='"no-unexpected-kill"')))
    assert sp.any(T0__k="LOOP", T0__ip0="T0+2", T1__k="BLOCKED")
    ipis = [a for a in sp.system.actions if a.label.startswith("membarrier(PRIVATE_EXPEDITED_RSEQ): IPI")]
    assert len(ipis) == 1
    # in a state with T1 asleep, the IPI leaves T1's phase alone
    k1 = next(v for v in sp.system.vars if v.name == "T1.k")
    seen = False
    for s in sp.states:
        env = dict(zip(sp.system.vars, s))
        if sp.shown(s)["T1.k"] == "BLOCKED" and evaluate(ipis[0].guard, env):
            after = dict(env)
            for v, e in ipis[0].updates:
                after[v] = evaluate(e, env)
            assert after[k1] == env[k1]
            seen = True
    assert seen


NOTIFIED_CS = """
retry:  rseq_cs    cs1
begin:  nop
        nop
end:    exit
abort:  jmp        retry
"""


def test_event_mask_read_and_clear_window(tmp_path):
    # kernel/rseq.c:rseq_need_restart loads the mask, then clears it with
    # only preemption off (before 6eb350a22331): an IPI in between is lost.
    text = spec("linux-6.0", NOTIFIED_CS).replace("[thread.T0]", "[environment]\nnotify_resume = true\n[thread.T0]")
    broken_sys = system_of(tmp_path, text, "b.toml")
    broken = bfs(broken_sys, 100, por=False)
    assert (broken.verdict, broken.prop, len(broken.trace) - 1) == ("violation", "rseq-cs-atomic", 16)
    lost = "the IPI to T1 lands between rseq_need_restart's read and clear"
    assert any(lost in broken_sys.actions[a].label for a, _ in broken.trace[1:])
    # the fix (6.18 default, or the override on 6.0): every IPI sets PREEMPT
    fixed = text.replace('preset = "linux-6.0"', 'preset = "linux-6.0"\n[rules]\n"rseq.event_mask_guard" = "irq"')
    sp = Space(system_of(tmp_path, fixed, "f.toml"))
    assert not any(lost in lab for lab in sp.labels)
    assert bfs(sp.system, 100, por=False).verdict == "holds"
    # R1 has no event mask: the rule changes nothing there
    r1 = Space(system_of(tmp_path, text.replace("linux-6.0", "linux-6.19"), "r1.toml"))
    assert not any(lost in lab for lab in r1.labels)

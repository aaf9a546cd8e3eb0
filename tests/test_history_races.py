"""Windows and historical fixes of issue #11 items 4, 5, 9, 10: outcomes
derived from the kernel functions the rules cite (model/rules.py)."""

from __future__ import annotations

from rseqcheck.checker.engines.explicit import bfs

from tests.util import Space, system_of

SEGV_LOOP = '''[spec]
title = "t"
preset = "linux-4.18"
{rules}
[thread.T0]
code = """
        rseq_cs    cs1
        syscall    sched_yield
        exit
begin:  nop
end:    nop
abort:  exit
"""
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
signature = "other"
[handler.SIGSEGV]
code = """
        nop
        sigreturn
"""
[check]
properties = ["no-unexpected-kill"]
depth = 60
'''


def test_segv_recursion_before_784e0300fe9f_never_ends(tmp_path):
    # 4.18-rc1: force_sig(SIGSEGV) while delivering SIGSEGV keeps the
    # handler: every run of the switch path loops deliver -> handler ->
    # sigreturn -> deliver, so no state kills the process; the state space
    # is finite, so the loop is a cycle of states (the lasso a liveness
    # property will report).
    edges: dict[tuple, set[tuple]] = {}
    rc1 = Space(system_of(tmp_path, SEGV_LOOP.format(rules='[rules]\n"rseq.segv_while_delivering_segv" = "force_sig"'), "rc1.toml"),
                on_step=lambda s, a, t: edges.setdefault(s, set()).add(t))
    assert not rc1.any(killed="SIGSEGV")
    assert any("force_sig(SIGSEGV) again" in lab for lab in rc1.labels)
    assert _on_cycle(edges, rc1.where(**{"T0.k": "SIGRSEQ"}), rc1)
    # the fix (4.18 release): one handler run, then SIG_DFL kills
    fixed_edges: dict[tuple, set[tuple]] = {}
    fixed_space = Space(system_of(tmp_path, SEGV_LOOP.format(rules=""), "fixed0.toml"),
                        on_step=lambda s, a, t: fixed_edges.setdefault(s, set()).add(t))
    assert not _on_cycle(fixed_edges, fixed_space.where(**{"T0.k": "SIGRSEQ"}), fixed_space)
    # the fix (4.18 release): one handler run, then SIG_DFL kills
    fixed = system_of(tmp_path, SEGV_LOOP.format(rules=""), "fixed.toml")
    r = bfs(fixed, 60, por=False)
    assert (r.verdict, r.prop) == ("violation", "no-unexpected-kill")
    assert any("force_fatal_sig(SIGSEGV)" in fixed.actions[a].label for a, _ in r.trace[1:])


def _on_cycle(edges: dict[tuple, set[tuple]], shown: list[dict], sp: Space) -> bool:
    """Some state shown as one of `shown` reaches itself again."""
    starts = [s for s in sp.states if sp.shown(s) in shown]
    for s0 in starts:
        todo, seen = list(edges.get(s0, ())), set()
        while todo:
            s = todo.pop()
            if s == s0:
                return True
            if s not in seen:
                seen.add(s)
                todo += edges.get(s, ())
    return False


TW = '''[spec]
title = "t"
preset = "{preset}"
[environment]
max_notify_signals = 1
[thread.T0]
code = """
retry:  rseq_cs   cs1
begin:  nop
        syscall   {call}
end:    exit
abort:  store     a, 1
        exit
"""
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
[check]
properties = ["rseq-cs-atomic"]
depth = 60
'''


def test_notify_signal_restarts_without_rseq(tmp_path):
    # TIF_NOTIFY_SIGNAL before the read sleeps: -ERESTARTSYS, get_signal
    # finds no signal, the restart rewinds into cs1 and nothing aborts it
    # (no event: a = 0 with the restart); woken from the sleep instead, the
    # schedule's PREEMPT aborts it (a = 1).
    sp = Space(system_of(tmp_path, TW.format(preset="linux-6.18", call="read"), "r.toml"))
    assert "read: TIF_NOTIFY_SIGNAL makes signal_pending() true: returns -ERESTARTSYS without sleeping" in sp.labels
    assert "read woken by TIF_NOTIFY_SIGNAL (no signal): returns -ERESTARTSYS" in sp.labels
    restart = ("arch_do_signal_or_restart: TIF_NOTIFY_SIGNAL, get_signal runs the task_work, no signal, "
               "no handler: restart, ip -= 2")
    assert restart in sp.labels
    assert sp.any(**{"T0.k": "USER", "T0.ip0": "T0+2", "T0.ev.PREEMPT": "0", "T0.notify_signal": "0", "T0.tw_budget": "0"})
    assert sp.any(a="1")  # the sleep path aborts
    assert bfs(sp.system, 60, por=False).verdict == "holds"
    # pause: signal_pending() -> -ERESTARTNOHAND at once, restarted (no handler)
    p = Space(system_of(tmp_path, TW.format(preset="linux-6.18", call="pause"), "p.toml"))
    assert "pause: signal_pending() (a signal or TIF_NOTIFY_SIGNAL), returns -ERESTARTNOHAND at once" in p.labels
    assert restart in p.labels
    # 4.18 (no TWA_SIGNAL): the work sets NOTIFY_RESUME; the read is never cut short
    old = Space(system_of(tmp_path, TW.format(preset="linux-4.18", call="read"), "o.toml"))
    assert "task_work_add(TWA_RESUME: TIF_NOTIFY_RESUME) on T0" in old.labels
    assert not any("ERESTART" in lab for lab in old.labels)

"""Windows and historical fixes of issue #11 items 4, 5, 9, 10: outcomes
derived from the kernel functions the rules cite (model/rules.py)."""

from __future__ import annotations

from checker.explicit import bfs
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

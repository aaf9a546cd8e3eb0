"""Each thread's rseq fixup has cases only for the descriptor instances its
own contexts can arm (model/builder.py Builder.armable): the action count
grows as T*K, not T*T*K, and nothing reachable changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.builder import Builder
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
LADDER = ROOT / "benchmarks" / "specs"

# T0 arms csx, whose labels are only in T1's block: a fixup aborting it would
# move T0's ip to T1's `abx`, where T0 would then arm csy -- so both belong
# to T0's set (the closure), while T1 never runs T0's code.
CROSS = '''
[spec]
title = "cross-block arming"
preset = "linux-6.18"
expect = "holds"

[environment]
signals     = ["SIGUSR1"]
max_signals = 1
preemption  = true

[thread.T0]
code = """
r0:     rseq_cs csx
        rseq_cs cs0
b0:     nop
e0:     exit
a0:     jmp     r0
"""

[thread.T1]
code = """
rx:     rseq_cs csx
bx:     nop
ex:     exit
abx:    rseq_cs csy
by:     nop
ey:     jmp     rx
"""

[handler.SIGUSR1]
code = """
        syscall getpid
        sigreturn
"""

[rseq_cs.csx]
start = "bx"
post_commit = "ex"
abort = "abx"

[rseq_cs.csy]
start = "by"
post_commit = "ey"
abort = "abx"

[rseq_cs.cs0]
start = "b0"
post_commit = "e0"
abort = "a0"

[check]
properties = ["rseq-cs-atomic", "no-unexpected-kill"]
depth = 200
'''


def _actions(t: int, k: int) -> int:
    return len(build_system(load_spec(LADDER / f"ladder_t{t}_k{k}.toml")).actions)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_ladder_actions_grow_as_t_times_k(k):
    # identical threads: T threads cost T times one thread's actions (the
    # full set gave each of the 3 threads 15*K more cases per other thread)
    one = _actions(1, k)
    assert _actions(2, k) == 2 * one
    assert _actions(3, k) == 3 * one
    assert one == 51 + 27 * k


def _names(b: Builder, t: str) -> list[str]:
    tv = next(x for x in b.threads if x.name == t)
    return [f"{c.name}@{c.seg.name}" for c in b.armable(tv)]


def test_armable_closure_over_abort_blocks(tmp_path):
    p = tmp_path / "cross.toml"
    p.write_text(CROSS)
    b = build_system(load_spec(p)).meta["builder"]
    assert _names(b, "T0") == ["csx@T1", "csy@T1", "cs0@T0"]
    assert _names(b, "T1") == ["csx@T1", "csy@T1"]


@pytest.mark.parametrize("path", ["specs/seed004/pthread_child_glibc_registered.toml",
                                  "specs/rseq_area/reused_area_stale_cs_linux60.toml",
                                  "specs/seed004/dlclose_armed_cs_linux618.toml"])
def test_clone_area_dlclose_keep_every_instance(path):
    b = build_system(load_spec(ROOT / path)).meta["builder"]
    assert b.cs and all(b.armable(t) == b.cs for t in b.threads if t.rseq_cs is not None)


@pytest.mark.parametrize("path", ["CROSS", "benchmarks/specs/ladder_t2_k1.toml",
                                  "specs/seed001/two_threads_percpu_cs.toml",
                                  "specs/librseq/percpu_counter_cpu_outside.toml"])
def test_same_search_as_with_every_instance(path, tmp_path, monkeypatch):
    """Against the full set (every thread's fixup has cases for every
    instance): same verdict, states, transitions and trace, fewer actions."""
    if path == "CROSS":
        p = tmp_path / "cross.toml"
        p.write_text(CROSS)
    else:
        p = ROOT / path
    spec = load_spec(p)

    def run() -> tuple:
        system = build_system(spec)
        res = bfs(system, spec.depth, por=False)
        acts = system.actions  # a trace step is (action index, state): compare by action
        trace = [((acts[a].proc, acts[a].label) if a >= 0 else None, st) for a, st in res.trace or ()]
        return len(system.actions), (res.verdict, res.prop, res.stats.states, res.stats.transitions, trace)

    n, got = run()
    monkeypatch.setattr(Builder, "armable", lambda self, t: list(self.cs))
    n_full, want = run()
    assert got == want
    assert n < n_full

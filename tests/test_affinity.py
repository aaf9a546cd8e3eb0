"""sched_setaffinity together with migration (model/cpus.py: the mask
bounds every migration).  Expectations derived in comments from
kernel/sched/core.c: __set_cpus_allowed_ptr, select_task_rq,
can_migrate_task, dup_task_struct."""

from __future__ import annotations

from pathlib import Path

from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.checker.outcomes import model_outcomes
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

from tests.util import Space, system_of

ROOT = Path(__file__).resolve().parent.parent
PINNED = ROOT / "specs" / "rseq_area" / "setaffinity_pins_migration_linux618.toml"
UNPINNED = ROOT / "specs" / "rseq_area" / "setaffinity_pins_migration_unpinned_linux618.toml"


def test_pair_figures() -> None:
    ok = bfs(build_system(load_spec(PINNED)), 80)
    assert (ok.verdict, ok.stats.states) == ("holds", 2_974)
    bad = bfs(build_system(load_spec(UNPINNED)), 80)
    assert (bad.verdict, bad.prop, len(bad.trace) - 1) == ("violation", "assert", 20)


def test_the_mask_binds_the_pinned_thread_only() -> None:
    sp = Space(build_system(load_spec(PINNED)))
    # once its mask is {1}, T0 is on CPU 1 in every state; every thread
    # is always on a CPU of its mask
    assert sp.any(T0__affinity=1)
    assert not sp.any(T0__affinity=1, T0__cpu=0)
    for s in sp.states:
        sh = sp.shown(s)
        assert all(sh[f"{t}.affinity"] in ("-1", sh[f"{t}.cpu"]) for t in ("T0", "T1")), sh
    # before the call it may migrate (the mask is all CPUs) ...
    assert sp.any(T0__affinity=-1, T0__cpu=1)
    # ... and T1, whose mask is all CPUs, migrates to CPU 0 and back
    assert sp.any(T1__cpu=0)
    # a migration attempt of the pinned T0 lands on CPU 1 (the switch
    # without the move): still fired, never moving it
    assert sp.fired("and migrates if its mask allows (set_task_cpu -> rseq_migrate)")


def test_clone_child_inherits_the_mask(tmp_path: Path) -> None:
    # dup_task_struct copies cpus_mask; wake_up_new_task -> select_task_rq
    # places the child inside it: C, declared on CPU 0, runs on CPU 1 and
    # stays there through migrations
    text = '''[spec]
title = "t"
preset = "linux-6.18"
[environment]
migration = true
preemption = true
[variables]
a = [0, 1]
b = [0, 1]
[thread.M]
cpu = 0
code = """
        sched_setaffinity 1
        clone    C
        exit
"""
[thread.C]
cpu = 0
code = """
        getcpu   %r0
        store    a, %r0
        getcpu   %r1
        store    b, %r1
"""
[check]
properties = ["no-unexpected-kill"]
depth = 80
'''
    p = tmp_path / "c.toml"
    p.write_text(text)
    res = model_outcomes(load_spec(p))
    assert res.complete
    assert {str(o) for o in res.allowed} == {"exit; a=1 b=1"}
    # without the call the child starts on CPU 0 and may migrate: all four
    res2 = model_outcomes(load_spec(_without_call(tmp_path, text)))
    assert {str(o) for o in res2.allowed} == {"exit; a=0 b=0", "exit; a=0 b=1", "exit; a=1 b=0", "exit; a=1 b=1"}


def _without_call(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "d.toml"
    p.write_text(text.replace("        sched_setaffinity 1\n", "        nop\n"))
    return p


def test_no_state_for_the_mask_without_migration(tmp_path: Path) -> None:
    # without migration sched_setaffinity alone moves the thread, as
    # before: no affinity variable
    text = PINNED.read_text().replace("migration  = true", "migration  = false")
    system = system_of(tmp_path, text)
    assert not any(v.name.endswith(".affinity") for v in system.vars)

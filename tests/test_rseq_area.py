"""The rseq area as memory shared in turn ([thread.T] rseq_area): a thread
that exits leaves its area with whatever rseq_cs it held, and the next
pthread_create that reuses the stack registers it as it is
(model/lifecycle.py:area_groups).  Expectations are derived in comments
from kernel/rseq.c:sys_rseq and glibc's stack cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.rules import PRESETS
from rseqcheck.model.spec import load_spec

from tests.util import Space, system_of

ROOT = Path(__file__).resolve().parent.parent
PAIR = ROOT / "specs" / "rseq_area" / "reused_area_stale_cs_linux60.toml"


def _spec(dlclose: bool = True, area1: str = 'rseq_area = "A"', preset: str = "linux-6.0",
          clone1: str = "clone    T1", t1_extra: str = "") -> str:
    return f'''[spec]
title = "t"
preset = "{preset}"
[thread.M]
code = """
        clone    T0
        {clone1}
        exit
"""
[thread.T0]
rseq_area = "A"
code = """
        rseq_cs  cs1
begin:  nop
end:    {"dlclose  cs1" if dlclose else "nop"}
        exit
abort:  jmp      begin
"""
[thread.T1]
{area1}
{t1_extra}
code = """
        nop
        exit
"""
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
[check]
properties = ["no-unexpected-kill"]
depth = 60
'''


def _verdict(system) -> str:
    return bfs(system, 60, por=False).verdict


@pytest.mark.parametrize("preset", PRESETS)
def test_stale_rseq_cs_kills_before_the_registration_fix(tmp_path: Path, preset: str) -> None:
    # sys_rseq clears a non-zero rseq_cs since fd881d0a085f (rule
    # rseq.register_clears_cs, "yes" from the linux-6.18 preset on) and
    # R1/R2 write rseq_cs = 0 at registration: T1 survives there.  Before,
    # T1's first notify-resume reads the unmapped descriptor: SIGSEGV.
    fixed = PRESETS.index(preset) >= PRESETS.index("linux-6.18")
    got = _verdict(system_of(tmp_path, _spec(preset=preset)))
    assert got == ("holds" if fixed else "violation"), preset


def test_pair_state_counts_and_the_kill_comes_from_the_reused_area() -> None:
    system = build_system(load_spec(PAIR))
    broken = bfs(system, 40)
    assert (broken.verdict, broken.stats.states, len(broken.trace) - 1) == ("violation", 42, 16)
    last = system.actions[broken.trace[-1][0]]
    assert last.actor == "T1:kernel" and "cs1 was unmapped" in last.label
    fixed = bfs(build_system(load_spec(PAIR.with_name("reused_area_stale_cs_linux618.toml"))), 40)
    assert (fixed.verdict, fixed.stats.states) == ("holds", 74)


def test_own_areas_do_not_carry_rseq_cs_over(tmp_path: Path) -> None:
    # without rseq_area on T1 it gets a fresh area (rseq_cs = 0): no kill
    # even on 6.0, and its rseq_cs never holds cs1
    sp = Space(system_of(tmp_path, _spec(area1="")))
    assert not sp.any(killed="SIGSEGV")
    assert not sp.any(T1__rseq_cs="cs1")


def test_valid_stale_descriptor_is_cleared_lazily(tmp_path: Path) -> None:
    # a stale rseq_cs pointing at a valid descriptor is harmless: T1's ip
    # is outside it, so rseq_ip_fixup clears it (the reason the bug went
    # unnoticed, says fd881d0a085f)
    sp = Space(system_of(tmp_path, _spec(dlclose=False)))
    assert not sp.any(killed="SIGSEGV")
    assert sp.any(T1__k="USER", A__rseq_cs="cs1") is False
    assert sp.any(T0__k="DEAD", A__rseq_cs="cs1")  # left behind by T0
    assert sp.fired("ip outside cs1 -> clear rseq_cs")


def test_the_reusing_clone_waits_for_the_previous_user(tmp_path: Path) -> None:
    # glibc's stack cache hands out only a stack whose thread has exited:
    # no reachable state has T1 created while T0 is alive
    sp = Space(system_of(tmp_path, _spec(dlclose=False)))
    alive = ("ENTRY", "BODY", "LOOP", "USER", "BLOCKED", "EXITWORK", "SIGRSEQ", "SIGFRAME")
    both = [s for s in sp.states if sp.shown(s)["T0.k"] in alive and sp.shown(s)["T1.k"] != "NEW"]
    assert both == []
    assert sp.any(T1__k="DEAD", T0__k="DEAD")


def test_one_user_costs_nothing(tmp_path: Path) -> None:
    # an area named by one thread only is that thread's own area: the
    # state count is the one without the key
    one = _spec(area1="").replace('rseq_area = "A"', "")
    named = _spec(area1="")
    a = bfs(system_of(tmp_path, one, "a.toml"), 60, por=False)
    b = bfs(system_of(tmp_path, named, "b.toml"), 60, por=False)
    assert a.stats.states == b.stats.states and a.verdict == b.verdict == "holds"


@pytest.mark.parametrize(("extra", "clone1", "message"), [
    ("", "nop", "rseq_area A: T1 runs from the start"),
    ("", "clone    T1, raw", "rseq_area A: T1 is made by clone raw"),
    ("", "fork     T1", "rseq_area A: T1 is made by fork"),
])
def test_area_sharing_errors_name_the_line(tmp_path: Path, extra: str, clone1: str, message: str) -> None:
    text = _spec(clone1=clone1, t1_extra=extra)
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, text)
    want = [i for i, line in enumerate(text.split("\n"), start=1) if line.startswith('rseq_area')][1]
    assert e.value.line == want and e.value.message.startswith(message), str(e.value)


def test_area_may_not_be_named_like_a_thread(tmp_path: Path) -> None:
    # its variables (M.rseq_cs) would be the thread's
    text = _spec().replace('rseq_area = "A"', 'rseq_area = "M"')
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, text)
    want = next(i for i, line in enumerate(text.split("\n"), start=1) if line.startswith("rseq_area"))
    assert e.value.line == want and "rseq_area M: the name of a thread" in e.value.message


def test_area_name_must_be_an_identifier(tmp_path: Path) -> None:
    text = _spec(area1='rseq_area = "a b"')
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, text)
    assert "rseq_area 'a b' is not an identifier" in e.value.message


@pytest.mark.parametrize("preset", ["linux-6.0", "linux-6.18", "linux-6.19", "linux-7.1"])
def test_waiting_clone_gives_its_cpu_away(tmp_path: Path, preset: str) -> None:
    # everyone on CPU 0 (CPU data: T1 reads rseq.cpu_id): M's second clone
    # waits for T0, which can only run once M's wait (a futex sleep: a
    # schedule) lets CPU 0 switch to it; then T1 runs on the reused area,
    # whose cpu_id the kernel rewrites for T1 (rseq-cpu-id-accurate holds)
    text = _spec(dlclose=False, preset=preset).replace("[thread.T0]\n", "[thread.T0]\ncpu = 0\n").replace(
        "        nop\n        exit\n\"\"\"\n[rseq_cs", "        load     %r0, rseq.cpu_id\n        exit\n\"\"\"\n[rseq_cs")
    text = text.replace('properties = ["no-unexpected-kill"]', 'properties = ["no-unexpected-kill", "rseq-cpu-id-accurate"]')
    system = system_of(tmp_path, text)
    sp = Space(system)
    assert sp.fired("clone T1 waits for the area's last user to exit (switches to T0")
    assert sp.any(T1__k="DEAD", T0__k="DEAD", M__k="DEAD")
    assert bfs(system, 60, por=False).verdict == "holds"


def test_legend_names_the_new_state() -> None:
    # traces must read without the repository (model/glossary.py)
    from rseqcheck.model.glossary import describe

    assert describe("A.rseq_cs", {"T0"}) == "the rseq_cs pointer in rseq area A, which its threads use in turn"
    assert describe("A.rseq.cpu_id", {"T0"}) == "the cpu_id field of rseq area A, as user space reads it"
    assert describe("T0.mm_cid", {"T0"}).startswith("the mm_cid T0 got at its last switch-in")
    assert describe("T0.affinity", {"T0"}).startswith("T0's CPU affinity")

"""rseq-cs-atomic on the section the user code is executing (issue 11, item
8): the monitor sees a section whose rseq_cs a handler had cleared, charges
an event to every frame on the stack that is inside a section, and a commit
is the post-commit ip reached from inside, by any instruction.  The
NO_RESTART_ON_SIGNAL combination check (kernel/rseq.c:rseq_need_restart,
4.18-5.19) and the rule choice without it (rseq.flags=honoured-unchecked)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

from tests.util import Space, spec_text, system_of

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "specs" / "seed001"
UNCHECKED = SEED / "no_restart_signal_unchecked_linux418.toml"
CHECKED = SEED / "no_restart_signal_checked_linux418.toml"
ALL_FLAGS = SEED / "no_restart_all_flags_linux418.toml"
LEGACY_PRE_60 = ("linux-4.18", "linux-5.8", "linux-5.10", "linux-5.11", "linux-5.16")


def _search(path: Path, preset: str | None = None, rules: dict[str, str] | None = None,
            props: tuple[str, ...] | None = None):
    spec = load_spec(path)
    if preset is not None:
        spec = replace(spec, preset=preset)
    if rules is not None:
        spec = replace(spec, rules=rules)
    if props is not None:
        spec = replace(spec, properties=props)
    system = build_system(spec)
    return system, bfs(system, spec.depth, por=False)


def _shown(system, state) -> dict[str, str]:
    return {v.name: v.type.fmt(x) for v, x in zip(system.vars, state)}


@pytest.mark.parametrize("preset", LEGACY_PRE_60)
def test_unchecked_flags_let_a_preempted_handler_unprotect_the_section(preset):
    # the spec's derivation: signal inside (masked, no abort), the handler
    # preempted, its notify-resume clears rseq_cs, rt_sigreturn resumes the
    # section unarmed, the commit follows a preemption nothing aborted
    system, r = _search(UNCHECKED, preset=preset)
    assert (r.verdict, r.prop, len(r.trace) - 1) == ("violation", "rseq-cs-atomic", 17)
    labels = [system.actions[a].label for a, _ in r.trace[1:]]
    states = [_shown(system, s) for _, s in r.trace]
    assert "rseq_signal_deliver: ip inside cs1, no event (masked by flags) -> continue" in labels
    # rseq_cs is cleared while the handler runs, by the fixup outside cs1
    clear = next(i for i, lab in enumerate(labels) if "ip outside cs1 -> clear rseq_cs" in lab)
    assert states[clear]["T0.depth"] == "1" and states[clear + 1]["T0.rseq_cs"] == "0"
    # before it, the handler's preemption is charged to frame 0, inside cs1
    hit = next(i for i, st in enumerate(states) if st["T0.dirty0"] == "1")
    assert hit <= clear and states[hit]["T0.depth"] == "1" and "schedule()" in labels[hit - 1]
    # the commit: frame 0, rseq_cs NULL -- what the old monitor could not see
    last = states[-1]
    assert (last["T0.depth"], last["T0.rseq_cs"], last["T0.ip0"]) == ("0", "0", "end")
    assert labels[-1].startswith("store   y, 1  -- commits cs1")


@pytest.mark.parametrize("preset", LEGACY_PRE_60)
def test_the_combination_check_kills_instead(preset):
    # as released: NO_RESTART_ON_SIGNAL alone is -EINVAL at the first fixup
    # inside the section -> SIGSEGV; no section resumes unarmed
    _, r = _search(CHECKED, preset=preset)
    assert r.verdict == "holds" and r.exhausted
    system, k = _search(CHECKED, preset=preset, props=("no-unexpected-kill",))
    assert (k.verdict, k.prop) == ("violation", "no-unexpected-kill")
    assert "NO_RESTART_ON_SIGNAL without the others -> -EINVAL" in system.actions[k.trace[-1][0]].label


@pytest.mark.parametrize("preset", ("linux-6.0", "linux-6.18"))
def test_deprecated_flags_are_fatal_either_way_from_60(preset):
    # 0190e4198e47: any NO_RESTART flag with the ip inside is -EINVAL
    _, r = _search(UNCHECKED, preset=preset, rules={})
    assert r.verdict == "holds"


def test_all_three_flags_clear_rseq_cs_but_lose_nothing_asked_for():
    # Bui Quang Minh's report: rseq_cs is cleared under the handler and the
    # section resumes with it NULL; every event is opted out, so it holds
    system, r = _search(ALL_FLAGS)
    assert r.verdict == "holds" and r.exhausted
    sp = Space(system)
    assert sp.any(T0__depth=0, T0__ip0="T0+2", T0__rseq_cs="0", T0__ev__PREEMPT=1)
    assert not sp.any(T0__dirty0=1)


MIGRATE_ONLY = """
retry:  rseq_cs cs1
begin:  store   x, 1
        store   y, 1
end:    exit
abort:  jmp     retry
"""
CS_SIGNAL_PREEMPT = """
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
flags = ["NO_RESTART_ON_SIGNAL", "NO_RESTART_ON_PREEMPT"]
"""
HANDLER = '''
[handler.SIGUSR1]
code = """
        sigreturn
"""
'''


@pytest.mark.parametrize(("rule", "verdict"), [("honoured-unchecked", "violation"), ("honoured", "holds")])
def test_a_migrated_handler_needs_the_migrate_flag_too(tmp_path, rule, verdict):
    # SIGNAL + PREEMPT without MIGRATE: a migration of the handler is an
    # event the section did not opt out of; unchecked it goes unaborted,
    # checked the combination is -EINVAL
    text = spec_text(MIGRATE_ONLY, preset="linux-4.18", rules={"rseq.flags": rule},
                     env='signals = ["SIGUSR1"]\nmax_signals = 1\npreemption = true\nmigration = true',
                     handlers=HANDLER, cs=CS_SIGNAL_PREEMPT, props=("rseq-cs-atomic",), depth=60)
    system = system_of(tmp_path, text)
    r = bfs(system, 60, por=False)
    assert r.verdict == verdict
    if verdict == "violation":
        # the preemption alone is opted out: the event charged is the migration
        fired = [system.actions[a].label for a, _ in r.trace[1:]]
        assert any("migrates" in lab for lab in fired)
        dirty = system.var("T0.dirty0")
        i = system.vars.index(dirty)
        first = next(k for k, (_, s) in enumerate(r.trace) if s[i])
        assert "migrates" in system.actions[r.trace[first][0]].label


# --------------------------------------------- a commit is reaching post_commit

BRANCH_COMMIT = """
retry:  rseq_cs cs1
begin:  store   x, 1
        beq     x, 1, end
        jmp     abort
end:    exit
abort:  jmp     retry
"""
BRANCH_AWAY = """
retry:  rseq_cs cs1
begin:  store   x, 1
        beq     x, 1, out
end:    exit
abort:  jmp     retry
out:    exit
"""
CS_SIGNAL = CS_SIGNAL_PREEMPT.replace(', "NO_RESTART_ON_PREEMPT"', "")


@pytest.mark.parametrize(("code", "verdict", "steps"), [(BRANCH_COMMIT, "violation", 17), (BRANCH_AWAY, "holds", None)])
def test_a_commit_is_the_post_commit_ip_reached_from_inside(tmp_path, code, verdict, steps):
    # a taken branch to post_commit commits; a branch taken away from it
    # (its fall-through would be post_commit) does not
    text = spec_text(code, preset="linux-4.18", rules={"rseq.flags": "honoured-unchecked"},
                     env='signals = ["SIGUSR1"]\nmax_signals = 1\npreemption = true',
                     handlers=HANDLER, cs=CS_SIGNAL, props=("rseq-cs-atomic",), depth=60)
    system = system_of(tmp_path, text)
    r = bfs(system, 60, por=False)
    assert (r.verdict, len(r.trace) - 1 if r.trace else None) == (verdict, steps)
    if steps:
        assert system.actions[r.trace[-1][0]].label.startswith("beq")


def test_no_event_while_the_section_runs_is_no_violation(tmp_path):
    # the same unchecked kernel, no preemption: the signals are opted out,
    # rseq_cs may still be cleared by a nested delivery, nothing counts
    text = spec_text(MIGRATE_ONLY, preset="linux-4.18", rules={"rseq.flags": "honoured-unchecked"},
                     env='signals = ["SIGUSR1"]\nmax_signals = 2',
                     handlers=HANDLER.replace('code = """', 'flags = ["SA_NODEFER"]\ncode = """'),
                     cs=CS_SIGNAL, props=("rseq-cs-atomic",), depth=60)
    system = system_of(tmp_path, text)
    r = bfs(system, 60, por=False)
    assert r.verdict == "holds" and r.exhausted
    sp = Space(system)
    assert sp.any(T0__depth=0, T0__ip0="T0+2", T0__rseq_cs="0")  # cleared by the nested delivery


NESTED = '''
[handler.SIGUSR1]
flags = ["SA_NODEFER"]
code = """
        rseq_cs hcs
hbegin: nop
        nop
hend:   sigreturn
habort: sigreturn
"""
[rseq_cs.hcs]
start = "hbegin"
post_commit = "hend"
abort = "habort"
flags = ["NO_RESTART_ON_SIGNAL"]
'''


def test_an_event_counts_against_every_frame_inside_a_section(tmp_path):
    # the thread in cs1 and the first handler in its own hcs, both left
    # running by a masked signal; the second handler's preemption is an
    # event for both (the running frame, at depth 2, is in neither)
    text = spec_text(MIGRATE_ONLY, preset="linux-4.18", rules={"rseq.flags": "honoured-unchecked"},
                     env='signals = ["SIGUSR1"]\nmax_signals = 2\npreemption = true',
                     handlers=NESTED, cs=CS_SIGNAL, props=("rseq-cs-atomic",), depth=80)
    sp = Space(system_of(tmp_path, text))
    assert sp.any(T0__depth=2, T0__ip0="T0+2", T0__ip1="hbegin", T0__dirty0=1, T0__dirty1=1, T0__dirty2=0)
    # a frame's rt_sigreturn forgets its own record, not the frames below
    assert sp.any(T0__depth=1, T0__ip1="hbegin", T0__dirty0=1, T0__dirty1=1, T0__dirty2=0)
    assert not sp.any(T0__depth=1, T0__dirty2=1)

"""Liveness (issue 12): goals and fairness in the IR, the explicit lasso
search, lasso traces in every format, replay of a lasso, the Z3 engines'
refusal, and the spec format's polarity words and [fairness]."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines.liveness import check_goals, lasso_violation, successors
from rseqcheck.checker.outputs.trace import WIDTH, from_itf, render, render_text, to_itf
from rseqcheck.checker.replay import replay_file
from rseqcheck.checker.verify import check_spec
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "specs" / "liveness"


def spec_text(name: str, **subst: str) -> str:
    text = (LIVE / name).read_text()
    for old, new in subst.items():
        assert old in text
        text = text.replace(old, new)
    return text


def variant(tmp_path: Path, name: str, **subst: str) -> str:
    p = tmp_path / name
    p.write_text(spec_text(name, **subst))
    return str(p)


def test_single_step_abort_loop_is_a_lasso() -> None:
    o = check_spec(str(LIVE / "singlestep_abort_loop_linux618.toml"))
    r = o.result
    assert o.ok and r is not None and r.verdict == "violation"
    assert r.prop == "rseq-cs-progress" and r.goal == "rseq-cs-progress (T0)"
    assert (r.loop, len(r.trace) - 1) == (2, 10)  # arm, stop; then 8 steps back to the stop
    assert (r.stats.states, r.stats.transitions) == (10, 10)
    assert r.trace[-1][1] == r.trace[r.loop][1]
    labels = [o.system.actions[a].label for a, _ in r.trace[1:]]
    assert labels[2].startswith("notify-resume: ip inside cs1, event pending -> abort")
    assert not any("store" in x for x in labels)  # the commit never runs
    assert "partial-order reduction off (liveness)" in r.notes
    assert any(n.startswith("fairness: weak fairness") for n in r.notes)


def test_no_restart_flags_on_418_commit() -> None:
    o = check_spec(str(LIVE / "singlestep_no_restart_linux418.toml"))
    r = o.result
    assert o.ok and r is not None and r.verdict == "holds" and r.exhausted
    assert (r.stats.states, r.stats.transitions) == (16, 15)
    assert o.vacuous == []


def test_flags_zero_on_418_still_abort(tmp_path: Path) -> None:
    """The broken/fixed pair differs by the flags alone: on 4.18 without
    them the loop is back (rseq_need_restart masks nothing)."""
    p = variant(tmp_path, "singlestep_no_restart_linux418.toml",
                **{'flags = ["NO_RESTART_ON_PREEMPT", "NO_RESTART_ON_SIGNAL", "NO_RESTART_ON_MIGRATE"]': "flags = []"})
    r = check_spec(p).result
    assert r is not None and r.verdict == "violation" and r.goal == "rseq-cs-progress (T0)"


def test_flags_on_618_are_fatal_not_a_loop(tmp_path: Path) -> None:
    """6.18 (rseq.flags=fatal): the same flags kill at the first fixup
    inside the section; a killed run arms nothing forever, so progress
    holds and no-unexpected-kill is what breaks."""
    p = variant(tmp_path, "singlestep_no_restart_linux418.toml", **{'"linux-4.18"': '"linux-6.18"',
                '["rseq-cs-progress", "terminates"]': '["rseq-cs-progress", "terminates", "no-unexpected-kill"]'})
    r = check_spec(p).result
    assert r is not None and r.verdict == "violation" and r.prop == "no-unexpected-kill" and r.loop is None


def test_end_state_lasso_and_syscall_progress() -> None:
    o = check_spec(str(LIVE / "pause_without_signal.toml"))
    r = o.result
    assert o.ok and r is not None and r.goal == "syscall-progress (T0)"
    assert r.loop == len(r.trace) - 1 == 3
    text = render_text(o.graph)
    assert "then forever: no step is possible (the run ends here)" in text


def test_pause_race_environment_fairness_does_not_help() -> None:
    o = check_spec(str(LIVE / "pause_signal_race.toml"))
    r = o.result
    assert o.ok and r is not None and r.loop == len(r.trace) - 1 == 12
    assert o.system.actions[r.trace[1][0]].actor == "env"  # the signal comes first


def fairness_matters(tmp_path: Path, name: str, old: str, new: str):
    """The bundled spec holds; with `old` replaced by `new` (a weaker
    fairness) "eventually done == 1" is violated: (both outcomes)."""
    holds = check_spec(str(LIVE / name))
    assert holds.ok and holds.result.verdict == "holds"
    o = check_spec(variant(tmp_path, name, **{old: new}))
    assert o.result.verdict == "violation" and o.result.goal == "eventually done == 1"
    return holds, o


def test_weak_fairness_of_threads_matters(tmp_path: Path) -> None:
    _, o = fairness_matters(tmp_path, "eventually_fair_threads.toml", "[check]", '[fairness]\nthreads = "none"\n\n[check]')
    r = o.result
    # the cycle is T0's self-loop: the spin that changes nothing
    assert len(r.trace) - 1 - r.loop == 1 and o.system.actions[r.trace[-1][0]].label.startswith("jmp")


def test_strong_against_weak_fairness(tmp_path: Path) -> None:
    strong, weak = fairness_matters(tmp_path, "preempt_before_every_step.toml", 'threads = "strong"', 'threads = "weak"')
    r = weak.result
    cyc = [weak.system.actions[a] for a, _ in r.trace[r.loop + 1:]]
    assert [a.actor for a in cyc][0] == "env" and all(a.actor != "T0" for a in cyc)
    # the same lasso is unfair under strong fairness
    system = strong.system
    goal = next(g for g in system.goals if g.name == "eventually done == 1")
    succ = successors(system)
    states = [s for _, s in r.trace]
    acts = [a for a, _ in r.trace[1:]]
    assert lasso_violation(weak.system, goal, states, acts, r.loop, succ) is None
    why = lasso_violation(system, goal, states, acts, r.loop, succ)
    assert why is not None and why.startswith("unfair to T0 user steps")


def test_sometimes_unreachable_has_no_trace(tmp_path: Path) -> None:
    p = variant(tmp_path, "eventually_fair_threads.toml", **{'"sometimes done == 1"': '"sometimes done == 2"'})
    o = check_spec(p)
    r = o.result
    assert r.verdict == "violation" and r.goal == "sometimes done == 2" and r.trace == [] and o.graph is None
    assert o.describe() == "violation of sometimes done == 2: no reachable state satisfies it"


def test_always_expr_is_an_invariant(tmp_path: Path) -> None:
    p = variant(tmp_path, "eventually_fair_threads.toml", **{'"sometimes done == 1"': '"always done == 0"'})
    o = check_spec(p)
    r = o.result
    assert r.verdict == "violation" and r.prop == "always done == 0" and r.loop is None and len(r.trace) == 2


def test_recurrence_needs_the_trigger() -> None:
    """A goal whose region has a fair cycle without a trigger edge holds:
    rseq-cs-progress on a thread that never arms a section."""
    system = build_system(load_spec(str(LIVE / "eventually_fair_threads.toml")))
    from dataclasses import replace

    from rseqcheck.model.ir import FALSE, Goal

    g = Goal("rseq-cs-progress", "recurrence", "", FALSE, trigger="cs-enter", release="cs-commit", proc="T0")
    assert check_goals(replace(system, goals=[g]), 20).verdict == "holds"
    g2 = Goal("x", "recurrence", "", FALSE, proc="T0")  # GF false: any fair infinite run breaks it
    r = check_goals(replace(system, goals=[g2]), 20)
    assert r.verdict == "violation" and r.loop is not None


def test_lasso_formats_and_replay(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    o = check_spec("specs/liveness/singlestep_abort_loop_linux618.toml")
    g = o.graph
    text = render(g, "text")
    assert "then forever:" in text and "(back to the state after step 2: the cycle repeats)" in text
    assert all(len(line) <= WIDTH for line in text.splitlines())
    doc = to_itf(g)
    assert doc["loop"] == doc["#meta"]["loop"] == 2 and doc["#meta"]["goal"] == "rseq-cs-progress (T0)"
    assert from_itf(json.loads(json.dumps(doc))).graph["loop"] == 2
    assert "s10 -> s2 [style=dashed" in render(g, "dot")
    (tmp_path / "w.graphml").write_text(render(g, "graphml"))
    h = nx.read_graphml(tmp_path / "w.graphml")
    assert [n for n, d in h.nodes(data=True) if d.get("cyclehead")] == ["s2"]
    assert [(u, v) for u, v, d in h.edges(data=True) if d.get("backedge")] == [("s10", "s2")]
    assert not [n for n, d in h.nodes(data=True) if d.get("violation")]
    saved = tmp_path / "t.json"
    saved.write_text(json.dumps(doc))
    rep = replay_file(saved)
    assert rep.ok and "the cycle closes at state 2" in rep.message
    doc["loop"] = doc["#meta"]["loop"] = 3
    saved.write_text(json.dumps(doc))
    rep = replay_file(saved)
    assert not rep.ok and rep.details == ["the cycle does not close: the last state differs from state 3"]
    # against the fixed kernel the saved steps no longer apply
    doc["loop"] = doc["#meta"]["loop"] = 2
    saved.write_text(json.dumps(doc))
    rep = replay_file(saved, str(LIVE / "singlestep_no_restart_linux418.toml"))
    assert not rep.ok


FAST_BMC = {"singlestep_abort_loop_linux618.toml", "pause_without_signal.toml"}  # under a second each


@pytest.mark.parametrize("name", [n if n in FAST_BMC else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(p.name for p in LIVE.glob("*.toml"))])
def test_bmc_lasso_search_agrees(name: str) -> None:
    """The bounded lasso search with Z3 gives every bundled liveness spec
    explicit's verdict; its lasso has at most as many steps in all (it is
    the shortest in total; explicit's has the shortest prefix), replays and
    breaks the goal."""
    from rseqcheck.checker.engines.symbolic_liveness import lasso_bmc

    ex = check_spec(str(LIVE / name))
    x = ex.result
    r = lasso_bmc(ex.system, ex.spec.depth, timeout=600)
    assert r.engine == "bmc" and r.verdict == x.verdict == (ex.spec.expect or "holds")
    if x.trace:
        assert r.goal == x.goal and len(r.trace) <= len(x.trace)
        from rseqcheck.checker.engines.explicit import replay

        again = replay(ex.system, [a for a, _ in r.trace[1:]])
        assert again is not None and [s for _, s in again] == [s for _, s in r.trace]
        goal = next(g for g in ex.system.goals if g.key == r.goal)
        assert lasso_violation(ex.system, goal, [s for _, s in r.trace], [a for a, _ in r.trace[1:]], r.loop,
                               successors(ex.system)) is None
    if name in FAST_BMC:  # through verify, and here the very same lasso
        o = check_spec(str(LIVE / name), engine="bmc")
        assert o.ok and (o.result.loop, len(o.result.trace)) == (x.loop, len(x.trace))


def test_induction_refuses_goals_and_all_compares(monkeypatch) -> None:
    path = str(LIVE / "singlestep_abort_loop_linux618.toml")
    o = check_spec(path, engine="induction")
    assert o.error is not None and o.error.startswith(f"{path}:")
    assert "the induction engine does not prove liveness" in o.error
    res = CliRunner().invoke(main, ["verify", path, "--engine", "induction", "--out", "/tmp/rseqcheck-live-test"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["verify", path, "--engine", "all", "--out", "/tmp/rseqcheck-live-test"])
    assert res.exit_code == 0, res.output
    assert "bmc: rseq-cs-progress (T0): 2 steps, then a cycle of 8 steps" in res.output
    # a bmc that found nothing contradicts explicit's lasso: exit 3
    import rseqcheck.checker.engines.symbolic_liveness as sl
    from rseqcheck.checker.engines.explicit import SearchResult, Stats

    monkeypatch.setattr(sl, "lasso_bmc", lambda system, bound, **kw: SearchResult("holds", "bmc", Stats(), bound))
    res = CliRunner().invoke(main, ["verify", path, "--engine", "all", "--out", "/tmp/rseqcheck-live-test"])
    assert res.exit_code == 3 and "ENGINES DISAGREE" in res.output, res.output


@pytest.mark.parametrize("props,fair,msg", [
    ('["eventually tls.x == 1"]', "", "tls.x is per thread"),
    ('["sometimes"]', "", "unknown property 'sometimes'"),
    ('["eventually rseq-cs-atomic"]', "", "is a built-in property"),
    ('["eventually x =="]', "", "ends early"),
    ('["terminates"]', '[fairness]\nthreads = "fair"\n', "threads must be"),
    ('["terminates"]', '[fairness]\nstrong = true\n', "unknown key 'strong' in [fairness]"),
])
def test_bad_liveness_specs(tmp_path: Path, props: str, fair: str, msg: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text(f"""[spec]
preset = "linux-6.18"
[thread.T0]
code = \"\"\"
        store tls.x, 1
\"\"\"
{fair}[check]
properties = {props}
""")
    res = CliRunner().invoke(main, ["verify", str(p), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{p}:" in res.output and msg in res.output, res.output


def test_always_name_is_the_builtin(tmp_path: Path) -> None:
    p = variant(tmp_path, "singlestep_no_restart_linux418.toml",
                **{'["rseq-cs-progress", "terminates"]': '["always no-unexpected-kill"]'})
    s = load_spec(p)
    assert s.properties == ("no-unexpected-kill",)


def test_state_limit_applies_to_the_lasso_search() -> None:
    o = check_spec(str(LIVE / "singlestep_abort_loop_linux618.toml"), max_states=5)  # no invariant: explore's own
    assert o.result.verdict == "unknown" and o.result.reason == "state limit 5 reached"
    res = CliRunner().invoke(main, ["verify", str(LIVE / "percpu_counter_preempted_linux618.toml"),
                                    "--max-states", "1000", "--out", "/tmp/rseqcheck-live-test"])
    assert res.exit_code == 3, res.output


def _toy(kind: str):
    """x in 0..3: c: 0->2, d: 2->0, a: 0->1, b: 1->0, e: 2->3 (e alone
    in a fairness set of `kind`); goal: eventually x == 3.  The search
    tries c before a, so a cycle that ignored fairness would go via 2."""
    from rseqcheck.model.ir import Action, Const, Eq, Fairness, Goal, IntRange, System, Var

    x = Var("x", IntRange(0, 3))
    moves = [("c", 0, 2), ("d", 2, 0), ("a", 0, 1), ("b", 1, 0), ("e", 2, 3)]
    acts = [Action(n, Eq(x, s), ((x, Const(t)),), "P", "P") for n, s, t in moves]
    return System([x], {x: 0}, acts, [], goals=[Goal("g", "eventually", "", Eq(x, 3))],
                  fairness=[Fairness("e", kind, frozenset({4}))])


def test_strong_fairness_prunes_then_searches_again() -> None:
    """Emerson-Lei: the component {0, 1, 2} fails the strong set {e}
    (enabled at 2, never taken inside); without state 2, {0, 1} is a fair
    cycle.  Under weak fairness the whole component is fair already."""
    strong = check_goals(_toy("strong"), 10)
    assert strong.verdict == "violation"
    assert [s[0] for _, s in strong.trace] == [0, 1, 0] and strong.loop == 0
    weak = check_goals(_toy("weak"), 10)
    assert weak.verdict == "violation"
    assert [s[0] for _, s in weak.trace] == [0, 2, 0] and weak.loop == 0
    assert (strong.stats.states, weak.stats.states) == (4, 4)


def test_segv_recursion_before_784e0300fe9f_is_a_lasso() -> None:
    """specs/liveness/segv_recursion_*: before the fix each failure while
    delivering SIGSEGV queues it again with the handler kept: deliver ->
    handler -> sigreturn -> deliver forever, so `terminates` fails with a
    cycle through the handler; after it the second delivery kills."""
    o = check_spec(str(LIVE / "segv_recursion_linux418rc1.toml"))
    r = o.result
    assert o.ok and r is not None and r.prop == "terminates"
    assert (r.loop, len(r.trace) - 1) == (8, 16)
    labels = [o.system.actions[a].label for a, _ in r.trace[r.loop + 1:]]
    assert sum("force_sig(SIGSEGV) again, handler kept" in x for x in labels) == 1
    assert any(x.startswith("rt_sigreturn") for x in labels)
    fixed = check_spec(str(LIVE / "segv_recursion_linux418.toml"))
    assert fixed.ok and fixed.result is not None and fixed.result.verdict == "holds"
    assert fixed.result.exhausted

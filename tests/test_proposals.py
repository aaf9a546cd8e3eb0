"""Proposals from the command line: `verify --preset/--rule` over each
spec's own choices (said in every output, saved in the trace so that
`replay` rebuilds the same model) and `impact`, the flip table of a
proposal over a corpus.  Verdicts are the ones the specs' headers derive
(seed000/rseq_clear_linux618: the descriptor cleared on signal delivery is
safe on 6.18; on 6.19 a thread sleeping in a syscall is never aborted and
the handler's consumption of the descriptor is lost, 22 steps)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines.explicit import SearchResult, Stats
from rseqcheck.checker.impact import Change, Side, compare
from rseqcheck.checker.proposal import Proposal, ProposalError, parse_rules
from rseqcheck.checker.verify import Outcome, check_spec

from tests.test_cli import BIG, HOLDS

ROOT = Path(__file__).resolve().parent.parent
CLEAR618 = "specs/seed000/rseq_clear_linux618.toml"
UNPROTECTED = "specs/seed000/unprotected.toml"


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """Two seed-000 specs in a folder of their own, run from tmp_path."""
    for f in (CLEAR618, UNPROTECTED):
        dst = tmp_path / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, dst)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# ------------------------------------------------------------ the proposal


def test_parse_rules_accepts_aliases_and_refuses_unknowns():
    assert parse_rules(("next_syscall.on_signal=clear",)) == {"next_syscall.on_signal": "clear"}
    with pytest.raises(ProposalError, match="expected NAME=CHOICE"):
        parse_rules(("nosuch=1",))
    with pytest.raises(ProposalError, match="choices of next_syscall.on_signal: keep, clear, save-restore"):
        parse_rules(("next_syscall.on_signal=maybe",))
    with pytest.raises(ProposalError, match="already set to clear"):
        parse_rules(("next_syscall.on_signal=clear", "next_syscall.on_signal=keep"))


def test_apply_replaces_the_preset_and_merges_rules():
    spec = check_spec(str(ROOT / CLEAR618)).spec
    assert spec is not None and spec.rules == {"next_syscall.on_signal": "clear"}
    p = Proposal("linux-6.19", {"rseq.debug": "on"})
    out = p.apply(spec)
    assert (out.preset, out.rules) == ("linux-6.19", {"next_syscall.on_signal": "clear", "rseq.debug": "on"})
    assert Proposal().apply(spec) is spec and not Proposal()


# ------------------------------------------------------------ verify


def test_verify_preset_flips_the_verdict_and_says_so(corpus):
    r = run("verify", CLEAR618, "--preset", "linux-6.19", "--out", "cx")
    assert r.exit_code == 1  # the spec expects holds (on its own 6.18)
    assert r.output.splitlines()[0] == "proposal: preset linux-6.19 (over each spec's own)"
    assert "violation of next-syscall-delivered at depth 22" in r.output
    assert "proposal (command line): --preset linux-6.19" in r.output  # the email header
    saved = json.loads(Path("cx/rseq_clear_linux618.json").read_text())
    assert saved["#meta"]["proposal"] == {"preset": "linux-6.19", "rules": {}}
    assert saved["#meta"]["preset"] == "linux-6.19"
    # replay rebuilds the proposal's model, not the spec's own (which holds)
    rp = run("replay", "cx/rseq_clear_linux618.json")
    assert rp.exit_code == 0, rp.output
    assert "replays: still reaches next-syscall-delivered (22 steps)" in rp.output


def test_verify_rule_over_the_spec_s_own_in_json(corpus):
    r = run("verify", CLEAR618, "--rule", "next_syscall.on_signal=keep", "--format", "json", "--out", "cx")
    doc = json.loads(r.output)
    assert doc["proposal"] == {"preset": None, "rules": {"next_syscall.on_signal": "keep"}}
    (res,) = doc["results"]
    assert res["rules"] == {"next_syscall.on_signal": "keep"} and res["verdict"] == "violation"
    assert res["proposal"]["rules"] == {"next_syscall.on_signal": "keep"}


def test_verify_bad_rule_is_a_usage_error(corpus):
    r = run("verify", CLEAR618, "--rule", "next_syscall.on_signal=maybe")
    assert r.exit_code == 2
    assert "choices of next_syscall.on_signal" in r.output


def test_a_trace_with_an_unknown_proposal_does_not_replay(corpus):
    run("verify", CLEAR618, "--preset", "linux-6.19", "--out", "cx")
    p = Path("cx/rseq_clear_linux618.json")
    doc = json.loads(p.read_text())
    doc["#meta"]["proposal"] = {"preset": "linux-9.9", "rules": {}}
    p.write_text(json.dumps(doc))
    r = run("replay", str(p))
    assert r.exit_code == 2 and "the trace's proposal: preset 'linux-9.9': unknown preset" in r.output


# ------------------------------------------------------------ impact


def test_impact_lists_the_flip_with_its_counterexample(corpus):
    r = run("impact", "--from", "linux-6.18", "--to", "linux-6.19", "specs", "--out", "cx")
    assert r.exit_code == 1, r.output
    lines = r.output.splitlines()
    i = lines.index("flipped (1):")
    assert lines[i + 1:i + 4] == [
        f"  {CLEAR618}",
        "    holds -> violation of next-syscall-delivered (22 steps)",
        "    counterexample: seed000/rseq_clear_linux618.json",  # in the layout of specs/
    ]
    assert lines[-1] == "2 specs: 1 flipped, 0 not comparable, 0 unknown, 1 unchanged"
    assert all(len(x) <= 72 for x in lines)
    assert run("replay", "cx/seed000/rseq_clear_linux618.json").exit_code == 0


def test_impact_json_and_an_unchanged_corpus(corpus):
    r = run("impact", "--to", "linux-6.18", "specs", "--format", "json")
    doc = json.loads(r.output)
    assert r.exit_code == 0 and doc["exit_status"] == 0
    assert doc["summary"] == {"flipped": 0, "not comparable": 0, "unknown": 0, "unchanged": 2, "error": 0}
    # both specs are 6.18 specs: the proposal is their own model, checked once
    assert all(s["same_model"] for s in doc["specs"])
    r = run("impact", "--rule", "next_syscall.on_signal=keep", "specs", "--format", "json", "--out", "cx")
    doc = json.loads(r.output)
    flipped = [s for s in doc["specs"] if s["kind"] == "flipped"]
    assert [s["spec"] for s in flipped] == [CLEAR618]
    assert flipped[0]["after"]["property"] == "next-syscall-atomic"
    assert flipped[0]["after"]["rules"] == {"next_syscall.on_signal": "keep"}


def test_impact_needs_a_proposal(corpus):
    r = run("impact", "specs")
    assert r.exit_code == 2 and "impact needs a proposal" in r.output


def test_a_spec_the_proposal_cannot_build_is_not_comparable(corpus):
    def check(path, proposal=None, **kw):
        if proposal and proposal.preset == "linux-4.18":
            return Outcome(path, error=f"{path}:1: refused on linux-4.18")
        return check_spec(path, proposal=proposal, **kw)

    c = compare(CLEAR618, Proposal(), Proposal("linux-4.18"), check=check)
    assert c.kind == "not comparable" and c.after.describe() == "cannot be built"
    both_bad = Change("x", Side(Outcome("x", error="e"), "b"), Side(Outcome("x", error="e"), "a"), False)
    assert both_bad.kind == "error"


def test_impact_counts_broken_specs_as_errors(corpus):
    """The issue: a spec that cannot be loaded (a TOML error, an unknown
    label) was counted as "unchanged" (both sides "error").  It is its own
    kind, counted apart, exit 2, its file:line message on stderr."""
    for bad in ("toml_syntax", "unknown_label"):
        shutil.copy(ROOT / f"tests/bad_specs/{bad}.toml", corpus / "specs" / f"{bad}.toml")
    r = run("impact", "--from", "linux-6.18", "--to", "linux-6.19", "specs", "--format", "json", "--out", "cx")
    doc = json.loads(r.stdout)
    assert r.exit_code == doc["exit_status"] == 2
    assert doc["summary"] == {"flipped": 1, "not comparable": 0, "unknown": 0, "unchanged": 1, "error": 2}
    kinds = {s["spec"]: s["kind"] for s in doc["specs"]}
    assert kinds["specs/toml_syntax.toml"] == kinds["specs/unknown_label.toml"] == "error"
    assert "specs/unknown_label.toml:8: unknown label 'retyr' in T0" in r.stderr
    text = run("impact", "--from", "linux-6.18", "--to", "linux-6.19", "specs", "--out", "cx").stdout.splitlines()
    i = text.index("error (2):")
    assert text[i + 1:i + 3] == ["  specs/toml_syntax.toml", "  specs/unknown_label.toml"]
    assert text[-1] == "4 specs: 1 flipped, 0 not comparable, 0 unknown, 1 unchanged, 2 errors"


def _ctrl_c(path, proposal, how: str):
    """Ctrl-C on this spec: as an engine reports it (`search`: an
    "interrupted" result) or outside any search (`between`)."""
    if how == "between":
        raise KeyboardInterrupt
    o = check_spec(path, proposal=proposal, depth=3)
    o.result = SearchResult("unknown", "explicit", Stats(), 3, reason="interrupted")
    return o


def _interrupting(monkeypatch, how: str) -> list[str]:
    """impact's checks, with Ctrl-C on the second spec: `search`, as the
    engines report it (an "interrupted" result), or `between` specs (a
    KeyboardInterrupt outside any search)."""
    import rseqcheck.checker.cli.proposals as cli

    seen: list[str] = []

    def check(path, proposal=None, **kw):
        if path != CLEAR618:
            seen.append(path)
            return _ctrl_c(path, proposal, how)
        return check_spec(path, proposal=proposal, **kw)

    monkeypatch.setattr(cli, "compare", lambda *a, **kw: compare(*a, check=check, **kw))
    return seen


@pytest.mark.parametrize("how", ["search", "between"])
def test_impact_stops_at_ctrl_c_with_exit_3_and_the_specs_not_compared(corpus, monkeypatch, how):
    """The issue: Ctrl-C in a search cancelled that spec only ("unknown
    (interrupted)", the proposal's side still checked) and the run went
    on: exit 1 for the flip found before it, "interrupted": false.  Now the
    run stops at once, exit 3 whatever flipped before, the spec under way
    and those after it not compared."""
    seen = _interrupting(monkeypatch, how)
    r = run("impact", "--from", "linux-6.18", "--to", "linux-6.19", "specs", "--format", "json", "--out", "cx")
    doc = json.loads(r.stdout)
    assert seen == [UNPROTECTED]  # its baseline only: the proposal's side is not searched
    assert r.exit_code == doc["exit_status"] == 3
    assert doc["interrupted"] is True and doc["not_compared"] == [UNPROTECTED]
    assert doc["summary"]["flipped"] == 1 and [s["spec"] for s in doc["specs"]] == [CLEAR618]
    seen.clear()
    r = run("impact", "--from", "linux-6.18", "--to", "linux-6.19", "specs", "--out", "cx")
    assert r.exit_code == 3
    assert r.stdout.splitlines()[-2:] == ["1 specs: 1 flipped, 0 not comparable, 0 unknown, 0 unchanged; 1 not",
                                          "  compared (interrupted)"]
    assert " ".join(r.stderr.split()) == f"interrupted (during {UNPROTECTED}): 1 of 2 specs not compared"


def test_impact_under_a_real_sigint_stops_at_once(tmp_path):
    """SIGINT as timeout(1) sends it (the process, then its group) while the
    first spec's baseline is searched: no search of its proposal side nor of
    the next spec, exit 3, both not compared."""
    (tmp_path / "a.toml").write_text(BIG)
    (tmp_path / "b.toml").write_text(HOLDS)
    p = subprocess.Popen([sys.executable, "-m", "rseqcheck.checker.cli", "impact", "--to", "linux-6.19", ".",
                          "--timeout", "30", "--format", "json", "--out", "cx"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if ours is ignored
    try:
        time.sleep(3)
        p.send_signal(signal.SIGINT)
        os.killpg(p.pid, signal.SIGINT)
        t = time.monotonic()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert time.monotonic() - t < 10, "the run went on after Ctrl-C"
    doc = json.loads(out)
    assert p.returncode == doc["exit_status"] == 3, err
    assert doc["interrupted"] is True and doc["not_compared"] == ["a.toml", "b.toml"] and doc["specs"] == []
    assert "Traceback" not in err


# The flips of the 6.19 rewrite over the bundled specs, each checked by hand
# against the spec's header and its 6.19 twin: deprecated flags no longer
# fatal (rseq.flags fatal -> ignored), the ids written only when they
# changed (tcmalloc's overlay, the value after unregistration), and
# sections left alone across syscalls (no user_irq: a thread that sleeps in
# a syscall is not aborted).
FLIPS_618_619 = {
    "flags": ["conformance/p02_cs_flags", "conformance/p02e_area_flags", "seed000/vyukov_clear_linux418",
              "seed000/vyukov_flags_linux618", "seed001/handler_syscall_nested_entrycheck_linux418",
              "seed001/plain_cs_flags_linux418", "seed001/plain_cs_flags_linux618", "seed001/plain_cs_linux619",
              # R1 never reads the flags: the 4.18 flag specs' kill (6.18: fatal) or lasso go
              "liveness/singlestep_no_restart_linux418", "seed001/no_restart_all_flags_linux418",
              "seed001/no_restart_signal_unchecked_linux418"],
    "ids": ["rseq_area/tcmalloc_overlay_fence_linux618", "rseq_area/tcmalloc_overlay_fence_linux619",
            "rseq_area/tcmalloc_overlay_fence_linux71", "rseq_area/unregister_cpu_id_start_linux618",
            "rseq_area/unregister_cpu_id_start_linux619", "rseq_area/unregister_cpu_id_start_linux71",
            # cpu_id_start -1 after unregistration: slot -1 faults instead of aborting forever
            "liveness/percpu_after_unregister_linux618", "liveness/percpu_after_unregister_linux619"],
    "syscalls": ["seed000/design_example", "seed000/rseq_clear_linux618", "seed000/rseq_clear_linux619",
                 "seed000/rseq_clear_linux71_legacy", "seed000/rseq_clear_linux71_v2",
                 "seed000/vyukov_keep_linux418", "seed001/membarrier_fence_syscall_in_cs_linux618",
                 "seed001/membarrier_fence_syscall_in_cs_linux619", "seed001/strace_syscall_middle_linux618",
                 "seed001/strace_syscall_middle_linux619", "seed001/syscall_middle_linux619",
                 "seed001/syscall_middle_linux71_legacy", "seed001/syscall_middle_nodebug",
                 # the section's bad signature is never read on sched_yield's way out: no SIGSEGV loop
                 "history/segv_recursion_linux418rc1", "liveness/segv_recursion_linux418rc1"],
}


@pytest.mark.slow
def test_impact_of_the_619_rewrite_over_the_bundled_specs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    r = run("impact", "--from", "linux-6.18", "--to", "linux-6.19", "specs", "--format", "json",
            "--out", str(tmp_path))
    doc = json.loads(r.output)
    flipped = sorted(s["spec"] for s in doc["specs"] if s["kind"] == "flipped")
    want = sorted(f"specs/{x}.toml" for group in FLIPS_618_619.values() for x in group)
    assert flipped == want
    assert r.exit_code == 1 and doc["summary"]["not comparable"] == 0 and doc["summary"]["unknown"] == 0


# ------------------------------------------------------------ synthesize

VYUKOV_KEEP = "specs/seed000/vyukov_keep_linux418.toml"


@pytest.fixture
def vyukov(tmp_path, monkeypatch):
    dst = tmp_path / VYUKOV_KEEP
    dst.parent.mkdir(parents=True)
    shutil.copy(ROOT / VYUKOV_KEEP, dst)
    monkeypatch.chdir(tmp_path)


def test_synthesize_finds_the_safe_seed000_settings(vyukov):
    # Seed 000's answer (rseq_clear_* and save_restore_* specs): the
    # descriptor must be consumed at syscall entry, and signal delivery must
    # clear it or save and restore it; keeping it lets a handler's syscall
    # consume it (10 steps), never consuming it lets the next one reuse it.
    r = run("synthesize", VYUKOV_KEEP, "--open", "next_syscall.on_signal", "--open", "next_syscall.consume",
            "--format", "json")
    doc = json.loads(r.output)
    assert r.exit_code == 0
    works = [c["choices"] for c in doc["combinations"] if c["works"]]
    assert works == [{"next_syscall.on_signal": "clear", "next_syscall.consume": "syscall-entry"},
                     {"next_syscall.on_signal": "save-restore", "next_syscall.consume": "syscall-entry"}]
    assert doc["minimal"] == works  # each changes on_signal alone from 4.18's keep
    fails = {c["failed"] for c in doc["combinations"] if not c["works"]}
    assert f"{VYUKOV_KEEP}: violation of next-syscall-atomic (10 steps)" in fails
    text = run("synthesize", VYUKOV_KEEP, "--open", "next_syscall.on_signal").output.splitlines()
    assert text[-3:] == ["minimal (fewest changes from the first spec's own choices):",
                         "  next_syscall.on_signal=clear", "  next_syscall.on_signal=save-restore"]
    assert all(len(x) <= 72 for x in text)


def test_synthesize_with_nothing_that_works_and_usage_errors(vyukov):
    r = run("synthesize", VYUKOV_KEEP, "--open", "next_syscall.consume")
    assert r.exit_code == 1 and "0 of 2 combinations work" in r.output
    assert run("synthesize", VYUKOV_KEEP, "--open", "nosuch").exit_code == 2
    r = run("synthesize", VYUKOV_KEEP, "--open", "next_syscall.consume", "--rule", "next_syscall.consume=never")
    assert r.exit_code == 2 and "also --open" in r.output


@pytest.mark.parametrize("how", ["search", "between"])
def test_synthesize_stops_at_ctrl_c_without_a_minimal_set(vyukov, monkeypatch, how):
    """The issue: Ctrl-C in a search made that combination "unknown" and the
    run went on (exit 0, a minimal set from the rest); between combinations
    it stopped, but with exit 0 and a "minimal" answer from the partial
    table.  Now: exit 3, the combinations not tried named, no minimal set."""
    import rseqcheck.checker.cli.proposals as cli
    import rseqcheck.checker.synthesize as synth

    calls = []

    def check(path, proposal=None, **kw):
        calls.append(proposal.rules)
        if len(calls) == 3:  # the third combination (save-restore); clear, the second, works
            return _ctrl_c(path, proposal, how)
        return check_spec(path, proposal=proposal, **kw)

    monkeypatch.setattr(cli, "run_synthesis", lambda *a, **kw: synth.synthesize(*a, check=check, **kw))
    r = run("synthesize", VYUKOV_KEEP, "--open", "next_syscall.on_signal", "--format", "json")
    doc = json.loads(r.stdout)
    assert len(calls) == 3, calls  # it stopped there
    assert r.exit_code == doc["exit_status"] == 3 and doc["interrupted"] is True
    assert [(c["choices"]["next_syscall.on_signal"], c["works"]) for c in doc["combinations"]] == [
        ("keep", False), ("clear", True)]
    assert doc["not_tried"] == [{"next_syscall.on_signal": "save-restore"}]
    assert doc["minimal"] is None
    calls.clear()
    text = run("synthesize", VYUKOV_KEEP, "--open", "next_syscall.on_signal")
    assert text.exit_code == 3
    lines = text.stdout.splitlines()
    assert lines[-4:] == ["interrupted: 2 of 3 combinations tried, 1 of them work; no minimal set",
                          "  from a partial table", "not tried (1):", "  next_syscall.on_signal=save-restore"]
    assert not any(x.startswith("minimal") for x in lines)


def test_synthesize_stops_on_a_broken_spec_before_any_search(vyukov, monkeypatch):
    """The issue: a broken spec in the folder failed every combination, all
    searched, and the run ended with exit 1.  Now every spec is loaded
    first: the file:line errors, exit 2, no search."""
    import rseqcheck.checker.synthesize as synth

    for bad in ("toml_syntax", "unknown_label"):
        shutil.copy(ROOT / f"tests/bad_specs/{bad}.toml", Path(VYUKOV_KEEP).parent / f"z_{bad}.toml")  # after it
    searched = []
    monkeypatch.setattr(synth, "meets", lambda o, goal: searched.append(o) or False)
    r = run("synthesize", str(Path(VYUKOV_KEEP).parent), "--open", "next_syscall.on_signal")
    assert r.exit_code == 2 and searched == []
    assert r.stderr.splitlines() == ["specs/seed000/z_toml_syntax.toml:3: TOML error: Illegal character '\\n'",
                                     "specs/seed000/z_unknown_label.toml:8: unknown label 'retyr' in T0"]


def test_every_rule_is_read_by_the_model_and_cites_its_source():
    """docs/proposals.md step 1-2: a rule the semantics never reads would be
    a knob that changes nothing; one without a source breaks the rule that
    every kernel rule cites the function it models."""
    import re

    from rseqcheck.model.rules import PRESETS, RULES

    text = "\n".join(p.read_text() for p in (ROOT / "model").glob("*.py") if p.name != "rules.py")
    for r in RULES.values():
        assert re.search(r'rules\[\s*"' + re.escape(r.name) + r'"\s*\]', text), f"{r.name} is never read"
        assert set(r.defaults) == set(PRESETS) and all(c in r.choices for c in r.defaults.values())
        if r.proposal:
            assert r.source.startswith("proposal"), r.name
        else:
            assert re.search(r"[a-z0-9_/]+\.[ch]\b", r.source), f"{r.name}: {r.source}"


@pytest.mark.parametrize("args", [["rules"], ["presets"], ["properties"], ["rules", "--diff", "linux-4.18", "linux-7.1"],
                                  ["outcomes", "specs/librseq/percpu_counter.toml"]])
def test_what_people_paste_fits_72_columns(args, monkeypatch):
    monkeypatch.chdir(ROOT)
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert max(len(x) for x in r.output.splitlines()) <= 72


def test_rules_lists_each_alias_under_its_rule():
    out = run("rules").output.splitlines()
    i = out.index("next_syscall.consume  (proposal)")
    assert out[i + 1] == "  also called: next_syscall.clear"
    assert run("verify", "--rule", "next_syscall.clear=never", "--help").exit_code == 0


def test_presets_narrow_and_wide():
    narrow = run("presets").output.splitlines()  # not a terminal: narrow
    i = narrow.index("rseq.flags")
    assert narrow[i + 1:i + 4] == ["  honoured  4.18 5.8 5.10 5.11 5.16", "  fatal     6.0 6.18", "  ignored   6.19 7.1"]
    wide = run("presets", "--wide").output.splitlines()
    assert wide[0].split() == ["rule", "4.18", "5.8", "5.10", "5.11", "5.16", "6.0", "6.18", "6.19", "7.1"]
    assert wide[3].split()[0] == "rseq.flags" and wide[3].split()[1:] == ["honoured"] * 5 + ["fatal"] * 2 + ["ignored"] * 2


def test_synthesize_notes_a_spec_that_sets_an_open_rule_itself(monkeypatch) -> None:
    """--open overrides the spec's own [rules] choice in every combination:
    with --goal expect such a spec can fail in all of them (a user trap)."""
    monkeypatch.chdir(ROOT)
    r = run("synthesize", "specs/seed000/rseq_clear_linux618.toml", "--open", "next_syscall.on_signal",
            "--format", "json")
    doc = json.loads(r.output)
    assert doc["notes"] == ["note: specs/seed000/rseq_clear_linux618.toml sets next_syscall.on_signal = clear "
                            "itself; --open next_syscall.on_signal overrides it in every combination"]


def test_a_minimal_set_says_which_unknown_combination_could_undercut_it() -> None:
    from rseqcheck.checker.synthesize import Trial, minimal, undercut

    def trial(changes: dict[str, str], unknown: bool = False) -> Trial:
        return Trial(dict(changes), unknown=unknown, changes=frozenset(changes.items()))

    none, a, ab = trial({}, unknown=True), trial({"a": "x"}), trial({"a": "x", "b": "y"})
    other = trial({"b": "y"}, unknown=True)
    best = minimal([none, a, ab, other])
    assert best == [a]
    assert undercut(best, [none, a, ab, other]) == [[none]]

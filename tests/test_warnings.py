"""What `verify` warns about beside a verdict: vacuous properties (and the
ptrace single-step case that looked vacuous), setups that do nothing,
code never reached, rule overrides that change nothing, a bound hit, and
`--strict`; and the [outcomes] condition's own expectation."""

from __future__ import annotations

from pathlib import Path

from rseqcheck.checker.verify import check_spec

STEP = """\
[spec]
title  = "ptrace-stepped thread"
preset = "linux-6.18"
expect = "holds"
[thread.T0]
ptrace = "singlestep"
code = \"\"\"
{code}
\"\"\"
[check]
properties = [{props}]
depth = 40
"""


def spec(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_stepped_assert_is_not_vacuous(tmp_path: Path) -> None:
    # Under ptrace = "singlestep" every non-syscall instruction runs through
    # its #DB case (exc_debug_user); that case now carries the instruction's
    # own trigger tags, so the executed assert is not "vacuous".
    out = check_spec(spec(tmp_path, STEP.format(code="store x, 1\nassert x == 1\nexit",
                                                props='"no-unexpected-kill"')))
    assert (out.verdict, out.vacuous) == ("holds", [])
    # ... and it is still checked: a false one is a violation
    out = check_spec(spec(tmp_path, STEP.format(code="store x, 1\nassert x == 0\nexit",
                                                props='"no-unexpected-kill"')))
    assert (out.verdict, out.result.prop) == ("violation", "assert")


def test_stepped_syscalls_only_is_not_vacuous(tmp_path: Path) -> None:
    # A program of syscalls only: each is reported at syscall exit
    # (report_single_step), which is what single-step-precise checks.
    out = check_spec(spec(tmp_path, STEP.format(code="syscall getpid\nexit", props='"single-step-precise"')))
    assert (out.verdict, out.vacuous) == ("holds", [])


def test_stepped_section_commit_is_vacuous_for_real(tmp_path: Path) -> None:
    # specs/seed002/ptrace_step_through_cs.toml: every step aborts the
    # section, so nothing commits and the assert after it never runs.
    root = Path(__file__).resolve().parent.parent
    out = check_spec(str(root / "specs/seed002/ptrace_step_through_cs.toml"))
    assert (out.verdict, out.vacuous) == ("holds", ["rseq-cs-atomic", "assert"])


# ------------------------------------------------------------- CLI, --strict

def run(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner
    from rseqcheck.checker.cli.app import main

    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


NO_SIGNALS = """\
[spec]
title  = "a handler for a signal never sent"
preset = "linux-6.18"
expect = "holds"
[rules]
"sud.bad_selector" = "kill-process"
[environment]
signals = ["SIGUSR1"]
[thread.T0]
code = \"\"\"
        syscall getpid
        beq     x, 1, never
        exit
never:  exit
\"\"\"
[handler.SIGUSR1]
code = \"\"\"
        sigreturn
\"\"\"
[check]
properties = ["no-unexpected-kill"]
depth = 40
"""


def test_vacuous_setup_warnings_and_strict(tmp_path: Path) -> None:
    # signals listed, max_signals 0 (default): nothing is ever sent, the
    # handler never runs, `never` is never reached (x stays 0), and the
    # SUD rule is moot without SUD: four warnings, exit 0, --strict 5.
    p = spec(tmp_path, NO_SIGNALS)
    out = check_spec(p)
    assert [(w.kind, w.line) for w in out.warnings] == [
        ("no-signals", 8), ("unreached-label", 14), ("never-runs", 16), ("rule-unused", 6)]
    assert "max_signals = 0" in out.warnings[0].message
    assert out.warnings[1].message == "T0: label never reached: never (line 14)"
    code, text, _ = run("verify", p, "--out", str(tmp_path / "cx"))
    assert code == 0 and "warning[never-runs]: [handler.SIGUSR1] (line 16) never runs" in text
    assert text.splitlines()[-1] == "1 of 1 specs as expected; 1 with warnings"
    assert max(len(x) for x in text.splitlines() if x.startswith("     ")) <= 72
    code, _, _ = run("verify", p, "--strict", "--junit", str(tmp_path / "j.xml"))
    assert code == 5
    import xml.etree.ElementTree as ET

    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"
    fail = suite.find("testcase[@name='(warnings)']/failure")
    assert fail.get("type") == "warnings" and fail.get("message") == "4 warnings (--strict)"
    assert len([p for p in suite.find("properties") if p.get("name") == "warning"]) == 4
    # with a signal actually sent, the handler runs and the warnings go
    fixed = NO_SIGNALS.replace('signals = ["SIGUSR1"]', 'signals = ["SIGUSR1"]\nmax_signals = 1')
    fixed = fixed.replace('"sud.bad_selector" = "kill-process"\n', "").replace("beq     x, 1, never\n", "")
    fixed = fixed.replace("never:  exit\n", "")
    out = check_spec(spec(tmp_path, fixed, "f.toml"))
    assert out.warnings == []
    assert run("verify", str(tmp_path / "f.toml"), "--strict")[0] == 0


def test_a_violation_wins_over_warnings(tmp_path: Path) -> None:
    p = spec(tmp_path, NO_SIGNALS.replace('expect = "holds"', 'expect = "violation"'))
    assert run("verify", p, "--strict")[0] == 1


def test_bound_hit_is_a_warning_and_not_complete(tmp_path: Path) -> None:
    # 4 states deep at least: depth 2 cuts the search
    import json

    p = spec(tmp_path, NO_SIGNALS.replace("depth = 40", "depth = 2"))
    out = check_spec(p)
    assert out.describe() == "holds up to depth 2"
    assert "bound" in [w.kind for w in out.warnings]
    code, text, _ = run("verify", p, "--format", "json", "--strict")
    doc = json.loads(text)
    assert code == doc["exit_status"] == 5
    rec = doc["results"][0]
    assert rec["complete"] is False and doc["summary"]["incomplete"] == 1
    assert "the search stopped at depth 2" in [w for w in rec["warnings"] if w["kind"] == "bound"][0]["message"]
    # complete search: no bound warning, complete
    rec = json.loads(run("verify", spec(tmp_path, NO_SIGNALS, "c.toml"), "--format", "json")[1])["results"][0]
    assert rec["complete"] is True and "bound" not in [w["kind"] for w in rec["warnings"]]


def test_rule_whose_steps_never_fire(tmp_path: Path) -> None:
    # next_syscall.on_signal = clear adds the frame-setup steps that clear
    # the descriptor; they fire in rseq_clear_linux618 (a signal is
    # delivered with the descriptor armed), and with no firing at all the
    # check names the rule.
    from rseqcheck.checker.caveats import rule_caveats

    root = Path(__file__).resolve().parent.parent
    out = check_spec(str(root / "specs/seed000/rseq_clear_linux618.toml"))
    assert out.verdict == "holds" and rule_caveats(out.spec, out.system, out.result.fired) == []
    got = rule_caveats(out.spec, out.system, set())
    assert [w.kind for w in got] == ["rule-unused"]
    assert got[0].message.startswith("rule next_syscall.on_signal = clear (line ")
    assert "none of the steps it adds is ever taken" in got[0].message


# ------------------------------------------------- [outcomes] expect = fails

def test_outcomes_expected_to_fail(tmp_path: Path) -> None:
    # specs/seed004/unmapped_area_ends_*: the same condition, "the process
    # can end by SIGSEGV", holds before 6.15 and fails after (expect = "fails")
    import json

    root = Path(__file__).resolve().parent.parent
    segv = str(root / "specs/seed004/unmapped_area_ends_segv_linux60.toml")
    exit_ = str(root / "specs/seed004/unmapped_area_ends_exit_linux618.toml")
    a, b = check_spec(segv), check_spec(exit_)
    assert (a.verdict, a.outcomes_check[0], a.ok) == ("violation", True, True)
    assert (b.verdict, b.outcomes_check[0], b.outcomes_expected, b.ok) == ("holds", False, "fails", True)
    code, text, _ = run("verify", segv, exit_, "--out", str(tmp_path / "cx"), "--format", "json")
    assert code == 0
    rec = json.loads(text)["results"][1]
    assert rec["property_verdicts"]["[outcomes]"] == "fails" and rec["as_expected"] is True
    assert (rec["outcomes_check"]["holds"], rec["outcomes_check"]["expected"]) == (False, "fails")
    assert run("outcomes", exit_)[0] == 0
    # the expectation is checked: swap it and both fail
    for path, was, now in ((exit_, 'expect = "fails"', 'expect = "holds"'),
                           (segv, 'exists = "end == SIGSEGV && after == 0"',
                            'exists = "end == SIGSEGV && after == 0"\nexpect = "fails"')):
        flipped = spec(tmp_path, Path(path).read_text().replace(was, now), "flip.toml")
        assert not check_spec(flipped).ok
        code, text, err = run("verify", flipped, "--out", str(tmp_path / "cx"))
        assert code == 1 and "[outcomes]" in text
        assert run("outcomes", flipped)[0] == 1


def test_outcomes_checked_under_every_engine(tmp_path: Path) -> None:
    # bmc and induction answer [outcomes] as an invariant on final states:
    # exists C is refuted (no final state satisfies it) and proved by a run
    # to a witness; forall by a proof or a run to an outcome breaking it
    root = Path(__file__).resolve().parent.parent
    ends = "specs/seed004/unmapped_area_ends_{}.toml"
    for engine in ("bmc", "induction"):
        out = check_spec(str(root / ends.format("exit_linux618")), engine=engine)
        assert out.outcomes_check[0] is False and out.ok
        assert "no final state satisfies it" in out.outcomes_check[1] and "explicit" not in out.outcomes_check[1]
        out = check_spec(str(root / ends.format("segv_linux60")), engine=engine)
        assert out.outcomes_check == (True, "[outcomes] exists (end == SIGSEGV && after == 0) holds: "
                                      f"{engine} reaches the outcome [killed by SIGSEGV; after=0] in 4 steps")
    p = root / "specs/seed001/strace_syscall_middle_linux618.toml"  # forall, holds
    out = check_spec(str(p), engine="induction")
    assert out.outcomes_check[0] is True and "no final state breaks it (induction: proved" in out.outcomes_check[1]
    bad = spec(tmp_path, p.read_text().replace('forall = "aborted == 1 && y == 0"', 'forall = "y == 1"'))
    for engine in ("bmc", "induction"):
        out = check_spec(bad, engine=engine)
        assert out.outcomes_check[0] is False and not out.ok
        assert out.outcomes_check[1].startswith(f"[outcomes] forall (y == 1) fails: {engine} reaches the outcome "
                                                "[exit; aborted=1 x=")
    # arithmetic on `end` is not translated: the explicit enumeration answers
    odd = spec(tmp_path, p.read_text().replace('forall = "aborted == 1 && y == 0"', 'forall = "end + 0 == exit"'),
               "odd.toml")
    out = check_spec(odd, engine="bmc")
    assert out.outcomes_check[0] is True
    assert out.outcomes_check[1].endswith("(by the full explicit enumeration: bmc cannot translate this use of end)")


def test_outcomes_expect_bad_value(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "specs/seed004/unmapped_area_ends_exit_linux618.toml").read_text()
    p = spec(tmp_path, text.replace('expect = "fails"', 'expect = "No"'))
    code, _, err = run("verify", p)
    assert code == 2 and err.startswith(f'{p}:27: [outcomes] expect must be "holds" or "fails"'), err


def test_engine_all_cross_checks_outcomes(monkeypatch) -> None:
    from rseqcheck.checker import outcomes_smt
    from rseqcheck.checker.cross import check_all

    root = Path(__file__).resolve().parent.parent
    f = str(root / "specs/seed004/unmapped_area_ends_exit_linux618.toml")
    out = check_all(f, por=True)
    assert out.disagreement is None and out.ok
    real = outcomes_smt.smt_answer

    def flipped(*a, **kw):  # a bmc that answers the other way
        held, msg, r = real(*a, **kw)
        return (not held, msg, r)

    monkeypatch.setattr(outcomes_smt, "smt_answer", flipped)
    out = check_all(f, por=True)
    assert out.disagreement.startswith("[outcomes]: explicit: fails; [outcomes] exists")


def test_outcomes_cut_by_a_limit_exits_3(tmp_path: Path, monkeypatch) -> None:
    # an [outcomes] enumeration stopped by its state limit answers nothing:
    # before, verify passed such a spec (exit 0); now it is a limit (3)
    import rseqcheck.checker.outcomes as oc

    real = oc.verify_outcomes
    monkeypatch.setattr(oc, "verify_outcomes", lambda spec, system=None, max_states=0, timeout=None:
                        real(spec, system, max_states=5, timeout=timeout))
    root = Path(__file__).resolve().parent.parent
    p = str(root / "specs/seed001/strace_syscall_middle_linux618.toml")
    out = check_spec(p)
    assert out.outcomes_check[0] is None and "unknown, more than 5 states" in out.outcomes_check[1]
    code, text, _ = run("verify", p)
    assert code == 3 and text.startswith("??   ")

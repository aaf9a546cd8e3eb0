"""What `verify` warns about beside a verdict: vacuous properties (and the
ptrace single-step case that looked vacuous), setups that do nothing,
code never reached, rule overrides that change nothing, a bound hit, and
`--strict`; and the [outcomes] condition's own expectation."""

from __future__ import annotations

from pathlib import Path

from checker.verify import check_spec

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

"""`verify --engine bmc|induction|all` from the command line, and how
`all` compares the engines (checker/cross.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker import cross
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines import symbolic
from rseqcheck.checker.engines.explicit import SearchResult, Stats

ROOT = Path(__file__).resolve().parent.parent
UNPROTECTED = str(ROOT / "specs/seed000/unprotected.toml")
HOLDS = str(ROOT / "specs/seed003/handler_allows_before_return.toml")
LOOPS = str(ROOT / "specs/conformance/p03d_stop_cont_aborted.toml")  # holds; its states loop


def run(*args: str):
    return CliRunner().invoke(main, ["verify", *args])


def test_bmc_engine_gets_the_expected_verdicts(tmp_path):
    r = run("--engine", "bmc", "--out", str(tmp_path), UNPROTECTED, HOLDS)
    assert r.exit_code == 0, r.output
    assert "violation of next-syscall-atomic at depth 8" in r.output


def test_induction_proves_a_finite_spec_unbounded(tmp_path):
    r = run("--engine", "induction", "--out", str(tmp_path), HOLDS)
    assert r.exit_code == 0, r.output
    assert "holds (proved by k-induction, k=1, with " in r.output
    assert " lemmas suggested by the 19 reachable states)" in r.output


def test_induction_timeout_names_the_users_limit(tmp_path):
    """Half of --timeout goes to the lemmas; the plain induction that runs
    out of the rest said "timeout after 1.68311 s" for --timeout 3."""
    r = run("--engine", "induction", "--timeout", "3", "--out", str(tmp_path),
            str(ROOT / "benchmarks/specs/ladder_t2_k2.toml"))
    assert r.exit_code == 3, r.output
    assert "unknown: timeout after 3 s (explored to depth " in r.output


def test_all_engines_agree(tmp_path):
    r = run("--engine", "all", "--out", str(tmp_path), UNPROTECTED, HOLDS)
    assert r.exit_code == 0, r.output
    v = "violation of next-syscall-atomic in 8 steps"
    assert f"engines: explicit: {v}; bmc: {v}; induction: {v}" in r.output
    assert "bmc: holds (no execution is 19 steps long)" in r.output


def test_all_bmc_stops_where_explicit_ran_out_of_states(tmp_path):
    r = run("--engine", "all", "--out", str(tmp_path), LOOPS)
    assert r.exit_code == 0, r.output
    assert "explicit: holds (all 1,001 reachable states, none deeper than 21 steps)" in r.output
    assert ("bmc: holds up to depth 22 (covers every reachable state: explicit's full search found "
            "none deeper than 21 steps)") in r.output
    assert "induction: holds (proved by k-induction, k=1, with " in r.output


def test_all_engines_disagreement_exits_3(tmp_path, monkeypatch):
    real = symbolic.bmc

    def wrong(system, bound, **kw):
        res = real(system, bound, **kw)
        res.trace = res.trace[:-1] + res.trace[-1:] * 2  # one step longer than the truth
        return res

    monkeypatch.setattr(symbolic, "bmc", wrong)
    r = run("--engine", "all", "--out", str(tmp_path), UNPROTECTED)
    assert r.exit_code == 3, r.output
    assert "ENGINES DISAGREE: explicit: violation of next-syscall-atomic in 8 steps; bmc: violation of next-syscall-atomic in 9 steps" in r.output
    assert "bmc's counterexample does not replay in the explicit engine" in r.output


def fake(verdict: str, bound: int, exhausted: bool = False, reason: str = ""):
    def kinduction(system, max_k, **kw):
        return SearchResult(verdict, "induction", Stats(), bound, exhausted=exhausted, reason=reason)

    return kinduction


def test_all_induction_within_budget_is_no_disagreement(tmp_path, monkeypatch):
    # "holds up to depth 5" next to a violation in 8 steps: no contradiction.
    monkeypatch.setattr(symbolic, "kinduction", fake("holds", 5, reason="induction could not close at k=5"))
    r = run("--engine", "all", "--out", str(tmp_path), UNPROTECTED)
    assert r.exit_code == 0, r.output
    assert "induction: holds up to depth 5 (induction could not close at k=5)" in r.output


@pytest.mark.parametrize("bound,exhausted", [(8, False), (3, True)])
def test_all_induction_holding_past_a_violation_exits_3(tmp_path, monkeypatch, bound, exhausted):
    monkeypatch.setattr(symbolic, "kinduction", fake("holds", bound, exhausted))
    r = run("--engine", "all", "--out", str(tmp_path), UNPROTECTED)
    assert r.exit_code == 3, r.output
    assert "ENGINES DISAGREE" in r.output


def res(verdict: str, bound: int = 10, steps: int = 0, exhausted: bool = False) -> SearchResult:
    return SearchResult(verdict, "x", Stats(), bound, exhausted=exhausted, trace=[(-1, ())] * (steps + 1))


def test_contradiction():
    v8, v9 = res("violation", steps=8), res("violation", steps=9)
    assert not cross.contradiction({"a": v8, "b": res("violation", steps=8)})
    assert cross.contradiction({"a": v8, "b": v9})
    assert cross.contradiction({"a": v8, "b": res("holds", bound=8)})
    assert not cross.contradiction({"a": v8, "b": res("holds", bound=7)})
    assert cross.contradiction({"a": v8, "b": res("holds", bound=2, exhausted=True)})
    assert not cross.contradiction({"a": res("holds", bound=3), "b": res("holds", bound=9, exhausted=True)})


def test_all_engines_json_carries_each_engine(tmp_path):
    r = run("--engine", "all", "--format", "json", "--out", str(tmp_path), UNPROTECTED)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output)["results"][0]
    assert set(rec["engines"]) == {"explicit", "bmc", "induction"}
    assert all(v.startswith("violation") for v in rec["engines"].values())
    assert rec["disagreement"] is None

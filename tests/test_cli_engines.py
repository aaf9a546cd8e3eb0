"""`verify --engine bmc|induction|all` from the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from checker import symbolic
from checker.cli import main

ROOT = Path(__file__).resolve().parent.parent
UNPROTECTED = str(ROOT / "specs/seed000/unprotected.toml")
HOLDS = str(ROOT / "specs/seed003/handler_allows_before_return.toml")


def run(*args: str):
    return CliRunner().invoke(main, ["verify", *args])


def test_bmc_engine_gets_the_expected_verdicts(tmp_path):
    r = run("--engine", "bmc", "--out", str(tmp_path), UNPROTECTED, HOLDS)
    assert r.exit_code == 0, r.output
    assert "violation of next-syscall-atomic at depth 8" in r.output


def test_induction_proves_a_finite_spec_unbounded(tmp_path):
    r = run("--engine", "induction", "--out", str(tmp_path), HOLDS)
    assert r.exit_code == 0, r.output
    assert "holds (proved by k-induction, k=19" in r.output


def test_all_engines_agree(tmp_path):
    r = run("--engine", "all", "--out", str(tmp_path), UNPROTECTED, HOLDS)
    assert r.exit_code == 0, r.output
    assert r.output.count("engines: explicit: violation; bmc: violation; induction: violation") == 1


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

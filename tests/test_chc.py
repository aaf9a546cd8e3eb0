"""Spacer over the IR (checker/engines/chc.py): proofs and violations agree with
the explicit engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from rseqcheck.checker.engines.chc import spacer
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import Action, Add, Const, Eq, IntRange, Ite, Ne, Property, System, Var, assign
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent


def cycle(bad: int, wrap: bool = True) -> System:
    # x counts 0..3 and wraps around in a range of 0..7: 4..7 are unreachable.
    x = Var("x", IntRange(0, 7))
    nxt = Ite(Eq(x, 3), 0, Add(x, 1)) if wrap else Add(x, 1)
    return System([x], {x: 0}, [Action("x++", Const(1), assign((x, nxt)), "P", "P")],
                  [Property("p", Ne(x, bad), "")])


@pytest.mark.parametrize("split", [False, True])
def test_spacer_proves_and_refutes(split):
    assert spacer(cycle(5), 30, split=split).verdict == "holds"
    assert spacer(cycle(2), 30, split=split).verdict == "violation"
    # Without the wrap-around x reaches 8, outside its range: a model error,
    # which explicit raises and Spacer must derive as bad.
    assert spacer(cycle(99, wrap=False), 30, split=split).verdict == "violation"


def test_spacer_invariant_is_reported():
    r = spacer(cycle(5), 30)
    assert r.verdict == "holds" and r.reason == "proved by Spacer (PDR)"
    assert "x" in r.invariant


@pytest.mark.parametrize("name", ["conformance/p04b_sleep_middle", "seed000/unprotected"])
def test_spacer_on_specs_agrees_with_explicit(name):
    spec = load_spec(ROOT / f"specs/{name}.toml")
    system = build_system(spec)
    r = spacer(system, 120)
    assert r.verdict == bfs(system, spec.depth, por=False).verdict == spec.expect

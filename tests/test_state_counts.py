"""Exact state counts as regression oracles (stateright style): a change to
the semantics shows up here as a changed number.  Full search (no
reduction) counts depend on the model only; the reduced count pins the
partial-order reduction.  When a model change is intended, update the
numbers in the same commit and say why."""

from __future__ import annotations

from pathlib import Path

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent

# spec, verdict, states, transitions (full search), shortest trace, states with POR
PINNED = [
    ("specs/seed000/design_example.toml", "holds", 1124, 2001, None, 1124),
    ("specs/seed000/unprotected.toml", "violation", 39, 47, 8, 39),
    ("specs/seed000/rseq_clear_linux618.toml", "holds", 10828, 23167, None, 10828),
    ("specs/seed001/plain_cs_linux618.toml", "holds", 21691, 53172, None, 21691),
    ("specs/seed001/two_threads_percpu_cs.toml", "holds", 275625, 894600, None, 1049),
    ("specs/seed002/user_tf_over_syscall.toml", "violation", 17, 16, 16, 17),
    ("specs/seed003/handler_returns_blocked.toml", "violation", 13, 12, 12, 13),
    ("specs/seed004/two_libs_refcount_2018.toml", "holds", 949, 1334, None, 949),
    ("specs/seed000/rseq_clear_linux619.toml", "violation", 101, 117, 22, 101),
]


@pytest.mark.parametrize("path, verdict, states, transitions, steps, por_states", PINNED)
def test_pinned_state_counts(path, verdict, states, transitions, steps, por_states):
    spec = load_spec(ROOT / path)
    system = build_system(spec)
    full = bfs(system, spec.depth, por=False)
    assert (full.verdict, full.stats.states, full.stats.transitions) == (verdict, states, transitions)
    assert (len(full.trace) - 1 if full.trace else None) == steps
    assert bfs(system, spec.depth, por=True).stats.states == por_states

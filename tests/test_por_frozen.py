"""The state-dependent independence of the partial-order reduction
(bfs(por_frozen=True), checker/engines/explicit.py:_Frozen): against the full
search on the bundled specs where threads share data, on the ladders, on
random systems, and through the CLI.  It is off by default, so the counts
of tests/test_state_counts.py and tests/test_por.py stay as they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines.explicit import bfs, replay
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent

# spec, verdict, violated property, states: full search, default POR, por_frozen;
# shortest counterexample length (steps) of the full search
PINNED = [
    ("specs/conformance/p04d_yield_two_threads.toml", "holds", None, 11388, 300, 300, None),
    ("specs/conformance/p10_membarrier.toml", "holds", None, 9389, 9389, 6179, None),
    ("specs/rseq_area/fork_child_cpu_id_linux58.toml", "holds", None, 43, 43, 22, None),
    ("specs/rseq_area/tcmalloc_overlay_fence_linux618.toml", "holds", None, 15751, 15751, 12473, None),
    ("specs/rseq_area/tcmalloc_overlay_fence_linux619.toml", "violation", "assert", 5354, 5354, 4622, 44),
    ("specs/librseq/percpu_counter_cpu_outside.toml", "violation", "assert", 79028, 79028, 65852, 24),
    ("specs/seed001/membarrier_fence_syscall_in_cs_linux618.toml", "holds", None, 260, 260, 108, None),
    ("specs/seed001/membarrier_fence_syscall_in_cs_linux619.toml", "violation", "rseq-cs-atomic", 121, 121, 84, 15),
    ("specs/seed001/membarrier_fence_user_linux619.toml", "holds", None, 857, 857, 377, None),
    ("specs/seed001/two_threads_percpu_cs.toml", "holds", None, 275625, 1049, 1049, None),
    ("specs/seed003/fork_child_not_dispatched.toml", "violation", "assert", 38, 38, 20, 15),
    ("specs/seed004/fork_child_reregisters_ebusy.toml", "violation", "registration-succeeds", 22, 22, 16, 11),
    ("specs/seed004/pthread_child_glibc_registered.toml", "holds", None, 48, 48, 16, None),
    ("specs/seed004/raw_clone_thread_unregistered.toml", "violation", "rseq-registered-while-used", 14, 14, 12, 7),
    # the ladders: the next-syscall threads share nothing (the default POR
    # already runs each alone); on one CPU the per-CPU threads never run at
    # the same time, so no state is saved there
    ("benchmarks/specs/ladder_t2_k2.toml", "holds", None, 5089536, 4511, 4511, None),
    ("benchmarks/specs/percpu_t2_k1_c1.toml", "holds", None, 113737, 113737, 113737, None),
    # one shared `add` per thread turns the static reduction off whole; the
    # frozen check keeps it where the other thread cannot add (issue #15)
    ("benchmarks/specs/shared_add_t2_k1.toml", "holds", None, 304704, 304704, 9277, None),
]


@pytest.mark.parametrize("path,verdict,prop,full_states,por_states,frozen_states,steps", PINNED)
def test_frozen_reduction_agrees_with_full_search(path, verdict, prop, full_states, por_states, frozen_states,
                                                  steps) -> None:
    spec = load_spec(ROOT / path)
    system = build_system(spec)
    red = bfs(system, spec.depth, por=True, por_frozen=True)
    assert red.stats.states == frozen_states
    assert bfs(system, spec.depth, por=True).stats.states == por_states
    if full_states > 1_000_000:  # the ladder rung: pinned in benchmarks/README.md
        assert red.verdict == verdict
        return
    full = bfs(system, spec.depth, por=False)
    assert full.stats.states == full_states
    assert (red.verdict, red.prop) == (full.verdict, full.prop) == (verdict, prop)
    if verdict == "holds":
        assert red.fired == full.fired  # the same actions can fire (vacuity is judged from them)
        assert red.exhausted
    else:
        # still the shortest, and a real run of the system: replayed from the
        # initial state, its last state violates the same property
        assert len(full.trace) - 1 == steps
        assert len(red.trace) - 1 == steps
        run = replay(system, [a for a, _ in red.trace[1:]])
        assert run is not None
        bad = next(i for i, p in enumerate(system.properties) if p.name == red.prop)
        from rseqcheck.checker.engines.compile import compile_system

        assert compile_system(system).check(run[-1][1]) == bad


def test_frozen_fuzz_random_systems_agree_with_full_search() -> None:
    # random systems with an ownership variable (taken when 0, handed over
    # with ite(own == me, ...), tested with own == me) and guards on other
    # processes' pcs: verdicts agree, holding systems fire the same actions
    # in no more states, the ignoring fix picks the bottom components
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/por_fuzz.py"), "0", "400", "--frozen"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("0 disagreement(s)")


def test_frozen_fuzz_finds_a_broken_frozen_check(monkeypatch) -> None:
    # the fuzz has teeth: with the per-state check made to always succeed
    # the reduction drops violations
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import por_fuzz
    import rseqcheck.checker.engines.explicit as E

    monkeypatch.setattr(E._Search, "still", lambda self, pid, s: True)
    assert por_fuzz.main(["0", "400", "--frozen"]) == 1


def test_cli_verify_por_frozen() -> None:
    r = CliRunner().invoke(main, ["verify", "--por-frozen", str(ROOT / "specs/seed004/pthread_child_glibc_registered.toml")])
    assert r.exit_code == 0, r.output
    assert "16" in r.output  # the reduced state count
    r = CliRunner().invoke(main, ["verify", "--por-frozen", "--no-por", str(ROOT / "specs/conformance/p10_membarrier.toml")])
    assert r.exit_code == 2
    assert "--por-frozen needs" in r.output

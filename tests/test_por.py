"""Partial-order reduction must not change a verdict: every bundled spec is
checked with and without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.checker.verify import check_spec
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").rglob("*.toml"))


@pytest.mark.parametrize("path", SPECS)
def test_por_and_full_search_agree(path):
    spec = load_spec(ROOT / path)
    system = build_system(spec)
    full = bfs(system, spec.depth, por=False)
    red = bfs(system, spec.depth, por=True)
    assert (red.verdict, red.prop) == (full.verdict, full.prop)
    assert red.stats.states <= full.stats.states or full.verdict == "violation"
    if full.verdict == "violation":
        # the full search's trace is a shortest one; the reduced one is no shorter
        assert full.shortest
        assert len(red.trace) >= len(full.trace)


@pytest.mark.parametrize("path", SPECS)
def test_bundled_spec_gets_its_expected_verdict(path):
    out = check_spec(str(ROOT / path))
    assert out.error is None
    assert out.ok, out.describe()


def test_vacuous_property_is_reported(tmp_path):
    p = tmp_path / "v.toml"
    p.write_text(
        '[spec]\ntitle = "v"\npreset = "linux-6.18"\n'
        '[thread.T0]\ncode = """\nsyscall getpid\nexit\n"""\n'
        '[check]\nproperties = ["next-syscall-atomic", "no-unexpected-kill"]\n'
    )
    out = check_spec(str(p))
    assert out.verdict == "holds"
    assert out.vacuous == ["next-syscall-atomic"]


def test_por_fuzz_random_systems_agree_with_full_search():
    # benchmarks/por_fuzz.py: random multi-process systems; verdicts with and
    # without the reduction agree, and the ignoring fix matches networkx.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/por_fuzz.py"), "0", "300"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("0 disagreement(s); systems: 300")

"""The Python API (`import rseqcheck`, docs/api.md): load from a path or a
string, verify with options, verdicts, statistics, the trace graph and its
renderings, replay; and the installed layout (one import name)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import rseqcheck

ROOT = Path(__file__).resolve().parent.parent
KEEP = ROOT / "specs/seed000/rseq_keep_linux618.toml"
CLEAR = ROOT / "specs/seed000/rseq_clear_linux618.toml"


def test_verify_a_path_gives_the_cli_verdict_and_counts() -> None:
    r = rseqcheck.verify(KEEP)
    assert (r.verdict, r.ok, r.violated) == ("violation", True, "next-syscall-atomic")
    assert (r.stats.states, r.stats.transitions, r.stats.depth) == (191, 259, 10)
    assert isinstance(r.graph, nx.DiGraph) and r.graph.number_of_nodes() == 11  # initial state + 10 steps
    assert r.record()["states"] == 191


def test_verify_holds_has_no_trace() -> None:
    r = rseqcheck.verify(CLEAR)
    assert (r.verdict, r.ok, r.stats.states, r.graph) == ("holds", True, 10828, None)
    with pytest.raises(ValueError, match="no counterexample"):
        rseqcheck.render(r)


def test_load_from_a_string_and_from_a_file_agree() -> None:
    text = KEEP.read_text()
    a = rseqcheck.verify(rseqcheck.loads(text, "keep.toml"))
    b = rseqcheck.verify(rseqcheck.load(KEEP))
    assert a.outcome.path == "keep.toml"
    assert (a.verdict, a.stats.states, a.stats.depth) == (b.verdict, b.stats.states, b.stats.depth)


def test_bad_spec_text_is_a_spec_error_with_its_line() -> None:
    with pytest.raises(rseqcheck.SpecError) as e:
        rseqcheck.loads('[spec]\ntitle = "x"\n[environment]\nsignals = 3\n', "bad.toml")
    assert str(e.value).startswith("bad.toml:")


def test_options_engine_and_proposal() -> None:
    bmc = rseqcheck.verify(KEEP, engine="bmc")
    assert (bmc.verdict, bmc.stats.depth) == ("violation", 10)
    with pytest.raises(ValueError, match="engine"):
        rseqcheck.verify(KEEP, engine="spin")
    with pytest.raises(rseqcheck.ProposalError):
        rseqcheck.verify(KEEP, rules={"no.such.rule": "x"})
    p = rseqcheck.verify(KEEP, preset="linux-6.19")
    assert p.outcome.proposal is not None and p.outcome.spec.preset == "linux-6.19"


def test_render_every_format_and_replay(tmp_path: Path) -> None:
    r = rseqcheck.verify(KEEP)
    text = rseqcheck.render(r)
    assert "next-syscall-atomic" in text and max(len(x) for x in text.splitlines()) <= 72
    itf = json.loads(rseqcheck.render(r, "json"))
    assert len(itf["states"]) == 11
    assert rseqcheck.render(r, "dot").startswith("digraph")
    assert "<graphml" in rseqcheck.render(r, "graphml")
    with pytest.raises(ValueError, match="format"):
        rseqcheck.render(r, "pdf")
    trace = tmp_path / "keep.json"
    trace.write_text(rseqcheck.render(r, "json"))
    assert rseqcheck.replay(trace).ok


def test_one_import_name_installed() -> None:
    """No top-level `model` or `checker` is importable from outside the
    repository: only `rseqcheck` (and its sub-packages)."""
    code = ("import importlib.util as u, rseqcheck.model.ir, rseqcheck.checker.cli;"
            "print(u.find_spec('model'), u.find_spec('checker'))")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None"]

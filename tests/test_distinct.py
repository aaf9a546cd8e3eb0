"""`verify --max-counterexamples N`: counterexamples whose interleavings
(the sequence of contexts taking the steps) differ, shortest first.

The exact sets below are computed by hand from the spec language alone
(each instruction is one step of its thread), not read off the tool: see
each test's docstring.  Also: the files each one is saved to, that each
replays, and that every format a saved trace renders to loads back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines.explicit import bfs, distinct_counterexamples, interleaving, replay
from rseqcheck.checker.outputs.trace import WIDTH, render
from rseqcheck.checker.replay import load_trace, replay_file
from rseqcheck.checker.verify import check_spec
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import System, evaluate
from rseqcheck.model.spec import load_spec

from tests.test_trace import assert_itf

ROOT = Path(__file__).resolve().parent.parent

# T0 asserts what it stored; T1 and T2 overwrite it.  No signals, no
# preemption: the only steps are the threads' instructions (and, after an
# `exit` instruction, its kernel side).
RACE = """\
[spec]
title  = "Three threads store to x; T0 asserts its own store"
preset = "linux-6.18"
expect = "violation"

[thread.T0]
code = \"\"\"
        store   x, 1
        assert  x == 1
        exit
\"\"\"

[thread.T1]
code = \"\"\"
        store   x, 2
        exit
\"\"\"

[thread.T2]
code = \"\"\"
        store   x, 3
        exit
\"\"\"

[check]
properties = ["no-unexpected-kill"]
depth = {depth}
"""

# Worked by hand.  T0's assert fails iff the last store before it is T1's
# or T2's, and T0's store came first.  In 3 steps: T0 store, T1 or T2
# store, T0 assert.  In 4 steps, the three steps before the assert are
# T0's store plus two of {T1 store, T1 exit, T2 store, T2 exit} (an exit
# after its thread's store), the last store not T0's:
#   {T0s, T1s, T2s}: 6 orders, less the 2 with T0s last = 4;
#   {T0s, T1s, T1e}: only T0s T1s T1e;  {T0s, T2s, T2e}: only T0s T2s T2e.
SHORT = {("T0", "T1", "T0"), ("T0", "T2", "T0")}
LONGER = {
    ("T0", "T1", "T2", "T0"),
    ("T0", "T2", "T1", "T0"),
    ("T1", "T0", "T2", "T0"),
    ("T2", "T0", "T1", "T0"),
    ("T0", "T1", "T1", "T0"),
    ("T0", "T2", "T2", "T0"),
}


def race(tmp_path: Path, depth: int) -> tuple[Path, System]:
    p = tmp_path / "race.toml"
    p.write_text(RACE.format(depth=depth))
    return p, build_system(load_spec(p))


def violates_first_at_end(system: System, trace: list[tuple[int, tuple]]) -> bool:
    """The trace is a run of the system (replayed action by action) whose
    last state, and no earlier one, violates a property."""
    again = replay(system, [a for a, _ in trace[1:]])
    if again is None or [s for _, s in again] != [s for _, s in trace]:
        return False

    def bad(state: tuple) -> bool:
        env = dict(zip(system.vars, state))
        return any(not evaluate(p.holds, env) for p in system.properties)

    return bad(trace[-1][1]) and not any(bad(s) for _, s in trace[:-1])


@pytest.mark.parametrize("depth, want", [(3, SHORT), (4, SHORT | LONGER)])
def test_exact_set_of_interleavings_worked_by_hand(tmp_path: Path, depth: int, want: set) -> None:
    _, system = race(tmp_path, depth)
    d = distinct_counterexamples(system, depth, 100)
    sigs = [interleaving(system, t) for _, t in d.traces]
    assert set(sigs) == want and len(sigs) == len(want)
    assert d.complete and not d.reason
    assert all(prop == "assert" for prop, _ in d.traces)
    assert all(violates_first_at_end(system, t) for _, t in d.traces)


def test_at_most_n_shortest_first_and_the_first_is_bfs(tmp_path: Path) -> None:
    _, system = race(tmp_path, 4)
    d = distinct_counterexamples(system, 4, 3)
    lengths = [len(t) - 1 for _, t in d.traces]
    assert lengths == [3, 3, 4]  # both 3-step interleavings before any 4-step one
    assert not d.complete  # 8 exist within the bound
    assert d.traces[0][1] == bfs(system, 4, por=False).trace
    assert len({interleaving(system, t) for _, t in d.traces}) == 3


def test_one_asked_is_bfs_alone(tmp_path: Path) -> None:
    _, system = race(tmp_path, 4)
    d = distinct_counterexamples(system, 4, 1)
    assert [t for _, t in d.traces] == [bfs(system, 4, por=False).trace]


def test_no_violation_no_counterexample(tmp_path: Path) -> None:
    p = tmp_path / "ok.toml"
    p.write_text(RACE.format(depth=2))  # the assert cannot fail in 2 steps
    system = build_system(load_spec(p))
    d = distinct_counterexamples(system, 2, 5)
    assert d.result.verdict == "holds" and d.traces == []


@pytest.mark.parametrize("spec", ["specs/seed000/unprotected.toml", "specs/seed003/handler_returns_blocked.toml",
                                  "specs/conformance/p02_cs_flags.toml", "specs/seed000/rseq_clear_linux619.toml"])
def test_bundled_specs_distinct_shortest_first_and_real(spec: str) -> None:
    s = load_spec(ROOT / spec)
    system = build_system(s)
    d = distinct_counterexamples(system, s.depth, 6)
    assert d.result.verdict == "violation" and d.traces
    sigs = [interleaving(system, t) for _, t in d.traces]
    assert len(set(sigs)) == len(sigs)
    lengths = [len(t) - 1 for _, t in d.traces]
    assert lengths == sorted(lengths) and lengths[0] == len(bfs(system, s.depth, por=False).trace) - 1
    assert d.complete or len(d.traces) == 6
    assert all(violates_first_at_end(system, t) for _, t in d.traces)


def test_timeout_keeps_what_was_found(tmp_path: Path) -> None:
    """With preemption the interleavings within 30 steps are far too many to
    list: the timeout ends the enumeration, the verdict and the traces found
    so far stay, and the set is not called complete."""
    p = tmp_path / "race.toml"
    p.write_text(RACE.format(depth=30).replace("[thread.T0]", "[environment]\npreemption = true\n\n[thread.T0]"))
    system = build_system(load_spec(p))
    d = distinct_counterexamples(system, 30, 10**6, timeout=0.3)
    assert d.result.verdict == "violation"
    assert d.reason == "timeout after 0.3 s" and not d.complete
    assert 1 < len(d.traces) < 10**6
    lengths = [len(t) - 1 for _, t in d.traces]
    assert lengths == sorted(lengths)


def test_por_does_not_change_the_set(tmp_path: Path) -> None:
    """Asking for several turns the reduction off: --por or not, the same."""
    p, _ = race(tmp_path, 4)
    a = check_spec(str(p), por=True, max_counterexamples=20)
    b = check_spec(str(p), por=False, max_counterexamples=20)
    assert a.distinct is not None and b.distinct is not None
    assert [t for _, t in a.distinct.traces] == [t for _, t in b.distinct.traces]
    assert len(a.distinct.traces) == 8 and a.distinct.complete


# ----------------------------------------------------------------- the CLI


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def here(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "race.toml").write_text(RACE.format(depth=4))
    return tmp_path


def test_verify_saves_numbered_files_that_each_replay(here: Path) -> None:
    code, out, _ = run("verify", "race.toml", "--max-counterexamples", "3", "--out", "cx")
    assert code == 0
    assert "     3 distinct counterexamples (interleavings), 3-4 steps; the first 3 asked for, there may be more" in out
    names = ["race.txt", "race.json", "race.2.txt", "race.2.json", "race.3.txt", "race.3.json"]
    assert sorted(p.name for p in (here / "cx").iterdir()) == sorted(names)
    assert "     counterexample 3: cx/race.3.txt, cx/race.3.json" in out
    sigs = set()
    for k, name in enumerate(["race.json", "race.2.json", "race.3.json"], start=1):
        report = replay_file(here / "cx" / name)
        assert report.ok, (name, report.message)
        g = load_trace(here / "cx" / name)
        assert (g.graph["rank"], g.graph["distinct"]) == (k, 3)
        sigs.add(tuple(g.edges[i - 1, i]["actor"] for i in range(1, g.number_of_nodes())))
        code, out, _ = run("replay", f"cx/{name}")
        assert code == 0 and "replays: still reaches assert" in out
        txt = (here / "cx" / name.replace(".json", ".txt")).read_text()
        assert f"counterexample {k} of 3 distinct interleavings" in txt
    assert len(sigs) == 3


def test_verify_says_when_the_set_is_complete_and_drops_stale_files(here: Path) -> None:
    assert run("verify", "race.toml", "--max-counterexamples", "10", "--out", "cx")[0] == 0
    assert (here / "cx" / "race.8.json").exists() and not (here / "cx" / "race.9.json").exists()
    (here / "race.toml").write_text(RACE.format(depth=3))
    code, out, _ = run("verify", "race.toml", "--max-counterexamples", "10", "--out", "cx")
    assert code == 0
    assert "     2 distinct counterexamples (interleavings), 3 steps; all there are within depth 3" in out
    assert sorted(p.name for p in (here / "cx").iterdir()) == ["race.2.json", "race.2.txt", "race.json", "race.txt"]


def test_verify_json_reports_the_distinct_set(here: Path) -> None:
    code, out, _ = run("verify", "race.toml", "--max-counterexamples", "10", "--format", "json", "--out", "cx")
    r = json.loads(out)["results"][0]
    d = r["distinct_counterexamples"]
    assert (d["asked"], d["found"], d["complete"], d["steps"]) == (10, 8, True, [3, 3, 4, 4, 4, 4, 4, 4])
    assert len(r["counterexample_files"]) == 16


def test_symbolic_engines_refuse_several(here: Path) -> None:
    code, _, err = run("verify", "race.toml", "--engine", "bmc", "--max-counterexamples", "2")
    assert code == 2 and "--max-counterexamples 2 needs the explicit engine" in err


def test_default_writes_one_counterexample(here: Path) -> None:
    code, out, _ = run("verify", "race.toml", "--out", "cx")
    assert code == 0 and "distinct" not in out
    assert sorted(p.name for p in (here / "cx").iterdir()) == ["race.json", "race.txt"]


# -------------------------------------------- every format of a saved trace


def _dot_shape(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    nodes = re.findall(r"^  (s[0-9]+) \[", dot, re.M)
    edges = re.findall(r"^  (s[0-9]+) -> (s[0-9]+) \[", dot, re.M)
    return nodes, edges


def test_every_format_of_a_saved_trace_loads(here: Path) -> None:
    assert run("verify", "race.toml", "--max-counterexamples", "3", "--out", "cx")[0] == 0
    for k, name in enumerate(("race.json", "race.2.json", "race.3.json"), start=1):
        trace = f"cx/{name}"
        g = load_trace(trace)
        n = g.number_of_nodes()
        forms = {}
        for fmt in ("text", "json", "dot", "graphml"):
            code, out, _ = run("show", trace, "--format", fmt)
            assert code == 0
            forms[fmt] = out
        assert all(len(line) <= WIDTH for line in forms["text"].splitlines())
        doc = json.loads(forms["json"])
        assert_itf(doc)
        assert doc == json.loads((here / trace).read_text())  # show --format json is the saved file
        (here / "w.graphml").write_text(forms["graphml"])
        h = nx.read_graphml(here / "w.graphml")
        assert h.number_of_nodes() == n and h.number_of_edges() == n - 1
        assert h.graph["witness-type"] == "violation_witness"
        assert [json.loads(h.nodes[f"s{i}"]["state"]) for i in range(n)] == [g.nodes[i]["vars"] for i in range(n)]
        nodes, edges = _dot_shape(forms["dot"])
        assert nodes == [f"s{i}" for i in range(n)]
        assert edges == [(f"s{i - 1}", f"s{i}") for i in range(1, n)]
        assert f"counterexample {k} of 3 distinct interleavings" in forms["dot"]
        assert render(g, "text") == forms["text"]

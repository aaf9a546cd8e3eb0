"""Renderers of a counterexample graph: golden files for text, ITF JSON, DOT
and GraphML; the 72-column limit on every counterexample the bundled specs
produce; ITF well-formedness; GraphML loading back with networkx.

The renderers read only the graph, so the goldens are made from fixed inputs
(a saved ITF trace, and a synthetic graph with over-long names) and do not
move when the model's semantics do.  To regenerate them after an intended
change of output:  RSEQCHECK_REGEN_GOLDEN=1 python -m pytest tests/test_trace.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rseqcheck.checker.outputs.trace import (
    WIDTH,
    from_itf,
    lanes,
    render,
    render_dot,
    render_graphml,
    render_json,
    render_text,
    to_itf,
)
from rseqcheck.checker.proposal import Proposal
from rseqcheck.checker.verify import check_spec
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = bool(os.environ.get("RSEQCHECK_REGEN_GOLDEN"))
EXT = {"text": "txt", "json": "json", "dot": "dot", "graphml": "graphml"}


def long_graph() -> nx.DiGraph:
    """Every string longer than a line: title, source, spec path, actor,
    label, kernel function, rule, and a state change list."""
    g = nx.DiGraph(
        tool="rseqcheck",
        version="0.1.0",
        spec="specs/a/very/deeply/nested/folder/with/a/long/name/for/testing/the/width/limit.toml",
        spec_hash="0123456789ab",
        title="A title that is much longer than seventy-two columns, so that it has to wrap onto two lines",
        source="LKML 2021-09-28, Somebody <somebody@example.org>, 'a subject line that goes on and on and on'",
        preset="linux-6.18",
        rules={"rseq.syscall_in_cs": "last-instruction", "next_syscall.consume": "syscall-entry"},
        property="next-syscall-atomic",
        property_doc="Every syscall that consumes a next-syscall descriptor is the @traced syscall of "
        "the context (thread or handler frame) that armed it.",
        engine="explicit",
        shortest=True,
        bound=40,
    )
    s0 = {"T0.k": "USER", "T0.ip0": "T0+0", "T0.desc": "0", "T0.pend.SIGUSR1": False, "T0.budget": 1, "bad": "NONE"}
    s1 = dict(s0, **{"T0.ip0": "T0+1", "T0.desc": "TRACE"})
    s2 = dict(s1, **{"T0.k": "ENTRY", "T0.pend.SIGUSR1": True, "T0.budget": 0, "bad": "next-syscall-atomic"})
    g.add_node(0, index=0, vars=s0)
    g.add_node(1, index=1, vars=s1)
    g.add_node(2, index=2, vars=s2)
    g.add_edge(0, 1, label="set_desc  TRACE", actor="T0", kernel_fn="", rule="", proc="T0")
    g.add_edge(
        1,
        2,
        label="a kernel step whose label is long enough to wrap: " + "x" * 90,
        actor="AVeryLongThreadName.h2:kernel",
        kernel_fn="kernel/a_very_long_file_name_for_a_kernel_source_file_that_never_ends.c:function_name",
        rule="next_syscall.consume=syscall-entry",
        proc="AVeryLongThreadName",
    )
    return g


def saved_graph(name: str = "unprotected") -> nx.DiGraph:
    return from_itf(json.loads((GOLDEN / f"{name}.itf.json").read_text()))


# unprotected: one thread, one handler frame; nested: one thread, a handler
# interrupted by a second one (T0.h2); two_threads: T0 and T1 with T1's
# handler; long: every string longer than a line; standalone: unprotected
# saved with the program, each step's line and the legend (the text reads
# without the repository).
CASES = {
    "unprotected": saved_graph,
    "standalone": lambda: saved_graph("standalone"),
    "nested": lambda: saved_graph("nested"),
    "two_threads": lambda: saved_graph("two_threads"),
    "long": long_graph,
}


@pytest.mark.parametrize("fmt", list(EXT))
@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str, fmt: str) -> None:
    got = render(CASES[case](), fmt)
    path = GOLDEN / f"{case}.{EXT[fmt]}"
    if REGEN:
        path.write_text(got)
    assert got == path.read_text(), f"{path} differs; RSEQCHECK_REGEN_GOLDEN=1 regenerates it"


def test_itf_round_trip_is_identity() -> None:
    text = (GOLDEN / "standalone.itf.json").read_text()
    assert '"#bigint"' in text
    assert render_json(from_itf(json.loads(text))) == text


def test_itf_integers_read_both_ways() -> None:
    """Traces saved before integers were written as {"#bigint": ...} read
    to the same graph."""
    old = json.loads((GOLDEN / "unprotected.itf.json").read_text())
    assert isinstance(old["states"][0]["T0.budget"], int)
    new = json.loads(render_json(from_itf(old)))
    assert new["states"][0]["T0.budget"] == {"#bigint": "1"}
    assert from_itf(new).nodes(data=True) == from_itf(old).nodes(data=True)
    bad = json.loads(json.dumps(new))
    bad["states"][0]["T0.budget"] = {"#bigint": "1x"}
    with pytest.raises(ValueError, match="not an ITF integer"):
        from_itf(bad)


def assert_itf(doc: dict) -> None:
    """Apalache's ITF: #meta, vars, states; every state has exactly `vars`
    (plus its own #meta); values are JSON booleans, safe integers, strings."""
    assert set(doc) >= {"#meta", "vars", "states"}
    assert doc["#meta"]["format"] == "ITF"
    names = doc["vars"]
    assert names and len(set(names)) == len(names)
    for i, state in enumerate(doc["states"]):
        assert state["#meta"]["index"] == i
        assert sorted(k for k in state if k != "#meta") == sorted(names)
        for k in names:
            v = state[k]
            if isinstance(v, dict):  # integers as Apalache writes them
                assert set(v) == {"#bigint"} and abs(int(v["#bigint"])) < 2**53, (k, v)
            else:  # a plain JSON integer: a trace saved before #bigint
                assert isinstance(v, (bool, int, str)), (k, v)
                if isinstance(v, int) and not isinstance(v, bool):
                    assert abs(v) < 2**53
        if i > 0:
            assert {"action", "actor"} <= set(state["#meta"])


def bundled_counterexamples() -> list[tuple[str, nx.DiGraph]]:
    out = []
    for p in sorted((ROOT / "specs").rglob("*.toml")):
        o = check_spec(str(p))
        if o.graph is not None:
            out.append((str(p.relative_to(ROOT)), o.graph))
    return out


@pytest.fixture(scope="module")
def produced() -> list[tuple[str, nx.DiGraph]]:
    found = bundled_counterexamples()
    assert found, "the bundled specs should produce at least one counterexample"
    return found


def test_every_bundled_counterexample_fits_72_columns(produced) -> None:
    for name, g in produced:
        for n, line in enumerate(render_text(g).splitlines(), start=1):
            assert len(line) <= WIDTH, f"{name}: line {n} has {len(line)} columns: {line!r}"


def test_every_bundled_counterexample_is_itf(produced) -> None:
    for _, g in produced:
        doc = json.loads(render_json(g))
        assert_itf(doc)
        assert len(doc["states"]) == g.number_of_nodes()


def test_committed_counterexamples_are_itf() -> None:
    found = sorted((ROOT / "counterexamples").rglob("*.json"))  # one folder per spec folder
    assert len(found) >= 60
    for p in found:
        assert_itf(json.loads(p.read_text()))


def test_graphml_loads_back_as_a_violation_witness(tmp_path: Path) -> None:
    g = saved_graph()
    (tmp_path / "w.graphml").write_text(render_graphml(g))
    h = nx.read_graphml(tmp_path / "w.graphml")
    assert h.graph["witness-type"] == "violation_witness"
    assert h.graph["specification"] == "next-syscall-atomic"
    assert h.graph["programhash"] == g.graph["spec_hash"]
    assert h.graph["producer"] == "rseqcheck 0.1.0"
    nodes = list(h.nodes)
    assert len(nodes) == g.number_of_nodes() and h.number_of_edges() == g.number_of_edges()
    assert [n for n, d in h.nodes(data=True) if d.get("entry")] == [nodes[0]]
    assert [n for n, d in h.nodes(data=True) if d.get("violation")] == [nodes[-1]]
    for i, n in enumerate(nodes):
        assert json.loads(h.nodes[n]["state"]) == g.nodes[i]["vars"]
    for i in range(1, len(nodes)):
        e = h.edges[nodes[i - 1], nodes[i]]
        want = g.edges[i - 1, i]
        assert (e["threadId"], e["actor"], e["action"]) == (want["proc"], want["actor"], want["label"])


def test_dot_has_one_node_per_state_and_one_edge_per_step() -> None:
    g = saved_graph()
    dot = render_dot(g)
    assert dot.startswith("digraph counterexample {") and dot.rstrip().endswith("}")
    assert sum(1 for line in dot.splitlines() if line.lstrip().startswith("s") and " -> " in line) == 8
    assert sum(1 for line in dot.splitlines() if line.lstrip().startswith("s") and "[label=" in line and "->" not in line) == 9
    assert "s8 [" in dot and "color=red" in dot.split("s8 [", 1)[1].splitlines()[0]


def test_from_itf_rejects_what_is_not_a_trace() -> None:
    for bad in ([], {"#meta": {}}, {"#meta": {}, "vars": ["a"], "states": []},
                {"#meta": {}, "vars": ["a"], "states": [{"b": 1}]},
                {"#meta": {}, "vars": ["a"], "states": [{"a": 1}, {"a": 2}]}):
        with pytest.raises(ValueError):
            from_itf(bad)


_text = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789_./:-=;@ "), max_size=160)


@settings(max_examples=150, deadline=None)
@given(title=_text, spec=_text, actor=_text.filter(lambda s: s.strip()), label=_text, kfn=_text, rule=_text,
       var=_text.filter(lambda s: s.strip()), value=_text)
def test_text_never_wider_than_72(title, spec, actor, label, kfn, rule, var, value) -> None:
    g = nx.DiGraph(version="0.1.0", spec=spec, spec_hash="h", title=title, source=title, preset="p",
                   rules={rule: value} if rule else {}, property=label, property_doc=title)
    g.add_node(0, index=0, vars={var: 0})
    g.add_node(1, index=1, vars={var: value})
    g.add_edge(0, 1, label=label, actor=actor + ":kernel", kernel_fn=kfn, rule=rule, proc="T0")
    for line in render_text(g).splitlines():
        assert len(line) <= WIDTH, line
    assert to_itf(g)["vars"] == [var]


@st.composite
def multi_context_graphs(draw) -> nx.DiGraph:
    """Traces over 1-3 threads with up to 2 handler frames each, their
    kernel sides and the environment, with random labels, kernel functions,
    rules and state changes (including `T.depth` and `T.k`)."""
    threads = [f"T{i}" for i in range(draw(st.integers(1, 3)))]
    actors = ["env"]
    for t in threads:
        actors += [t, f"{t}:kernel"] + [f"{t}.h{d}" for d in range(1, draw(st.integers(0, 2)) + 1)]
    state: dict = {"bad": "NONE"}
    for t in threads:
        state.update({f"{t}.k": "USER", f"{t}.depth": 0})
    g = nx.DiGraph(version="0.1.0", spec=draw(_text), spec_hash="h", title=draw(_text), source="s", preset="p",
                   rules={}, property="p", property_doc=draw(_text))
    g.add_node(0, index=0, vars=dict(state))
    for i in range(1, draw(st.integers(1, 12)) + 1):
        actor = draw(st.sampled_from(actors))
        t = actor.split(":")[0].split(".")[0]
        if t in threads:
            state[f"{t}.k"] = draw(st.sampled_from(["USER", "ENTRY", "LOOP"]))
            state[f"{t}.depth"] = draw(st.integers(0, 2))
        state[draw(_text.filter(lambda s: s.strip()))] = draw(_text)
        g.add_node(i, index=i, vars=dict(state))
        g.add_edge(i - 1, i, label=draw(_text), actor=actor, kernel_fn=draw(_text), rule=draw(_text), proc=t)
    for i in range(g.number_of_nodes()):  # every state has every variable, as in a real trace
        g.nodes[i]["vars"] = {k: g.nodes[i]["vars"].get(k, "") for k in state}
    return g


@settings(max_examples=150, deadline=None)
@given(g=multi_context_graphs())
def test_lanes_fit_72_columns_and_mark_the_actor(g: nx.DiGraph) -> None:
    """Every line fits; one header line per lane names it at its column;
    each step's first line has its `*` in its actor's column and nowhere
    else in the gutter."""
    text = render_text(g)
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines), text
    ls = lanes(g)
    n = g.number_of_nodes() - 1
    start = lines.index("") + 1
    head = lines[start : start + len(ls)]
    col = {}
    for lane, line in zip(ls, head):
        assert line.endswith(" " + lane.name), (lane, line)
        col[lane.name] = len(line) - len(lane.name)
    gutter_end = max(col.values()) + 1
    firsts = [line for line in lines[start + len(ls) :] if line[: len(str(n))].strip().isdigit()]
    assert [int(line[: len(str(n))]) for line in firsts] == list(range(1, n + 1))
    for i, line in enumerate(firsts, start=1):
        actor = g.edges[i - 1, i]["actor"]
        want = actor if ":" not in actor else actor.split(".")[0].split(":")[0] + ":kernel"
        gut = line[: gutter_end]
        assert gut.count("*") == 1 and gut.index("*") == col[want], (actor, line)


def test_too_many_contexts_for_lanes_name_the_actor_inline() -> None:
    """Twelve threads leave too little room for lanes: each step then starts
    with its actor's name, still within 72 columns."""
    g = nx.DiGraph(version="0.1.0", spec="s.toml", spec_hash="h", preset="p", rules={}, property="p")
    g.add_node(0, index=0, vars={"x": 0})
    for i in range(1, 13):
        g.add_node(i, index=i, vars={"x": i})
        g.add_edge(i - 1, i, label="store x " * 12, actor=f"T{i - 1}", kernel_fn="", rule="", proc=f"T{i - 1}")
    lines = render_text(g).splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    assert "T11" not in "".join(lines[:10])  # no lane header
    for i in range(1, 13):
        assert any(line.startswith(f"{i:>2} T{i - 1}: store x store x") for line in lines), i


def test_changes_leave_out_the_slots_of_popped_frames():
    from rseqcheck.checker.outputs.trace import changes

    before = {"T0.depth": 2, "T0.ip1": "SIGUSR1+3", "T0.ip2": "SIGUSR2+1", "T0.f2.blk.SIGUSR1": 1, "T0.k": "ENTRY"}
    after = {"T0.depth": 1, "T0.ip1": "SIGUSR1+3", "T0.ip2": "T0+0", "T0.f2.blk.SIGUSR1": 0, "T0.k": "LOOP"}
    assert changes(before, after) == ["T0.depth=1", "T0.k=LOOP"]
    # a frame slot that is live after the step is shown
    pushed = dict(after, **{"T0.depth": 2, "T0.ip2": "SIGUSR2+0"})
    assert changes(after, pushed) == ["T0.depth=2", "T0.ip2=SIGUSR2+0"]


def test_graphml_has_the_sv_comp_keys_and_lines(tmp_path: Path) -> None:
    g = saved_graph("standalone")
    (tmp_path / "w.graphml").write_text(render_graphml(g))
    h = nx.read_graphml(tmp_path / "w.graphml")
    assert len(h.graph["programhash"]) == 64 and h.graph["architecture"] == "64bit"
    lines = [d.get("startline") for _, _, d in sorted(h.edges(data=True), key=lambda e: int(e[0][1:]))]
    assert lines == [13, None, None, None, None, None, 21, None]  # set_desc, then the handler's getpid


END_SPEC = '''[spec]
preset = "linux-6.18"
expect = "violation"
[environment]
signals = ["SIGUSR1"]
max_signals = 1
[variables]
h = [0, 1]
[thread.T0]
code = """
        nop
        assert h == 0
"""
[handler.SIGUSR1]
code = """
        store h, 1
        nop
"""
[check]
properties = ["no-unexpected-kill"]
'''


def test_implicit_end_of_code_is_at_the_end_of_the_block(tmp_path: Path) -> None:
    """Falling off a code block is shown at the block's closing line (line 13
    for T0, 18 for the handler), not at its first (11, 16): `T0.ip1=L16`
    after the handler's last instruction read as a jump back to the top."""
    p = tmp_path / "end.toml"
    p.write_text(END_SPEC)
    g = check_spec(str(p)).graph
    assert g.graph["program"] == [
        {"name": "thread T0", "lines": [[11, "nop"], [12, "assert h == 0"], [13, "(end of code)"]]},
        {"name": "handler SIGUSR1", "lines": [[16, "store h, 1"], [17, "nop"], [18, "(end of code)"]]},
    ]
    text = render_text(g)
    assert "    L18  (end of code)\n" in text and "L16  (end of code)" not in text
    assert "| *       L17 nop\n    | |         T0.ip1=L18\n" in text  # the handler's last instruction
    assert "L18 (end of code)" in text  # the implicit sigreturn's step
    assert "bad=assert  T0.ip0=L13" in text
    itf = to_itf(g)
    assert 18 in [s["#meta"].get("line") for s in itf["states"]]
    assert itf["#meta"]["addresses"]["SIGUSR1+2"] == 18 and itf["#meta"]["addresses"]["T0+2"] == 13
    (tmp_path / "w.graphml").write_text(render_graphml(g))
    h = nx.read_graphml(tmp_path / "w.graphml")
    assert 18 in [d.get("startline") for _, _, d in h.edges(data=True)]


@pytest.mark.parametrize(
    "code, line",
    [
        ('code = """\n  nop\n"""', 4),  # the closing quotes' line (the code starts on line 3)
        ('code = """\n  nop\n\n  ; the end\n"""', 6),  # blank lines and comments before them count
        ('code = """\n  nop\ndone:\n"""', 4),  # a label naming the end: its line
        ('code = """\n  nop"""', 4),  # quotes after the last instruction: the next line
        ('code = "nop"', 3),
    ],
)
def test_implicit_end_line(tmp_path: Path, code: str, line: int) -> None:
    p = tmp_path / "s.toml"
    p.write_text(f'[thread.T0]\n{code}\n[spec]\npreset = "linux-6.18"\n[check]\nproperties = ["no-unexpected-kill"]\n')
    ins = load_spec(str(p)).threads[0].segment.instrs
    assert (ins[-1].text, ins[-1].line) == ("(end of code)", line)


@pytest.mark.parametrize("proposal", [None, Proposal(None, {"next_syscall.on_signal": "clear"}),
                                      Proposal("linux-6.0", {"next_syscall.on_signal": "clear"})])
def test_dot_states_the_rules_and_the_proposal_as_the_text_does(proposal: Proposal | None) -> None:
    """DOT's label said only `preset: ...; rseqcheck V`: a trace of `verify
    --rule` (or of a spec's [rules], or impact) read as one of the preset."""
    spec = "specs/seed000/save_restore_unprotected.toml"  # its own [rules]: next_syscall.on_signal = save-restore
    g = check_spec(str(ROOT / spec), proposal=proposal).graph
    text = render_text(g, width=1000).splitlines()
    said = [line for line in text if line.startswith(("preset: ", "proposal (command line): "))]
    assert len(said) == (2 if proposal else 1)
    if proposal is None:
        assert said == ["preset: linux-6.18; overrides: next_syscall.on_signal=save-restore"]
    else:
        assert said[0].endswith("; overrides: next_syscall.on_signal=clear")
        assert said[1] == "proposal (command line): " + " ".join(
            ([f"--preset {proposal.preset}"] if proposal.preset else []) + ["--rule next_syscall.on_signal=clear"])
    dot = render_dot(g)
    title = next(line for line in dot.splitlines() if line.startswith("  label="))
    assert "\\l".join(said) + "\\lrseqcheck 0.1.0\\l" in title
    # the same from a saved trace, as `rseqcheck show X.json --format dot` reads it
    assert render_dot(from_itf(json.loads(render_json(g)))) == dot


def test_the_program_says_what_each_critical_section_is() -> None:
    """The email text defines the section, its labels' lines and flags
    (Vyukov's scheme turns on NO_RESTART_ON_PREEMPT|MIGRATE but not SIGNAL),
    and labels stand in a column of their own."""
    o = check_spec(str(ROOT / "specs/seed000/vyukov_keep_linux418.toml"))
    text = render_text(o.graph)
    assert ("    L21  retry: rseq_cs   cs1\n    L22  begin: set_desc  TRACE\n"
            "    L23         syscall   write @traced\n    L24  end:   exit\n") in text
    assert ("  rseq_cs cs1\n    L28  section from begin (L22) up to end (L24), abort at abort (L25);\n"
            "         flags NO_RESTART_ON_PREEMPT | NO_RESTART_ON_MIGRATE\n") in text

"""Thread symmetry reduction (model/symmetry.py, checker/engines/symmetry.py,
bfs(symmetry=True)): each permutation the model lists is checked to be an
automorphism (it commutes with the successor function and keeps every
property's verdict, on every reachable state), and the reduced search is
checked against the full one: verdict, violated property, shortest
counterexample length, a trace that replays, and the state count, which
is exactly the number of orbits of the full search's states."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines.compile import compile_packed
from rseqcheck.checker.engines.explicit import _Search, bfs, replay
from rseqcheck.checker.engines.symmetry import compile_canon, compile_sorting, usable
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import System
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent

COUNTER = """
retry:  load     %r0, rseq.cpu_id_start
        rseq_cs  inc
begin:  load     %r1, rseq.cpu_id
        bne      %r1, %r0, abort
        load     %r2, counter[%r0]
        add      %r2, 1
        store    counter[%r0], %r2
end:    add      done, 1
        bne      done, {n}, out
        assert   counter[0] + counter[1] == {n}
out:    exit
abort:  jmp      retry
"""

# the same without the in-section CPU check, committed with two stores:
# a preemption between them loses an update
TWO_STORES = COUNTER.replace("""begin:  load     %r1, rseq.cpu_id
        bne      %r1, %r0, abort
        load""", "begin:  load").replace(
    "        store    counter[%r0], %r2\n", "        store    counter[%r0], %r2\n" * 2)


def spec_text(code: str, cpus: list[int], migration: bool, signals: bool) -> str:
    n = len(cpus)
    out = [
        "[spec]", 'title = "symmetry"', 'preset = "linux-6.18"', "",
        "[environment]", "cpus = 2", "preemption = true", f"migration = {'true' if migration else 'false'}",
    ]
    if signals:
        out += ['signals = ["SIGUSR1"]', "max_signals = 1", "max_nesting = 1"]
    out += ["", "[variables]", f'"counter[cpu]" = [0, {2 * n}]', f"done = [0, {n}]", ""]
    for i, c in enumerate(cpus):
        out += [f"[thread.T{i}]", f"cpu = {c}", 'code = """', code.format(n=n).strip(), '"""', ""]
    out += ["[rseq_cs.inc]", 'start = "begin"', 'post_commit = "end"', 'abort = "abort"', ""]
    if signals:
        out += ["[handler.SIGUSR1]", 'code = """', "        nop", "        sigreturn", '"""', ""]
    out += ["[check]", 'properties = ["rseq-cpu-id-accurate"]', "depth = 400"]
    return "\n".join(out) + "\n"


def system_of(text: str) -> tuple[System, int]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "sym.toml"
        path.write_text(text)
        spec = load_spec(path)
    return build_system(spec), spec.depth


def image(table, s: tuple) -> tuple:
    img = [0] * len(s)
    for i, (j, vm) in enumerate(table):
        img[j] = s[i] if vm is None else vm.get(s[i], s[i])
    return tuple(img)


def automorphism_failures(system: System, tables, limit: int = 40_000) -> int:
    """0, or 1 at the first state s (reachable: among the first `limit`
    found breadth-first, past violations too) and table p with
    succ(p(s)) != p(succ(s)) or a property or the terminal condition that
    p(s) and s do not agree on."""
    pk = compile_packed(system)
    seen = [pk.pack(system.initial_state())]
    known = set(seen)
    for x in seen:  # breadth-first: `seen` grows while it is walked
        if len(seen) >= limit:
            break
        out: list = []
        pk.succ(x, out)
        for _, y in out:
            if y not in known:
                known.add(y)
                seen.append(y)
    bad = 0
    for x in seen:
        out: list = []
        pk.succ(x, out)
        s = pk.unpack(x)
        for t in tables:
            px = pk.pack(image(t, s))
            mine: list = []
            pk.succ(px, mine)
            bad += {pk.pack(image(t, pk.unpack(y))) for _, y in out} != {y for _, y in mine}
            bad += pk.check(px) != pk.check(x) or pk.terminal(px) != pk.terminal(x)
            if bad:
                return bad  # one is enough
    return bad


# (code, thread CPUs, migration, signals): symmetries, full states, orbits
SMALL = [
    (COUNTER, [0, 0], False, True, 1, 113737, 57490),
    (COUNTER, [0, 0, 0], False, False, 5, 99916, 18075),
    pytest.param(COUNTER, [0, 0], True, False, 1, 314523, 157577, marks=pytest.mark.slow),
    (TWO_STORES, [0, 0], False, False, 1, 5962, 3256),
    (TWO_STORES, [0, 0], True, False, 1, 60356, 36300),
    pytest.param(TWO_STORES, [0, 0, 0], False, False, 5, 246829, 48178, marks=pytest.mark.slow),
]


# (code, thread CPUs, migration, signals, states checked); all of them under -m slow
AUTO = [
    (TWO_STORES, [0, 0], False, False, 40_000),
    (TWO_STORES, [0, 0], True, False, 20_000),
    (TWO_STORES, [0, 0, 0], False, False, 5_000),
    (COUNTER, [0, 0], True, True, 10_000),
    pytest.param(COUNTER, [0, 0], False, True, 10**8, marks=pytest.mark.slow),
    pytest.param(COUNTER, [0, 0, 0], False, False, 10**8, marks=pytest.mark.slow),
    pytest.param(COUNTER, [0, 0], True, False, 10**8, marks=pytest.mark.slow),
    pytest.param(TWO_STORES, [0, 0, 0], False, False, 10**8, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("code,cpus,migration,signals,limit", AUTO)
def test_symmetries_are_automorphisms(code, cpus, migration, signals, limit) -> None:
    system, _ = system_of(spec_text(code, cpus, migration, signals))
    assert len(system.symmetries) == (5 if len(cpus) == 3 else 1)
    assert usable(system) == system.symmetries
    assert automorphism_failures(system, system.symmetries, limit) == 0


@pytest.mark.parametrize("code,cpus,migration,signals,nsym,full_states,orbits", SMALL)
def test_reduced_search_agrees_with_full_search(code, cpus, migration, signals, nsym, full_states, orbits) -> None:
    system, depth = system_of(spec_text(code, cpus, migration, signals))
    full = bfs(system, depth, por=False)
    red = bfs(system, depth, symmetry=True)
    assert red.symmetry and not full.symmetry
    assert (red.verdict, red.prop, red.exhausted) == (full.verdict, full.prop, full.exhausted)
    assert (full.stats.states, red.stats.states) == (full_states, orbits)
    if full.verdict == "holds":
        # the orbits of the full search's states: what the reduced one must visit
        S = _Search(system, depth, False, None, None, None, 1.0)
        S.run()
        canon = compile_canon(system.symmetries, S.pk.layout)
        assert red.stats.states == len({canon(x) for x in S.seen}) < full.stats.states
    if full.verdict == "violation":
        assert len(red.trace) == len(full.trace)  # shortest: same length
        seq = [a for a, _ in red.trace[1:]]
        steps = replay(system, seq)
        assert steps is not None and [s for _, s in steps] == [s for _, s in red.trace]
        assert compile_packed(system).check(compile_packed(system).pack(steps[-1][1])) >= 0


def test_threads_on_different_cpus_are_not_interchangeable() -> None:
    """do_exit resets a dead thread's `T.cpu` and rseq ids to its starting
    CPU, so threads that start on different CPUs are no symmetry: the
    model lists none, and the swap it refuses is caught as no automorphism
    (the check can fail)."""
    system, _ = system_of(spec_text(COUNTER, [0, 1], True, False))
    assert system.symmetries == []
    # the swap T0 <-> T1 built by hand, as if the starting CPU did not count
    same, _ = system_of(spec_text(COUNTER, [0, 0], True, False))
    (table,) = same.symmetries
    assert automorphism_failures(system, [table], 10**8) > 0


def test_a_symmetry_that_moves_a_property_variable_is_refused() -> None:
    system, _ = system_of(spec_text(COUNTER, [0, 0], False, False))
    idx = {v.name: i for i, v in enumerate(system.vars)}
    b = idx["bad"]
    system.symmetries = [[(j, {0: 1, 1: 0} if i == b else vm) for i, (j, vm) in enumerate(t)]
                         for t in system.symmetries]
    assert usable(system) == []
    assert not bfs(system, 400, symmetry=True).symmetry


def test_percpu_ladder_rungs_on_one_cpu() -> None:
    """T threads on one CPU: T! symmetries, about T! times fewer states
    (benchmarks/README.md)."""
    spec = load_spec(ROOT / "benchmarks/specs/percpu_t2_k1_c1.toml")
    system = build_system(spec)
    red = bfs(system, spec.depth, symmetry=True)
    assert (red.verdict, red.stats.states) == ("holds", 57490)  # benchmarks/symmetry_potential.py's orbits


def test_cli_verify_symmetry(tmp_path) -> None:
    spec = str(ROOT / "specs/librseq/percpu_cmpxchg.toml")
    r = CliRunner().invoke(main, ["verify", "--symmetry", "--out", str(tmp_path), spec])
    assert r.exit_code == 0, r.output
    assert "95,966 states" in r.output  # 190,533 without the reduction
    r = CliRunner().invoke(main, ["verify", "--out", str(tmp_path), spec])
    assert "95,966 states" not in r.output
    for bad in (["--engine", "bmc"], ["--por-frozen"], ["--max-counterexamples", "2"]):
        r = CliRunner().invoke(main, ["verify", "--symmetry", *bad, spec])
        assert r.exit_code == 2
        assert "--symmetry needs" in r.output


def test_violation_trace_is_a_real_path_through_the_cli(tmp_path) -> None:
    """The counterexample of a reduced search is saved and replays."""
    path = tmp_path / "two.toml"
    path.write_text(spec_text(TWO_STORES, [0, 0, 0], False, False).replace(
        'title = "symmetry"', 'title = "symmetry"\nexpect = "violation"'))
    r = CliRunner().invoke(main, ["verify", "--symmetry", "--out", str(tmp_path / "cx"), str(path)])
    assert r.exit_code == 0, r.output
    assert "48,178 states" in r.output
    r = CliRunner().invoke(main, ["replay", "--spec", str(path), str(tmp_path / "cx" / "two.json")])
    assert r.exit_code == 0, r.output


def test_sorting_canonical_form_is_one_per_orbit() -> None:
    """compile_sorting (members sorted by their normal form; ties go to the
    least image) maps each state into its orbit, to the same key for the
    whole orbit: the least image of its key is the state's least image."""
    system, depth = system_of(spec_text(TWO_STORES, [0, 0, 0], False, False))
    S = _Search(system, depth, False, None, None, None, 1.0)
    S.run()
    least = compile_canon(system.symmetries, S.pk.layout)
    fast = compile_sorting(system, S.pk.layout, least)
    assert fast is not None
    keys = {}
    for x in S.seen:
        k = fast(x)
        assert least(k) == least(x) and fast(k) == k
        keys.setdefault(least(x), set()).add(k)
    assert all(len(v) == 1 for v in keys.values())


# ----------------------------------------------------------- random systems

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_BODY = st.sampled_from([
    "store    x, 1", "store    x, 2", "load     %r0, x", "store    y, %r0", "beq      x, 1, out",
    "bne      y, 0, out", "nop", "syscall  getpid",
])


def _random_spec(body: list[str], tail: list[str], section: bool, threads: int, signals: bool, expr: str) -> str:
    code = (["retry:  rseq_cs  cs"] if section else []) + [
        ("begin:  " if section and i == 0 else "        ") + ins for i, ins in enumerate(body)]
    code += [("end:    " if section and i == 0 else "        ") + ins for i, ins in enumerate(tail)]
    code += [f"        assert   {expr}", "out:    exit"] + (["abort:  jmp      retry"] if section else [])
    out = ["[spec]", 'title = "random"', 'preset = "linux-6.18"', "", "[environment]", "preemption = true"]
    if signals:
        out += ['signals = ["SIGUSR1"]', "max_signals = 1", "max_nesting = 1"]
    out += ["", "[variables]", "x = [0, 2]", "y = [0, 2]", ""]
    for i in range(threads):
        out += [f"[thread.T{i}]", "cpu = 0", 'code = """', "\n".join(code), '"""', ""]
    if section:
        out += ["[rseq_cs.cs]", 'start = "begin"', 'post_commit = "end"', 'abort = "abort"', ""]
    if signals:
        out += ["[handler.SIGUSR1]", 'code = """', "        store    y, 2", "        sigreturn", '"""', ""]
    props = '["assert", "rseq-cs-atomic"]' if section else '["assert"]'
    out += ["[check]", f"properties = {props}", "depth = 200"]
    return "\n".join(out) + "\n"


_RANDOM = dict(body=st.lists(_BODY, min_size=1, max_size=4), tail=st.lists(_BODY, min_size=1, max_size=2),
               section=st.booleans(), threads=st.sampled_from([2, 3]), signals=st.booleans(),
               expr=st.sampled_from(["x <= 2", "y != 1 || x == 1", "x == 0 || y == 0", "y <= x"]))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_RANDOM)
def test_random_systems_reduced_against_full(body, tail, section, threads, signals, expr) -> None:
    _reduced_against_full(body, tail, section, threads, signals, expr)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_RANDOM)
def test_random_systems_reduced_against_full_many(body, tail, section, threads, signals, expr) -> None:
    _reduced_against_full(body, tail, section, threads, signals, expr)


def _reduced_against_full(body, tail, section, threads, signals, expr) -> None:
    """Random programs run by 2-3 identical threads: the reduced search
    gives the full search's verdict, property and shortest length (its
    trace replays), and exactly one state per orbit of the full search's."""
    system, depth = system_of(_random_spec(body, tail, section, threads, signals, expr))
    assert system.symmetries
    full = bfs(system, depth, por=False)
    red = bfs(system, depth, symmetry=True)
    assert (red.verdict, red.prop, red.exhausted) == (full.verdict, full.prop, full.exhausted)
    if full.verdict == "violation":
        assert len(red.trace) == len(full.trace)
        steps = replay(system, [a for a, _ in red.trace[1:]])
        assert steps is not None and [s for _, s in steps] == [s for _, s in red.trace]
    else:
        S = _Search(system, depth, False, None, None, None, 1.0)
        S.run()
        canon = compile_canon(system.symmetries, S.pk.layout)
        assert red.stats.states == len({canon(x) for x in S.seen})


def test_a_group_too_large_to_list_gives_no_symmetry_quickly() -> None:
    """8 interchangeable threads have 40,320 permutations, over
    MAX_PERMUTATIONS: none are listed (listing 32! hung the build, out of
    reach of --timeout, and ran the machine out of memory)."""
    CHECK = '[check]\nproperties = ["no-unexpected-kill"]\ndepth = 5\n'
    threads = "".join(f'[thread.T{i}]\ncode = """\n        exit\n"""\n' for i in range(8))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "eight.toml"
        p.write_text('[spec]\ntitle = "eight"\npreset = "linux-6.18"\n' + threads + CHECK)
        system = build_system(load_spec(p))
    assert system.symmetries == [] and system.symmetry_group is None
    threads7 = "".join(f'[thread.T{i}]\ncode = """\n        exit\n"""\n' for i in range(7))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "seven.toml"
        p.write_text('[spec]\ntitle = "seven"\npreset = "linux-6.18"\n' + threads7 + CHECK)
        assert len(build_system(load_spec(p)).symmetries) == 5039  # every non-identity permutation

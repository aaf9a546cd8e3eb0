"""The packed visited table (checker/engines/visited.py, _visited.c): the
compiled table and its Python twin behave alike, and the plain search over
it is the search over a dict: same states, transitions, verdict, fired
actions and trace, step for step."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rseqcheck.checker.engines import explicit, visited
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import Action, Add, Eq, IntRange, Lt, Not, Property, System, Var, assign
from rseqcheck.model.spec import load_spec

from tests.test_symbolic import systems

ROOT = Path(__file__).resolve().parent.parent
KINDS = [visited.DictTable] + ([visited.Table] if visited.COMPILED else [])


def test_the_extension_is_built() -> None:
    """`pip install` builds it (setup.py); without it the search falls back
    to a dict of ints, 2.5x the memory: CI must not lose it silently."""
    assert visited.COMPILED, "checker/engines/_visited.c was not built: pip install -e . needs a C compiler"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits", [7, 64, 65, 129, 300])
def test_add_get_parent_index(kind, bits: int) -> None:
    rng = random.Random(bits)
    t = kind(bits)
    states = [rng.getrandbits(bits) for _ in range(5000)]
    first: dict[int, int] = {}
    for k, s in enumerate(states):
        got = t.add(s, k - 1)
        if s in first:
            assert got == -1
        else:
            assert got == len(first)
            first[s] = len(first)
    assert len(t) == len(first)
    assert list(t) == list(first)  # entries in the order entered
    for s, i in first.items():
        assert t.index(s) == i and s in t and t.get(i) == s
        assert t.parent(i) == states.index(s) - 1
    for absent in {x for x in range(1 << min(bits, 9))} - set(first):
        assert t.index(absent) == -1 and absent not in t


@pytest.mark.parametrize("kind", KINDS)
def test_bad_states_are_refused(kind) -> None:
    t = kind(129)
    with pytest.raises(OverflowError):
        t.add(-1, 0)
    with pytest.raises(OverflowError):
        t.add(1 << 192, 0)
    t.add((1 << 192) - 1, -1)  # three whole words fit
    assert len(t) == 1
    with pytest.raises(IndexError):
        t.get(1)


@pytest.mark.parametrize("kind", KINDS)
def test_add_xor_is_adds_in_order(kind) -> None:
    rng = random.Random(1)
    a, b = kind(100), kind(100)
    for _ in range(300):
        s = rng.getrandbits(100)
        masks = tuple(rng.getrandbits(rng.choice([3, 40, 100])) for _ in range(rng.randrange(5)))
        p = rng.randrange(-1, 50)
        a.add_xor(s, masks, p)
        for m in masks:
            b.add(s ^ m, p)
    assert list(a) == list(b) and [a.parent(i) for i in range(len(a))] == [b.parent(i) for i in range(len(b))]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("workers", [2, 3])
def test_partitions_split_and_merge(kind, workers: int) -> None:
    """Each worker keeps the states it owns and sends the rest, with their
    parents' global ids, to their owners; together they hold each state
    once."""
    rng = random.Random(workers)
    states = [rng.getrandbits(90) for _ in range(3000)]
    parts = [kind(90, workers, w) for w in range(workers)]
    for k, s in enumerate(states):
        w = k % workers
        o = parts[w].owner(s)
        assert all(p.owner(s) == o for p in parts)
        assert (parts[w].add(s, k) == -2) == (o != w)
    for w, p in enumerate(parts):
        for o in range(workers):
            if o != w:
                parts[o].add_batch(p.take(o))
                assert p.take(o) == b""  # taken once
    assert sum(len(p) for p in parts) == len(set(states))
    for w, p in enumerate(parts):
        for s in p:
            assert p.owner(s) == w
            k = states.index(s)  # the first add of it wins, by worker k % workers, parent k there
            assert p.parent(p.index(s)) == k * workers + k % workers
    counts = [len(p) for p in parts]
    assert min(counts) > len(set(states)) / workers * 0.8  # the hash spreads them


@pytest.mark.parametrize("kind", KINDS)
def test_batches_of_another_width_are_refused(kind) -> None:
    with pytest.raises(ValueError):
        kind(64, 2, 0).add_batch(b"x" * 17)
    with pytest.raises(ValueError):
        kind(64, 2, 2)


SPECS = ["specs/seed000/unprotected.toml", "specs/seed000/rseq_keep_linux618.toml",
         "specs/librseq/percpu_counter.toml", "specs/seed001/membarrier_fence_user_linux619.toml",
         "specs/seed004/dlclose_armed_cs_linux618.toml"]


@pytest.mark.skipif(not visited.COMPILED, reason="the extension is not built")
@pytest.mark.parametrize("path", [p for p in SPECS if (ROOT / p).exists()])
@pytest.mark.parametrize("max_states", [None, 50])
def test_table_search_is_the_dict_search(path: str, max_states, monkeypatch) -> None:
    spec = load_spec(ROOT / path)
    system = build_system(spec)
    got = bfs(system, spec.depth, por=False, max_states=max_states)
    monkeypatch.setattr(explicit._Search, "TABLE", False)
    want = bfs(build_system(spec), spec.depth, por=False, max_states=max_states)
    for r in (got, want):
        r.stats.seconds = 0.0
    assert got == want


@pytest.mark.skipif(not visited.COMPILED, reason="the extension is not built")
@pytest.mark.parametrize("start", [0, 1, 2])
@pytest.mark.parametrize("depth", [1, 3])
def test_terminal_states_on_a_table(start: int, depth: int, monkeypatch) -> None:
    """x counts up to 2, where the run ends (terminal): from 2 the initial
    state itself is terminal, and the search is exhausted at once (found by
    Hypothesis in tests/test_symbolic.py: the table took its first level
    for the next one)."""
    x = Var("x", IntRange(0, 3), proc="P")

    def system() -> System:
        inc = Action("x++", Lt(x, 3), assign((x, Add(x, 1))), "P", "P")
        s = System([x], {x: start}, [inc], [Property("p", Not(Eq(x, 3)), "")])
        s.terminal = Eq(x, 2)
        return s

    got = bfs(system(), depth, por=False)
    monkeypatch.setattr(explicit._Search, "TABLE", False)
    want = bfs(system(), depth, por=False)
    got.stats.seconds = want.stats.seconds = 0.0
    assert got == want
    if start == 2:
        assert got.exhausted and got.stats.states == 1


@pytest.mark.skipif(not visited.COMPILED, reason="the extension is not built")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(0, 8))
def test_random_systems_table_is_dict(data, depth: int) -> None:
    """Random systems (tests/test_symbolic.py's strategy: every operator,
    terminal conditions, violations at various depths): the search over
    the table is the search over a dict, field for field."""
    system = data.draw(systems())
    got = bfs(system, depth, por=False)
    explicit._Search.TABLE = False
    try:
        want = bfs(system, depth, por=False)
    finally:
        explicit._Search.TABLE = True
    got.stats.seconds = want.stats.seconds = 0.0
    assert got == want

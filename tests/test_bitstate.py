"""Bitstate search (checker/engines/bitstate.py, verify --bitstate): with a table
large enough that no state is lost it is the full search (same states,
transitions, verdict, and the same shortest trace, also when the trace
has to be rebuilt by reruns); with a tiny one it loses states, says so in
its coverage figures, and a violation it still finds is real (replays);
when nothing is found the verdict is "no violation found", exit 6."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines import explicit
from rseqcheck.checker.engines.bitstate import NOT_PROOF, BitTable, Frontier, _hash_fn, bitstate, table_bits
from rseqcheck.checker.engines.compile import compile_packed, compile_system
from rseqcheck.checker.engines.explicit import bfs, replay
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "specs" / "seed000"
SPECS = ["unprotected", "design_example", "restart_last_instruction_proposal", "rseq_clear_linux618",
         "rseq_keep_linux618", "save_restore_unprotected", "vyukov_clear_linux418"]


def _load(name: str):
    spec = load_spec(SEED / f"{name}.toml")
    return spec, build_system(spec)


def _actions(trace) -> list[int]:
    return [a for a, _ in trace[1:]]


@pytest.mark.parametrize("name", SPECS)
def test_large_table_is_the_full_search(name):
    spec, system = _load(name)
    full = bfs(system, spec.depth, por=False)
    bit = bitstate(system, spec.depth, bits=1 << 24)
    assert bit.stats.states == full.stats.states
    assert bit.stats.transitions == full.stats.transitions
    assert bit.exhausted == full.exhausted
    assert bit.bitstate is not None and bit.bitstate["states"] == full.stats.states
    if full.verdict == "holds":
        assert bit.verdict == NOT_PROOF  # never "holds"
        assert bit.trace == []
    else:
        assert bit.verdict == "violation" and bit.prop == full.prop
        assert bit.trace == full.trace  # the full search's shortest trace, step for step
        assert bit.bitstate["reruns"] == 0  # the default window holds every level here
        assert bit.shortest is False  # not claimed: the table could have lost states


@pytest.mark.parametrize("name", ["unprotected", "save_restore_unprotected", "rseq_keep_linux618"])
def test_trace_rebuilt_by_reruns(name):
    """A window of one state keeps one level: the walk back leaves it at
    once, and the deterministic reruns give the same trace."""
    spec, system = _load(name)
    full = bfs(system, spec.depth, por=False)
    bit = bitstate(system, spec.depth, bits=1 << 24, window=1)
    assert bit.trace == full.trace
    assert bit.bitstate["reruns"] >= len(full.trace) // 2
    assert bit.stats.states == full.stats.states  # the reruns do not count


@pytest.mark.parametrize("name", ["save_restore_unprotected", "rseq_keep_linux618"])
def test_trace_through_levels_cut_mid_level(name, monkeypatch):
    """Chunks of 2 states and a window of 3: the level being built loses
    its parents while it is built, and the reruns keep the parent of the
    one state they look for."""
    monkeypatch.setattr(explicit, "_CHUNK", 2)
    spec, system = _load(name)
    full = bfs(system, spec.depth, por=False)
    bit = bitstate(system, spec.depth, bits=1 << 24, window=3)
    assert bit.trace == full.trace
    assert bit.bitstate["reruns"] >= len(full.trace) // 2


def test_tiny_table_loses_states_and_says_so():
    spec, system = _load("rseq_clear_linux618")  # 10,828 states, holds
    bit = bitstate(system, spec.depth, bits=4096)
    c = bit.bitstate
    assert bit.verdict == NOT_PROOF
    assert bit.stats.states == 2048  # deterministic hashing: the same count every run
    assert c["states"] == 2048 and c["bits"] == 4096 and c["k"] == 3
    assert c["hash_factor"] == 2.0 and c["expected_omissions"] > 100 and c["fill"] > 0.8


def test_lost_states_lengthen_a_violation_that_still_replays():
    spec, system = _load("save_restore_unprotected")  # shortest: 20 steps
    bit = bitstate(system, spec.depth, bits=512)
    assert bit.verdict == "violation"
    assert len(bit.trace) - 1 == 22  # the two shorter ways went through lost states
    again = replay(system, _actions(bit.trace))
    assert again == bit.trace
    assert system.properties[compile_system(system).check(again[-1][1])].name == bit.prop


def test_tiny_table_can_miss_a_violation():
    spec, system = _load("save_restore_unprotected")
    bit = bitstate(system, spec.depth, bits=64)
    assert bit.verdict == NOT_PROOF and bit.stats.states == 24
    assert bit.bitstate["hash_factor"] < 100


def test_omission_estimate():
    """The expected number of omissions (new states the table takes for
    seen ones) against the count, by a BFS with both the table and the
    exact set of states stored; not the states missing at the end, which
    include what only the omitted states lead to."""
    spec, system = _load("rseq_clear_linux618")
    pk = compile_packed(system)
    for bits, want in ((1 << 16, 170), (1 << 17, 26)):
        table = BitTable(bits, 3, pk.layout.bits, 1 << 30)
        table.new_level(0)
        frontier = [pk.pack(system.initial_state())]
        table[frontier[0]] = -1
        stored, omitted = set(frontier), set()
        while frontier:
            nxt = []
            for s in frontier:
                out: list = []
                if not pk.terminal(s):
                    pk.succ(s, out)
                for _, t in out:
                    if t not in table:
                        table[t] = s
                        stored.add(t)
                        nxt.append(t)
                    elif t not in stored:
                        omitted.add(t)
            frontier = nxt
        est = table.coverage()["expected_omissions"]
        assert len(omitted) == want  # deterministic hashing
        # the search's inlined bit tests (compile.Visit) keep the same states as the table's methods
        assert bitstate(system, spec.depth, bits=bits).stats.states == len(stored)
        assert est / 1.5 <= want <= est * 1.5, (bits, want, est)


def test_table_basics():
    assert table_bits(1000) == 1024 and table_bits(1) == 8 and table_bits(1 << 26) == 1 << 26
    h = _hash_fn(130)
    # a flag at bit 5 and one at bit 66: the same value mod 2^61 - 1 (int hash), not here
    assert hash(1 << 5) == hash(1 << 66) and h(1 << 5) != h(1 << 66)
    t = BitTable(1 << 12, 3, 130, 10)
    t.new_level(0)
    assert 12345 not in t
    t[12345] = -1
    assert 12345 in t and len(t) == 1 and t.coverage()["fill"] == 3 / 4096


@pytest.mark.parametrize("width", [1, 64, 150])
def test_frontier_round_trip(width):
    states = [0, 1, (1 << width) - 1, (1 << width) // 3]
    f = Frontier(width)
    for t in states:
        f.append(t)
    assert len(f) == 4 and bool(f) and not Frontier(width)
    assert f[0:4] == states and f[1:3] == states[1:3] and f[2:4096] == states[2:]


def _cli(*args: str):
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


def test_cli_not_a_proof(tmp_path):
    r = _cli(str(SEED / "design_example.toml"), "--bitstate", "64M", "--out", str(tmp_path))
    assert r.exit_code == 6
    assert "no violation found (bitstate, not a proof;" in r.output
    assert "hash factor" in r.output and "best if > 100" in r.output and "likely lost" not in r.output
    assert all(len(line) <= 72 for line in r.output.splitlines()[1:])


def test_cli_tiny_table_text(tmp_path):
    r = _cli(str(SEED / "rseq_clear_linux618.toml"), "--bitstate", "4K", "--out", str(tmp_path))
    assert r.exit_code == 6
    text = " ".join(r.output.split())
    assert "2,048 states stored, hash factor 2.0 (best if > 100)" in text
    assert "states were likely lost" in text


def test_cli_limits(tmp_path):
    r = _cli(str(SEED / "rseq_clear_linux618.toml"), "--bitstate", "1M", "--max-states", "100", "--out",
             str(tmp_path))
    assert r.exit_code == 3 and "unknown: state limit 100 reached" in r.output


def test_cli_tiny_table_json(tmp_path):
    r = _cli(str(SEED / "rseq_clear_linux618.toml"), "--bitstate", "4K", "--hash-k", "3", "--format", "json",
             "--out", str(tmp_path))
    assert r.exit_code == 6
    rec = json.loads(r.output)["results"][0]
    assert rec["verdict"] == NOT_PROOF and rec["as_expected"] is False and rec["states"] == 2048
    assert rec["bitstate"]["bits"] == 4096 and rec["bitstate"]["expected_omissions"] > 100


def test_cli_violation_replays(tmp_path):
    r = _cli(str(SEED / "save_restore_unprotected.toml"), "--bitstate", "512", "--trace-window", "1",
             "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert "trace: 22 steps (depth bound" in r.output and "rerun" in r.output
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "save_restore_unprotected.json")])
    assert r.exit_code == 0 and "still reaches" in r.output


def test_cli_expected_violation_not_found_is_a_failure(tmp_path):
    r = _cli(str(SEED / "save_restore_unprotected.toml"), "--bitstate", "64", "--out", str(tmp_path))
    assert r.exit_code == 1
    assert "FAIL" in r.output


@pytest.mark.parametrize("args", [["--engine", "bmc"], ["--symmetry"], ["--max-counterexamples", "2"],
                                  ["--por-frozen"]])
def test_cli_refuses_combinations(args, tmp_path):
    r = _cli(str(SEED / "unprotected.toml"), "--bitstate", "1M", *args, "--out", str(tmp_path))
    assert r.exit_code == 2 and "--bitstate needs" in r.output


@pytest.mark.parametrize("size", ["abc", "0", "5G", "1.5M"])
def test_cli_bad_size(size, tmp_path):
    r = _cli(str(SEED / "unprotected.toml"), "--bitstate", size, "--out", str(tmp_path))
    assert r.exit_code == 2 and "Traceback" not in r.output

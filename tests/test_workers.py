"""The search on several processes (checker/engines/workers.py, verify
--workers): the same result as the sequential search, field for field
(states, transitions, depth, verdict, fired actions, and on a violation the
very trace), through the forked workers and through the transport-free
`Partition` API a cluster runner would drive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.engines import visited, workers
from rseqcheck.checker.engines.compile import compile_packed
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

from tests.test_symbolic import systems

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (visited.COMPILED and workers.CAN_FORK), reason="needs the extension and fork")

SPECS = [
    "specs/seed000/unprotected.toml",  # violation
    "specs/seed000/rseq_keep_linux618.toml",
    "specs/librseq/percpu_counter.toml",  # holds, threads exit: terminal states
    "specs/seed001/membarrier_fence_user_linux619.toml",
    "specs/seed004/dlclose_armed_cs_linux618.toml",
    "benchmarks/specs/ladder_t2_k1.toml",
]


def _same(got, want) -> None:
    """The sequential search's result, but for the time and the note that
    says how many workers ran (checked in test_the_note_says_how_many_ran)."""
    got.stats.seconds = want.stats.seconds = 0.0
    got.notes = [n for n in got.notes if not (" workers from depth " in n or n.startswith("one worker: no level"))]
    assert got == want


@pytest.fixture(autouse=True)
def early_handoff(monkeypatch) -> None:
    """The workers take over from the first level with a state (not at
    16,384 states), so that these small specs run on them."""
    monkeypatch.setattr(workers, "HANDOFF", 1)


@pytest.mark.parametrize("path", SPECS)
@pytest.mark.parametrize("n", [2, 3])
def test_workers_give_the_sequential_result(path: str, n: int) -> None:
    spec = load_spec(ROOT / path)
    want = bfs(build_system(spec), spec.depth, por=False)
    got = workers.bfs_workers(build_system(spec), spec.depth, n, por=False)
    _same(got, want)


@pytest.mark.parametrize("handoff", [5, 300, 16_384])
def test_handoff_at_any_level(handoff: int, monkeypatch) -> None:
    """The sequential search hands over at the first level of `handoff`
    states (or finishes alone, 16,384: the default); the same result."""
    monkeypatch.setattr(workers, "HANDOFF", handoff)
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    want = bfs(build_system(spec), spec.depth, por=False)
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    _same(got, want)


def test_a_ladder_rung_of_five_million_states(monkeypatch) -> None:
    """The default hand-off, streamed batches and index growth at scale:
    t2_k2 unreduced, 5,089,536 states, the same result on 2 workers."""
    monkeypatch.setattr(workers, "HANDOFF", 16_384)
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k2.toml")
    want = bfs(build_system(spec), spec.depth, por=False)
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    assert got.stats.states == 5_089_536
    _same(got, want)


def test_small_search_does_not_fork(monkeypatch) -> None:
    monkeypatch.setattr(workers, "HANDOFF", 16_384)
    monkeypatch.setattr(workers, "_coordinate", None)  # would fail if called
    spec = load_spec(ROOT / "specs/seed001/membarrier_fence_user_linux619.toml")
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    _same(got, bfs(build_system(spec), spec.depth, por=False))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), st.integers(0, 8), st.sampled_from([2, 3]))
def test_random_systems_on_workers(data, depth: int, n: int) -> None:
    """Random systems (tests/test_symbolic.py's strategy), handed over at
    the first level: the sequential result, field for field."""
    system = data.draw(systems())
    want = bfs(system, depth, por=False)
    got = workers.bfs_workers(system, depth, n, por=False)
    _same(got, want)


def test_depth_bound_cuts_the_same_level() -> None:
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    want = bfs(build_system(spec), 20, por=False)
    got = workers.bfs_workers(build_system(spec), 20, 2, por=False)
    assert not got.exhausted and got.stats.depth == 20
    _same(got, want)


def test_reduced_search_stays_sequential_and_says_so() -> None:
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    got = workers.bfs_workers(build_system(spec), spec.depth, 2)
    want = bfs(build_system(spec), spec.depth)
    assert got.notes == ["one worker: the search with partial-order reduction is sequential (--no-por runs on 2)"]
    got.notes = []
    _same(got, want)


def test_api_workers() -> None:
    import rseqcheck

    one = rseqcheck.verify(ROOT / "benchmarks/specs/ladder_t2_k1.toml", por=False)
    two = rseqcheck.verify(ROOT / "benchmarks/specs/ladder_t2_k1.toml", por=False, workers=2)
    assert (one.verdict, one.stats.states, one.stats.transitions) == (two.verdict, two.stats.states,
                                                                       two.stats.transitions) == ("holds", 223_729,
                                                                                                  659_362)


def test_without_the_extension_it_says_so(monkeypatch) -> None:
    monkeypatch.setattr(visited, "COMPILED", False)
    spec = load_spec(ROOT / "specs/librseq/percpu_counter.toml")
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    assert got.notes == ["one worker: checker/engines/_visited.c is not built (pip install needs a C compiler)"]
    got.notes = []
    _same(got, bfs(build_system(spec), spec.depth, por=False))


def test_partitions_without_processes() -> None:
    """Two `Partition`s driven by hand, bytes handed over in between (what
    a cluster runner does): each level is the sequential search's."""
    spec = load_spec(ROOT / "specs/librseq/percpu_counter.toml")
    system = build_system(spec)
    want = bfs(system, spec.depth, por=False)
    pk = compile_packed(system)
    init = pk.pack(system.initial_state())
    parts = [workers.Partition(pk, 2, w) for w in range(2)]
    for p in parts:
        p.start(init, bool(pk.terminal(init)))
    assert sum(len(p.tab) for p in parts) == 1
    depth = transitions = 0
    while sum(p.hi - p.lo for p in parts):
        sent = [p.expand() for p in parts]
        for w, p in enumerate(parts):
            p.receive(sent[w][0], [sent[v][1][w] for v in range(2)])
        transitions += sum(r.transitions for r, _ in sent)
        depth += 1
    assert sum(len(p.tab) for p in parts) == want.stats.states
    assert transitions == want.stats.transitions and depth == want.stats.depth
    assert all(p.tab.owner(s) == w for w, p in enumerate(parts) for s in p.tab)
    assert min(len(p.tab) for p in parts) > want.stats.states // 3  # both have work


def test_a_terminal_state_sent_twice_is_marked() -> None:
    """A terminal successor another worker owns is routed as it is found
    (in a batch that may leave while the level runs) and marked terminal
    at the level's end: its owner marks it either way, never expands it."""
    spec = load_spec(ROOT / "specs/librseq/percpu_counter.toml")
    system = build_system(spec)
    pk = compile_packed(system)
    x = next(s for s in range(1, 1000) if workers.Partition(pk, 2, 0).tab.owner(s) == 1)
    for marked_first in (False, True):
        p0, p1 = workers.Partition(pk, 2, 0), workers.Partition(pk, 2, 1)
        assert p0.tab.add(x, -1) == -2  # routed to worker 1
        plain = workers._pack_batch(p0.tab.take(1), b"")
        marks = workers._pack_batch(b"", workers._record(p0.tab, x, 0, 2, 0))
        for b in ([marks, plain] if marked_first else [plain, marks]):
            p1.ingest(b)
        assert len(p1.tab) == 1 and p1.tab.index(x) in p1.term


def test_a_killed_worker_is_reported(monkeypatch) -> None:
    """A worker killed from outside (the OOM killer, kill -9): the search
    stops with 'unknown' and says so, it does not hang."""
    real = workers._level

    def dying(mine, *rest):
        if mine.me == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(mine, *rest)

    monkeypatch.setattr(workers, "_level", dying)
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    r = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    assert r.verdict == "unknown" and r.reason == "a worker process died (killed, or out of memory?)"


def test_an_error_in_a_worker_is_the_sequential_searchs(monkeypatch) -> None:
    """An exception while a worker expands (a model error in generated
    code, say): the level still ends for the others, and the sequential
    search is run, which raises it as `bfs` does."""
    real = workers.Partition.expand

    def failing(self, *a):
        if self.me == 0 and self.hi > 50:
            raise RuntimeError("boom")
        return real(self, *a)

    monkeypatch.setattr(workers.Partition, "expand", failing)
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    _same(got, bfs(build_system(spec), spec.depth, por=False))


def test_timeout_and_state_limit() -> None:
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k2.toml")
    t0 = time.monotonic()
    r = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False, timeout=0.5)
    assert r.verdict == "unknown" and r.reason == "timeout after 0.5 s"
    assert time.monotonic() - t0 < 5 and r.stats.states > 1000
    r = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False, max_states=20_000)
    assert r.verdict == "unknown" and r.reason == "state limit 20000 reached" and r.stats.states >= 20_000


def test_cli_workers() -> None:
    path = str(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    runner = CliRunner()
    one = runner.invoke(main, ["verify", path, "--no-por", "--format", "json"])
    two = runner.invoke(main, ["verify", path, "--no-por", "--format", "json", "--workers", "2"])
    assert one.exit_code == two.exit_code == 0
    r1, r2 = json.loads(one.output)["results"][0], json.loads(two.output)["results"][0]
    assert (r1["states"], r1["transitions"], r1["verdict"]) == (r2["states"], r2["transitions"], r2["verdict"])
    bad = runner.invoke(main, ["verify", path, "--engine", "bmc", "--workers", "2"])
    assert bad.exit_code == 2 and "--workers needs the explicit engine" in bad.output


def test_ctrl_c_stops_the_workers(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it: exit 3,
    'interrupted', no worker left behind."""
    p = subprocess.Popen(
        [sys.executable, "-m", "rseqcheck.checker.cli", "verify", "benchmarks/specs/ladder_t2_k3.toml", "--no-por",
         "--workers", "2", "--out", str(tmp_path / "cx")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(4.0)
    kids = subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True, text=True).stdout.split()
    assert len(kids) >= 3  # the coordinator and two workers
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert "unknown: interrupted" in out and "Traceback" not in err
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True, text=True).stdout.split()
    assert left == []


def test_max_memory_counts_the_workers(tmp_path: Path) -> None:
    """--max-memory is the run's memory, the workers' included: the
    coordinator alone stays far below 300 MiB on this rung (1.2 GiB in
    all), so only the workers can trip it; then exit 3 and no worker left."""
    p = subprocess.Popen(
        [sys.executable, "-m", "rseqcheck.checker.cli", "verify", "benchmarks/specs/ladder_t2_k3.toml", "--no-por",
         "--workers", "2", "--max-memory", "300M", "--out", str(tmp_path / "cx")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    out, err = p.communicate(timeout=120)
    assert p.returncode == 3, err
    assert "unknown: memory limit of 300 MiB reached" in out and "Traceback" not in err
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True, text=True).stdout.split()
    assert left == []


def test_the_note_says_how_many_ran(monkeypatch) -> None:
    spec = load_spec(ROOT / "benchmarks/specs/ladder_t2_k1.toml")
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    assert got.notes == ["2 workers from depth 0 (a level of 1 state)"]
    monkeypatch.setattr(workers, "HANDOFF", 16_384)  # this rung's widest level has fewer
    got = workers.bfs_workers(build_system(spec), spec.depth, 2, por=False)
    assert got.notes == ["one worker: no level reached 16,384 states, where the workers start"]
